/**
 * The typed errors of restwell's core, on their own subpath (as jose exports
 * its errors from `jose/errors`): every error a client can see is a
 * {@link RestwellError} with an HTTP `status` and a stable `code` that narrows
 * in a `switch`. Each module's own errors are exported from that module's
 * subpath (`restwell/idempotency`, `restwell/rate-limit`, ...).
 *
 * Exported from `restwell/errors` (and re-exported from `restwell`).
 *
 * @example
 * ```ts
 * import { RestwellError } from 'restwell/errors';
 *
 * declare module 'restwell/errors' {
 *   interface ProblemCodes { 'payment-declined': true }
 * }
 * throw new RestwellError('payment-declined', 402, 'Payment declined');
 * ```
 */
export {
  type HeaderValue,
  isStoreError,
  MethodNotAllowedError,
  NotFoundError,
  type ProblemCodes,
  RestwellError,
  type RestwellErrorCode,
  type RestwellErrorOptions,
  ServiceUnavailableError,
  StoreFullError,
  StoreTimeoutError,
  StoreUnavailableError,
  ValidationError,
  type ValidationIssue,
} from '../core/errors.js';
export {
  InvalidUtf8Error,
  JsonTooDeepError,
  MalformedJsonError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../core/body.js';
