/**
 * Where counters live. A backend checks every policy of one request in one
 * atomic step and consumes from all of them only when all admit it.
 *
 * restwell's MemoryStore and RedisStore are turned into backends by
 * {@link rateLimitBackend}; anything else that implements
 * {@link RateLimitBackend} can be passed instead.
 */
import { invalidOption } from '../core/errors.js';
import type { AtomicUpdates, ScriptRunner, Store } from '../stores/types.js';
import { type LimitOutcome, type LimitParams, step } from './algorithms.js';
import { ALGORITHM_CODES, RATE_LIMIT_REFUND_SCRIPT, RATE_LIMIT_SCRIPT } from './redis-script.js';

/** One policy's check for one request. */
export interface LimitCheck extends LimitParams {
  /** The counter's key, unique per policy and client. */
  key: string;
}

/** What a backend answers for one request's checks: the time it decided at, and each check's outcome. */
export interface ConsumeResult {
  /** The backend's clock when it decided, in epoch milliseconds. */
  now: number;
  /** One outcome per check, in order. */
  outcomes: LimitOutcome[];
}

/**
 * Where counters live and how a request's checks are decided: all-or-nothing, atomically. The
 * built-in backends run on MemoryStore and RedisStore; implement this for another store.
 */
export interface RateLimitBackend {
  /** For logs: `memory`, `redis`, ... */
  readonly kind: string;
  /**
   * True when `consume` bounds its own wait (or cannot wait at all, in
   * process): the middleware then adds no timer of its own.
   */
  readonly bounded?: boolean;
  /**
   * Evaluates every check at once. When all admit the request, each consumes
   * its cost; when any refuses, none does. `now` overrides the backend's clock
   * (tests); otherwise the backend uses its own (Redis: the server's `TIME`).
   */
  consume(checks: readonly LimitCheck[], now?: number): Promise<ConsumeResult>;
}

/**
 * The shortest TTL written. A state outlives its meaning harmlessly (it then
 * reads as "untouched"), but one that expires early forgets what was counted:
 * the TTL runs on the store's clock, the arithmetic on the request's (an
 * injected clock, a scheduling pause between two calls), and a sub-millisecond
 * TTL of a fast bucket would expire between two requests of the same instant.
 */
const MIN_TTL_MS = 1000;

/** Counters in a MemoryStore, updated in one synchronous step. */
export class MemoryRateLimitBackend implements RateLimitBackend {
  readonly kind = 'memory';
  readonly bounded = true;
  constructor(private readonly store: AtomicUpdates) {}

  async consume(checks: readonly LimitCheck[], now?: number): Promise<ConsumeResult> {
    return this.consumeNow(checks, now);
  }

  /** `consume` without the promise: the middleware calls it directly, saving two microtask turns. */
  consumeNow(checks: readonly LimitCheck[], now?: number): ConsumeResult {
    let result: ConsumeResult = { now: 0, outcomes: [] };
    this.store.updateAtomically(
      checks.map((c) => c.key),
      (values, storeNow) => {
        const at = now ?? storeNow;
        const steps = checks.map((c, i) => step(c, values[i] ?? null, at));
        result = { now: at, outcomes: steps.map((s) => s.outcome) };
        if (!steps.every((s) => s.outcome.allowed)) return [];
        return steps.map((s) =>
          s.next === null ? null : { value: s.next, ttlMs: Math.max(MIN_TTL_MS, s.ttlMs) },
        );
      },
    );
    return result;
  }
}

/**
 * Counters in Redis. By default one Lua script per request, whatever the
 * number of policies (their keys share a hash slot). With `perCounter`, each
 * counter is its own hash tag, on its own slot: one script per counter, run in
 * parallel, and when any refuses, the others hand back what they took (see
 * RATE_LIMIT_REFUND_SCRIPT).
 */
export class RedisRateLimitBackend implements RateLimitBackend {
  readonly kind = 'redis';
  readonly bounded = true;
  private readonly options: { timeoutMs?: number };
  /** `timeoutMs` bounds each script call (one timer, the store's own). */
  constructor(
    private readonly store: ScriptRunner,
    timeoutMs?: number,
    private readonly perCounter = false,
  ) {
    this.options = timeoutMs === undefined ? {} : { timeoutMs };
  }

  async consume(checks: readonly LimitCheck[], now?: number): Promise<ConsumeResult> {
    if (!this.perCounter || checks.length < 2) return this.run(checks, now);
    const settled = await Promise.allSettled(checks.map((c) => this.run([c], now)));
    const outcomes: LimitOutcome[] = [];
    let decidedAt = 0;
    let failure: unknown;
    let all = true;
    for (const r of settled) {
      if (r.status === 'rejected') {
        failure ??= r.reason;
        continue;
      }
      decidedAt = Math.max(decidedAt, r.value.now);
      const outcome = r.value.outcomes[0] as LimitOutcome;
      if (!outcome.allowed) all = false;
      outcomes.push(outcome);
    }
    if (failure === undefined && all) return { now: decidedAt, outcomes };
    // Not admitted (refused, or a slot failed): hand back what the admitted counters took.
    await Promise.all(
      settled.map((r, i) => {
        if (r.status !== 'fulfilled' || !(r.value.outcomes[0] as LimitOutcome).allowed)
          return undefined;
        const c = checks[i] as LimitCheck;
        return this.store
          .runScript(
            RATE_LIMIT_REFUND_SCRIPT,
            [c.key],
            [
              r.value.now,
              now === undefined ? '' : now,
              ALGORITHM_CODES[c.algorithm],
              c.limit,
              c.windowMs,
              c.burst,
              c.cost,
            ],
            this.options,
          )
          .catch(() => undefined);
      }),
    );
    if (failure !== undefined) throw failure;
    return { now: decidedAt, outcomes };
  }

  private async run(checks: readonly LimitCheck[], now?: number): Promise<ConsumeResult> {
    const args: Array<string | number> = [now === undefined ? '' : now];
    for (const c of checks) {
      args.push(ALGORITHM_CODES[c.algorithm], c.limit, c.windowMs, c.burst, c.cost);
    }
    const reply = (await this.store.runScript(
      RATE_LIMIT_SCRIPT,
      checks.map((c) => c.key),
      args,
      this.options,
    )) as number[];
    const outcomes: LimitOutcome[] = [];
    for (let i = 0; i < checks.length; i++) {
      const b = 1 + i * 5;
      outcomes.push({
        allowed: reply[b] === 1,
        remaining: Number(reply[b + 1]),
        resetMs: Number(reply[b + 2]),
        retryAfterMs: Number(reply[b + 3]),
        delayMs: Number(reply[b + 4]),
      });
    }
    return { now: Number(reply[0]), outcomes };
  }
}

function isBackend(value: unknown): value is RateLimitBackend {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RateLimitBackend).consume === 'function'
  );
}

/**
 * The backend for a store: a MemoryStore or a RedisStore (any store with the
 * `updateAtomically` or `runScript` capability), or a backend as it is.
 */
export function rateLimitBackend(
  store: Store | RateLimitBackend,
  options: { timeoutMs?: number; perCounter?: boolean } = {},
): RateLimitBackend {
  if (isBackend(store)) return store;
  if (typeof store === 'object' && store !== null) {
    if (typeof (store as Partial<AtomicUpdates>).updateAtomically === 'function') {
      return new MemoryRateLimitBackend(store as unknown as AtomicUpdates);
    }
    if (typeof (store as Partial<ScriptRunner>).runScript === 'function') {
      return new RedisRateLimitBackend(
        store as unknown as ScriptRunner,
        options.timeoutMs,
        options.perCounter,
      );
    }
  }
  return invalidOption(
    'rateLimit',
    'store',
    'a MemoryStore, a RedisStore or a RateLimitBackend (the PostgreSQL store keeps no rate-limit counters: use Redis, or plug a rate-limiter-flexible limiter with `flexiblePolicy`)',
    store,
  );
}
