/**
 * Typed errors for every failure restwell reports.
 *
 * Every error a client can see is a {@link RestwellError}: it carries an HTTP
 * `status`, a stable machine-readable `code` (a string union that narrows in a
 * `switch`), an optional client-safe `detail`, response `headers` that belong to
 * the answer (`Retry-After`, `Allow`, ...) and problem-details `extensions`.
 * The problem-details renderer turns any of them into `application/problem+json`.
 *
 * Exported from `restwell/errors` (and re-exported from `restwell`).
 *
 * @example
 * ```ts
 * import { RestwellError } from 'restwell/errors';
 * try { ... } catch (err) {
 *   if (err instanceof RestwellError) {
 *     switch (err.code) {
 *       case 'rate-limited': ...
 *     }
 *   }
 * }
 * ```
 */

/** Every code restwell itself emits. Stable: a code is never renamed once released. */
export type RestwellErrorCode =
  // HTTP basics
  | 'bad-request'
  | 'not-found'
  | 'method-not-allowed'
  | 'not-acceptable'
  | 'internal-error'
  | 'service-unavailable'
  // request bodies and validation
  | 'validation-failed'
  | 'malformed-json'
  | 'unsupported-media-type'
  | 'payload-too-large'
  // stores
  | 'store-unavailable'
  | 'store-timeout'
  // idempotency
  | 'idempotency-key-missing'
  | 'idempotency-key-invalid'
  | 'idempotency-key-reused'
  | 'idempotency-key-in-flight'
  // rate limiting
  | 'rate-limited'
  // conditional requests
  | 'precondition-failed'
  | 'precondition-required';

/** An HTTP header value as restwell writes it. */
export type HeaderValue = string | number | readonly string[];

export interface RestwellErrorOptions {
  /** Human-readable explanation specific to this occurrence; shown to clients. */
  detail?: string;
  /** Headers sent with the error response (for example `Retry-After`, `Allow`). */
  headers?: Record<string, HeaderValue>;
  /** Extra problem-details members; names must be plain identifiers (RFC 9457 §3.2). */
  extensions?: Record<string, unknown>;
  /** The underlying error. Logged on the server, never shown to a client. */
  cause?: unknown;
}

/**
 * The base class of every restwell error. `expose` tells whether `message` and
 * `detail` may be shown to a client: true for 4xx, false for 5xx, where the
 * renderer substitutes a generic text and logs the real one.
 */
export class RestwellError extends Error {
  override readonly name: string = 'RestwellError';
  readonly code: RestwellErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, HeaderValue>;
  readonly extensions: Record<string, unknown>;
  readonly expose: boolean;

  constructor(
    code: RestwellErrorCode,
    status: number,
    message: string,
    options: RestwellErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
    this.expose = status < 500;
  }
}

/** One invalid field, addressed by a JSON Pointer (RFC 6901) into the request part. */
export interface ValidationIssue {
  /** JSON Pointer to the offending value, for example `/items/0/email`. `""` is the whole document. */
  pointer: string;
  /** What is wrong with it. */
  detail: string;
  /** Which part of the request: `body`, `query`, `params` or `headers`. */
  in?: 'body' | 'query' | 'params' | 'headers';
}

/** 400: the request was understood but its content is invalid. Lists every issue found. */
export class ValidationError extends RestwellError {
  override readonly name = 'ValidationError';
  readonly errors: readonly ValidationIssue[];

  constructor(errors: readonly ValidationIssue[], options: { truncated?: boolean } = {}) {
    super('validation-failed', 400, 'The request is invalid.', {
      detail:
        errors.length === 1
          ? 'One field is invalid.'
          : `${errors.length}${options.truncated ? '+' : ''} fields are invalid.`,
      extensions: { errors, ...(options.truncated ? { errorsTruncated: true } : {}) },
    });
    this.errors = errors;
  }
}

/** 404 for an unknown route or resource. */
export class NotFoundError extends RestwellError {
  override readonly name = 'NotFoundError';
  constructor(detail?: string) {
    super('not-found', 404, 'Not Found', detail === undefined ? {} : { detail });
  }
}

/** 405 with the `Allow` header RFC 9110 §15.5.6 requires. */
export class MethodNotAllowedError extends RestwellError {
  override readonly name = 'MethodNotAllowedError';
  readonly allow: readonly string[];
  constructor(method: string, allow: readonly string[]) {
    super('method-not-allowed', 405, 'Method Not Allowed', {
      detail: `${method} is not supported by this resource.`,
      headers: { Allow: allow.join(', ') },
    });
    this.allow = allow;
  }
}

/** A store (Redis, PostgreSQL, ...) could not be reached or failed. Maps to 503. */
export class StoreUnavailableError extends RestwellError {
  override readonly name = 'StoreUnavailableError';
  constructor(message = 'The store is unavailable.', options: RestwellErrorOptions = {}) {
    super('store-unavailable', 503, message, options);
  }
}

/** A store did not answer within its timeout. Maps to 503. */
export class StoreTimeoutError extends RestwellError {
  override readonly name = 'StoreTimeoutError';
  readonly timeoutMs: number;
  constructor(operation: string, timeoutMs: number, options: RestwellErrorOptions = {}) {
    super(
      'store-timeout',
      503,
      `Store operation "${operation}" timed out after ${timeoutMs} ms.`,
      options,
    );
    this.timeoutMs = timeoutMs;
  }
}

/** True when `err` is any restwell store failure (unavailable or timed out). */
export function isStoreError(err: unknown): err is StoreUnavailableError | StoreTimeoutError {
  return err instanceof StoreUnavailableError || err instanceof StoreTimeoutError;
}

/**
 * Throws a `TypeError` naming the option: configuration mistakes surface when a
 * middleware is constructed, never while serving a request.
 */
export function invalidOption(
  module: string,
  option: string,
  expected: string,
  got: unknown,
): never {
  let shown: string;
  try {
    shown = typeof got === 'function' ? 'a function' : (JSON.stringify(got) ?? String(got));
  } catch {
    shown = String(got);
  }
  throw new TypeError(`restwell/${module}: option "${option}" must be ${expected}, got ${shown}.`);
}
