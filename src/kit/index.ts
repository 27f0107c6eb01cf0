/**
 * restwell/kit: what an author of a custom middleware or store needs beyond
 * the root entry. Applications do not need it; restwell's own modules are
 * built from the same pieces.
 *
 * - Responses: `isStreamBody` and `bodyBytes` read a final body without
 *   consuming a stream; `responseBlind` marks a middleware that never reads the
 *   response, so adapters need not hold it back; `claimPreconditions` tells the
 *   adapter that this middleware answers `If-None-Match` and friends itself.
 * - Problems: `renderProblem` writes an error as `application/problem+json` on
 *   the context; `buildProblem` and `problemInitFrom` build the document alone.
 * - Requests: `mediaTypeOf` (a Content-Type's `type/subtype`) and
 *   `toJsonPointer` (RFC 6901), for body parsers and validators.
 * - Configuration: `checkOptions`, `invalidOption`, `describeValue` and
 *   `nearestName` reject unknown or invalid options the way restwell does: a
 *   TypeError naming the option and the nearest valid name, never serialising
 *   a value that may hold a secret.
 * - Logging: `LogThrottle` (one line per interval during an outage) and
 *   `serializeError`.
 * - Stores: the atomic-update and script contracts, `assertLedger` (refuse an
 *   evicting store where a promise rests on the state), `assertTtl` and
 *   `MAX_TTL_MS`.
 *
 * @example
 * ```ts
 * import { createHash } from 'node:crypto';
 * import type { Middleware } from 'restwell';
 * import { bodyBytes, isStreamBody } from 'restwell/kit';
 *
 * // A digest of every complete body (RFC 9530 Repr-Digest); streams pass untouched.
 * export const digest: Middleware = async (ctx, next) => {
 *   await next();
 *   if (isStreamBody(ctx.response.body)) return;
 *   const bytes = bodyBytes(ctx.response.body);
 *   if (bytes === undefined) return;
 *   const hash = createHash('sha256').update(bytes).digest('base64');
 *   ctx.response.headers.set('repr-digest', `sha-256=:${hash}:`);
 * };
 * ```
 */
export {
  answeredBy,
  bodyBytes,
  claimPreconditions,
  isStreamBody,
  responseBlind,
} from '../core/context.js';
export {
  buildProblem,
  lastResortProblemBody,
  problemInitFrom,
  renderLastResortProblem,
  renderProblem,
} from '../core/problem.js';
export { mediaTypeOf, valueNestsDeeperThan } from '../core/body.js';
export { toJsonPointer } from '../core/validate.js';
export {
  checkOptions,
  describeValue,
  invalidOption,
  nearestName,
  serviceUnavailable,
} from '../core/errors.js';
export { LogThrottle, serializeError } from '../core/logger.js';
export {
  type AtomicUpdates,
  type AtomicWrite,
  assertLedger,
  assertTtl,
  MAX_TTL_MS,
  type ScriptRunner,
  type StoreScript,
} from '../stores/types.js';
