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

/**
 * Every problem code, as a registry that declaration merging extends: the keys
 * are the codes. restwell's own codes are listed here, with one code per HTTP
 * error status (the status phrase in kebab case) for errors restwell classifies
 * by status alone. An application adds its own without casts:
 *
 * ```ts
 * declare module 'restwell/errors' {
 *   interface ProblemCodes { 'payment-declined': true }
 * }
 * ```
 */
export interface ProblemCodes {
  // HTTP basics: one per status, for errors known only by their status
  'bad-request': true;
  unauthorized: true;
  'payment-required': true;
  forbidden: true;
  'not-found': true;
  'method-not-allowed': true;
  'not-acceptable': true;
  'proxy-authentication-required': true;
  'request-timeout': true;
  conflict: true;
  gone: true;
  'length-required': true;
  'precondition-failed': true;
  'payload-too-large': true;
  'uri-too-long': true;
  'unsupported-media-type': true;
  'range-not-satisfiable': true;
  'expectation-failed': true;
  'i-m-a-teapot': true;
  'misdirected-request': true;
  'unprocessable-entity': true;
  locked: true;
  'failed-dependency': true;
  'too-early': true;
  'upgrade-required': true;
  'precondition-required': true;
  'too-many-requests': true;
  'request-header-fields-too-large': true;
  'unavailable-for-legal-reasons': true;
  'internal-error': true;
  'not-implemented': true;
  'bad-gateway': true;
  'service-unavailable': true;
  'gateway-timeout': true;
  'http-version-not-supported': true;
  'variant-also-negotiates': true;
  'insufficient-storage': true;
  'loop-detected': true;
  'bandwidth-limit-exceeded': true;
  'not-extended': true;
  'network-authentication-required': true;
  // request bodies and validation
  'validation-failed': true;
  'malformed-json': true;
  'json-too-deep': true;
  'invalid-utf8': true;
  // stores
  'store-unavailable': true;
  'store-timeout': true;
  'store-full': true;
  // idempotency
  'idempotency-key-missing': true;
  'idempotency-key-invalid': true;
  'idempotency-key-reused': true;
  'idempotency-key-in-flight': true;
  'idempotency-key-unscoped': true;
  'idempotency-response-not-replayable': true;
  // rate limiting
  'rate-limited': true;
  'rate-limit-cost-exceeds-capacity': true;
  // pagination
  'invalid-cursor': true;
  // representation
  'invalid-json-patch': true;
  'json-patch-conflict': true;
  'json-patch-unprocessable': true;
  'patch-document-missing': true;
  // security
  /** A plain-HTTP request to an API that is served over HTTPS only (403). */
  'https-required': true;
  /** A CORS preflight for an origin, method or header the policy does not allow (403). */
  'cors-preflight-refused': true;
  /** A dot-segment (`..`, `.`) in the path, in any spelling: encoded, double-encoded, overlong UTF-8, full-width (400). */
  'path-traversal': true;
  /** A path separator that components may disagree about: an encoded `/` or `\`, or a raw `\` (400). */
  'ambiguous-path': true;
  /** A request target that is not origin-form: it has a fragment (`#`) (400). */
  'invalid-request-target': true;
  /** A NUL byte in the path or the query, raw or percent-encoded (400). */
  'null-byte': true;
  /** A `%` not followed by two hex digits, or a path whose percent-decoding is not UTF-8 (400). */
  'invalid-percent-encoding': true;
  /** More than one field line of a header that must be sent once (RFC 9110 §5.3) (400). */
  'duplicate-header': true;
  /** A `Host` header that is not `host[:port]` (RFC 9112 §3.2) (400). */
  'invalid-host': true;
  // auth
  'authentication-required': true;
  'invalid-token': true;
  'invalid-api-key': true;
  'malformed-credentials': true;
  'credentials-in-query': true;
  'insufficient-scope': true;
  'access-denied': true;
  'ip-not-allowed': true;
  // versioning
  'version-unsupported': true;
  'version-sunset': true;
  'resource-sunset': true;
  // webhooks: verification (401)
  'signature-missing': true;
  'signature-malformed': true;
  'signature-mismatch': true;
  'timestamp-missing': true;
  'timestamp-invalid': true;
  'timestamp-outside-tolerance': true;
  'webhook-id-missing': true;
  'webhook-id-invalid': true;
  // webhooks: the receiver
  'webhook-sender-forbidden': true;
  'webhook-event-id-missing': true;
  'webhook-in-flight': true;
  'webhook-body-consumed': true;
  'webhook-queue-full': true;
  // webhooks: delivery
  /** An endpoint URL the SSRF guard refuses: not http(s), userinfo, or a host that is not public (422). */
  'webhook-url-refused': true;
  /** No webhook endpoint has this id (404). */
  'webhook-endpoint-not-found': true;
  /** No dispatched event has this id (404). */
  'webhook-event-not-found': true;
  /** The delivery engine is stopped and takes no more work (503). */
  'webhook-delivery-closed': true;
  /** No delivery of this id to this endpoint is kept (404). */
  'webhook-delivery-not-found': true;
}

/**
 * A problem code: a key of {@link ProblemCodes}. Narrows in a `switch`; stable,
 * a code is never renamed once released.
 */
export type RestwellErrorCode = Extract<keyof ProblemCodes, string>;

/** An HTTP header value as restwell writes it. */
export type HeaderValue = string | number | readonly string[];

/** What a {@link RestwellError} carries besides its code, status and message. */
export interface RestwellErrorOptions {
  /**
   * Human-readable explanation specific to this occurrence. Shown to clients on
   * a 4xx; on a 5xx only with `exposeDetail`, else a generic text replaces it.
   */
  detail?: string;
  /** Headers sent with the error response (for example `Retry-After`, `Allow`). */
  headers?: Record<string, HeaderValue>;
  /** Extra problem-details members; names must be plain identifiers (RFC 9457 §3.2). */
  extensions?: Record<string, unknown>;
  /** The underlying error. Logged on the server, never shown to a client. */
  cause?: unknown;
  /**
   * Show `detail` to the client even on a 5xx. Only for details written to be
   * read by clients ("the request was not executed"), never for messages that
   * come from a driver or the application. @default false
   */
  exposeDetail?: boolean;
}

/**
 * The base class of every restwell error. `expose` follows http-errors: true
 * for a 4xx, whose `detail` is shown to the client; false for a 5xx, whose
 * `detail` is replaced by a generic text (unless `exposeDetail` is set) while
 * the error itself goes to the log. `message` is never shown to a client.
 */
export class RestwellError extends Error {
  override readonly name: string = 'RestwellError';
  readonly code: RestwellErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, HeaderValue>;
  readonly extensions: Record<string, unknown>;
  readonly expose: boolean;
  /** Whether `detail` is client-safe even on a 5xx (see {@link RestwellErrorOptions.exposeDetail}). */
  readonly exposeDetail: boolean;

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
    this.exposeDetail = options.exposeDetail === true;
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

/**
 * 400: the request was understood but its content is invalid. Lists every issue
 * found. The detail counts fields, not issues: a field that breaks two rules
 * is one invalid field with two entries in `errors`. `truncated` says more
 * issues were found than listed, so the count is a lower bound ("2 or more").
 */
export class ValidationError extends RestwellError {
  override readonly name = 'ValidationError';
  readonly errors: readonly ValidationIssue[];

  constructor(errors: readonly ValidationIssue[], options: { truncated?: boolean } = {}) {
    const fields = new Set(errors.map((e) => `${e.in ?? ''} ${e.pointer}`)).size;
    super('validation-failed', 400, 'The request is invalid.', {
      detail:
        fields === 1 && !options.truncated
          ? 'One field is invalid.'
          : `${fields}${options.truncated ? ' or more' : ''} fields are invalid.`,
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

/**
 * A store that never drops a live key is full, so it refuses to create one.
 * Maps to 503: nothing was executed, and the client may retry later.
 */
export class StoreFullError extends RestwellError {
  override readonly name = 'StoreFullError';
  constructor(message = 'The store is full.', options: RestwellErrorOptions = {}) {
    super('store-full', 503, message, options);
  }
}

/**
 * 503 for a module that fails closed: a store it depends on cannot answer, so
 * the request was refused before it ran. `detail` is written for clients
 * ("the request was not executed; retry later") and so is shown
 * (`exposeDetail`); the store's error goes to the log as `cause`.
 * `Retry-After` (RFC 9110 §10.2.3) is sent in whole seconds.
 */
export class ServiceUnavailableError extends RestwellError {
  override readonly name = 'ServiceUnavailableError';
  /** The `Retry-After` sent, in seconds; `undefined` when none is. */
  readonly retryAfterSeconds: number | undefined;
  constructor(detail: string, retryAfterSeconds?: number, cause?: unknown) {
    // RFC 9110 §10.2.3: delay-seconds is a non-negative integer. A value that
    // is not one is rounded up, or dropped, rather than throwing while a
    // request is being answered; modules check their option at construction.
    const seconds =
      typeof retryAfterSeconds === 'number' && Number.isFinite(retryAfterSeconds)
        ? Math.max(0, Math.ceil(retryAfterSeconds))
        : undefined;
    super('service-unavailable', 503, 'Service Unavailable', {
      detail,
      exposeDetail: true,
      ...(seconds === undefined ? {} : { headers: { 'Retry-After': String(seconds) } }),
      ...(cause === undefined ? {} : { cause }),
    });
    this.retryAfterSeconds = seconds;
  }
}

/**
 * Builds the 503 of a module that fails closed; see {@link ServiceUnavailableError}.
 *
 * @example
 * ```ts
 * throw serviceUnavailable('Rate limits cannot be checked right now. Retry later.', 1, err);
 * ```
 */
export function serviceUnavailable(
  detail: string,
  retryAfterSeconds?: number,
  cause?: unknown,
): ServiceUnavailableError {
  return new ServiceUnavailableError(detail, retryAfterSeconds, cause);
}

/** True when `err` is any restwell store failure (unavailable, timed out or full). */
export function isStoreError(
  err: unknown,
): err is StoreUnavailableError | StoreTimeoutError | StoreFullError {
  return (
    err instanceof StoreUnavailableError ||
    err instanceof StoreTimeoutError ||
    err instanceof StoreFullError
  );
}

const MAX_SHOWN_STRING = 40;

/**
 * Describes a configuration value for an error message without serialising
 * it: a client, a pool or an options object may hold a password, so objects
 * are named by their kind and strings are truncated.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string': {
      const shown =
        value.length > MAX_SHOWN_STRING ? `${value.slice(0, MAX_SHOWN_STRING)}…` : value;
      return JSON.stringify(shown);
    }
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return String(value);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  switch (name) {
    case 'Redis':
      return 'a Redis client';
    case 'Cluster':
      return 'a Redis Cluster client';
    case 'Pool':
    case 'BoundPool':
      return 'a pg Pool';
    case 'Client':
      return 'a client object';
    case 'Object':
    case undefined:
      return 'an object';
    default:
      return typeof name === 'string' && /^[A-Za-z_$][\w$]{0,40}$/.test(name)
        ? `a ${name}`
        : 'an object';
  }
}

/**
 * Throws a `TypeError` naming the option: configuration mistakes surface when a
 * middleware is constructed, never while serving a request. The value is
 * described, never serialised (see {@link describeValue}).
 */
export function invalidOption(
  module: string,
  option: string,
  expected: string,
  got: unknown,
): never {
  throw new TypeError(
    `restwell/${module}: option "${option}" must be ${expected}, got ${describeValue(got)}.`,
  );
}

/** Edit distance between two short names, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(
        above + 1,
        row[j - 1]! + 1,
        diagonal + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known name nearest to `name`, when one is near enough to be a typo. */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const d = distance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Checks an options object at construction: it must be a plain object (or
 * absent), and every name in it must be one the module knows. An unknown name
 * throws a `TypeError` with the nearest valid one, or with `hints[name]` when
 * the name is a known habit from another library.
 *
 * @example
 * ```ts
 * checkOptions('jsonBody', options, ['limit', 'types', 'maxDepth']);
 * // jsonBody({ limt: 1 }) → restwell/jsonBody: unknown option "limt". Did you mean "limit"?
 * ```
 */
export function checkOptions(
  module: string,
  options: unknown,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(
      `restwell/${module}: options must be an object, got ${describeValue(options)}.`,
    );
  }
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const hint = Object.hasOwn(hints, name) ? hints[name] : undefined;
    const nearest = hint === undefined ? nearestName(name, known) : undefined;
    const shown = name.length > MAX_SHOWN_STRING ? `${name.slice(0, MAX_SHOWN_STRING)}…` : name;
    throw new TypeError(
      `restwell/${module}: unknown option ${JSON.stringify(shown)}.${
        hint !== undefined
          ? ` ${hint}`
          : nearest !== undefined
            ? ` Did you mean "${nearest}"?`
            : ` Known options: ${known.join(', ')}.`
      }`,
    );
  }
}
