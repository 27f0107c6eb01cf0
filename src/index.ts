/**
 * restwell: small, composable, framework-agnostic HTTP API middleware.
 *
 * The root entry exports the framework-free core. Frameworks are reached through
 * `restwell/express` and `restwell/koa`; stores through `restwell/memory`,
 * `restwell/redis` and `restwell/postgres`.
 */
export * from './core/errors.js';
export * from './core/context.js';
export { compose } from './core/compose.js';
export * from './core/logger.js';
export {
  buildProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDocument,
  type ProblemInit,
  type ProblemOptions,
  problemInitFrom,
  renderProblem,
} from './core/problem.js';
export { compileTrust, normalizeIp, resolveClientIp, type TrustProxy } from './core/ip.js';
export { generateTraceId, parseTraceparent } from './core/trace.js';
export {
  jsonBody,
  type JsonBodyOptions,
  MalformedJsonError,
  mediaTypeOf,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from './core/body.js';
export {
  toJsonPointer,
  type ValidatedParts,
  type ValidateOptions,
  type ValidateSchemas,
  validate,
} from './core/validate.js';
export type { AdapterOptions } from './core/node.js';
export type { Store, StoreOptions } from './stores/types.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/index.js';
