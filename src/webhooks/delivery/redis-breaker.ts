/**
 * The {@link EndpointBreakers} shared through Redis: one circuit per
 * endpoint over every worker, in any process on any machine. The failures of
 * all workers' attempts open it (an endpoint of `minimumRequests: 10` sees
 * about ten failing attempts in all, where per-process breakers let each of
 * N workers make ten), and while it is half-open at most `halfOpenProbes`
 * probes are out over all of them.
 *
 * Per endpoint, two keys that share one hash tag (one Cluster slot):
 *
 * - `{<prefix>:<endpointId>}:breaker`, a hash: `state` (absent: closed),
 *   `openedAt`, `probeSuccesses`, and the window's outcomes in time buckets of
 *   a tenth of `windowMs` each, `f:<bucket>` and `s:<bucket>` (failures and
 *   successes), the bucket being `floor(time / (windowMs / 10))` as in
 *   {@link CircuitBreaker}. Buckets older than the window are deleted as new
 *   ones start, so the hash holds at most about twenty counters.
 * - `{<prefix>:<endpointId>}:probes`, a sorted set of the probes out: member
 *   the probe id, score when it is given up (`openMs` after it went). A worker
 *   that dies holding a probe never records it; it lapses and another goes.
 *
 * Every operation is one Lua script (one round trip, atomic), and reads the
 * time from Redis (`TIME`), never from the worker, so that workers whose
 * clocks disagree open, half-open and give up probes at the same moments. The
 * state hash lives for the longest of ten minutes, two windows and two open
 * periods after its last write; an endpoint idle that long starts closed.
 *
 * A change of state is made by one script call, in one worker: the listeners
 * of that process (the engine logs it and calls `onBreakerStateChange`) are
 * told, once over every worker.
 *
 * ioredis is an optional peer dependency: this module imports its types only,
 * and runs on the client you pass.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { bounded } from '../../stores/types.js';
import {
  BREAKER_BUCKETS,
  type BreakerPermit,
  type BreakerState,
  type BreakerStateListener,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type EndpointBreakers,
  resolveCircuitOptions,
} from './breaker.js';

/** Options of {@link redisEndpointBreakers}: the circuit's numbers, and where they live. */
export interface RedisEndpointBreakersOptions
  extends Pick<
    CircuitBreakerOptions,
    'windowMs' | 'failureRatio' | 'minimumRequests' | 'openMs' | 'halfOpenProbes'
  > {
  /** Your ioredis client (standalone or Cluster), shared by every worker. Never closed here. Required. */
  client: Redis | Cluster;
  /** The start of every key: `{<prefix>:<endpointId>}:breaker` and `…:probes`. @default 'restwell:endpoint-breakers' */
  prefix?: string;
  /**
   * Longest wait for one Redis command. A breaker that cannot answer in time
   * fails the job's turn (the queue retries it after its `faultDelayMs`).
   * @default 1000
   */
  timeoutMs?: number;
}

/** The {@link EndpointBreakers} on Redis; its answers are promises. */
export interface RedisEndpointBreakers extends EndpointBreakers {
  tryAcquire(endpointId: string, now?: number): Promise<BreakerPermit>;
  record(endpointId: string, success: boolean, now?: number, probe?: string): Promise<void>;
  release(endpointId: string, now?: number, probe?: string): Promise<void>;
  state(endpointId: string, now?: number): Promise<BreakerState>;
  nextAttemptAt(endpointId: string, now?: number): Promise<number>;
  onStateChange(listener: BreakerStateListener): () => void;
  /** The shared state and the window's counts (over every worker), as plain data. */
  snapshot(endpointId: string): Promise<CircuitBreakerSnapshot>;
  /** Probes out for `endpointId`, over every worker, not yet given up. */
  probesInFlight(endpointId: string): Promise<number>;
}

const OPTIONS = [
  'client',
  'prefix',
  'timeoutMs',
  'windowMs',
  'failureRatio',
  'minimumRequests',
  'openMs',
  'halfOpenProbes',
] as const;

/** The shortest life of an endpoint's state after its last write. */
const STATE_TTL_MS = 10 * 60_000;

/**
 * The server's time in ms, and the helpers every script shares. KEYS[1] is
 * the state hash, KEYS[2] the probes. `refresh` turns an open circuit whose
 * `openMs` has passed half-open, as `CircuitBreaker` does when asked.
 */
const PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changes = {}
local function refresh(openMs)
  local st = redis.call('HMGET', KEYS[1], 'state', 'openedAt')
  local state = st[1] or 'closed'
  local openedAt = tonumber(st[2]) or 0
  if state == 'open' and now >= openedAt + openMs then
    redis.call('HSET', KEYS[1], 'state', 'half-open', 'probeSuccesses', 0)
    redis.call('DEL', KEYS[2])
    table.insert(changes, 'open')
    table.insert(changes, 'half-open')
    state = 'half-open'
  end
  return state, openedAt
end
-- The window's counts; buckets past it are deleted on the way.
local function totals(bucketMs, buckets)
  local current = math.floor(now / bucketMs)
  local all = redis.call('HGETALL', KEYS[1])
  local failures, successes = 0, 0
  for i = 1, #all, 2 do
    local kind, index = string.match(all[i], '^([fs]):(%-?%d+)$')
    if kind then
      index = tonumber(index)
      if index <= current - buckets then
        redis.call('HDEL', KEYS[1], all[i])
      elseif index <= current then
        if kind == 'f' then failures = failures + tonumber(all[i + 1])
        else successes = successes + tonumber(all[i + 1]) end
      end
    end
  end
  return failures, successes
end
`;

/**
 * ARGV: probe id, openMs, halfOpenProbes, state TTL ms.
 * Returns {1, probe id or '', state, changes...} or {0, retry at, state, changes...}.
 */
const ACQUIRE = `${PRELUDE}
local openMs = tonumber(ARGV[2])
local probes = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local state, openedAt = refresh(openMs)
local function answer(ok, value)
  local out = {ok, value, state}
  for _, c in ipairs(changes) do table.insert(out, c) end
  return out
end
if state == 'closed' then return answer(1, '') end
redis.call('PEXPIRE', KEYS[1], ttl)
if state == 'open' then return answer(0, math.ceil(openedAt + openMs)) end
-- Half-open: probes never recorded (their worker died) are given up after openMs.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= probes then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return answer(0, math.ceil(tonumber(first[2])))
end
redis.call('ZADD', KEYS[2], now + openMs, ARGV[1])
-- The newest probe is given up last: the set lives as long as any of its probes.
redis.call('PEXPIRE', KEYS[2], math.ceil(openMs))
return answer(1, ARGV[1])
`;

/**
 * ARGV: 1 for a success, probe id or '', bucketMs, buckets, minimumRequests,
 * failureRatio, openMs, halfOpenProbes, state TTL ms.
 * Returns {state, changes...}.
 */
const RECORD = `${PRELUDE}
local success = ARGV[1] == '1'
local probe = ARGV[2]
local bucketMs = tonumber(ARGV[3])
local buckets = tonumber(ARGV[4])
local minimum = tonumber(ARGV[5])
local ratio = tonumber(ARGV[6])
local openMs = tonumber(ARGV[7])
local probes = tonumber(ARGV[8])
local ttl = tonumber(ARGV[9])
local state = refresh(openMs)
local function move(to)
  table.insert(changes, state)
  table.insert(changes, to)
  state = to
end
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'openedAt', now, 'probeSuccesses', 0)
  redis.call('DEL', KEYS[2])
  move('open')
end
local field = (success and 's:' or 'f:') .. string.format('%d', math.floor(now / bucketMs))
local fresh = redis.call('HINCRBY', KEYS[1], field, 1) == 1
if state == 'half-open' then
  local wasProbe = probe ~= '' and redis.call('ZREM', KEYS[2], probe) == 1
  if not success then
    open()
  elseif wasProbe then
    if redis.call('HINCRBY', KEYS[1], 'probeSuccesses', 1) >= probes then
      -- Closed with an empty window: the failures that opened it are history.
      redis.call('DEL', KEYS[1], KEYS[2])
      move('closed')
    end
  end
elseif state == 'closed' and (fresh or not success) then
  -- A new bucket drops the stale ones; a failure asks whether the circuit opens.
  local failures, successes = totals(bucketMs, buckets)
  local total = failures + successes
  if not success and total >= minimum and failures >= ratio * total then open() end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ttl) end
local out = {state}
for _, c in ipairs(changes) do table.insert(out, c) end
return out
`;

/** ARGV: probe id. Returns 1 when the probe was out. */
const RELEASE = `
return redis.call('ZREM', KEYS[2], ARGV[1])
`;

/**
 * ARGV: openMs, halfOpenProbes, bucketMs, buckets.
 * Returns {state, next attempt at, failures, successes, openedAt, probes out, changes...}.
 */
const STATE = `${PRELUDE}
local openMs = tonumber(ARGV[1])
local probes = tonumber(ARGV[2])
local state, openedAt = refresh(openMs)
local failures, successes = totals(tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = 0
local nextAt = 0
if state == 'open' then
  nextAt = math.ceil(openedAt + openMs)
elseif state == 'half-open' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  out = redis.call('ZCARD', KEYS[2])
  if out < probes then nextAt = now
  else nextAt = math.ceil(tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2])) end
end
local answer = {state, nextAt, failures, successes, openedAt, out}
for _, c in ipairs(changes) do table.insert(answer, c) end
return answer
`;

type Reply = (string | number)[];

interface ScriptedClient {
  restwellBreakerAcquire(
    state: string,
    probes: string,
    probe: string,
    openMs: number,
    halfOpenProbes: number,
    ttlMs: number,
  ): Promise<Reply>;
  restwellBreakerRecord(
    state: string,
    probes: string,
    success: number,
    probe: string,
    bucketMs: number,
    buckets: number,
    minimumRequests: number,
    failureRatio: number,
    openMs: number,
    halfOpenProbes: number,
    ttlMs: number,
  ): Promise<Reply>;
  restwellBreakerRelease(state: string, probes: string, probe: string): Promise<number>;
  restwellBreakerState(
    state: string,
    probes: string,
    openMs: number,
    halfOpenProbes: number,
    bucketMs: number,
    buckets: number,
  ): Promise<Reply>;
}

const STATES: readonly BreakerState[] = ['closed', 'open', 'half-open'];

function asState(value: unknown): BreakerState {
  return STATES.includes(value as BreakerState) ? (value as BreakerState) : 'closed';
}

/**
 * Creates the Redis-backed {@link EndpointBreakers}: pass it as the engine's
 * `breakers` in every worker (and, for `stats()`, in the API process), with
 * the same `prefix` and numbers everywhere.
 *
 * A Redis that fails or does not answer within `timeoutMs` makes
 * `tryAcquire` reject (a `StoreUnavailableError` or `StoreTimeoutError`):
 * the engine makes no attempt and the queue runs the job again after its
 * `faultDelayMs`, logged; nothing counts against the receiver. A `record` or
 * `release` that fails rejects too; the engine logs it, the attempt stands,
 * and a probe it held is given up after `openMs`.
 *
 * The `now` the engine passes is not used: time is Redis's.
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL!);
 * await runDeliveryWorker({
 *   queue: { connection: redis, prefix: 'restwell' },
 *   limiter: redisEndpointLimiter({ client: redis }),
 *   breakers: redisEndpointBreakers({ client: redis, minimumRequests: 10 }),
 *   log, endpointStore, guard: ssrfGuard(),
 * });
 * ```
 */
export function redisEndpointBreakers(
  options: RedisEndpointBreakersOptions,
): RedisEndpointBreakers {
  if (options === undefined || options === null || typeof options !== 'object')
    invalidOption('webhooks', 'options', 'an object', options);
  checkOptions('webhooks', options, OPTIONS);
  const { client } = options;
  if (
    client === null ||
    typeof client !== 'object' ||
    typeof (client as Redis).defineCommand !== 'function'
  )
    invalidOption('webhooks', 'client', 'an ioredis Redis or Cluster client', client);
  const prefix = options.prefix ?? 'restwell:endpoint-breakers';
  if (typeof prefix !== 'string' || prefix === '')
    invalidOption('webhooks', 'prefix', 'a non-empty string', prefix);
  const timeoutMs = options.timeoutMs ?? 1000;
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    invalidOption('webhooks', 'timeoutMs', 'a positive integer', timeoutMs);
  const circuit = resolveCircuitOptions(options);
  const bucketMs = circuit.windowMs / BREAKER_BUCKETS;
  const stateTtlMs = Math.ceil(Math.max(STATE_TTL_MS, 2 * circuit.windowMs, 2 * circuit.openMs));

  const scripted = client as (Redis | Cluster) & Partial<ScriptedClient>;
  // Registered once per client (EVALSHA after the first call), shared by every instance on it.
  if (typeof scripted.restwellBreakerAcquire !== 'function') {
    client.defineCommand('restwellBreakerAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    client.defineCommand('restwellBreakerRecord', { numberOfKeys: 2, lua: RECORD });
    client.defineCommand('restwellBreakerRelease', { numberOfKeys: 2, lua: RELEASE });
    client.defineCommand('restwellBreakerState', { numberOfKeys: 2, lua: STATE });
  }
  const redis = client as (Redis | Cluster) & ScriptedClient;

  // One hash tag per endpoint: its two keys land in one Cluster slot, as a script needs.
  const keysOf = (endpointId: string) => {
    const tag = `{${prefix}:${endpointId}}`;
    return { state: `${tag}:breaker`, probes: `${tag}:probes` };
  };
  const run = <T>(operation: string, command: () => Promise<T>): Promise<T> =>
    bounded(
      `endpoint breaker ${operation}`,
      timeoutMs,
      command,
      (err) =>
        new StoreUnavailableError(`Redis endpoint breaker ${operation} failed.`, { cause: err }),
    );

  const listeners = new Set<BreakerStateListener>();
  /** Tells this process's listeners of the changes a script made, in order. */
  const tell = (endpointId: string, changes: readonly unknown[]): void => {
    for (let i = 0; i + 1 < changes.length; i += 2) {
      const previous = asState(changes[i]);
      const state = asState(changes[i + 1]);
      for (const listener of [...listeners]) listener(endpointId, state, previous);
    }
  };

  const read = async (endpointId: string) => {
    const { state, probes } = keysOf(endpointId);
    const reply = await run('state', () =>
      redis.restwellBreakerState(
        state,
        probes,
        circuit.openMs,
        circuit.halfOpenProbes,
        bucketMs,
        BREAKER_BUCKETS,
      ),
    );
    tell(endpointId, reply.slice(6));
    return {
      state: asState(reply[0]),
      nextAttemptAt: Number(reply[1]),
      failures: Number(reply[2]),
      successes: Number(reply[3]),
      openedAt: Number(reply[4]),
      probes: Number(reply[5]),
    };
  };

  return {
    async tryAcquire(endpointId) {
      const { state, probes } = keysOf(endpointId);
      const reply = await run('acquire', () =>
        redis.restwellBreakerAcquire(
          state,
          probes,
          randomBytes(8).toString('hex'),
          circuit.openMs,
          circuit.halfOpenProbes,
          stateTtlMs,
        ),
      );
      tell(endpointId, reply.slice(3));
      const current = asState(reply[2]);
      if (Number(reply[0]) === 1) {
        const probe = String(reply[1]);
        return probe === '' ? { ok: true } : { ok: true, probe };
      }
      return {
        ok: false,
        state: current === 'half-open' ? 'half-open' : 'open',
        retryAt: Number(reply[1]),
      };
    },
    async record(endpointId, success, _now, probe) {
      const { state, probes } = keysOf(endpointId);
      const reply = await run('record', () =>
        redis.restwellBreakerRecord(
          state,
          probes,
          success ? 1 : 0,
          probe ?? '',
          bucketMs,
          BREAKER_BUCKETS,
          circuit.minimumRequests,
          circuit.failureRatio,
          circuit.openMs,
          circuit.halfOpenProbes,
          stateTtlMs,
        ),
      );
      tell(endpointId, reply.slice(1));
    },
    async release(endpointId, _now, probe) {
      // Only a probe is held: a permit of a closed circuit has nothing to give back.
      if (probe === undefined) return;
      const { state, probes } = keysOf(endpointId);
      await run('release', () => redis.restwellBreakerRelease(state, probes, probe));
    },
    async state(endpointId) {
      return (await read(endpointId)).state;
    },
    async nextAttemptAt(endpointId) {
      return (await read(endpointId)).nextAttemptAt;
    },
    onStateChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async snapshot(endpointId) {
      const s = await read(endpointId);
      return {
        state: s.state,
        failures: s.failures,
        successes: s.successes,
        ...(s.state === 'closed' ? {} : { openedAt: s.openedAt }),
      };
    },
    async probesInFlight(endpointId) {
      return (await read(endpointId)).probes;
    },
  };
}
