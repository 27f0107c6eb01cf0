/**
 * The {@link EndpointHealthStore} shared through Redis: one failure share per
 * endpoint over every worker, in any process on any machine. The attempts of
 * all workers fill one window, so an endpoint is judged on all of them; its
 * alert is raised once, withdrawn once and runs out once over every worker,
 * so that `onAlert`, `onRecover` and the disable happen once, where
 * per-process health raises them in each of N workers.
 *
 * Per endpoint, one hash, `{<prefix>:<endpointId>}:health` (a hash tag per
 * endpoint: one Cluster slot), holding the window's counts in 60 time buckets
 * of `windowMs / 60` each, `a:<bucket>` and `f:<bucket>` (attempts and
 * failures, the bucket being `floor(time / bucketMs)`), as
 * {@link EndpointHealth} counts; buckets past the window are deleted as they
 * are read. The alert is four fields of the same hash: `since`, `disableAt`
 * (-1: never), and the `attempts` and `failures` that raised it. Every
 * operation is one Lua script (atomic), so the call that raises, withdraws or
 * runs out an alert is the only one that sees it happen: it alone tells its
 * process's listeners.
 *
 * One more key, `{<prefix>}:health-due`, a sorted set of the alerted
 * endpoints scored with their `disableAt`, lets `check()` (the engine's
 * sweep) find the alerts that have run out though their endpoint went quiet
 * and the worker that raised them (and armed the timer) is gone. It lives in
 * a slot of its own, so it is kept apart from the scripts on the endpoint's
 * hash: an entry is added after the alert is raised, removed only while its
 * score is the one it was added with, and `check()` judges every due entry
 * from the endpoint's own hash (dropping or re-scoring entries it finds
 * stale), so the hash is the truth and the index only a list of where to
 * look.
 *
 * When an alert runs out, the counts are deleted and a `disabled` field
 * left for a minute (or until `forget`, which the engine calls when the
 * endpoint is enabled): attempts that were in flight in other workers when
 * it was disabled count nothing, so they cannot raise a second alert.
 *
 * The scripts read the time from Redis (`TIME`), never from the worker, so
 * workers whose clocks disagree raise alerts and disable at the same moments.
 * The hash lives for the longest of ten minutes and two windows after its
 * last write, and while alerted until `disableAt` and that much again; an
 * endpoint idle that long starts afresh.
 *
 * ioredis is an optional peer dependency: this module imports its types only,
 * and runs on the client you pass.
 */
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { bounded } from '../../stores/types.js';
import {
  type EndpointHealthAlert,
  type EndpointHealthListener,
  type EndpointHealthOptions,
  type EndpointHealthState,
  type EndpointHealthStore,
  type EndpointHealthTransition,
  resolveHealthOptions,
} from './health.js';

/** Options of {@link redisEndpointHealth}: the thresholds, and where the counts live. */
export interface RedisEndpointHealthOptions extends EndpointHealthOptions {
  /** Your ioredis client (standalone or Cluster), shared by every worker. Never closed here. Required. */
  client: Redis | Cluster;
  /** The start of every key: `{<prefix>:<endpointId>}:health` and `{<prefix>}:health-due`. @default 'restwell:endpoint-health' */
  prefix?: string;
  /** Longest wait for one Redis command. @default 1000 */
  timeoutMs?: number;
}

/** The {@link EndpointHealthStore} on Redis; its answers are promises. */
export interface RedisEndpointHealth extends EndpointHealthStore {
  record(endpointId: string, ok: boolean, now?: number): Promise<void>;
  check(now?: number, endpointId?: string): Promise<void>;
  forget(endpointId: string): Promise<void>;
  state(endpointId: string, now?: number): Promise<EndpointHealthState>;
}

const OPTIONS = [
  'client',
  'prefix',
  'timeoutMs',
  'windowMs',
  'failureRatio',
  'minimumAttempts',
  'disableAfterMs',
] as const;

/** Buckets of a window, as {@link EndpointHealth} keeps. */
const BUCKETS = 60;
/** The shortest life of an endpoint's counts after its last write. */
const STATE_TTL_MS = 10 * 60_000;
/**
 * How long a disabled endpoint's attempts are not counted, unless it is
 * enabled before: those in flight when it was disabled end within the
 * engine's `timeoutMs` (5 s by default).
 */
const DISABLED_TTL_MS = 60_000;
/** Due alerts `check()` reads at a time, and the most batches of one call. */
const DUE_BATCH = 100;
const DUE_BATCHES = 10;

/**
 * The server's time in ms, and the judgment every script on an endpoint
 * shares, as {@link EndpointHealth} judges. KEYS[1] is the endpoint's hash.
 * ARGV: bucketMs, windowMs, failureRatio, minimumAttempts, disableAfterMs
 * (-1: never), TTL ms, the disabled marker's TTL ms. `evaluate` returns {kind, attempts, failures, since,
 * disableAt, alert's attempts, alert's failures}, kind one of none, alert,
 * alerted, recover, disable.
 */
const PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucketMs = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local ratio = tonumber(ARGV[3])
local minimum = tonumber(ARGV[4])
local disableAfter = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local function int(n) return string.format('%d', n) end
-- The window's counts: a bucket counts while its end is past now - windowMs.
local function totals()
  local oldest = now - windowMs
  local all = redis.call('HGETALL', KEYS[1])
  local attempts, failures = 0, 0
  for i = 1, #all, 2 do
    local kind, index = string.match(all[i], '^([af]):(%-?%d+)$')
    if kind then
      if (tonumber(index) + 1) * bucketMs <= oldest then
        redis.call('HDEL', KEYS[1], all[i])
      elseif kind == 'a' then
        attempts = attempts + tonumber(all[i + 1])
      else
        failures = failures + tonumber(all[i + 1])
      end
    end
  end
  return attempts, failures
end
local function evaluate()
  local attempts, failures = totals()
  local a = redis.call('HMGET', KEYS[1], 'since', 'disableAt', 'attempts', 'failures')
  if not a[1] then
    if attempts >= minimum and attempts > 0 and failures / attempts > ratio then
      local disableAt = -1
      if disableAfter >= 0 then disableAt = now + disableAfter end
      redis.call('HSET', KEYS[1], 'since', int(now), 'disableAt', int(disableAt),
        'attempts', attempts, 'failures', failures)
      return {'alert', attempts, failures, now, disableAt, attempts, failures}
    end
    return {'none', attempts, failures}
  end
  local since, disableAt = tonumber(a[1]), tonumber(a[2])
  local out = {'alerted', attempts, failures, since, disableAt, tonumber(a[3]), tonumber(a[4])}
  -- Recovered: the window shows the share at or below the threshold again.
  if attempts > 0 and failures / attempts <= ratio then
    redis.call('HDEL', KEYS[1], 'since', 'disableAt', 'attempts', 'failures')
    out[1] = 'recover'
  elseif disableAt >= 0 and now >= disableAt then
    -- Forgotten, as the in-process monitor forgets a disabled endpoint. A marker stays a while,
    -- so that attempts still in flight in other workers do not start a window of their own and
    -- alert again; enabling the endpoint (forget) removes it.
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'disabled', int(now))
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
    out[1] = 'disable'
  end
  return out
end
-- Lives its TTL past the last write, and while alerted past disableAt too.
local function expire()
  if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'disabled') == 1 then
    return
  end
  local d = tonumber(redis.call('HGET', KEYS[1], 'disableAt') or '-1')
  local life = ttl
  if d >= 0 and d - now + ttl > life then life = d - now + ttl end
  redis.call('PEXPIRE', KEYS[1], math.ceil(life))
end
`;

/** ARGV as PRELUDE's, then 1 for a success (ARGV[8]). Returns what `evaluate` does. */
const RECORD = `${PRELUDE}
if redis.call('HEXISTS', KEYS[1], 'disabled') == 1 then return {'none', 0, 0} end
local bucket = int(math.floor(now / bucketMs))
redis.call('HINCRBY', KEYS[1], 'a:' .. bucket, 1)
if ARGV[8] ~= '1' then redis.call('HINCRBY', KEYS[1], 'f:' .. bucket, 1) end
local out = evaluate()
expire()
return out
`;

/** ARGV as PRELUDE's. Judges without an attempt; returns what `evaluate` does. */
const CHECK = `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none', 0, 0} end
local out = evaluate()
expire()
return out
`;

/** ARGV as PRELUDE's. Returns {attempts, failures, since or '', disableAt, alert's attempts, alert's failures}. */
const STATE = `${PRELUDE}
local attempts, failures = totals()
local a = redis.call('HMGET', KEYS[1], 'since', 'disableAt', 'attempts', 'failures')
return {attempts, failures, a[1] or '', a[2] or '', a[3] or '', a[4] or ''}
`;

/** KEYS[1] the due index; ARGV: most entries. Returns {endpointId, disableAt, ...} due now. */
const DUE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
`;

/**
 * KEYS[1] the due index; ARGV: endpoint id, the score it was added with.
 * Removes the entry only while it has that score: a newer alert's entry stays.
 */
const UNINDEX = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`;

type Reply = (string | number)[];
type Thresholds = [
  bucketMs: number,
  windowMs: number,
  failureRatio: number,
  minimumAttempts: number,
  disableAfterMs: number,
  ttlMs: number,
  disabledTtlMs: number,
];

interface ScriptedClient {
  restwellHealthRecord(key: string, ...args: [...Thresholds, number]): Promise<Reply>;
  restwellHealthCheck(key: string, ...args: Thresholds): Promise<Reply>;
  restwellHealthState(key: string, ...args: Thresholds): Promise<Reply>;
  restwellHealthDue(index: string, limit: number): Promise<string[]>;
  restwellHealthUnindex(index: string, endpointId: string, score: number): Promise<number>;
}

/**
 * Creates the Redis-backed {@link EndpointHealthStore}: pass it as the
 * engine's `healthStore` in every worker (and, for `stats()`, in the API
 * process), with the same `prefix` and thresholds everywhere.
 *
 * A Redis that fails or does not answer within `timeoutMs` makes the call
 * reject (a `StoreUnavailableError` or `StoreTimeoutError`): the engine logs
 * it and the attempt stands, delivered or retried as its outcome says; it is
 * only missing from the share. `stats()` rejects with it.
 *
 * The `now` the engine passes is not used: time is Redis's.
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL!);
 * await runDeliveryWorker({
 *   queue: { connection: redis, prefix: 'restwell' },
 *   limiter: redisEndpointLimiter({ client: redis }),
 *   breakers: redisEndpointBreakers({ client: redis }),
 *   healthStore: redisEndpointHealth({ client: redis, minimumAttempts: 20 }),
 *   log, endpointStore, guard: ssrfGuard(),
 * });
 * ```
 */
export function redisEndpointHealth(options: RedisEndpointHealthOptions): RedisEndpointHealth {
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
  const prefix = options.prefix ?? 'restwell:endpoint-health';
  if (typeof prefix !== 'string' || prefix === '')
    invalidOption('webhooks', 'prefix', 'a non-empty string', prefix);
  const timeoutMs = options.timeoutMs ?? 1000;
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    invalidOption('webhooks', 'timeoutMs', 'a positive integer', timeoutMs);
  const { windowMs, failureRatio, minimumAttempts, disableAfterMs } = resolveHealthOptions(
    {
      ...(options.windowMs === undefined ? {} : { windowMs: options.windowMs }),
      ...(options.failureRatio === undefined ? {} : { failureRatio: options.failureRatio }),
      ...(options.minimumAttempts === undefined
        ? {}
        : { minimumAttempts: options.minimumAttempts }),
      ...(options.disableAfterMs === undefined ? {} : { disableAfterMs: options.disableAfterMs }),
    },
    '',
  );
  const thresholds: Thresholds = [
    Math.floor(windowMs / BUCKETS),
    windowMs,
    failureRatio,
    minimumAttempts,
    disableAfterMs === false ? -1 : disableAfterMs,
    Math.max(STATE_TTL_MS, 2 * windowMs),
    DISABLED_TTL_MS,
  ];

  const scripted = client as (Redis | Cluster) & Partial<ScriptedClient>;
  // Registered once per client (EVALSHA after the first call), shared by every instance on it.
  if (typeof scripted.restwellHealthRecord !== 'function') {
    client.defineCommand('restwellHealthRecord', { numberOfKeys: 1, lua: RECORD });
    client.defineCommand('restwellHealthCheck', { numberOfKeys: 1, lua: CHECK });
    client.defineCommand('restwellHealthState', { numberOfKeys: 1, lua: STATE });
    client.defineCommand('restwellHealthDue', { numberOfKeys: 1, lua: DUE });
    client.defineCommand('restwellHealthUnindex', { numberOfKeys: 1, lua: UNINDEX });
  }
  const redis = client as (Redis | Cluster) & ScriptedClient;

  const keyOf = (endpointId: string) => `{${prefix}:${endpointId}}:health`;
  const index = `{${prefix}}:health-due`;
  const run = <T>(operation: string, command: () => Promise<T>): Promise<T> =>
    bounded(
      `endpoint health ${operation}`,
      timeoutMs,
      command,
      (err) =>
        new StoreUnavailableError(`Redis endpoint health ${operation} failed.`, { cause: err }),
    );

  const listeners = new Set<EndpointHealthListener>();
  const tell = (transition: EndpointHealthTransition): void => {
    for (const listener of [...listeners]) listener(transition);
  };

  /**
   * Tells this process's listeners of the transition a script made, then
   * keeps the due index in step with it. Returns the kind, and the alert's
   * `disableAt` (-1: none).
   */
  const settle = async (endpointId: string, reply: Reply) => {
    const kind = String(reply[0]);
    if (kind === 'none') return { kind, disableAt: -1 };
    const attempts = Number(reply[1]);
    const failures = Number(reply[2]);
    const disableAt = Number(reply[4]);
    const alertAttempts = Number(reply[5]);
    const alertFailures = Number(reply[6]);
    const alert: EndpointHealthAlert = Object.freeze({
      endpointId,
      failureRatio: alertFailures / alertAttempts,
      attempts: alertAttempts,
      failures: alertFailures,
      since: Number(reply[3]),
      ...(disableAt < 0 ? {} : { disableAt }),
    });
    if (kind === 'alert') {
      tell({ type: 'alert', alert });
      if (disableAt >= 0) await run('index', () => redis.zadd(index, disableAt, endpointId));
    } else if (kind === 'recover') {
      tell({ type: 'recover', alert });
      if (disableAt >= 0)
        await run('index', () => redis.restwellHealthUnindex(index, endpointId, disableAt));
    } else if (kind === 'disable') {
      // As the in-process monitor reports it: the window's counts at the moment it ran out.
      tell({
        type: 'disable',
        alert: Object.freeze({
          ...alert,
          failureRatio: attempts === 0 ? alert.failureRatio : failures / attempts,
          attempts,
          failures,
        }),
      });
      await run('index', () => redis.restwellHealthUnindex(index, endpointId, disableAt));
    }
    return { kind, disableAt };
  };

  const checkOne = (endpointId: string) =>
    run('check', () => redis.restwellHealthCheck(keyOf(endpointId), ...thresholds)).then((reply) =>
      settle(endpointId, reply),
    );

  return {
    async record(endpointId, ok) {
      const reply = await run('record', () =>
        redis.restwellHealthRecord(keyOf(endpointId), ...thresholds, ok ? 1 : 0),
      );
      await settle(endpointId, reply);
    },
    async check(_now, endpointId) {
      if (endpointId !== undefined) {
        await checkOne(endpointId);
        return;
      }
      for (let batch = 0; batch < DUE_BATCHES; batch++) {
        const due = await run('due', () => redis.restwellHealthDue(index, DUE_BATCH));
        let kept = 0;
        for (let i = 0; i + 1 < due.length; i += 2) {
          const id = String(due[i]);
          const score = Number(due[i + 1]);
          const { kind, disableAt } = await checkOne(id);
          if (kind === 'alerted' && disableAt >= 0) {
            // An alert stands that has not run out by its hash's TIME. Its entry stays (or is
            // re-scored, when it is an earlier alert's): on a Cluster the index lives on another
            // node, whose clock may run ahead of the hash's, so "due" here is not yet due there.
            kept++;
            if (disableAt !== score) await run('index', () => redis.zadd(index, disableAt, id));
          } else if (kind === 'none' || kind === 'alerted')
            // The endpoint's hash has no alert to run out (gone, recovered, or one that never will).
            await run('index', () => redis.restwellHealthUnindex(index, id, score));
        }
        // A full batch of entries left in place would be read again: the next sweep looks.
        if (due.length < 2 * DUE_BATCH || kept === due.length / 2) return;
      }
    },
    async forget(endpointId) {
      await run('forget', () => redis.del(keyOf(endpointId)));
      await run('forget', () => redis.zrem(index, endpointId));
    },
    async state(endpointId) {
      const reply = await run('state', () =>
        redis.restwellHealthState(keyOf(endpointId), ...thresholds),
      );
      const attempts = Number(reply[0]);
      const failures = Number(reply[1]);
      const state: EndpointHealthState = {
        attempts,
        failures,
        failureRatio: attempts === 0 ? undefined : failures / attempts,
      };
      if (reply[2] === '' || reply[2] === undefined) return state;
      const disableAt = Number(reply[3]);
      const alertAttempts = Number(reply[4]);
      const alertFailures = Number(reply[5]);
      return {
        ...state,
        alert: Object.freeze({
          endpointId,
          failureRatio: alertFailures / alertAttempts,
          attempts: alertAttempts,
          failures: alertFailures,
          since: Number(reply[2]),
          ...(disableAt < 0 ? {} : { disableAt }),
        }),
      };
    },
    onTransition(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
