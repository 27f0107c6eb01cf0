/**
 * restwell: small, composable, framework-agnostic HTTP API middleware.
 *
 * The root entry is what an application calls: the context and middleware
 * types, composition, JSON bodies and validation, the typed errors and their
 * problem details, logging, and the embedded store. Frameworks are reached
 * through `restwell/express` and `restwell/koa`; stores through
 * `restwell/memory`, `restwell/redis` and `restwell/postgres`; each capability
 * through its own subpath (`restwell/idempotency`, `restwell/rate-limit`, ...).
 *
 * What an author of a custom middleware or store needs beyond this (marking a
 * middleware response-blind, reading body bytes, rendering a problem, checking
 * options as restwell does) lives in `restwell/kit`.
 *
 * Every name is listed, never re-exported with `*` from a core file, so that an
 * internal helper added to one does not become public API by accident; the one
 * `*` takes `restwell/errors`, itself such a list.
 *
 * @example
 * ```ts
 * import { jsonBody, validate, NotFoundError } from 'restwell';
 * ```
 */

// The context every middleware speaks, and composition.
export type {
  Context,
  ContextState,
  Middleware,
  Next,
  Principal,
  RequestView,
  ResponseBody,
  ResponseHeaders,
  ResponseView,
} from './core/context.js';
export { type Answer, answerOf, principalId } from './core/context.js';
export { compose } from './core/compose.js';
export type { AdapterOptions } from './core/node.js';
export type { TrustProxy } from './core/ip.js';

// Request bodies and validation.
export { jsonBody, type JsonBodyOptions } from './core/body.js';
export {
  type Validated,
  type ValidatedBy,
  type ValidatedParts,
  type ValidateOptions,
  type ValidateSchemas,
  type Validator,
  validate,
  validated,
} from './core/validate.js';

// Errors, and the problem details (RFC 9457) clients see. restwell/errors is a
// curated list of its own, so everything it exports is meant to be public.
export * from './errors/index.js';
export {
  PROBLEM_CONTENT_TYPE,
  type ProblemDocument,
  type ProblemInit,
  type ProblemOptions,
} from './core/problem.js';

// Web Linking (RFC 8288): the Link header pagination and versioning write.
export {
  formatLink,
  formatLinks,
  type ParsedWebLink,
  parseLinkHeader,
  type WebLink,
} from './core/link.js';

// The Node server itself: parser errors as problems, timeouts.
export { type HardenServerOptions, hardenServer } from './core/server.js';

// Logging.
export {
  defaultLogger,
  jsonLogger,
  type Logger,
  type LogLevel,
  silentLogger,
} from './core/logger.js';

// Stores: the contract, and the embedded one.
export type { Store, StoreOptions } from './stores/types.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/index.js';
