/**
 * Per-endpoint isolation in the worker: at most `concurrency` attempts in
 * flight to one endpoint, and at most `rateLimitPerSecond` started per second
 * (a token bucket of that capacity, refilled continuously). A job that finds
 * its endpoint saturated is not run: it goes back to the queue, delayed, so
 * that it holds none of the worker's slots, which other endpoints' jobs take.
 *
 * These counters live in the worker's process: with several workers each
 * applies its own limits (a Redis-backed limiter shares them; next step).
 */

/** Limits of one endpoint. */
export interface EndpointLimits {
  readonly concurrency: number;
  readonly rateLimitPerSecond?: number;
}

/** The answer of {@link EndpointLimiter.tryAcquire}. */
export type Acquired = { readonly ok: true } | { readonly ok: false; readonly retryInMs: number };

/** Counts attempts in flight and started per endpoint. */
export interface EndpointLimiter {
  /** Takes a slot (and a token) for an attempt to `endpointId` at `now`, or says when to retry. */
  tryAcquire(endpointId: string, limits: EndpointLimits, now: number): Acquired;
  /** Gives the slot back when the attempt has finished. */
  release(endpointId: string): void;
  /** Attempts in flight to `endpointId`. */
  inFlight(endpointId: string): number;
}

interface State {
  inFlight: number;
  tokens: number;
  refilledAt: number;
}

/**
 * The in-process {@link EndpointLimiter}. `busyRetryMs` is the delay given
 * to a job that finds all of its endpoint's slots taken: short, as a slot
 * frees when an attempt ends (5 s at most).
 */
export function memoryEndpointLimiter(options: { busyRetryMs?: number } = {}): EndpointLimiter {
  const busyRetryMs = options.busyRetryMs ?? 100;
  const states = new Map<string, State>();
  return {
    tryAcquire(endpointId, limits, now) {
      let state = states.get(endpointId);
      if (state === undefined) {
        state = { inFlight: 0, tokens: limits.rateLimitPerSecond ?? 0, refilledAt: now };
        states.set(endpointId, state);
      }
      if (state.inFlight >= limits.concurrency) return { ok: false, retryInMs: busyRetryMs };
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
      return { ok: true };
    },
    release(endpointId) {
      const state = states.get(endpointId);
      if (state !== undefined && state.inFlight > 0) state.inFlight--;
    },
    inFlight: (endpointId) => states.get(endpointId)?.inFlight ?? 0,
  };
}
