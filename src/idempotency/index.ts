/**
 * Idempotency keys, after draft-ietf-httpapi-idempotency-key-header and
 * Stripe's API: a client that retries a POST after a timeout is never charged
 * twice. The first request with a key runs and its response is recorded; a
 * retry with the same key and the same request gets the recorded response,
 * byte for byte, with `Idempotent-Replayed: true`.
 *
 * Exported from `restwell/idempotency`.
 *
 * - One atomic store step claims the key with an in-flight record that carries
 *   a fencing token and a lease; only the holder of that exact record can
 *   complete or release it, so a process whose lease ran out cannot overwrite
 *   the work of the one that took over. While the handler runs, the lease is
 *   renewed, for at most `maxExecutionMs`.
 * - Same key, different request (fingerprint) → 422; same key while the first
 *   is still running → 409 with `Retry-After`; 422 wins when both apply.
 * - Once a handler ran, a retry never runs it again while the record lives: an
 *   answer that cannot be kept (streamed, too large) leaves a "done, not
 *   replayable" record, and retries get 422 `idempotency-response-not-replayable`.
 * - Store round trips: two for a first request (claim, record), one for a replay.
 *
 * @example
 * ```ts
 * import { idempotency } from 'restwell/idempotency';
 * app.post('/v1/payments', rw(idempotency({ store, required: true })), createPayment);
 * ```
 */
import { constants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { sha256Parts as sha256 } from '../core/hash.js';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { parseAcceptEncoding } from '../compression/negotiate.js';
import {
  answeredBy,
  bodyBytes,
  type Context,
  type Middleware,
  principalId,
} from '../core/context.js';
import {
  checkOptions,
  describeValue,
  invalidOption,
  RestwellError,
  StoreFullError,
  type HeaderValue,
} from '../core/errors.js';
import { LogThrottle } from '../core/logger.js';
import {
  buildProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemInit,
  type ProblemOptions,
  problemInitFrom,
  renderProblem,
} from '../core/problem.js';
import { assertLedger, MAX_TTL_MS, type Store } from '../stores/types.js';
import { canonicalJson } from './canonical-json.js';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyMissingError,
  IdempotencyKeyReusedError,
  IdempotencyKeyUnscopedError,
  IdempotencyResponseNotReplayableError,
} from './errors.js';
import { MAX_KEY_LENGTH, parseIdempotencyKey } from './key.js';

export { canonicalJson } from './canonical-json.js';
export * from './errors.js';
export { MAX_KEY_LENGTH, parseIdempotencyKey } from './key.js';

/** Options of {@link idempotency}. */
export interface IdempotencyOptions {
  /**
   * Where records live: a store that never evicts a live key (`new MemoryStore({ evict: false })`,
   * RedisStore on a server with `maxmemory-policy noeviction`, PostgresStore). A store that
   * may evict is refused at construction. When the store is full, a new key is answered with
   * 503 `store-full` and nothing runs. Required.
   */
  store: Store;
  /** Answer 400 `idempotency-key-missing` when the header is absent. @default false */
  required?: boolean;
  /** Methods the middleware applies to; others pass through. @default ['POST', 'PATCH'] */
  methods?: readonly string[];
  /** The request header carrying the key; problem details name it. @default 'Idempotency-Key' */
  header?: string;
  /** Longest key accepted. @default 255 */
  maxKeyLength?: number;
  /**
   * How long a completed response is kept and replayed. The draft asks servers
   * to publish this; 24 hours matches Stripe. @default 86_400_000 (24 h)
   */
  ttlMs?: number;
  /**
   * How long an in-flight claim lasts without renewal. While the handler runs
   * the claim is renewed every third of this; if the process dies, a retry may
   * proceed once it has passed. @default 30_000
   */
  leaseMs?: number;
  /**
   * Longest time the lease is renewed for one request. A handler that hangs
   * (a stuck upstream call, a client long gone) stops holding the key once
   * this has passed: renewal stops (logged), and a retry runs after the lease
   * ends. Choose it above your slowest legitimate handler. @default 300_000 (5 min)
   */
  maxExecutionMs?: number;
  /**
   * Whose key it is: keys of different scopes never collide. The default is the
   * authenticated principal (`ctx.state.principal.id`, a string or a number);
   * mount idempotency after authentication. Return `undefined` (or `null`, `''`)
   * for "no scope", which `anonymous` then decides; any other value that is not a
   * non-empty string is a wiring error (500), never a scope shared by all.
   * @default the principal id
   */
  scope?: (ctx: Context) => string | undefined;
  /**
   * What a keyed request without a scope (no principal) gets. `'refuse'`: 400
   * `idempotency-key-unscoped`, and a warning in the log, because scoping by
   * anything weaker must be a decision. `'ip'`: the key is scoped to the
   * client IP; clients behind one NAT share it, and a client that retries from
   * another address (IPv6 falling back to IPv4, a NAT pool, a mobile network)
   * is a stranger, so its retry executes again. @default 'refuse'
   */
  anonymous?: 'refuse' | 'ip';
  /** Request headers that are part of the fingerprint (e.g. `['stripe-account']`). @default [] */
  fingerprintHeaders?: readonly string[];
  /**
   * Response headers recorded and replayed besides the representation metadata
   * always kept: Content-Type, Content-Encoding, Content-Language,
   * Content-Disposition, Content-Location, Vary, Cache-Control, Last-Modified,
   * Expires, ETag, Location and Link. Set-Cookie (a replay would hand one
   * response's session to another request), framing and hop-by-hop fields are
   * refused with a TypeError. @default []
   */
  recordHeaders?: readonly string[];
  /**
   * Largest response body recorded. A larger or streamed answer is sent as is,
   * and its key keeps a record without the body: retries get 422
   * `idempotency-response-not-replayable`, never a second execution. @default 1_048_576
   */
  maxRecordedBodyBytes?: number;
  /**
   * When the store fails on the claim: `closed` answers 503 and runs nothing,
   * since running unguarded risks a double charge; `open` runs the request
   * without idempotency (logged). A full store always answers 503. @default 'closed'
   */
  onStoreError?: 'closed' | 'open';
  /**
   * What a 5xx answer (or a thrown error that renders as one) does to the key.
   * `release` (default) frees it so that the client may retry. `record` keeps
   * the 5xx, rendered as the adapter renders it, and replays it, as Stripe does
   * once execution began: safer against partial side effects, but the client
   * must use a new key to try again. A thrown 4xx always frees the key.
   * @default 'release'
   */
  onServerError?: 'release' | 'record';
  /** `Retry-After` seconds (a positive integer) sent with 409 in-flight and 503 answers. @default 1 */
  retryAfterSeconds?: number;
}

const OPTION_NAMES = [
  'store',
  'required',
  'methods',
  'header',
  'maxKeyLength',
  'ttlMs',
  'leaseMs',
  'maxExecutionMs',
  'scope',
  'anonymous',
  'fingerprintHeaders',
  'recordHeaders',
  'maxRecordedBodyBytes',
  'onStoreError',
  'onServerError',
  'retryAfterSeconds',
] as const;

const OPTION_HINTS: Readonly<Record<string, string>> = {
  ttl: 'Use "ttlMs" (milliseconds).',
  lease: 'Use "leaseMs" (milliseconds).',
  headerName: 'Use "header".',
  keyHeader: 'Use "header".',
};

/** What is stored under a key. */
type IdempotencyRecord =
  | { v: 1; state: 'in-flight'; token: string; fp: string }
  | {
      v: 1;
      state: 'done';
      fp: string;
      status: number;
      headers: Array<[string, string]>;
      body: string;
    }
  // Executed, but the answer was not kept (streamed or too large): never executed again.
  | { v: 1; state: 'unreplayable'; fp: string; status: number };

type DoneRecord = Extract<IdempotencyRecord, { state: 'done' }>;

// RFC 9110 §5.1: field-name = token.
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isStatus(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599;
}

/** The record a store returned, or `undefined` when it is not one this version wrote. */
function readRecord(text: string): IdempotencyRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (r.v !== 1 || typeof r.fp !== 'string') return undefined;
  switch (r.state) {
    case 'in-flight':
      return typeof r.token === 'string' ? (r as IdempotencyRecord) : undefined;
    case 'unreplayable':
      return isStatus(r.status) ? (r as IdempotencyRecord) : undefined;
    case 'done':
      return isStatus(r.status) &&
        typeof r.body === 'string' &&
        Array.isArray(r.headers) &&
        r.headers.every(
          (h) =>
            Array.isArray(h) &&
            h.length === 2 &&
            typeof h[0] === 'string' &&
            typeof h[1] === 'string' &&
            // What Node would refuse to send (ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR)
            // would be a 500 on every replay: such a record is unreadable.
            FIELD_NAME.test(h[0]) &&
            !/[\0\r\n]/.test(h[1]),
        )
        ? (r as IdempotencyRecord)
        : undefined;
    default:
      return undefined;
  }
}

/** The fingerprint of a record that is otherwise unreadable, when it still has one. */
function fingerprintOf(text: string): string | undefined {
  try {
    const fp = (JSON.parse(text) as { fp?: unknown } | null)?.fp;
    return typeof fp === 'string' ? fp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Representation metadata (RFC 9110 §8) and the response's own links: what a
 * client needs to read the replayed body as it read the first one.
 */
const DEFAULT_RECORDED = [
  'content-type',
  'content-encoding',
  'content-language',
  'content-disposition',
  'content-location',
  'vary',
  'cache-control',
  'last-modified',
  'expires',
  'etag',
  'location',
  'link',
];
/**
 * Response fields `recordHeaders` may not name. Set-Cookie: a replay would hand the
 * session or token minted for the first response to whoever retries under the scope
 * (clients behind one address with `anonymous: 'ip'`, the members of a shared account),
 * which is session fixation; its values also cannot be joined into one field
 * (RFC 9110 §5.3), so it could not be replayed intact anyway. Framing and hop-by-hop
 * fields (RFC 9110 §7.6.1, RFC 9112 §6) describe one connection's message, not the
 * representation: a recorded Content-Length is wrong for a replay that is decoded.
 */
const NEVER_RECORDED: Readonly<Record<string, string>> = {
  'set-cookie': "replaying a cookie hands one response's session to another request",
  'content-length': 'framing is computed for each message',
  'transfer-encoding': 'framing is computed for each message',
  connection: 'a hop-by-hop field',
  'keep-alive': 'a hop-by-hop field',
  'proxy-connection': 'a hop-by-hop field',
  te: 'a hop-by-hop field',
  trailer: 'a hop-by-hop field',
  upgrade: 'a hop-by-hop field',
  'idempotent-replayed': 'set on every replay',
};

// Transient answers that must not be replayed forever.
const NOT_RECORDED = new Set([408, 409, 425, 429]);
// Statuses that never carry content (RFC 9110 §15.3.5, §15.3.6, §15.4.5).
const NO_CONTENT = new Set([204, 205, 304]);

const NOT_EXECUTED =
  'The request was not executed: its Idempotency-Key cannot be checked right now. Retry later with the same key.';
const STORE_FULL =
  'The request was not executed: no more idempotency keys can be recorded right now. Retry later with the same key.';

/** The adapter's problem options, when the context is one an adapter built. */
function problemOptions(ctx: Context): ProblemOptions {
  return (ctx as { settings?: { problems?: ProblemOptions } }).settings?.problems ?? {};
}

/**
 * Answers with a problem without throwing. For operational answers (the store
 * is down or full) that the module logs itself, once per interval: a thrown
 * 5xx would be logged again by the adapter on every request of an outage.
 */
function answerProblem(ctx: Context, init: ProblemInit): void {
  const doc = buildProblem(init, ctx, problemOptions(ctx));
  for (const [name, value] of Object.entries(init.headers ?? {}))
    ctx.response.headers.set(name, value);
  ctx.response.headers.set('content-type', PROBLEM_CONTENT_TYPE);
  ctx.response.status = doc.status;
  ctx.response.body = JSON.stringify(doc);
}

/**
 * What stands for the route when the framework matched none yet (idempotency
 * mounted globally, before the router): the path as the most lenient router
 * would match it. Express and @koa/router match case-insensitively and ignore a
 * trailing slash by default, so `/v1/payments`, `/V1/Payments` and `/v1/payments/`
 * run the same handler and must be one key. Merging more than a router does is
 * safe (the fingerprint still holds the exact target, so such a retry gets 422,
 * never another answer); merging less would run one request twice.
 */
function routeOf(path: string): string {
  let p = path;
  try {
    p = decodeURIComponent(p);
  } catch {
    // A malformed escape stays as sent: a router cannot decode it either.
  }
  p = p.toLowerCase().replace(/\/{2,}/g, '/');
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/**
 * An empty plain object: what body-parser 1.x (Express 4's `express.json()`) and
 * koa-bodyparser put in `body` before they look at the media type, and leave there
 * when they decline it without reading the stream. With content still unread it
 * stands for nothing, and the body is treated as unread.
 */
function standIn(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const proto = Object.getPrototypeOf(body);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const _ in body) return false;
  return true;
}

/** A Content-Type for a problem detail: its media type only, bounded, never its parameters. */
function describeType(value: string | undefined): string {
  const type = value?.split(';')[0]?.trim() ?? '';
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}\/[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(type)
    ? type
    : 'absent or malformed';
}

/** Whether the request has content the fingerprint must see (RFC 9112 §6.3). */
function hasContent(ctx: Context): boolean {
  const { headers } = ctx.request;
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0' && Number(length) !== 0;
}

function checkHeaderList(option: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((h) => typeof h !== 'string' || h.length === 0)) {
    invalidOption('idempotency', option, 'a list of header names', value);
  }
  return value as readonly string[];
}

/** A claim this process holds while its handler runs. */
interface HeldClaim {
  readonly ctx: Context;
  readonly storeKey: string;
  readonly claim: string;
  readonly started: number;
}

/**
 * The claims one middleware holds, renewed by one timer: a timer per request
 * (`setInterval`, `unref`, `clearInterval`) costs more than the rest of a
 * claim's bookkeeping. Every held claim is renewed at least once per period,
 * as its own timer did (one added just before a tick is renewed early, which
 * is harmless); the timer stops at the first tick that finds nothing held, and
 * never keeps the process alive.
 */
class Renewals {
  private readonly held = new Set<HeldClaim>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly periodMs: number,
    private readonly renew: (claim: HeldClaim) => void,
  ) {}

  hold(claim: HeldClaim): void {
    this.held.add(claim);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), this.periodMs);
      this.timer.unref();
    }
  }

  drop(claim: HeldClaim): void {
    this.held.delete(claim);
  }

  private tick(): void {
    if (this.held.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    // A Set iterates what is added during the pass too; each renewal is one call, no await.
    for (const claim of this.held) this.renew(claim);
  }
}

/**
 * A fencing token unique to one claim: a random per-process prefix (128 bits,
 * as a UUID's 122) and a counter. Only uniqueness matters (no claim may be
 * taken for another's), not unpredictability: the token never leaves the store.
 * `randomUUID()` per request costs more than the counter.
 */
const TOKEN_PREFIX = `${randomBytes(16).toString('base64url')}.`;
let tokenCounter = 0;
function fencingToken(): string {
  tokenCounter += 1;
  return TOKEN_PREFIX + tokenCounter.toString(36);
}

/**
 * Idempotency keys for POST and PATCH (draft-ietf-httpapi-idempotency-key-header): the first
 * request with a key runs and its answer is recorded; a retry with the same request gets the
 * recorded answer with `Idempotent-Replayed: true`; another request under the key is 422, a
 * concurrent duplicate 409. The store must be a ledger.
 */
export function idempotency(options: IdempotencyOptions): Middleware {
  checkOptions('idempotency', options, OPTION_NAMES, OPTION_HINTS);
  const {
    store,
    required = false,
    methods = ['POST', 'PATCH'],
    header = 'Idempotency-Key',
    maxKeyLength = MAX_KEY_LENGTH,
    ttlMs = 86_400_000,
    leaseMs = 30_000,
    maxExecutionMs = 300_000,
    scope,
    anonymous = 'refuse',
    fingerprintHeaders = [],
    recordHeaders = [],
    maxRecordedBodyBytes = 1_048_576,
    onStoreError = 'closed',
    onServerError = 'release',
    retryAfterSeconds = 1,
  } = options ?? ({} as IdempotencyOptions);
  if (store === null || typeof store !== 'object' || typeof store.addOrGet !== 'function') {
    invalidOption(
      'idempotency',
      'store',
      'a Store (MemoryStore, RedisStore, PostgresStore)',
      store,
    );
  }
  assertLedger('idempotency', store);
  if (typeof required !== 'boolean')
    invalidOption('idempotency', 'required', 'true or false', required);
  if (!Array.isArray(methods) || methods.some((m) => typeof m !== 'string')) {
    invalidOption('idempotency', 'methods', 'a list of HTTP methods', methods);
  }
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))
    invalidOption('idempotency', 'header', 'a header name', header);
  for (const [name, value] of Object.entries({
    maxKeyLength,
    ttlMs,
    leaseMs,
    maxExecutionMs,
    maxRecordedBodyBytes,
    retryAfterSeconds,
  })) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      invalidOption('idempotency', name, 'a positive number', value);
  }
  // RFC 9110 §10.2.3: delay-seconds = 1*DIGIT; "1.5" is not a Retry-After a client can read.
  if (!Number.isInteger(retryAfterSeconds))
    invalidOption('idempotency', 'retryAfterSeconds', 'a positive integer', retryAfterSeconds);
  // Checked here, not by the store on the first request, where it would read as an outage.
  if (ttlMs > MAX_TTL_MS)
    invalidOption('idempotency', 'ttlMs', `at most ${MAX_TTL_MS} (ten years)`, ttlMs);
  if (leaseMs > MAX_TTL_MS)
    invalidOption('idempotency', 'leaseMs', `at most ${MAX_TTL_MS} (ten years)`, leaseMs);
  if (onStoreError !== 'closed' && onStoreError !== 'open') {
    invalidOption('idempotency', 'onStoreError', "'closed' or 'open'", onStoreError);
  }
  if (onServerError !== 'release' && onServerError !== 'record') {
    invalidOption('idempotency', 'onServerError', "'release' or 'record'", onServerError);
  }
  if (anonymous !== 'refuse' && anonymous !== 'ip') {
    invalidOption('idempotency', 'anonymous', "'refuse' or 'ip'", anonymous);
  }
  if (scope !== undefined && typeof scope !== 'function')
    invalidOption('idempotency', 'scope', 'a function', scope);

  const methodSet = new Set(methods.map((m) => m.toUpperCase()));
  const headerName = header.toLowerCase();
  const fpHeaders = checkHeaderList('fingerprintHeaders', fingerprintHeaders).map((h) =>
    h.toLowerCase(),
  );
  const extraRecorded = checkHeaderList('recordHeaders', recordHeaders).map((h) => h.toLowerCase());
  for (const name of extraRecorded) {
    const why = NEVER_RECORDED[name];
    if (why !== undefined)
      invalidOption('idempotency', 'recordHeaders', `a list without ${name} (${why})`, name);
  }
  const recorded = new Set([...DEFAULT_RECORDED, ...extraRecorded]);
  const renewEveryMs = Math.max(10, Math.floor(leaseMs / 3));
  const renewals = new Renewals(renewEveryMs, (claim) => {
    if (Date.now() - claim.started >= maxExecutionMs) {
      renewals.drop(claim);
      const pass = hungLog.pass();
      if (pass !== undefined) {
        claim.ctx.log.warn(
          'idempotency stopped renewing the lease of a request running longer than maxExecutionMs; a retry may run once the lease ends',
          {
            traceId: claim.ctx.traceId,
            path: claim.ctx.request.path,
            maxExecutionMs,
            suppressed: pass.suppressed,
          },
        );
      }
      return;
    }
    store.compareAndSet(claim.storeKey, claim.claim, claim.claim, leaseMs).then(
      (stillHeld) => {
        // Taken over (the lease ran out during a stall): renewing is pointless.
        if (!stillHeld) renewals.drop(claim);
      },
      () => {},
    );
  });
  // zlib refuses a maxOutputLength above the largest Buffer.
  const maxDecodedBytes = Math.min(maxRecordedBodyBytes * MAX_DECODED_RATIO, constants.MAX_LENGTH);
  // One line per interval for what a whole outage or a wiring mistake repeats on every request.
  const storeLog = new LogThrottle();
  const fullLog = new LogThrottle();
  const anonymousLog = new LogThrottle(3_600_000);
  const hungLog = new LogThrottle();
  const compensationLog = new LogThrottle();
  const unreplayableLog = new LogThrottle();
  const unreadLog = new LogThrottle();
  const unreadableLog = new LogThrottle();

  function fingerprint(ctx: Context): string {
    const { request } = ctx;
    let body: string | Uint8Array;
    const unread = request.rawBody === undefined && hasContent(ctx) && !request.bodyConsumed;
    if (request.body !== undefined && !(unread && standIn(request.body)))
      body = canonicalJson(request.body) ?? '';
    else if (request.rawBody !== undefined) body = request.rawBody;
    else if (unread) {
      // The body is still unread: hashing '' would let another body under the same key
      // replay this one's answer. Reading it here would starve the parser mounted later.
      // Two causes look alike here: a parser mounted after idempotency (a wiring error,
      // logged with its fix) and a parser before it that declined the media type
      // (express.json() leaves a text/plain body unread). The second is the client's
      // doing, so the answer is a 415, never a 5xx; nothing runs either way.
      const pass = unreadLog.pass();
      if (pass !== undefined) {
        ctx.log.warn(
          'idempotency: the request body was not read when idempotency ran, so it cannot be fingerprinted; answered 415. If the media type is one you accept, mount a body parser (jsonBody(), express.json(), koa-bodyparser) before idempotency().',
          {
            traceId: ctx.traceId,
            path: request.path,
            contentType: request.header('content-type'),
            suppressed: pass.suppressed,
          },
        );
      }
      throw new RestwellError('unsupported-media-type', 415, 'Unsupported Media Type', {
        detail: `The request body (Content-Type ${describeType(request.header('content-type'))}) is not one this resource reads, so its ${header} cannot be checked against it. Send a media type this resource accepts.`,
      });
    } else body = '';
    return sha256([
      request.method,
      request.url,
      body,
      ...fpHeaders.map((h) => `${h}:${request.header(h) ?? ''}`),
    ]);
  }

  /** The key's owner, or `undefined` when the request is to be refused. */
  function ownerOf(ctx: Context): string | undefined {
    const custom: unknown = scope?.(ctx);
    if (typeof custom === 'string' && custom.length > 0) return `scope:${custom}`;
    // From JavaScript, a scope function may return anything. An object would become
    // "[object Object]" and '' one shared scope: every caller would share one key space
    // and could receive each other's answers. Only a non-empty string (or a finite
    // number, as principal ids are) is a scope; undefined, null and '' mean none; anything
    // else is a wiring error.
    if (typeof custom === 'number' && Number.isFinite(custom)) return `scope:${custom}`;
    if (custom !== undefined && custom !== null && custom !== '') {
      throw new RestwellError(
        'internal-error',
        500,
        `restwell/idempotency: the scope function returned ${describeValue(custom)}; return a non-empty string, or undefined for no scope.`,
      );
    }
    const principal = principalId(ctx.state);
    if (principal !== undefined) return `principal:${principal}`;
    // No address (the socket is already gone) is not an address: refused like no scope,
    // rather than one "unknown" scope shared by every such request.
    if (anonymous === 'ip' && ctx.request.ip !== undefined) return `ip:${ctx.request.ip}`;
    const pass = anonymousLog.pass();
    if (pass !== undefined) {
      ctx.log.warn(
        `idempotency refused a keyed request without a principal; mount idempotency() after authentication, or choose anonymous: 'ip' (or a scope function) for anonymous callers`,
        { traceId: ctx.traceId, path: ctx.request.path, suppressed: pass.suppressed },
      );
    }
    return undefined;
  }

  /**
   * A claim whose store call failed may still land (a stalled Redis resumes and
   * runs the queued command): the client was told "not executed", and its retries
   * would get 409 for a whole lease. The claim's value is unique to this request,
   * so deleting exactly it is always safe. On one ioredis connection commands run
   * in order, so the first attempt lands after the stalled claim; other stores get
   * retries with backoff for about one lease.
   */
  function compensate(ctx: Context, storeKey: string, claim: string): void {
    retryInBackground(
      () => store.compareAndDelete(storeKey, claim),
      () => {
        const pass = compensationLog.pass();
        if (pass !== undefined) {
          ctx.log.warn(
            'idempotency: a claim that failed may have been stored; it expires with its lease',
            { traceId: ctx.traceId, leaseMs, suppressed: pass.suppressed },
          );
        }
      },
    );
  }

  /**
   * Runs `attempt` until it resolves `true`, with backoff, for about one lease;
   * then `giveUp`. Timers are unref'd: they never hold a process open.
   */
  function retryInBackground(attempt: () => Promise<boolean>, giveUp: () => void): void {
    const deadline = Date.now() + leaseMs;
    let delay = 50;
    const run = (): void => {
      attempt().then(
        (finished) => {
          if (!finished) retry();
        },
        () => retry(),
      );
    };
    const retry = (): void => {
      if (Date.now() + delay > deadline) {
        giveUp();
        return;
      }
      setTimeout(run, delay).unref();
      delay = Math.min(delay * 2, Math.max(50, Math.floor(leaseMs / 4)));
    };
    run();
  }

  return async function idempotencyKeys(ctx, next) {
    if (!methodSet.has(ctx.request.method)) return next();
    const parsed = parseIdempotencyKey(ctx.request.header(headerName), maxKeyLength, header);
    if (!parsed.ok) {
      if (parsed.reason === 'missing') {
        if (!required) return next();
        throw new IdempotencyKeyMissingError(parsed.detail);
      }
      throw new IdempotencyKeyInvalidError(parsed.detail);
    }
    const owner = ownerOf(ctx);
    if (owner === undefined) throw new IdempotencyKeyUnscopedError(header);
    // Hashed: the store key has a fixed length and no characters a store could mind.
    const storeKey = `idem:${sha256([owner, ctx.request.method, ctx.request.route ?? routeOf(ctx.request.path), parsed.key])}`;
    const fp = fingerprint(ctx);
    const claim = JSON.stringify({
      v: 1,
      state: 'in-flight',
      token: fencingToken(),
      fp,
    } satisfies IdempotencyRecord);

    let existing: string | null;
    try {
      existing = await store.addOrGet(storeKey, claim, leaseMs);
    } catch (err) {
      if (err instanceof StoreFullError) {
        // Nothing was stored: no compensation. Existing keys still replay.
        const pass = fullLog.pass();
        if (pass !== undefined) {
          ctx.log.warn('idempotency store is full; new keys are refused with 503', {
            traceId: ctx.traceId,
            store: store.kind,
            suppressed: pass.suppressed,
            err,
          });
        }
        answerProblem(ctx, {
          status: 503,
          code: 'store-full',
          detail: STORE_FULL,
          exposeDetail: true,
          headers: { 'Retry-After': String(retryAfterSeconds) },
        });
        return;
      }
      // A timed-out claim, or one whose connection broke after it was written, may
      // have been stored: delete exactly it in the background.
      compensate(ctx, storeKey, claim);
      const pass = storeLog.pass();
      if (pass !== undefined) {
        ctx.log.error(
          onStoreError === 'open'
            ? 'idempotency store failed; executing without idempotency'
            : 'idempotency store failed; requests are answered 503 and not executed',
          { traceId: ctx.traceId, store: store.kind, suppressed: pass.suppressed, err },
        );
      }
      if (onStoreError === 'open') return next();
      answerProblem(ctx, {
        status: 503,
        code: 'service-unavailable',
        detail: NOT_EXECUTED,
        exposeDetail: true,
        headers: { 'Retry-After': String(retryAfterSeconds) },
      });
      return;
    }

    if (existing !== null) {
      const record = readRecord(existing);
      if (record === undefined) {
        // Corrupted, truncated, or written by another version of this module. Whether the
        // request ran is unknown, so running it could pay twice, and a 500 would repeat for
        // the record's whole life: the key is answered as spent, and the log says why.
        const pass = unreadableLog.pass();
        if (pass !== undefined) {
          ctx.log.error(
            'idempotency found a record it cannot read; the key is answered 422 until the record expires',
            { traceId: ctx.traceId, store: store.kind, suppressed: pass.suppressed },
          );
        }
        const recordedFp = fingerprintOf(existing);
        if (recordedFp !== undefined && recordedFp !== fp) throw new IdempotencyKeyReusedError();
        throw new IdempotencyResponseNotReplayableError();
      }
      if (record.fp !== fp) {
        answeredBy(ctx, 'idempotency', 'key reused with another request');
        throw new IdempotencyKeyReusedError();
      }
      switch (record.state) {
        case 'in-flight':
          answeredBy(ctx, 'idempotency', 'key in flight');
          throw new IdempotencyKeyInFlightError(retryAfterSeconds);
        case 'unreplayable':
          answeredBy(ctx, 'idempotency', 'answer not replayable');
          throw new IdempotencyResponseNotReplayableError(record.status);
        default:
          answeredBy(ctx, 'idempotency', 'replay');
          replay(ctx, record, maxDecodedBytes);
          return;
      }
    }

    // This request holds the key. Renew the lease while the handler runs, for at most
    // maxExecutionMs: a hung handler must not hold the key for ever.
    const held: HeldClaim = { ctx, storeKey, claim, started: Date.now() };
    renewals.hold(held);
    const stopRenewing = () => renewals.drop(held);
    const release = async (why: string) => {
      try {
        await store.compareAndDelete(storeKey, claim);
      } catch (err) {
        ctx.log.warn('idempotency key could not be released; it frees itself when its lease ends', {
          traceId: ctx.traceId,
          why,
          err,
        });
      }
    };

    try {
      await next();
    } catch (err) {
      stopRenewing();
      const problems = problemOptions(ctx);
      const status = (problems.map?.(err, ctx) ?? problemInitFrom(err)).status;
      // A thrown 4xx (validation, not found) ran nothing that needs protecting: free the key,
      // as Stripe does for requests that fail validation.
      if (status < 500 || onServerError === 'release') {
        await release(`handler threw (${status})`);
        throw err;
      }
      // Record exactly what the client is sent: the problem as the adapter renders it.
      renderProblem(ctx, err, problems);
    }
    stopRenewing();

    const { status } = ctx.response;
    if ((status >= 500 && onServerError === 'release') || NOT_RECORDED.has(status)) {
      await release(`status ${status}`);
      return;
    }
    const bytes = bodyBytes(ctx.response.body);
    if (bytes === undefined || bytes.byteLength > maxRecordedBodyBytes) {
      // The handler ran and may have had side effects: keep that, without the body.
      const pass = unreplayableLog.pass();
      if (pass !== undefined) {
        ctx.log.warn(
          'idempotency: response streamed or larger than maxRecordedBodyBytes; retries get 422 idempotency-response-not-replayable',
          { traceId: ctx.traceId, path: ctx.request.path, suppressed: pass.suppressed },
        );
      }
      await store_(ctx, storeKey, claim, { v: 1, state: 'unreplayable', fp, status });
      return;
    }
    const headers: Array<[string, string]> = [];
    // One pass over the few headers set, rather than a lookup per recorded name.
    for (const name of ctx.response.headers.names()) {
      if (!recorded.has(name)) continue;
      const value = ctx.response.headers.get(name);
      if (value !== undefined) headers.push([name, value]);
    }
    if (bytes.byteLength === 0) sendEmpty(ctx, status);
    await store_(ctx, storeKey, claim, {
      v: 1,
      state: 'done',
      fp,
      status,
      headers,
      body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    });
  };

  async function store_(
    ctx: Context,
    storeKey: string,
    claim: string,
    record: IdempotencyRecord,
  ): Promise<void> {
    const value = JSON.stringify(record);
    try {
      // Fenced: succeeds only while this request's own claim is in place.
      const stored = await store.compareAndSet(storeKey, claim, value, ttlMs);
      if (!stored) {
        ctx.log.warn(
          'idempotency lease was lost before the response was recorded; raise leaseMs or maxExecutionMs',
          { traceId: ctx.traceId },
        );
      }
    } catch (err) {
      // The handler ran: giving up here would let a retry run it again once the lease
      // ends. The client gets its response now, and the record is written in the
      // background while the claim still holds (retries meanwhile get 409). Fencing
      // makes each attempt safe: it lands only on this request's own claim, so a late
      // one cannot overwrite a retry that took over; a `false` (the write timed out
      // but landed, or the lease ran out) ends the attempts.
      ctx.log.error('idempotency record could not be stored; retrying while the claim holds', {
        traceId: ctx.traceId,
        err,
      });
      retryInBackground(
        () => store.compareAndSet(storeKey, claim, value, ttlMs).then(() => true),
        () =>
          ctx.log.error(
            'idempotency record could not be stored; a retry after the lease runs the request again',
            { traceId: ctx.traceId, leaseMs },
          ),
      );
    }
  }
}

/**
 * An empty body, sent the same way on every adapter for the first answer and its
 * replays. Left unset, Koa would send its status text ("Created") the first time.
 * The body goes first: Koa answers a body set to null with 204 unless the status
 * is set after it.
 */
function sendEmpty(ctx: Context, status: number): void {
  ctx.response.body = null;
  ctx.response.status = status;
}

// Codings the replay can undo for a client that does not accept them (RFC 9110 §8.4.1).
const DECODERS: Record<string, (bytes: Buffer, options: { maxOutputLength: number }) => Buffer> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
};

/**
 * How much larger than `maxRecordedBodyBytes` a decoded replay may grow. The bound
 * is on the recorded (coded) bytes; a highly compressible answer decodes to far more,
 * synchronously, on every replay to a client that does not accept the coding, and a
 * client can ask for such replays cheaply. Past it, the replay is sent coded.
 */
const MAX_DECODED_RATIO = 64;

/** Whether `Accept-Encoding` accepts `coding` at all (RFC 9110 §12.5.3); absent means identity only. */
function accepts(header: string | undefined, coding: string): boolean {
  if (header === undefined) return false;
  const name = coding === 'x-gzip' ? 'gzip' : coding;
  let star: number | undefined;
  for (const member of parseAcceptEncoding(header)) {
    if (member.coding === name) return member.q > 0;
    if (member.coding === '*') star = member.q;
  }
  return star !== undefined && star > 0;
}

function replay(ctx: Context, record: DoneRecord, maxDecodedBytes: number): void {
  let body: Buffer = Buffer.from(record.body, 'base64');
  let headers = record.headers;
  // Codings in the order they were applied (RFC 9110 §8.4): `gzip, br` is gzip, then br.
  const codings = (headers.find(([name]) => name === 'content-encoding')?.[1] ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c.length > 0 && c !== 'identity');
  const acceptEncoding = ctx.request.header('accept-encoding');
  // The first answer was coded by a compression mounted inside idempotency (or by the
  // handler). A retry may come from a client that cannot decode it: send it identity
  // instead, undoing the codings last first.
  if (
    codings.length > 0 &&
    body.byteLength > 0 &&
    !codings.every((c) => accepts(acceptEncoding, c)) &&
    codings.every((c) => DECODERS[c] !== undefined)
  ) {
    try {
      let decoded = body;
      for (const coding of [...codings].reverse()) {
        decoded = DECODERS[coding]!(decoded, { maxOutputLength: maxDecodedBytes });
      }
      body = decoded;
      // A strong ETag names the coded representation (RFC 9110 §8.8.3); a weak one holds.
      headers = headers.filter(
        ([name, value]) =>
          name !== 'content-encoding' && !(name === 'etag' && !value.startsWith('W/')),
      );
    } catch (err) {
      ctx.log.warn(
        'idempotency: a recorded coded body could not be decoded (corrupt, or larger than 64 times maxRecordedBodyBytes); replayed coded',
        { traceId: ctx.traceId, coding: codings.join(', '), err },
      );
    }
  }
  for (const [name, value] of headers) ctx.response.headers.set(name, value as HeaderValue);
  ctx.response.headers.set('Idempotent-Replayed', 'true');
  if (body.byteLength === 0 || NO_CONTENT.has(record.status)) sendEmpty(ctx, record.status);
  else {
    ctx.response.status = record.status;
    ctx.response.body = body;
  }
}
