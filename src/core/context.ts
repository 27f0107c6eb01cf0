/**
 * The one request/response context every restwell middleware speaks.
 *
 * An adapter (`restwell/express`, `restwell/koa`) builds a {@link Context} once
 * per request and hands it to the middleware chain. Modules read the request,
 * call `next()`, then see, and may replace, the *final* response: its status,
 * headers and body. Nothing here imports a web framework.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { HeaderValue } from './errors.js';
import type { Logger } from './logger.js';
import type { KeysetPageRequest, OffsetPageRequestShape } from '../pagination/keyset-pages.js';
import type { ReceivedWebhook } from '../webhooks/receiver.js';

/**
 * A response body as modules see it. Strings and bytes are complete bodies;
 * a stream (Node `Readable` or web `ReadableStream`) is a streaming response
 * (SSE, a large download) that modules which need the whole body leave alone.
 * `null` means no body.
 */
export type ResponseBody = string | Uint8Array | Readable | ReadableStream<Uint8Array> | null;

/** The authenticated caller, set by authentication middleware. */
export interface Principal {
  /**
   * A stable identifier: user id, API key id, service account. Scopes
   * idempotency keys and rate limits. A number is used as its decimal string.
   */
  id: string | number;
  /** What kind of principal this is, for example `user` or `api-key`. */
  type?: string;
  /**
   * Roles, for role checks. Set by `restwell/auth` from verified claims or a key's record; a
   * principal from the framework's own authentication may carry them too (read them with
   * `principalOf()`, which counts them only when they are strings).
   */
  roles?: readonly string[];
  /** Scopes (OAuth 2.0 `scope`), for scope checks; as for `roles`. */
  scopes?: readonly string[];
  /** The tenant the principal belongs to, for multi-tenant keys and audit records. */
  tenant?: string;
  [key: string]: unknown;
}

/**
 * Per-request state shared by middlewares, handlers and the framework's own
 * middleware: on Koa it is `ctx.state`, on Express `res.locals` (read it with
 * `contextOf(req).state` from either adapter). Modules declare what they keep
 * here by declaration merging, so that handlers read it typed:
 *
 * ```ts
 * declare module 'restwell' {
 *   interface ContextState { tenant?: string }
 * }
 * ```
 */
export interface ContextState {
  /** The authenticated caller: set by auth middleware, or by the adapter's `principal` option. */
  principal?: Principal;
  /**
   * What `validate()` checked, by part; read it typed with `validated(ctx, validator)`.
   * Several `validate()` on one request merge their parts.
   */
  valid?: {
    body?: unknown;
    query?: unknown;
    params?: unknown;
    headers?: unknown;
  };
  /**
   * The page a paginator read from the query (`keysetPagination()` or
   * `offsetPagination()` of restwell/pagination), once it ran as a middleware.
   * Declared here rather than merged in by the module: a merge into a
   * relative module path does not survive the bundled declarations.
   */
  page?: KeysetPageRequest | OffsetPageRequestShape;
  /** The delivery `webhookReceiver()` of restwell/webhooks verified; read it with `webhookOf(ctx)`. */
  webhook?: ReceivedWebhook;
  [key: string]: unknown;
}

/**
 * The principal's id as a string: a non-empty string as is, a finite number in
 * decimal; `undefined` when there is no principal or its id is unusable.
 */
export function principalId(state: ContextState): string | undefined {
  const id = state.principal?.id;
  if (typeof id === 'string') return id.length > 0 ? id : undefined;
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  return undefined;
}

/** The request as every module reads it, the same on every framework. */
export interface RequestView {
  /** Upper-case method, for example `GET`. */
  readonly method: string;
  /**
   * The request target in origin form (RFC 9112 §3.2.1): path and query
   * (`/v1/users?limit=10`), also when the client sent the absolute form
   * (`http://host/v1/users?limit=10`, §3.2.2), which names the same resource.
   * Adapters reduce it once, so no module has to.
   */
  readonly url: string;
  /**
   * The request target as the client sent it, in origin form, a fragment
   * included: `url` drops anything from a `#` (as the routers do), this keeps
   * it, for checks that refuse such a target. Set by restwell's adapters.
   */
  readonly target?: string;
  /**
   * The header lines as received, names and values alternating (Node's
   * `IncomingMessage.rawHeaders`): repeated fields not yet joined. Set by
   * restwell's adapters.
   */
  readonly rawHeaders?: readonly string[];
  /** The path component of `url`, still percent-encoded. */
  readonly path: string;
  /** The parsed query string. Parsed on first access. */
  readonly query: URLSearchParams;
  /** Raw request headers, lower-case names (Node's `IncomingHttpHeaders`). */
  readonly headers: Readonly<IncomingHttpHeaders>;
  /** One header's value; repeated fields are joined with `", "` (RFC 9110 §5.3). */
  header(name: string): string | undefined;
  /**
   * The client's IP address. Taken from the socket unless the adapter's
   * `trustProxy` setting says which proxies' `X-Forwarded-For` to believe;
   * never from the header by default. `undefined` when the socket is gone.
   */
  readonly ip: string | undefined;
  /** `https` when the connection is TLS, or when a trusted proxy says so via `X-Forwarded-Proto`. */
  readonly protocol: 'http' | 'https';
  /**
   * The matched route pattern when the framework knows it (`/v1/users/:id`),
   * else `undefined`. Used to scope keys per route.
   */
  readonly route: string | undefined;
  /** Route parameters when the framework parsed them. */
  readonly params: Readonly<Record<string, string>>;
  /** The parsed body, when a body parser ran (restwell's `jsonBody()` or the framework's). */
  body: unknown;
  /** The raw body bytes, when a body parser kept them. */
  rawBody: Uint8Array | undefined;
  /** Whether the body stream has already been consumed by a parser. */
  readonly bodyConsumed: boolean;
  /** The body as a byte stream; may be read once. */
  stream(): AsyncIterable<Uint8Array>;
}

/** Case-insensitive view of the response headers. */
export interface ResponseHeaders {
  /** The header's value; several values are joined with `", "`. */
  get(name: string): string | undefined;
  has(name: string): boolean;
  set(name: string, value: HeaderValue): void;
  /** Adds a value, keeping existing ones (for list-valued fields like `Vary` or `Link`). */
  append(name: string, value: string): void;
  delete(name: string): void;
  /** Lower-case names of all headers set. */
  names(): string[];
}

/** The response as every module sees it after `next()`: status, headers and body, all replaceable. */
export interface ResponseView {
  /** The status code. Readable and writable after `await next()`. */
  status: number;
  readonly headers: ResponseHeaders;
  /** The body. Readable and replaceable after `await next()`. */
  body: ResponseBody;
}

/** The one context of a request, built once by the adapter and handed to every restwell middleware. */
export interface Context {
  readonly request: RequestView;
  readonly response: ResponseView;
  readonly state: ContextState;
  /**
   * The request's trace id: the trace-id of a valid W3C `traceparent` header,
   * otherwise a generated 32-hex-digit id. Computed on first access.
   */
  readonly traceId: string;
  /** The server-side logger configured on the adapter. */
  readonly log: Logger;
  /** Which adapter built this context, for diagnostics (`express`, `koa`, ...). */
  readonly adapter: string;
}

/** Runs the rest of the chain (and the framework's handlers); resolves once the response is final. */
export type Next = () => Promise<void>;

/**
 * A restwell middleware: runs before `next()`, sees the final response after it.
 * Same onion model as Koa.
 */
export type Middleware = (ctx: Context, next: Next) => Promise<void> | void;

/** Whether a body is a stream (and so must not be buffered or rewritten by modules that need bytes). */
export function isStreamBody(
  body: ResponseBody | undefined,
): body is Readable | ReadableStream<Uint8Array> {
  return (
    body !== null &&
    body !== undefined &&
    typeof body === 'object' &&
    !(body instanceof Uint8Array) &&
    (typeof (body as Readable).pipe === 'function' ||
      typeof (body as ReadableStream<Uint8Array>).getReader === 'function')
  );
}

const encoder = new TextEncoder();

/**
 * The complete body as bytes, or `undefined` for a streaming body.
 * An empty body is an empty array; `null` is `undefined`-free: it returns an empty array.
 */
export function bodyBytes(body: ResponseBody | undefined): Uint8Array | undefined {
  if (body === null || body === undefined) return new Uint8Array(0);
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return undefined;
}

const RESPONSE_BLIND = Symbol.for('restwell.responseBlind');

/**
 * Marks a middleware that never reads the response after `next()` (a body
 * parser, a validator, a rate limiter). When every middleware of a mount is
 * blind, an adapter need not hold the response back to show it to them, which
 * on Express saves intercepting the response. Unmarked middlewares are assumed
 * to read the final response, so marking is an optimisation, never a
 * requirement.
 */
export function responseBlind<T extends Middleware>(middleware: T): T {
  (middleware as T & { [RESPONSE_BLIND]?: true })[RESPONSE_BLIND] = true;
  return middleware;
}

/** Whether any of these middlewares reads the final response. */
export function seesResponse(middlewares: readonly Middleware[]): boolean {
  return middlewares.some(
    (m) => (m as Middleware & { [RESPONSE_BLIND]?: true })[RESPONSE_BLIND] !== true,
  );
}

const PRECONDITIONS_CLAIMED = Symbol.for('restwell.preconditionsClaimed');

/**
 * Declares that a restwell module evaluates this request's preconditions
 * (`If-None-Match`, `If-Modified-Since`, ...) by RFC 9110 §13.2.2. An adapter
 * whose framework would otherwise answer 304 by its own rules (Express's
 * `res.send()` consults `req.fresh`) then stands that logic down for this
 * request only.
 */
export function claimPreconditions(ctx: Context): void {
  (ctx.state as Record<symbol, unknown>)[PRECONDITIONS_CLAIMED] = true;
}

/** Whether a module has claimed this request's preconditions. */
export function preconditionsClaimed(ctx: Context): boolean {
  return (ctx.state as Record<symbol, unknown>)[PRECONDITIONS_CLAIMED] === true;
}

const ANSWERED = Symbol.for('restwell.answeredBy');

/** Which module answered a request itself, for the adapter's debug log line. */
export interface Answer {
  /** The module, for example `conditional` or `rate-limit`. */
  readonly module: string;
  /** Why, in a few words: `304 not modified`, `429 limit reached`, `replay`. */
  readonly reason: string;
}

/**
 * Records that `module` answered this request itself rather than the handler
 * (a 304 or 412 from conditional requests, a 429 from rate limiting, a replay
 * from idempotency). The last call wins: a module that answers after another
 * (further out) gave the final answer. Costs one property write; the adapter
 * logs it once, at debug level, when its `debug` option is on.
 */
export function answeredBy(ctx: Context, module: string, reason: string): void {
  (ctx.state as Record<symbol, unknown>)[ANSWERED] = { module, reason } satisfies Answer;
}

/** The module that answered this request itself, if any (see {@link answeredBy}). */
export function answerOf(ctx: Context): Answer | undefined {
  return (ctx.state as Record<symbol, unknown>)[ANSWERED] as Answer | undefined;
}
