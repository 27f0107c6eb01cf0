/**
 * Per-endpoint isolation in the worker: at most `concurrency` attempts in
 * flight to one endpoint, and at most `rateLimitPerSecond` started per second
 * (a token bucket of that capacity, refilled continuously). A job that finds
 * its endpoint saturated is not run: it goes back to the queue, delayed, so
 * that it holds none of the worker's slots, which other endpoints' jobs take.
 *
 * {@link memoryEndpointLimiter} keeps its counters in the worker's process:
 * with several workers each applies its own limits. `redisEndpointLimiter()`
 * (`restwell/webhooks/bullmq`) keeps them in Redis, shared by every worker.
 */

/** Limits of one endpoint. */
export interface EndpointLimits {
  readonly concurrency: number;
  readonly rateLimitPerSecond?: number;
}

/**
 * The answer of {@link EndpointLimiter.tryAcquire}: a slot, with the `lease`
 * that names it when the limiter hands out leases (hand it back to
 * `release`), or when to look again.
 */
export type Acquired =
  | { readonly ok: true; readonly lease?: string }
  | { readonly ok: false; readonly retryInMs: number };

/**
 * Counts attempts in flight and started per endpoint. An implementation may
 * answer synchronously (in process) or with promises (a shared store); the
 * engine awaits both. A `tryAcquire` that throws or rejects is a fault of the
 * limiter, not of the receiver: the engine makes no attempt, and the queue
 * runs the job again after its `faultDelayMs`, logged.
 */
export interface EndpointLimiter {
  /** Takes a slot (and a token) for an attempt to `endpointId` at `now`, or says when to retry. */
  tryAcquire(endpointId: string, limits: EndpointLimits, now: number): Acquired | Promise<Acquired>;
  /**
   * Gives the slot back when the attempt has finished (at `now`, to learn how
   * long attempts take); `lease` is the one `tryAcquire` returned, if any.
   * Releasing a slot twice frees it once.
   */
  release(endpointId: string, now?: number, lease?: string): void | Promise<void>;
  /** Attempts in flight to `endpointId`. */
  inFlight(endpointId: string): number | Promise<number>;
}

/** The in-process {@link EndpointLimiter}, whose answers are synchronous. */
export interface MemoryEndpointLimiter extends EndpointLimiter {
  tryAcquire(endpointId: string, limits: EndpointLimits, now: number): Acquired;
  release(endpointId: string, now?: number): void;
  inFlight(endpointId: string): number;
}

interface State {
  inFlight: number;
  tokens: number;
  refilledAt: number;
  /** When each attempt in flight started, oldest first. */
  started: number[];
  /** A moving average of how long an attempt to the endpoint takes, in ms (0 until one ended). */
  meanMs: number;
  /** The time the last job turned away was told to come back. */
  nextAt: number;
}

/**
 * The in-process {@link EndpointLimiter}.
 *
 * A job that finds all of its endpoint's slots taken comes back when a slot
 * is likely to be free, not after a fixed delay: the turned-away jobs of one
 * endpoint are spaced by its attempt duration divided by its concurrency, so a
 * backlog for an endpoint that hangs (each attempt lasting up to the 5 s
 * timeout) is looked at about `concurrency` times per attempt duration in all,
 * instead of every job every `busyRetryMs`. On a shared queue (BullMQ), each
 * re-delay is a round trip through Redis that healthy endpoints' jobs queue
 * behind; the flat delay made one hanging endpoint slow the others (a p99 eight
 * to seventeen times higher, bench/README.md). `busyRetryMs` is the shortest
 * delay given.
 */
export function memoryEndpointLimiter(
  options: { busyRetryMs?: number } = {},
): MemoryEndpointLimiter {
  const busyRetryMs = options.busyRetryMs ?? 100;
  const states = new Map<string, State>();
  return {
    tryAcquire(endpointId, limits, now) {
      let state = states.get(endpointId);
      if (state === undefined) {
        state = {
          inFlight: 0,
          tokens: limits.rateLimitPerSecond ?? 0,
          refilledAt: now,
          started: [],
          meanMs: 0,
          nextAt: 0,
        };
        states.set(endpointId, state);
      }
      if (state.inFlight >= limits.concurrency) {
        // How long an attempt takes: the average so far, or the age of the oldest one in flight
        // when that is longer (an endpoint that started hanging has no finished attempt to go by).
        const oldest = state.started.length > 0 ? Math.max(0, now - state.started[0]!) : 0;
        const durationMs = Math.max(state.meanMs, oldest, 1);
        state.nextAt = Math.max(state.nextAt, now) + durationMs / limits.concurrency;
        return { ok: false, retryInMs: Math.max(busyRetryMs, Math.ceil(state.nextAt - now)) };
      }
      const rate = limits.rateLimitPerSecond;
      if (rate !== undefined) {
        // A clock set back (NTP, a VM resumed) refills nothing rather than draining the
        // bucket: a negative elapsed time would stall the endpoint for as long as the jump.
        const elapsed = Math.max(0, now - state.refilledAt);
        state.tokens = Math.min(rate, state.tokens + (elapsed * rate) / 1000);
        state.refilledAt = now;
        if (state.tokens < 1) {
          return { ok: false, retryInMs: Math.ceil(((1 - state.tokens) * 1000) / rate) };
        }
        state.tokens -= 1;
      }
      state.inFlight++;
      state.started.push(now);
      return { ok: true };
    },
    release(endpointId, now) {
      const state = states.get(endpointId);
      if (state === undefined || state.inFlight === 0) return;
      state.inFlight--;
      const started = state.started.shift();
      if (started !== undefined && now !== undefined) {
        const took = Math.max(0, now - started);
        state.meanMs = state.meanMs === 0 ? took : 0.8 * state.meanMs + 0.2 * took;
      }
      // Once a slot frees, jobs already told to wait keep their times; new ones start afresh.
      if (state.inFlight === 0) state.nextAt = 0;
    },
    inFlight: (endpointId) => states.get(endpointId)?.inFlight ?? 0,
  };
}
