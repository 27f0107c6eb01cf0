/**
 * The {@link EndpointLimiter} shared through Redis: every worker, in any
 * process on any machine, counts against the same per-endpoint limits, so
 * an endpoint of `concurrency: 2` sees at most two attempts at once however
 * many workers run (the memory limiter allows two per worker).
 *
 * Per endpoint, two keys that share one hash tag (one Cluster slot):
 *
 * - `{<prefix>:<endpointId>}:leases`, a sorted set of the attempts in flight:
 *   member the lease id (`<start ms>-<random>`), score its expiry. A worker
 *   that dies holding a lease never gives it back; it lapses after `leaseMs`
 *   and the slot returns.
 * - `{<prefix>:<endpointId>}:state`, a hash: the token bucket (`tokens`,
 *   `refilledAt`), the moving average of an attempt's duration (`meanMs`) and
 *   the time the last job turned away was told to come back (`nextAt`).
 *
 * Acquiring is one Lua script (one round trip, atomic): drop the expired
 * leases, refuse when `concurrency` remain, refill the bucket and take a
 * token (refuse when none), add the lease. Releasing is another: remove the
 * lease (a second release removes nothing) and fold its duration into the
 * mean. Both read the time from Redis (`TIME`), never from the worker, so
 * workers whose clocks disagree share one bucket and one lease expiry. Both
 * set TTLs: an idle endpoint's keys vanish (the leases once the last lease
 * lapses, the state ten minutes after its last use).
 *
 * Jobs turned away are spaced as by the memory limiter: the n-th comes back
 * n × (mean attempt duration / concurrency) later, the duration being the
 * longer of the mean and the age of the oldest attempt in flight.
 *
 * ioredis is an optional peer dependency: this module imports its types only,
 * and runs on the client you pass.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { bounded } from '../../stores/types.js';
import type { EndpointLimiter, EndpointLimits } from './limits.js';

/** Options of {@link redisEndpointLimiter}. */
export interface RedisEndpointLimiterOptions {
  /**
   * Your ioredis client (standalone or Cluster), shared by every worker's
   * limiter. Never closed by the limiter. Required.
   */
  client: Redis | Cluster;
  /** The start of every key: `{<prefix>:<endpointId>}:leases` and `…:state`. @default 'restwell:endpoint-limits' */
  prefix?: string;
  /**
   * How long a slot is held when its worker never gives it back (it died):
   * the slot then frees. Must exceed the engine's `timeoutMs` (an attempt's
   * hard deadline, 5 s by default) with a margin for the worker's own pauses:
   * a lease that lapses while its attempt still runs lets one attempt too many
   * start. @default 15000
   */
  leaseMs?: number;
  /**
   * Longest wait for one Redis command. A limiter that cannot answer in time
   * fails the job's turn (the queue retries it after its `faultDelayMs`), so
   * that a hung Redis does not hold the worker's slots. @default 1000
   */
  timeoutMs?: number;
  /** The shortest delay given to a job turned away at the concurrency limit. @default 100 */
  busyRetryMs?: number;
}

/** The {@link EndpointLimiter} on Redis; its answers are promises. */
export interface RedisEndpointLimiter extends EndpointLimiter {
  tryAcquire(
    endpointId: string,
    limits: EndpointLimits,
    now?: number,
  ): Promise<
    | { readonly ok: true; readonly lease: string }
    | { readonly ok: false; readonly retryInMs: number }
  >;
  release(endpointId: string, now?: number, lease?: string): Promise<void>;
  /** Leases not yet expired for `endpointId`, over every worker. */
  inFlight(endpointId: string): Promise<number>;
}

const OPTIONS = ['client', 'prefix', 'leaseMs', 'timeoutMs', 'busyRetryMs'] as const;

/** How long an endpoint's state (bucket, mean duration) outlives its last use. */
const STATE_TTL_MS = 10 * 60_000;

/** The server's time in ms, and the script's replication mode for it (Redis < 5 needs it). */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: leases, state. ARGV: random lease suffix, concurrency, rate per
 * second (0: none), leaseMs, busyRetryMs, state TTL ms.
 * Returns {1, lease} or {0, retry in ms}.
 */
const ACQUIRE = `${NOW}
local concurrency = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local leaseMs = tonumber(ARGV[4])
local busy = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local state = redis.call('HMGET', KEYS[2], 'tokens', 'refilledAt', 'meanMs', 'nextAt')
if count >= concurrency then
  -- How long an attempt takes: the mean so far, or the age of the oldest in flight when that
  -- is longer (an endpoint that started hanging has no finished attempt to go by).
  local oldest = 0
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)
  if first[1] then
    local started = tonumber(string.match(first[1], '^(%d+)-'))
    if started then oldest = math.max(0, now - started) end
  end
  local duration = math.max(tonumber(state[3]) or 0, oldest, 1)
  local nextAt = math.max(tonumber(state[4]) or 0, now) + duration / concurrency
  redis.call('HSET', KEYS[2], 'nextAt', string.format('%.3f', nextAt))
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, math.max(busy, math.ceil(nextAt - now))}
end
if rate > 0 then
  local tokens = tonumber(state[1]) or rate
  local refilledAt = tonumber(state[2]) or now
  tokens = math.min(rate, tokens + math.max(0, now - refilledAt) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', KEYS[2], 'tokens', string.format('%.6f', tokens), 'refilledAt', now)
    redis.call('PEXPIRE', KEYS[2], ttl)
    return {0, math.ceil((1 - tokens) * 1000 / rate)}
  end
  redis.call('HSET', KEYS[2], 'tokens', string.format('%.6f', tokens - 1), 'refilledAt', now)
end
-- The first slot taken after none were in flight: jobs turned away before start afresh.
if count == 0 then redis.call('HDEL', KEYS[2], 'nextAt') end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
local lease = string.format('%d', now) .. '-' .. ARGV[1]
redis.call('ZADD', KEYS[1], now + leaseMs, lease)
-- The newest lease expires last: the set lives as long as any of its leases.
redis.call('PEXPIRE', KEYS[1], leaseMs)
return {1, lease}
`;

/**
 * KEYS: leases, state. ARGV: the lease, state TTL ms. Returns 1 when the
 * lease was held, 0 when it was already released or had expired.
 */
const RELEASE = `${NOW}
local ttl = tonumber(ARGV[2])
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 then
  local started = tonumber(string.match(ARGV[1], '^(%d+)-'))
  if started then
    local took = math.max(0, now - started)
    local mean = tonumber(redis.call('HGET', KEYS[2], 'meanMs')) or 0
    if mean == 0 then mean = took else mean = 0.8 * mean + 0.2 * took end
    redis.call('HSET', KEYS[2], 'meanMs', string.format('%.3f', mean))
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- Once no attempt is in flight, jobs already told to wait keep their times; new ones start afresh.
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], 'nextAt') end
return removed
`;

/** KEYS: leases. Returns the leases not yet expired. */
const COUNT = `${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`;

interface ScriptedClient {
  restwellLimiterAcquire(
    leases: string,
    state: string,
    suffix: string,
    concurrency: number,
    rate: number,
    leaseMs: number,
    busyRetryMs: number,
    ttlMs: number,
  ): Promise<[number, string | number]>;
  restwellLimiterRelease(
    leases: string,
    state: string,
    lease: string,
    ttlMs: number,
  ): Promise<number>;
  restwellLimiterCount(leases: string): Promise<number>;
}

function positiveInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    invalidOption('webhooks', option, 'a positive integer', value);
  return value;
}

/**
 * Creates the Redis-backed {@link EndpointLimiter}: pass it as the engine's
 * `limiter` in every worker (and in the API process, which never uses it).
 *
 * A Redis that fails or does not answer within `timeoutMs` makes
 * `tryAcquire` reject (a `StoreUnavailableError` or `StoreTimeoutError`):
 * the engine makes no attempt and the queue runs the job again after its
 * `faultDelayMs`, logged; nothing counts against the receiver. A `release`
 * that fails rejects too; the engine logs it, and the lease lapses after
 * `leaseMs`.
 *
 * The `now` the engine passes is not used: time is Redis's.
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL!);
 * await runDeliveryWorker({
 *   queue: { connection: redis, prefix: 'restwell' },
 *   limiter: redisEndpointLimiter({ client: redis }),
 *   log, endpointStore, guard: ssrfGuard(),
 * });
 * ```
 */
export function redisEndpointLimiter(options: RedisEndpointLimiterOptions): RedisEndpointLimiter {
  checkOptions('webhooks', options, OPTIONS);
  if (options === undefined) invalidOption('webhooks', 'options', 'an object', options);
  const { client } = options;
  if (
    client === null ||
    typeof client !== 'object' ||
    typeof (client as Redis).defineCommand !== 'function'
  )
    invalidOption('webhooks', 'client', 'an ioredis Redis or Cluster client', client);
  const prefix = options.prefix ?? 'restwell:endpoint-limits';
  if (typeof prefix !== 'string' || prefix === '')
    invalidOption('webhooks', 'prefix', 'a non-empty string', prefix);
  const leaseMs = positiveInt('leaseMs', options.leaseMs, 15_000);
  const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 1000);
  const busyRetryMs = positiveInt('busyRetryMs', options.busyRetryMs, 100);
  const stateTtlMs = Math.max(STATE_TTL_MS, leaseMs);

  const scripted = client as (Redis | Cluster) & Partial<ScriptedClient>;
  // Registered once per client (EVALSHA after the first call), shared by every limiter on it.
  if (typeof scripted.restwellLimiterAcquire !== 'function') {
    client.defineCommand('restwellLimiterAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    client.defineCommand('restwellLimiterRelease', { numberOfKeys: 2, lua: RELEASE });
    client.defineCommand('restwellLimiterCount', { numberOfKeys: 1, lua: COUNT });
  }
  const redis = client as (Redis | Cluster) & ScriptedClient;

  // One hash tag per endpoint: its two keys land in one Cluster slot, as a script needs.
  const keysOf = (endpointId: string) => {
    const tag = `{${prefix}:${endpointId}}`;
    return { leases: `${tag}:leases`, state: `${tag}:state` };
  };
  const run = <T>(operation: string, command: () => Promise<T>): Promise<T> =>
    bounded(
      `endpoint limiter ${operation}`,
      timeoutMs,
      command,
      (err) =>
        new StoreUnavailableError(`Redis endpoint limiter ${operation} failed.`, { cause: err }),
    );

  return {
    async tryAcquire(endpointId, limits) {
      const { leases, state } = keysOf(endpointId);
      const rate = limits.rateLimitPerSecond ?? 0;
      const [ok, value] = await run('acquire', () =>
        redis.restwellLimiterAcquire(
          leases,
          state,
          randomBytes(8).toString('hex'),
          limits.concurrency,
          rate,
          leaseMs,
          busyRetryMs,
          stateTtlMs,
        ),
      );
      return ok === 1
        ? { ok: true, lease: String(value) }
        : { ok: false, retryInMs: Number(value) };
    },
    async release(endpointId, _now, lease) {
      // Without its lease a slot cannot be told from another worker's: it lapses instead.
      if (lease === undefined) return;
      const { leases, state } = keysOf(endpointId);
      await run('release', () => redis.restwellLimiterRelease(leases, state, lease, stateTtlMs));
    },
    async inFlight(endpointId) {
      const { leases } = keysOf(endpointId);
      return Number(await run('count', () => redis.restwellLimiterCount(leases)));
    },
  };
}
