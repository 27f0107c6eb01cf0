/**
 * Rate limiting: token bucket (the default), sliding window, fixed window and
 * leaky bucket, on the memory store or Redis with the same semantics, and any
 * rate-limiter-flexible limiter through `flexiblePolicy`.
 *
 * Exported from `restwell/rate-limit`.
 *
 * - Several policies on one request (per IP, per API key, stricter on one
 *   route) are checked together and atomically: a request refused by one
 *   consumes nothing from the others. On Redis that is one Lua script, one
 *   round trip, whatever the number of policies.
 * - Every response carries `RateLimit-Policy` and `RateLimit`
 *   (draft-ietf-httpapi-ratelimit-headers); a refused one is a 429 problem
 *   with `Retry-After`.
 * - A store outage fails open by default (logged, optionally limited by an
 *   in-memory fallback) or closed with 503; never a 429.
 *
 * @example
 * ```ts
 * import { rateLimit, byIp, byHeader } from 'restwell/rate-limit';
 * app.use(rw(rateLimit({
 *   store,
 *   policies: [
 *     { name: 'per-ip', limit: 100, windowMs: 60_000, key: byIp() },
 *     { name: 'per-key', limit: 1000, windowMs: 3_600_000, key: byHeader('x-api-key') },
 *   ],
 * })));
 * ```
 */
import { answeredBy, type Context, type Middleware, responseBlind } from '../core/context.js';
import {
  checkOptions,
  describeValue,
  invalidOption,
  type RestwellError,
  serviceUnavailable,
} from '../core/errors.js';
import { LogThrottle } from '../core/logger.js';
import { MemoryStore } from '../stores/memory/index.js';
import { bounded, MAX_TTL_MS, type Store } from '../stores/types.js';
import { ALGORITHMS, type Algorithm, capacity, type LimitOutcome } from './algorithms.js';
import {
  type LimitCheck,
  MemoryRateLimitBackend,
  type RateLimitBackend,
  rateLimitBackend,
} from './backend.js';
import { CostExceedsCapacityError, RateLimitedError } from './errors.js';
import {
  asError,
  type FlexiblePolicy,
  flexibleLimit,
  isFlexiblePolicy,
  runFlexible,
} from './flexible.js';
import {
  type EvaluatedPolicy as Evaluated,
  legacyFields,
  policyField,
  policyItem,
  stateField,
} from './headers.js';
import { byIp, type KeyFunction, sha256 } from './keys.js';
import { RequestFacts, type RequestMatcher, requestMatcher } from './routes.js';

// What applications use. A custom backend's contract is the RateLimitBackend
// type and the types it names; the built-in backends and the algorithms'
// step function are internals (see docs/rate-limit.md, "Custom backends").
export type { Algorithm, LimitOutcome, LimitParams } from './algorithms.js';
export type { ConsumeResult, LimitCheck, RateLimitBackend } from './backend.js';
export { CostExceedsCapacityError, RateLimitedError } from './errors.js';
export { type FlexiblePolicy, flexiblePolicy, type RateLimiterLike } from './flexible.js';
export {
  byHeader,
  byIp,
  byPrincipal,
  byPrincipalOrIp,
  type IpKeyOptions,
  ipNetwork,
  type KeyFunction,
} from './keys.js';
export { normalisedPath } from './routes.js';

/** A number, or a function of the request that returns one (per-plan limits, say). */
export type PerRequest<T> = T | ((ctx: Context) => T);

/** One limit: how many requests (or units of cost) per window, keyed by what, for which routes. */
export interface RateLimitPolicy {
  /**
   * Names the policy in headers, logs and counter keys. Letters, digits, `.`,
   * `_` and `-`; renaming a policy starts its counters afresh.
   */
  name: string;
  /** @default 'token-bucket' */
  algorithm?: Algorithm;
  /** Requests (cost units) per window. */
  limit: PerRequest<number>;
  /** The window in milliseconds: over which `limit` refills (buckets) or is counted (windows). */
  windowMs: PerRequest<number>;
  /**
   * token-bucket: the bucket's capacity, the largest burst. leaky-bucket: how
   * many requests may wait their turn (each holds its connection open while it
   * waits). @default token-bucket: `limit`; leaky-bucket: 0
   */
  burst?: PerRequest<number>;
  /** Whose counter a request uses; `undefined` skips the policy for that request. @default byIp() */
  key?: KeyFunction;
  /**
   * Applies the policy only to requests for this route (or any of these
   * routes), matched as the router matches them: the route the framework
   * matched when the rate limiter is mounted on the route, and otherwise the
   * request path normalised as Express and @koa/router normalise it
   * (case-insensitive, one trailing `/` optional, absolute-form targets
   * reduced to their path; see docs/rate-limit.md, "Route policies"). Literal
   * segments and `:name` parameters, as written in the router:
   * `'/v1/payments/:id'`. Prefer this to comparing `ctx.request.path` in
   * `when`, which a client dodges by spelling the path another way.
   * @default every route
   */
  route?: string | readonly string[];
  /** Applies the policy only to these methods. `GET` includes `HEAD`, as the routers route it. @default every method */
  methods?: readonly string[];
  /** Applies the policy only to requests for which this returns true, in addition to `route` and `methods`. @default every request */
  when?: (ctx: Context) => boolean;
  /** This policy's cost for a request, overriding the middleware's `cost`. */
  cost?: PerRequest<number>;
}

/** Options of {@link rateLimit}. */
export interface RateLimitOptions {
  /**
   * Where counters live: a MemoryStore (one process), a RedisStore (shared by
   * every process), or your own {@link RateLimitBackend}.
   */
  store: Store | RateLimitBackend;
  /** The policies every request passes. Required unless `limit` and `windowMs` describe a single one. */
  policies?: ReadonlyArray<RateLimitPolicy | FlexiblePolicy>;
  /** Shorthand for `policies: [{ name, limit, windowMs, algorithm, burst, key }]`: the single policy's limit. */
  limit?: PerRequest<number>;
  /** The single policy's window (see `limit`), at most five years. */
  windowMs?: PerRequest<number>;
  /** The single policy's algorithm (see `limit`). @default 'token-bucket' */
  algorithm?: Algorithm;
  /** The single policy's burst (see `limit`). @default as {@link RateLimitPolicy.burst} */
  burst?: PerRequest<number>;
  /** The single policy's key (see `limit`). @default byIp() */
  key?: KeyFunction;
  /** The single policy's name (see `limit`). @default 'default' */
  name?: string;
  /** Units a request takes from every policy (its weight). A non-negative integer. @default 1 */
  cost?: PerRequest<number>;
  /** Requests for which this returns true pass without being counted (health checks, an allowlist). */
  skip?: (ctx: Context) => boolean | Promise<boolean>;
  /** Counts and sets headers but never refuses; a request that would have been refused is logged. @default false */
  dryRun?: boolean;
  /** Send `RateLimit-Policy` and `RateLimit`. @default true */
  headers?: boolean;
  /** Send `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds). @default false */
  legacyHeaders?: boolean;
  /**
   * When the store fails or times out: `open` lets requests through (logged,
   * at most once per 10 s), `closed` answers 503. A store failure is never
   * reported as a 429. @default 'open'
   */
  onStoreError?: 'open' | 'closed';
  /** With `onStoreError: 'open'`, limit requests per process in memory while the store is down. @default false */
  fallback?: boolean;
  /** Longest wait for the store before the `onStoreError` path is taken. @default 200 */
  timeoutMs?: number;
  /**
   * How counters spread over a Redis Cluster's slots (ignored by the memory
   * store; harmless on a single Redis):
   * - `'one'`: every counter carries `hashTag`, so all of a request's policies
   *   run in one atomic script on one slot. Exact, but that slot's shard takes
   *   every rate-limited request, however large the cluster.
   * - `'per-counter'`: each counter is its own hash tag, spread over every
   *   shard; one script per counter, in parallel. The verdict stays
   *   all-or-nothing (when one policy refuses, the others hand back what they
   *   took), but only in the end: while two requests race, one may be refused
   *   because of units the other is about to hand back. See
   *   docs/rate-limit.md, "Redis Cluster".
   * @default 'one'
   */
  slots?: 'one' | 'per-counter';
  /**
   * With `slots: 'one'`, the Redis Cluster hash tag shared by a request's
   * counters, so that its policies stay in one slot and one atomic script.
   * @default 'rl'
   */
  hashTag?: string;
  /**
   * Overrides the store's clock, and the outage log's, in epoch ms (tests).
   * @default the store's clock (Redis uses its server's `TIME`); `Date.now` for the log
   */
  clock?: () => number;
  /** How leaky-bucket delays are waited (tests). @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

/** What the middleware leaves in `ctx.state.rateLimit` for handlers and loggers. */
export interface RateLimitState {
  /** The policy closest to exhaustion. */
  policy: string;
  limit: number;
  remaining: number;
  resetMs: number;
  /** Whether the request was refused (or, in dry-run mode, would have been). */
  limited: boolean;
}

interface NativePolicy {
  kind: 'native';
  name: string;
  algorithm: Algorithm;
  limit: PerRequest<number>;
  windowMs: PerRequest<number>;
  burst: PerRequest<number> | undefined;
  key: KeyFunction;
  applies: RequestMatcher | undefined;
  cost: PerRequest<number> | undefined;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

const MAX_KEY = 128;

/**
 * A client key as it goes into a counter's name: as it is when short, else
 * its hash, marked by a leading `#`. A short key that itself starts with `#`
 * is hashed too, so that no client can name its key after the hash of
 * another's (`#` + 43 characters) and share, or exhaust, that counter.
 */
function counterKey(key: string): string {
  return key.length > MAX_KEY || key.charCodeAt(0) === 35 /* # */ ? `#${sha256(key)}` : key;
}

/** The largest cost or limit accepted: beyond it, time arithmetic loses precision. */
const MAX_UNITS = 1_000_000_000;

/**
 * The longest window: half the stores' longest TTL (a sliding window's state
 * lives two windows), five years. It keeps every header number an RFC 9651
 * §3.3.1 Integer (at most 15 digits): `w` and `t` stay under 10^9 seconds.
 */
export const MAX_WINDOW_MS = MAX_TTL_MS / 2;

const OPTIONS = [
  'store',
  'policies',
  'limit',
  'windowMs',
  'algorithm',
  'burst',
  'key',
  'name',
  'cost',
  'skip',
  'dryRun',
  'headers',
  'legacyHeaders',
  'onStoreError',
  'fallback',
  'timeoutMs',
  'slots',
  'hashTag',
  'clock',
  'sleep',
];
const POLICY_OPTIONS = [
  'name',
  'algorithm',
  'limit',
  'windowMs',
  'burst',
  'key',
  'route',
  'methods',
  'when',
  'cost',
];
const FLEXIBLE_OPTIONS = ['name', 'limiter', 'key', 'route', 'methods', 'when'];

/** express-rate-limit's option names, pointed at their equivalents here. */
const HABITS: Record<string, string> = {
  max: 'The limit is `limit` here: `policies: [{ name, limit, windowMs }]`, or `limit` and `windowMs` for a single policy.',
  keyGenerator: 'The key is `key` here, a function of the context: `key: byHeader("x-api-key")`.',
  standardHeaders: 'The draft RateLimit fields are `headers` (default true) here.',
  statusCode: 'A refusal is always a 429 problem (RFC 9457); map it in your error handler.',
  message: 'A refusal is always a 429 problem (RFC 9457); map it in your error handler.',
  handler: 'A refusal is thrown as a RateLimitedError; handle it in your error handler.',
};
const POLICY_HABITS: Record<string, string> = {
  max: 'The limit is `limit` here.',
  keyGenerator: 'The key is `key` here.',
  path: 'Use `route` (matched as the router matches it) with `methods`.',
  method: 'Use `methods`, a list: `methods: ["POST"]`.',
  limiter:
    'A rate-limiter-flexible limiter is a policy through `flexiblePolicy({ name, limiter })`.',
};

/** What a number option must be. */
type NumberKind = 'count' | 'positive-count' | 'duration';

const KIND_TEXT: Record<NumberKind, string> = {
  count: `an integer from 0 to ${MAX_UNITS}`,
  'positive-count': `an integer from 1 to ${MAX_UNITS}`,
  duration: `a positive number of milliseconds up to ${MAX_WINDOW_MS} (five years)`,
};

function isValid(n: unknown, kind: NumberKind): n is number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return false;
  if (kind === 'duration') return n > 0 && n <= MAX_WINDOW_MS;
  return Number.isInteger(n) && n <= MAX_UNITS && (kind === 'count' || n >= 1);
}

/** A static option is checked when the middleware is created; a function option may be any function. */
function checkOption(value: unknown, kind: NumberKind, where: string): void {
  if (value !== undefined && typeof value !== 'function' && !isValid(value, kind)) {
    invalidOption('rateLimit', where, `${KIND_TEXT[kind]} or a function of the request`, value);
  }
}

/**
 * The longest a policy's state stays meaningful: a window algorithm's two
 * windows, a bucket's time to refill (or drain) completely. It is the TTL
 * written and bounds every `t` and `Retry-After`, so it must fit the stores'
 * TTL bound; a bucket far larger than its rate per window would exceed it.
 */
function spanOf(p: Pick<LimitCheck, 'algorithm' | 'limit' | 'windowMs' | 'burst'>): number {
  switch (p.algorithm) {
    case 'token-bucket':
      return (p.burst * p.windowMs) / p.limit;
    case 'leaky-bucket':
      return ((p.burst + p.limit) * p.windowMs) / p.limit;
    default:
      return 2 * p.windowMs;
  }
}
const SPAN_TEXT = `a burst whose refill time (burst × windowMs / limit) is at most ${MAX_TTL_MS} ms (ten years)`;

/**
 * A per-request number. A function's answer is checked on each request: a bad
 * one is a programming error (TypeError, a 500), so a function that derives a
 * cost or a limit from client input must validate it first.
 */
function resolve(
  value: PerRequest<number>,
  ctx: Context,
  policy: string,
  field: string,
  kind: NumberKind,
): number {
  if (typeof value !== 'function') return value;
  const n = value(ctx);
  // A whole cost beyond every capacity (they are at most MAX_UNITS) is the
  // client's request being too large, a 400, not a programming error: a cost
  // counted from the request (items in a batch) can be that large.
  if (field === 'cost' && Number.isSafeInteger(n) && (n as number) > MAX_UNITS) return n as number;
  if (!isValid(n, kind)) {
    throw new TypeError(
      `restwell/rateLimit: ${policy} ${field} must be ${KIND_TEXT[kind]}, got ${describeValue(n)}.`,
    );
  }
  return n;
}

interface NormalizedFlexible {
  policy: FlexiblePolicy;
  applies: RequestMatcher | undefined;
}

function normalizePolicy(
  p: RateLimitPolicy | FlexiblePolicy,
  i: number,
): NativePolicy | NormalizedFlexible {
  const where = `policies[${i}]`;
  if (p === null || typeof p !== 'object' || Array.isArray(p))
    invalidOption('rateLimit', where, 'an object', p);
  const flexible = isFlexiblePolicy(p);
  checkOptions(
    `rateLimit: ${where}`,
    p,
    flexible ? FLEXIBLE_OPTIONS : POLICY_OPTIONS,
    flexible ? {} : POLICY_HABITS,
  );
  if (typeof p.name !== 'string' || !NAME.test(p.name)) {
    invalidOption(
      'rateLimit',
      `${where}.name`,
      'letters, digits, ".", "_" or "-" (1 to 64)',
      p.name,
    );
  }
  if (p.key !== undefined && typeof p.key !== 'function')
    invalidOption('rateLimit', `${where}.key`, 'a function', p.key);
  const applies = requestMatcher(p, where);
  if (flexible) {
    flexibleLimit(p, where);
    return { policy: p, applies };
  }
  const algorithm = p.algorithm ?? 'token-bucket';
  if (!ALGORITHMS.includes(algorithm)) {
    invalidOption(
      'rateLimit',
      `${where}.algorithm`,
      ALGORITHMS.map((a) => `'${a}'`).join(', '),
      algorithm,
    );
  }
  if (p.limit === undefined) invalidOption('rateLimit', `${where}.limit`, 'required', p.limit);
  if (p.windowMs === undefined) {
    invalidOption('rateLimit', `${where}.windowMs`, 'required', p.windowMs);
  }
  checkOption(p.limit, 'positive-count', `${where}.limit`);
  checkOption(p.windowMs, 'duration', `${where}.windowMs`);
  // A token bucket of capacity 0 could never admit anything.
  checkOption(p.burst, algorithm === 'token-bucket' ? 'positive-count' : 'count', `${where}.burst`);
  checkOption(p.cost, 'count', `${where}.cost`);
  if (
    typeof p.limit === 'number' &&
    typeof p.windowMs === 'number' &&
    typeof p.burst === 'number' &&
    spanOf({ algorithm, limit: p.limit, windowMs: p.windowMs, burst: p.burst }) > MAX_TTL_MS
  ) {
    invalidOption('rateLimit', `${where}.burst`, SPAN_TEXT, p.burst);
  }
  return {
    kind: 'native',
    name: p.name,
    algorithm,
    limit: p.limit,
    windowMs: p.windowMs,
    burst: p.burst,
    key: p.key ?? byIp(),
    applies,
    cost: p.cost,
  };
}

/** The policy to report: a refusing one (longest wait), else the one with least remaining. */
function closestToExhaustion(evaluated: readonly Evaluated[]): Evaluated | undefined {
  let best: Evaluated | undefined;
  for (const e of evaluated) {
    if (best === undefined) best = e;
    else if (
      !e.outcome.allowed &&
      (best.outcome.allowed || e.outcome.retryAfterMs > best.outcome.retryAfterMs)
    )
      best = e;
    else if (e.outcome.allowed === best.outcome.allowed && best.outcome.allowed) {
      if (
        e.remaining < best.remaining ||
        (e.remaining === best.remaining && e.resetMs > best.resetMs)
      )
        best = e;
    }
  }
  return best;
}

const OUTAGE_LOG_INTERVAL_MS = 10_000;

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The policies each store already counts, by counter prefix, with what they
 * count: two rateLimit() instances on one store whose policies share a name
 * (both `'default'`, say: a global limit and a stricter one on `/login`)
 * share counters, and each reads the other's state with its own limits: the
 * login limit's tokens push the global bucket's state minutes ahead, and the
 * global limit then refuses the client everywhere. The same policy mounted
 * twice (same name, same limits) shares its counter on purpose and is fine.
 */
const countedOn = new WeakMap<object, Map<string, string>>();

function claimCounters(
  store: object,
  policies: ReadonlyArray<{ name: string; prefix: string; signature: string }>,
): void {
  let claimed = countedOn.get(store);
  if (claimed === undefined) {
    claimed = new Map();
    countedOn.set(store, claimed);
  }
  for (const p of policies) {
    const previous = claimed.get(p.prefix);
    if (previous !== undefined && previous !== p.signature) {
      invalidOption(
        'rateLimit',
        'policies',
        `policies whose names are not already used with other limits on the same store (another rateLimit() counts "${p.name}" there: give one of them another name)`,
        p.name,
      );
    }
  }
  for (const p of policies) claimed.set(p.prefix, p.signature);
}

/**
 * What a policy's counters mean, for {@link claimCounters}. Functions are not
 * compared (any function matches any function); a default burst is written
 * out, so that `burst: limit` and no burst agree.
 */
function signatureOf(p: NativePolicy): string {
  const part = (v: PerRequest<number> | undefined) =>
    v === undefined ? '-' : typeof v === 'function' ? 'fn' : String(v);
  const burst =
    p.algorithm === 'token-bucket'
      ? part(p.burst ?? p.limit)
      : p.algorithm === 'leaky-bucket'
        ? part(p.burst ?? 0)
        : '-';
  return `${p.algorithm}|${part(p.limit)}|${part(p.windowMs)}|${burst}`;
}

/**
 * Rate limiting: one or more policies (token bucket, sliding or fixed window, leaky bucket, or a
 * rate-limiter-flexible limiter) checked together and all-or-nothing for each request, in one
 * store round trip. Answers 429 with `Retry-After` and the draft RateLimit fields; fails open or
 * closed (503) when the store is down, never 429 for an outage.
 *
 * @example
 * ```ts
 * app.use(rw(rateLimit({ store, policies: [{ name: 'per-ip', limit: 100, windowMs: 60_000 }] })));
 * ```
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  checkOptions('rateLimit', options, OPTIONS, HABITS);
  if (options === undefined) invalidOption('rateLimit', 'store', 'required', undefined);
  const {
    store,
    cost = 1,
    skip,
    dryRun = false,
    headers = true,
    legacyHeaders = false,
    onStoreError = 'open',
    fallback = false,
    timeoutMs = 200,
    slots = 'one',
    hashTag = 'rl',
    clock,
    sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  } = options;
  // Node fires a timer longer than 2^31 - 1 ms at once: every store call would
  // time out, and the limiter fail open on every request.
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS)
    invalidOption(
      'rateLimit',
      'timeoutMs',
      `a positive number of milliseconds up to ${MAX_TIMER_MS}`,
      timeoutMs,
    );
  if (slots !== 'one' && slots !== 'per-counter')
    invalidOption('rateLimit', 'slots', "'one' or 'per-counter'", slots);
  const perCounter = slots === 'per-counter';
  const backend = rateLimitBackend(store, { timeoutMs, perCounter });
  const given = options.policies ?? [
    {
      name: options.name ?? 'default',
      limit: options.limit as PerRequest<number>,
      windowMs: options.windowMs as PerRequest<number>,
      ...(options.algorithm ? { algorithm: options.algorithm } : {}),
      ...(options.burst !== undefined ? { burst: options.burst } : {}),
      ...(options.key ? { key: options.key } : {}),
    },
  ];
  if (!Array.isArray(given) || given.length === 0) {
    invalidOption('rateLimit', 'policies', 'a non-empty list of policies', given);
  }
  const policies = given.map(normalizePolicy);
  const names = new Set(policies.map((p) => ('kind' in p ? p.name : p.policy.name)));
  if (names.size !== policies.length)
    invalidOption('rateLimit', 'policies', 'policies with distinct names', policies);
  checkOption(cost, 'count', 'cost');
  if (skip !== undefined && typeof skip !== 'function')
    invalidOption('rateLimit', 'skip', 'a function', skip);
  if (onStoreError !== 'open' && onStoreError !== 'closed')
    invalidOption('rateLimit', 'onStoreError', "'open' or 'closed'", onStoreError);
  if (typeof hashTag !== 'string' || /[{}]/.test(hashTag) || hashTag.length === 0)
    invalidOption('rateLimit', 'hashTag', 'a non-empty string without braces', hashTag);
  if (clock !== undefined && typeof clock !== 'function')
    invalidOption('rateLimit', 'clock', 'a function returning epoch milliseconds', clock);

  // Each native policy with its counters' key prefix, built once. One slot:
  // every key carries `{hashTag}`. Per counter: the policy and the client key
  // are the hash tag, closed after the key (a `}` in a client's key only
  // moves its counter to another slot).
  const native = policies
    .filter((p): p is NativePolicy => 'kind' in p)
    .map((p) => ({
      ...p,
      counterPrefix: perCounter ? `rl:{${p.name}:` : `rl:{${hashTag}}:${p.name}:`,
      item:
        typeof p.limit === 'number' && typeof p.windowMs === 'number'
          ? policyItem({ name: p.name, limit: p.limit, windowMs: p.windowMs })
          : undefined,
    }));
  const counterSuffix = perCounter ? '}' : '';
  if (typeof store === 'object' && store !== null) {
    claimCounters(
      store,
      native.map((p) => ({ name: p.name, prefix: p.counterPrefix, signature: signatureOf(p) })),
    );
  }
  const flexible = policies.filter((p): p is NormalizedFlexible => !('kind' in p));
  const anyMatcher = policies.some((p) => p.applies !== undefined);
  let fallbackBackend: RateLimitBackend | undefined;
  const outageLog = new LogThrottle(OUTAGE_LOG_INTERVAL_MS, clock ?? Date.now);
  // Built-in backends bound themselves (Redis with one timer, memory cannot hang); others get one here.
  const needsTimeout = backend.bounded !== true;
  const outageText =
    onStoreError === 'open'
      ? fallback
        ? 'limiting in memory'
        : 'letting requests through'
      : 'refusing requests with 503';

  function outage(ctx: Context, err: unknown): void {
    const pass = outageLog.pass();
    if (pass === undefined) return;
    ctx.log.warn(`rate-limit store failed; ${outageText}`, {
      traceId: ctx.traceId,
      store: backend.kind,
      // Failures not logged since the previous line (one line per 10 s).
      suppressed: pass.suppressed,
      err,
    });
  }

  // In process, the memory backend answers synchronously: no promise to wait for.
  const inProcess = backend instanceof MemoryRateLimitBackend ? backend : undefined;

  async function consumeNative(
    ctx: Context,
    checks: LimitCheck[],
  ): Promise<{ now: number; outcomes: LimitOutcome[] } | undefined> {
    try {
      if (!needsTimeout) return await backend.consume(checks, clock?.());
      return await bounded(
        'rateLimit',
        timeoutMs,
        () => backend.consume(checks, clock?.()),
        asError,
      );
    } catch (err) {
      return failed(ctx, checks, err);
    }
  }

  /** The store failed: log, then fail closed, let through, or limit in memory. */
  function failed(
    ctx: Context,
    checks: LimitCheck[],
    err: unknown,
  ): Promise<{ now: number; outcomes: LimitOutcome[] } | undefined> | undefined {
    outage(ctx, err);
    if (onStoreError === 'closed') throw unavailable(err);
    if (!fallback) return undefined;
    fallbackBackend ??= rateLimitBackend(new MemoryStore({ maxEntries: 100_000 }));
    return fallbackBackend.consume(checks, clock?.());
  }

  /**
   * The native policies' verdicts without consuming: the checks with one more
   * that no policy can admit (a cost above its capacity, refused before its
   * state is read), so that all-or-nothing writes nothing. In the checks'
   * slot, so one script on a Redis Cluster. `slots: 'per-counter'` runs each
   * check alone and would consume: no peek there. A failure only loses the
   * hint; the request is refused anyway.
   */
  async function peek(
    checks: LimitCheck[],
    counterPrefix: string,
  ): Promise<{ now: number; outcomes: LimitOutcome[] } | undefined> {
    if (perCounter) return undefined;
    const never: LimitCheck = {
      key: `${counterPrefix}#never`,
      algorithm: 'fixed-window',
      limit: 1,
      windowMs: 1000,
      burst: 0,
      cost: 2,
    };
    const all = [...checks, never];
    try {
      const result = inProcess
        ? inProcess.consumeNow(all, clock?.())
        : await bounded('rateLimit', timeoutMs, () => backend.consume(all, clock?.()), asError);
      return { now: result.now, outcomes: result.outcomes.slice(0, checks.length) };
    } catch {
      return undefined;
    }
  }

  function unavailable(cause: unknown): RestwellError {
    // Client-safe: the request was not executed, and may be retried.
    return serviceUnavailable(
      'Rate limits cannot be checked right now, so the request was not executed. Retry later.',
      1,
      cause,
    );
  }

  return responseBlind(async function rateLimiter(ctx, next) {
    if (skip !== undefined && (await skip(ctx))) return next();
    const requestCost = resolve(cost, ctx, 'request', 'cost', 'count');
    // Allocated only when some policy matches on the request (then `applies` is set).
    const facts = anyMatcher ? new RequestFacts(ctx) : undefined;

    const checks: LimitCheck[] = [];
    const applied: Array<(typeof native)[number]> = [];
    // A cost no policy state could ever admit: retrying never helps (400, not 429).
    let tooCostly: { policy: string; cost: number; capacity: number } | undefined;
    for (const p of native) {
      if (p.applies !== undefined && !p.applies(facts as RequestFacts)) continue;
      const key = p.key(ctx);
      // No key (or an empty one) means the policy does not apply: never one counter shared by all.
      if (key === undefined || key === '') continue;
      const limit = resolve(p.limit, ctx, p.name, 'limit', 'positive-count');
      const check: LimitCheck = {
        key: p.counterPrefix + counterKey(key) + counterSuffix,
        algorithm: p.algorithm,
        limit,
        windowMs: resolve(p.windowMs, ctx, p.name, 'windowMs', 'duration'),
        burst:
          p.burst === undefined
            ? p.algorithm === 'leaky-bucket'
              ? 0
              : limit
            : resolve(
                p.burst,
                ctx,
                p.name,
                'burst',
                p.algorithm === 'token-bucket' ? 'positive-count' : 'count',
              ),
        cost: p.cost === undefined ? requestCost : resolve(p.cost, ctx, p.name, 'cost', 'count'),
      };
      if (spanOf(check) > MAX_TTL_MS) {
        throw new TypeError(`restwell/rateLimit: ${p.name} burst must be ${SPAN_TEXT}.`);
      }
      const room = capacity(check);
      if (check.cost > room && tooCostly === undefined) {
        tooCostly = { policy: p.name, cost: check.cost, capacity: room };
      }
      checks.push(check);
      applied.push(p);
    }
    const flexibleApplied: FlexiblePolicy[] = [];
    for (const f of flexible) {
      if (f.applies !== undefined && !f.applies(facts as RequestFacts)) continue;
      flexibleApplied.push(f.policy);
      const room = flexibleLimit(f.policy, f.policy.name).points;
      if (requestCost > room && tooCostly === undefined) {
        tooCostly = { policy: f.policy.name, cost: requestCost, capacity: room };
      }
    }
    if (tooCostly !== undefined && !dryRun) {
      answeredBy(ctx, 'rate-limit', 'cost exceeds capacity');
      throw new CostExceedsCapacityError(tooCostly.policy, tooCostly.cost, tooCostly.capacity);
    }

    const evaluated: Evaluated[] = [];
    let refund: (() => Promise<void>) | undefined;
    let reported: Evaluated | undefined;
    let fields: Record<string, string> = {};
    try {
      if (flexibleApplied.length > 0) {
        // rate-limiter-flexible policies first: they can hand back what they took
        // (`reward`) if a later policy refuses, so all-or-nothing still holds.
        const flex = await runFlexible(ctx, flexibleApplied, requestCost, timeoutMs);
        refund = flex.refund;
        if (flex.storeError !== undefined) {
          outage(ctx, flex.storeError);
          if (onStoreError === 'closed') throw unavailable(flex.storeError);
        }
        evaluated.push(...flex.evaluated);
      }

      let now: number | undefined;
      if (checks.length > 0) {
        let result: { now: number; outcomes: LimitOutcome[] } | undefined;
        if (!evaluated.every((e) => e.outcome.allowed)) {
          // A flexible policy refused: the request is refused whatever the
          // native ones say, but its Retry-After must cover them too, or the
          // retry it announces is refused by a native policy still waiting.
          result = await peek(checks, (applied[0] as (typeof native)[number]).counterPrefix);
        } else if (inProcess === undefined) result = await consumeNative(ctx, checks);
        else {
          try {
            result = inProcess.consumeNow(checks, clock?.());
          } catch (err) {
            // A ledger-mode MemoryStore that is full, say: the same outage path as any store.
            result = await failed(ctx, checks, err);
          }
        }
        if (result !== undefined) {
          now = result.now;
          for (let i = 0; i < checks.length; i++) {
            const outcome = result.outcomes[i] as LimitOutcome;
            const check = checks[i] as LimitCheck;
            const policy = applied[i] as (typeof native)[number];
            evaluated.push({
              name: policy.name,
              item: policy.item,
              limit: check.limit,
              windowMs: check.windowMs,
              // A bucket larger than its limit may hold more than `q`; the
              // draft's `r` is a share of `q`, so it never exceeds it.
              remaining: Math.min(outcome.remaining, check.limit),
              resetMs: outcome.resetMs,
              outcome,
            });
          }
        }
      }

      reported = closestToExhaustion(evaluated);
      if (reported !== undefined) {
        ctx.state.rateLimit = {
          policy: reported.name,
          limit: reported.limit,
          remaining: reported.remaining,
          resetMs: reported.resetMs,
          limited: !reported.outcome.allowed,
        } satisfies RateLimitState;
        if (headers) {
          fields['RateLimit-Policy'] = policyField(evaluated);
          fields.RateLimit = stateField(reported);
        }
        if (legacyHeaders) fields = { ...fields, ...legacyFields(reported, now ?? Date.now()) };
        if (!reported.outcome.allowed) {
          if (!dryRun) {
            answeredBy(ctx, 'rate-limit', `limit of ${reported.name} reached`);
            throw new RateLimitedError(reported.name, reported.outcome.retryAfterMs, fields);
          }
          // A dry run counts what enforcement would have: a refused request
          // takes nothing from any policy (the native ones took nothing), so
          // the flexible limiters hand back what they took, as on a refusal.
          if (refund !== undefined) await refund();
        }
      }
    } catch (err) {
      // Not admitted (refused, or the store failed closed): hand back what flexible limiters took.
      if (refund !== undefined) await refund();
      throw err;
    }
    if (reported === undefined) return next();
    const limited = !reported.outcome.allowed;
    if (limited) {
      ctx.log.info('rate limit would have refused this request (dry run)', {
        traceId: ctx.traceId,
        policy: reported.name,
      });
    }
    for (const name in fields) ctx.response.headers.set(name, fields[name] as string);
    let delay = 0;
    for (const e of evaluated) if (e.outcome.delayMs > delay) delay = e.outcome.delayMs;
    if (delay > 0 && !limited) await sleep(delay);
    return next();
  });
}
