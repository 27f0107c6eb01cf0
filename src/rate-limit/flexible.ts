/**
 * Any rate-limiter-flexible limiter as a policy: its many backends (MongoDB,
 * Memcached, DynamoDB, PostgreSQL, MySQL, cluster IPC, ...) and its
 * algorithms, behind restwell's headers, 429 problems and outage handling.
 *
 * A flexible limiter keeps its own counters, so it cannot join the single
 * atomic step of the native policies. All-or-nothing still holds: flexible
 * policies run first, and what they took is handed back (`reward`) when a
 * later policy refuses the request.
 *
 * @example
 * ```ts
 * import { RateLimiterMemory } from 'rate-limiter-flexible';
 * rateLimit({ store, policies: [flexiblePolicy({ name: 'per-ip', limiter: new RateLimiterMemory({ points: 10, duration: 1 }) })] });
 * ```
 */
import type { Context } from '../core/context.js';
import { describeValue, invalidOption } from '../core/errors.js';
import { bounded, MAX_TTL_MS } from '../stores/types.js';
import type { EvaluatedPolicy as Evaluated } from './headers.js';
import { byIp, type KeyFunction } from './keys.js';

/** The part of a rate-limiter-flexible limiter that restwell uses (`RateLimiterRedis`, `RateLimiterMemory`, ...). */
export interface RateLimiterLike {
  /** Points per duration. */
  readonly points: number;
  /** Duration in seconds. */
  readonly duration: number;
  consume(key: string, points?: number): Promise<{ remainingPoints: number; msBeforeNext: number }>;
  reward(key: string, points?: number): Promise<unknown>;
}

/** A rate-limiter-flexible limiter used as a policy (see `flexiblePolicy()`). */
export interface FlexiblePolicy {
  /** Names the policy in headers and logs. */
  name: string;
  limiter: RateLimiterLike;
  /** @default byIp() */
  key?: KeyFunction;
  /** As a native policy's `route`: matched as the router matches it. @default every route */
  route?: string | readonly string[];
  /** As a native policy's `methods`; `GET` includes `HEAD`. @default every method */
  methods?: readonly string[];
  /** Applies the policy only when this returns true, in addition to `route` and `methods`. @default every request */
  when?: (ctx: Context) => boolean;
}

const FLEXIBLE = Symbol.for('restwell.flexiblePolicy');

/** A policy's key when it names none, built once. */
const defaultKey = byIp();

/** Any thrown value as an Error, for `bounded()`. */
export const asError = (err: unknown): Error =>
  err instanceof Error ? err : new Error(String(err));

/** Declares a policy enforced by a rate-limiter-flexible limiter. */
export function flexiblePolicy(policy: FlexiblePolicy): FlexiblePolicy {
  const { limiter } = policy ?? ({} as FlexiblePolicy);
  if (
    limiter === null ||
    typeof limiter !== 'object' ||
    typeof limiter.consume !== 'function' ||
    typeof limiter.reward !== 'function'
  ) {
    invalidOption(
      'rateLimit',
      'flexiblePolicy().limiter',
      'a rate-limiter-flexible limiter',
      limiter,
    );
  }
  const marked = Object.assign({ ...policy }, { [FLEXIBLE]: true });
  flexibleLimit(marked, 'flexiblePolicy()');
  return marked;
}

const MAX_POINTS = 1_000_000_000;
const MAX_DURATION_S = MAX_TTL_MS / 2 / 1000;

/**
 * A limiter's points and window, checked: the header's `q` and `w` must be
 * RFC 9651 Integers (15 digits at most), so fractional, negative or huge
 * points are a configuration error. Read on each request too, since
 * rate-limiter-flexible lets `points` be reassigned.
 */
export function flexibleLimit(
  policy: FlexiblePolicy,
  where: string,
): { points: number; windowMs: number } {
  const { points, duration } = policy.limiter;
  if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) {
    throw new TypeError(
      `restwell/rateLimit: ${where} limiter.points must be an integer from 1 to ${MAX_POINTS}, got ${describeValue(points)}.`,
    );
  }
  // rate-limiter-flexible's duration 0 means "never reset"; the window reported is then 1 s.
  if (typeof duration !== 'number' || !(duration >= 0 && duration <= MAX_DURATION_S)) {
    throw new TypeError(
      `restwell/rateLimit: ${where} limiter.duration must be a number of seconds from 0 to ${MAX_DURATION_S}, got ${describeValue(duration)}.`,
    );
  }
  return { points, windowMs: duration * 1000 };
}

/** A limiter's answer as header-safe integers: remaining in [0, points], a wait in [0, ten years]. */
function sane(res: { remainingPoints?: unknown; msBeforeNext?: unknown }, points: number) {
  const r = Number(res.remainingPoints);
  const ms = Number(res.msBeforeNext);
  return {
    remaining: Number.isFinite(r) ? Math.min(points, Math.max(0, Math.floor(r))) : 0,
    waitMs: Number.isFinite(ms) ? Math.min(MAX_TTL_MS, Math.max(0, Math.ceil(ms))) : undefined,
  };
}

export function isFlexiblePolicy(p: unknown): p is FlexiblePolicy {
  return typeof p === 'object' && p !== null && (p as { [FLEXIBLE]?: true })[FLEXIBLE] === true;
}

export interface FlexibleRun {
  evaluated: Evaluated[];
  /** Set when a limiter's store failed; that policy is then left out. */
  storeError: unknown;
  /** Hands back what was consumed. */
  refund(): Promise<void>;
}

/** Consumes `cost` from each policy in turn; stops at the first refusal and refunds the others. */
export async function runFlexible(
  ctx: Context,
  policies: readonly FlexiblePolicy[],
  cost: number,
  timeoutMs: number,
): Promise<FlexibleRun> {
  const evaluated: Evaluated[] = [];
  const taken: Array<{ limiter: RateLimiterLike; key: string }> = [];
  let storeError: unknown;
  const refund = async () => {
    const handBack = taken.splice(0);
    await Promise.all(
      handBack.map((t) =>
        bounded('reward', timeoutMs, () => t.limiter.reward(t.key, cost), asError).catch((err) =>
          ctx.log.warn("rate-limiter-flexible could not hand back a refused request's points", {
            traceId: ctx.traceId,
            err,
          }),
        ),
      ),
    );
  };
  for (const p of policies) {
    const key = (p.key ?? defaultKey)(ctx);
    if (key === undefined || key === '') continue;
    const { points, windowMs } = flexibleLimit(p, p.name);
    const report = { name: p.name, limit: points, windowMs };
    try {
      const res = await bounded(
        'consume',
        timeoutMs,
        () => p.limiter.consume(key, cost),
        (err) =>
          // A refusal (a RateLimiterRes, not an Error) passes through untouched.
          err instanceof Error ? err : (err as never),
      );
      taken.push({ limiter: p.limiter, key });
      const { remaining, waitMs = 0 } = sane(res, points);
      evaluated.push({
        ...report,
        remaining,
        resetMs: waitMs,
        outcome: {
          allowed: true,
          remaining,
          resetMs: waitMs,
          retryAfterMs: 0,
          delayMs: 0,
        },
      });
    } catch (rejection) {
      // rate-limiter-flexible rejects with an Error when its store fails (and
      // restwell with StoreTimeoutError when it is too slow), and with a
      // RateLimiterRes when the key is over its limit.
      if (rejection instanceof Error) {
        storeError = rejection;
        continue;
      }
      const { waitMs: wait = 1000 } = sane(
        rejection as { remainingPoints?: unknown; msBeforeNext?: unknown },
        points,
      );
      evaluated.push({
        ...report,
        remaining: 0,
        resetMs: wait,
        outcome: { allowed: false, remaining: 0, resetMs: wait, retryAfterMs: wait, delayMs: 0 },
      });
      // The refused consume itself is not handed back: rate-limiter-flexible may
      // not have counted it (an in-memory block), and rewarding it would re-arm
      // a block or mint points the client never spent.
      await refund();
      break;
    }
  }
  return { evaluated, storeError, refund };
}
