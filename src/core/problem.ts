/**
 * RFC 9457 problem details: turns any thrown value into an
 * `application/problem+json` response with a stable `code` and the request's
 * `traceId`.
 *
 * Understands restwell's own errors, http-errors objects (Koa's `ctx.throw`,
 * Express body-parser) and anything else. A 5xx answer never carries the
 * error's message, stack, SQL or host names: clients get a generic detail and
 * the trace id; the full error goes to the server log. Rendering never throws:
 * when a hook (`map`, `instance`), the logger or the error itself fails, the
 * answer is a fixed 500 document ({@link renderLastResortProblem}).
 */
import { STATUS_CODES } from 'node:http';
import type { Context } from './context.js';
import { type HeaderValue, RestwellError, type RestwellErrorCode } from './errors.js';
import { defaultLogger } from './logger.js';
import { generateTraceId } from './trace.js';

/** The media type of every problem document (RFC 9457 §3). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The members restwell writes; extensions follow them. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: RestwellErrorCode;
  traceId: string;
  [extension: string]: unknown;
}

/** How an adapter renders errors as problem details; passed as the adapter's `problems` option. */
export interface ProblemOptions {
  /**
   * Base URI for problem types: `type` becomes `typeBase + code`, for example
   * `https://api.example.com/problems/` gives `https://api.example.com/problems/rate-limited`.
   * Point it at your own documentation. When unset, `type` is `about:blank` and
   * `title` is the HTTP status phrase (RFC 9457 §4.2.1); `code` still identifies the problem.
   * @default undefined
   */
  typeBase?: string;
  /**
   * Whether to set `instance` to the request path (RFC 9457 §3.1.5 leaves its
   * meaning to the API). A function can build any URI reference.
   * @default false
   */
  instance?: boolean | ((ctx: Context) => string | undefined);
  /**
   * Maps application errors to problems before the defaults apply. Return
   * `undefined` (or `null`) to fall through. A 5xx `detail` reaches the client only with
   * `exposeDetail: true`; otherwise the generic text replaces it. When `map`
   * throws or returns something that is not a problem (no string `code`, or a
   * `status` that is not an integer from 400 to 599), the answer is the
   * last-resort 500 and the failure is logged.
   * @default undefined
   */
  map?: (err: unknown, ctx: Context) => ProblemInit | undefined;
}

/** What a mapped error becomes. */
export interface ProblemInit {
  status: number;
  /** A key of `ProblemCodes`; extend that registry for your own codes. */
  code: RestwellErrorCode;
  /** Shown to the client on a 4xx; on a 5xx only with `exposeDetail`. */
  detail?: string;
  /**
   * Show `detail` on a 5xx too. For details written for clients ("not
   * executed, retry"), never for messages of a driver or a library. @default false
   */
  exposeDetail?: boolean;
  headers?: Record<string, HeaderValue>;
  extensions?: Record<string, unknown>;
}

// RFC 9457 §3.2: extension names SHOULD start with a letter, use ASCII letters,
// digits and underscores, and be at least three characters, so that they map
// onto identifiers in common languages.
const EXTENSION_NAME = /^[A-Za-z][A-Za-z0-9_]{2,}$/;
const RESERVED = new Set(['type', 'title', 'status', 'detail', 'instance', 'code', 'traceId']);

// Headers that describe the representation the failed handler may have started;
// they would lie about the problem document that replaces it. Caching directives
// set for the resource (`Cache-Control: immutable`, `Expires`) go too: a shared
// cache must not keep a 412 or a 500 for as long as it would keep the resource.
const REPRESENTATION_HEADERS = [
  'content-length',
  'content-encoding',
  'content-range',
  'content-disposition',
  'content-language',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
];

const GENERIC_5XX_DETAIL =
  'The server could not complete the request. Quote the traceId when reporting it.';

/** Turns a status phrase into a code: `Unprocessable Entity` → `unprocessable-entity`. */
function codeForStatus(status: number): RestwellErrorCode {
  switch (status) {
    case 500:
      return 'internal-error';
    case 413:
      return 'payload-too-large';
    default: {
      const code = (STATUS_CODES[status] ?? '')
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '');
      // Every phrase Node knows is a key of ProblemCodes; an unknown status falls back by class.
      return code !== ''
        ? (code as RestwellErrorCode)
        : status >= 500
          ? 'internal-error'
          : 'bad-request';
    }
  }
}

interface HttpErrorLike {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  headers?: unknown;
  type?: unknown;
}

function validStatus(s: unknown): s is number {
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599;
}

/** Classifies any thrown value. */
export function problemInitFrom(err: unknown): ProblemInit {
  if (err instanceof RestwellError) {
    const status = validStatus(err.status) ? err.status : 500;
    const init: ProblemInit = {
      status,
      code: err.code,
      headers: err.headers,
      extensions: err.extensions,
    };
    if (err.detail !== undefined && (status < 500 || err.exposeDetail)) {
      init.detail = err.detail;
      if (status >= 500) init.exposeDetail = true;
    }
    return init;
  }
  if (err !== null && typeof err === 'object') {
    const e = err as HttpErrorLike;
    const status = validStatus(e.status)
      ? e.status
      : validStatus(e.statusCode)
        ? e.statusCode
        : 500;
    let code = codeForStatus(status);
    // body-parser / raw-body / co-body error types (Express's and Koa's parsers).
    switch (e.type) {
      case 'entity.parse.failed':
        code = 'malformed-json';
        break;
      case 'entity.too.large':
        code = 'payload-too-large';
        break;
      case 'encoding.unsupported':
      case 'charset.unsupported':
        code = 'unsupported-media-type';
        break;
    }
    const init: ProblemInit = { status, code };
    const message = typeof e.message === 'string' ? e.message : undefined;
    // http-errors marks client errors `expose: true`; only those messages are shown.
    if (status < 500 && e.expose === true && message && message !== STATUS_CODES[status]) {
      init.detail = message;
    }
    // A foreign 5xx may carry an upstream's response headers (an HTTP client's
    // error); only a client error's headers (`Allow`, `WWW-Authenticate`) are its own.
    if (status < 500 && e.headers !== null && typeof e.headers === 'object') {
      init.headers = e.headers as Record<string, HeaderValue>;
    }
    return init;
  }
  return { status: 500, code: 'internal-error' };
}

/** Builds the problem document and the headers of its response. */
export function buildProblem(
  init: ProblemInit,
  ctx: Context,
  options: ProblemOptions = {},
): ProblemDocument {
  const status = validStatus(init.status) ? init.status : 500;
  const phrase = STATUS_CODES[status] ?? 'Error';
  const instance =
    typeof options.instance === 'function'
      ? options.instance(ctx)
      : options.instance
        ? ctx.request.path
        : undefined;
  const detail =
    status >= 500 && !(init.exposeDetail === true && init.detail !== undefined)
      ? GENERIC_5XX_DETAIL
      : init.detail;
  // Members in the order RFC 9457 §3.1 lists them, then restwell's, then extensions.
  const doc: ProblemDocument = {
    type: options.typeBase ? options.typeBase + init.code : 'about:blank',
    title: phrase,
    status,
    ...(detail === undefined ? {} : { detail }),
    ...(instance === undefined ? {} : { instance }),
    code: init.code,
    traceId: ctx.traceId,
  };
  if (init.extensions) {
    for (const [name, value] of Object.entries(init.extensions)) {
      if (EXTENSION_NAME.test(name) && !RESERVED.has(name) && value !== undefined)
        doc[name] = value;
    }
  }
  return doc;
}

/**
 * Renders `err` into `ctx.response` as a problem and logs every 5xx with the
 * full error and the trace id. Never throws: if `options.map`, `options.instance`
 * or serialising the document throws, or `map` returns something that is not a
 * problem, the response is the last-resort 500 of {@link renderLastResortProblem};
 * if the logger throws, the entry goes to stderr and the response stands.
 */
export function renderProblem(
  ctx: Context,
  err: unknown,
  options: ProblemOptions = {},
): ProblemDocument {
  let doc: ProblemDocument;
  const applied: string[] = [];
  try {
    const mapped = options.map?.(err, ctx);
    // `null` falls through as `undefined` does, for maps written in plain JavaScript.
    if (mapped !== undefined && mapped !== null && !isProblemInit(mapped)) {
      throw new TypeError('restwell/problems: map() returned something that is not a ProblemInit.');
    }
    const init = mapped ?? problemInitFrom(err);
    doc = buildProblem(init, ctx, options);
    const body = JSON.stringify(doc);
    const headers = ctx.response.headers;
    for (const name of REPRESENTATION_HEADERS) headers.delete(name);
    // A failed handler may have set a cookie for the answer it never finished (a
    // session, a CSRF token): a 5xx problem must not deliver it.
    if (doc.status >= 500) headers.delete('set-cookie');
    if (init.headers) {
      for (const [name, value] of Object.entries(init.headers)) {
        if (value !== undefined && !REPRESENTATION_HEADERS.includes(name.toLowerCase())) {
          applied.push(name);
          headers.set(name, value);
        }
      }
    }
    headers.set('content-type', PROBLEM_CONTENT_TYPE);
    ctx.response.status = doc.status;
    ctx.response.body = body;
  } catch (failure) {
    return lastResort(ctx, err, failure, applied);
  }
  if (doc.status >= 500) {
    log(ctx, doc.traceId, 'request failed', { status: doc.status, code: doc.code, err });
  }
  return doc;
}

// A status outside 400-599 is not an error: answering it as a 500 with the
// map's code would say the server failed in a way the map never meant.
function isProblemInit(value: unknown): value is ProblemInit {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    (value as { code: string }).code.length > 0 &&
    validStatus((value as { status?: unknown }).status)
  );
}

/** The trace id when the context can give one, else a fresh one, else none. */
function traceIdOf(ctx: Context): string | undefined {
  try {
    const id = ctx.traceId;
    if (typeof id === 'string' && id.length > 0) return id;
  } catch {
    // fall through to a fresh id, which the log line and the client share
  }
  try {
    return generateTraceId();
  } catch {
    return undefined;
  }
}

/**
 * Logs at error level with the request's method and path; a logger (or a
 * request view) that throws is replaced by stderr for this entry.
 */
function log(
  ctx: Context,
  traceId: string | undefined,
  message: string,
  fields: Record<string, unknown>,
): void {
  let entry: Record<string, unknown> = { traceId, ...fields };
  try {
    entry = {
      traceId,
      method: ctx.request.method,
      path: ctx.request.path,
      ...fields,
    };
    ctx.log.error(message, entry);
  } catch (logFailure) {
    try {
      defaultLogger.error(message, { ...entry, logFailure });
    } catch {
      // Nowhere left to write; the response is still sent.
    }
  }
}

/**
 * The body of the last-resort 500: a fixed `application/problem+json` text,
 * with `traceId` when one is given. Never throws. For an adapter that must
 * write to the raw response itself, with `Content-Type: application/problem+json`.
 */
export function lastResortProblemBody(traceId?: string): string {
  return `{"type":"about:blank","title":"Internal Server Error","status":500,"detail":${JSON.stringify(
    GENERIC_5XX_DETAIL,
  )},"code":"internal-error"${
    typeof traceId === 'string' && traceId.length > 0 ? `,"traceId":${JSON.stringify(traceId)}` : ''
  }}`;
}

/**
 * Writes the last-resort 500 into `ctx.response`: the fixed document of
 * {@link lastResortProblemBody} with the request's trace id (a fresh one when
 * the context cannot give it), `Content-Type: application/problem+json`, and
 * the headers of the failed representation and any `Set-Cookie` removed. Logs `err` (the error
 * being answered, if any) and `failure` (what broke the rendering, if any).
 * Never throws: each write is attempted on its own, so a response view that
 * refuses one (headers already sent) still gets the others.
 *
 * For every step after the middleware chain that can fail (rendering,
 * finalising, flushing), so that no failure reaches the framework's own
 * plain-text 500 page.
 */
export function renderLastResortProblem(
  ctx: Context,
  err?: unknown,
  failure?: unknown,
): ProblemDocument {
  return lastResort(ctx, err, failure, []);
}

function lastResort(
  ctx: Context,
  err: unknown,
  failure: unknown,
  applied: readonly string[],
): ProblemDocument {
  const traceId = traceIdOf(ctx);
  const attempt = (write: () => void) => {
    try {
      write();
    } catch {
      // Best effort: the other writes still happen.
    }
  };
  log(ctx, traceId, 'problem rendering failed; answered the last-resort 500', {
    status: 500,
    code: 'internal-error',
    err,
    failure,
  });
  attempt(() => {
    const headers = ctx.response.headers;
    for (const name of REPRESENTATION_HEADERS) attempt(() => headers.delete(name));
    // A 500 never delivers the cookie the failed handler set, as renderProblem's 5xx does not.
    attempt(() => headers.delete('set-cookie'));
    for (const name of applied) attempt(() => headers.delete(name));
    headers.set('content-type', PROBLEM_CONTENT_TYPE);
  });
  attempt(() => {
    ctx.response.status = 500;
  });
  attempt(() => {
    ctx.response.body = lastResortProblemBody(traceId);
  });
  return {
    type: 'about:blank',
    title: 'Internal Server Error',
    status: 500,
    detail: GENERIC_5XX_DETAIL,
    code: 'internal-error',
    traceId: traceId ?? '',
  };
}

/**
 * An error status with no body (Koa's default 404, a router's bare 405 with
 * `Allow`) becomes a problem document for that status, keeping its headers.
 */
export function renderStatusProblem(ctx: Context, options: ProblemOptions = {}): void {
  let status: number;
  try {
    status = ctx.response.status;
    if (status < 400 || status > 599 || ctx.response.body !== null) return;
  } catch (failure) {
    renderLastResortProblem(ctx, undefined, failure);
    return;
  }
  renderProblem(ctx, { status, expose: true }, options);
}
