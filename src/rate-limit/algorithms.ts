/**
 * The rate-limiting algorithms as pure functions of (stored state, now,
 * limits). The memory backend runs these; the Redis backend runs a Lua
 * transcription of the same arithmetic (redis-script.ts), and one behaviour
 * suite holds both to the same expectations.
 *
 * State is a short string of numbers joined by `:` so that both backends store
 * the same thing. An absent state means "untouched": a full bucket, an empty
 * window. Every state expires exactly when it would become equivalent to
 * absent, so no key outlives its meaning and none is kept forever.
 */

/** The algorithms a policy can use. */
export type Algorithm = 'token-bucket' | 'sliding-window' | 'fixed-window' | 'leaky-bucket';

export const ALGORITHMS: readonly Algorithm[] = [
  'token-bucket',
  'sliding-window',
  'fixed-window',
  'leaky-bucket',
];

/** What one check needs to know, all in milliseconds and request units. */
export interface LimitParams {
  algorithm: Algorithm;
  /** Requests (cost units) allowed per window. */
  limit: number;
  windowMs: number;
  /**
   * token-bucket: bucket capacity (largest burst). leaky-bucket: how many
   * requests may wait their turn. Ignored by the window algorithms.
   */
  burst: number;
  /** Units this request takes. */
  cost: number;
}

/** The verdict of one check. All durations are whole milliseconds, rounded up. */
export interface LimitOutcome {
  allowed: boolean;
  /** Units still available after this request (before it, when refused). Never negative. */
  remaining: number;
  /** Until the policy is back to its full quota. */
  resetMs: number;
  /** Until a request of this cost would be admitted; 0 when admitted. */
  retryAfterMs: number;
  /** leaky-bucket only: how long an admitted request waits for its turn. */
  delayMs: number;
}

export interface Step {
  outcome: LimitOutcome;
  /** The state to store when the request is admitted, or `null` for "nothing to write". */
  next: string | null;
  /** How long `next` stays meaningful; the key's TTL. */
  ttlMs: number;
}

// Guards floor() against 2.9999999 from floating-point division.
const EPSILON = 1e-9;

/** Whole milliseconds, rounded up; never negative (nor -0). */
function ceilMs(x: number): number {
  return x <= EPSILON ? 0 : Math.ceil(x - EPSILON);
}

/**
 * Whole milliseconds, rounded up with no tolerance: for a `Retry-After` and
 * a TTL computed from the same value as the check (`allowAt > now`), so that
 * `now + hint ≥ allowAt` holds exactly and a retry at the hint is admitted.
 * (`allowAt - now` is exact when both are near the epoch's 1.8e12: Sterbenz.)
 */
function ceilExact(x: number): number {
  return x <= 0 ? 0 : Math.ceil(x);
}

/**
 * States keep full double precision (the shortest string that parses back to
 * the same number; Lua writes `%.17g`), so that sub-microsecond intervals of
 * very high rates still advance the state.
 */
function format(x: number): string {
  return String(x);
}

function refused(remaining: number, resetMs: number, retryAfterMs: number): Step {
  return {
    outcome: { allowed: false, remaining, resetMs, retryAfterMs, delayMs: 0 },
    next: null,
    ttlMs: 0,
  };
}

function admitted(
  remaining: number,
  resetMs: number,
  next: string | null,
  ttlMs: number,
  delayMs = 0,
): Step {
  return { outcome: { allowed: true, remaining, resetMs, retryAfterMs: 0, delayMs }, next, ttlMs };
}

function parse(state: string | null): number[] {
  if (state === null) return [];
  // The buckets store one number: no split, no intermediate array of strings.
  if (!state.includes(':')) return [Number(state)];
  return state.split(':').map(Number);
}

/**
 * The most units one request can ever take from a policy: the bucket's
 * capacity, or the window's limit. A request costing more is refused outright,
 * with the window as its `Retry-After` (it will never fit; the client must
 * split it).
 */
export function capacity(p: Pick<LimitParams, 'algorithm' | 'limit' | 'burst'>): number {
  return p.algorithm === 'token-bucket' ? p.burst : p.limit;
}

/** One check of one policy. Pure: the caller stores `next` only when every policy of the request admits it. */
export function step(params: LimitParams, state: string | null, now: number): Step {
  if (params.cost > capacity(params)) return refused(0, 0, ceilMs(params.windowMs));
  switch (params.algorithm) {
    case 'token-bucket':
      return tokenBucket(params, parse(state), now);
    case 'sliding-window':
      return slidingWindow(params, parse(state), now);
    case 'fixed-window':
      return fixedWindow(params, parse(state), now);
    case 'leaky-bucket':
      return leakyBucket(params, parse(state), now);
  }
}

/**
 * How far back a clock may step (NTP, a VM resumed, a Redis failover to a
 * replica) and still find its windows as it left them.
 */
const CLOCK_STEP_MS = 60_000;

/**
 * The current window's index. A stored index ahead of the clock (the clock
 * stepped back) stays current, so that a step back never erases what was
 * counted; but only by one window or a clock step. Further ahead it is no
 * index of this window at all: one counted with another `windowMs` (a
 * per-plan window that changed; 60 s to 61 s moves the index by a year) or a
 * bucket's state, a time in epoch ms, left under the policy's name before its
 * algorithm changed. Believed, such an index held the window open for up to
 * millions of years (refusing the client for as long, or with a TTL no store
 * accepts, an outage for that client); it is read as no state instead.
 */
function windowIndex(now: number, windowMs: number, stored: number | undefined): number {
  const index = Math.floor(now / windowMs);
  return stored !== undefined &&
    stored > index &&
    (stored - index) * windowMs <= Math.max(windowMs, CLOCK_STEP_MS)
    ? stored
    : index;
}
/**
 * Token bucket as GCRA (the generic cell rate algorithm): a bucket of `burst`
 * tokens refilled at `limit / windowMs`, stored as one number, the
 * theoretical arrival time (TAT) at which the bucket would be full again.
 * Admit when `max(TAT, now) + cost·T − burst·T ≤ now`.
 */
function tokenBucket(p: LimitParams, [stored]: number[], now: number): Step {
  const interval = p.windowMs / p.limit; // ms per token
  const tolerance = interval * p.burst;
  const tat = Math.max(stored ?? now, now);
  const nextTat = tat + p.cost * interval;
  // `(cost - burst) · interval` is never positive (cost ≤ burst), so that a
  // TAT reset to `now` gives `allowAt ≤ now` exactly; `nextTat - tolerance`
  // can round above it.
  const allowAt = tat + (p.cost - p.burst) * interval;
  // The check and the hint use the same `allowAt`, without tolerance: a retry
  // at `now + retryAfterMs` computes the same `allowAt` (the stored TAT is
  // unchanged by a refusal) and finds it not after its `now`.
  if (allowAt > now) {
    return refused(
      Math.max(0, Math.floor((tolerance - (tat - now)) / interval + EPSILON)),
      ceilMs(tat - now),
      ceilExact(allowAt - now),
    );
  }
  return admitted(
    Math.max(0, Math.floor((tolerance - (nextTat - now)) / interval + EPSILON)),
    ceilMs(nextTat - now),
    nextTat > now ? format(nextTat) : null,
    // Never before the TAT: an early expiry would hand out a full bucket.
    ceilExact(nextTat - now),
  );
}

/**
 * Sliding window counter: the current fixed window's count plus the previous
 * window's, weighted by how much of it still overlaps the sliding window.
 * Unlike a fixed window, a client cannot spend a full quota at the end of one
 * window and another at the start of the next. State: window index, current
 * count, previous count.
 */
function slidingWindow(p: LimitParams, [w, c, prevC]: number[], now: number): Step {
  const index = windowIndex(now, p.windowMs, w);
  let current = 0;
  let previous = 0;
  if (w === index) {
    current = c ?? 0;
    previous = prevC ?? 0;
  } else if (w === index - 1) {
    previous = c ?? 0;
  }
  const start = index * p.windowMs;
  const elapsed = Math.min(1, Math.max(0, (now - start) / p.windowMs));
  const estimate = previous * (1 - elapsed) + current;
  const resetAt = current > 0 ? start + 2 * p.windowMs : start + p.windowMs;
  if (estimate + p.cost > p.limit + EPSILON) {
    return refused(
      Math.max(0, Math.floor(p.limit - estimate + EPSILON)),
      ceilMs(resetAt - now),
      ceilMs(slidingAdmitAt(p, start, current, previous) - now),
    );
  }
  const after = current + p.cost;
  return admitted(
    Math.max(0, Math.floor(p.limit - estimate - p.cost + EPSILON)),
    ceilMs((after > 0 ? start + 2 * p.windowMs : resetAt) - now),
    p.cost > 0 ? `${format(index)}:${format(after)}:${format(previous)}` : null,
    ceilMs(start + 2 * p.windowMs - now),
  );
}

/** When the weighted estimate first leaves room for `cost`. */
function slidingAdmitAt(p: LimitParams, start: number, current: number, previous: number): number {
  const room = p.limit - p.cost - current;
  // Within this window, as the previous window's weight decays.
  if (room >= 0 && previous > 0) return start + (1 - room / previous) * p.windowMs;
  // In the next window, where this window's count becomes the decaying one.
  const roomNext = p.limit - p.cost;
  if (roomNext >= 0 && current > 0)
    return start + p.windowMs + (1 - roomNext / current) * p.windowMs;
  // A cost above the limit never fits: point at the end of the next window.
  return start + 2 * p.windowMs;
}

/** Fixed window: a counter per window of `windowMs`, aligned to the epoch. State: window index, count. */
function fixedWindow(p: LimitParams, [w, c]: number[], now: number): Step {
  const index = windowIndex(now, p.windowMs, w);
  const count = w === index ? (c ?? 0) : 0;
  const resetMs = ceilMs((index + 1) * p.windowMs - now);
  if (count + p.cost > p.limit) return refused(Math.max(0, p.limit - count), resetMs, resetMs);
  return admitted(
    p.limit - count - p.cost,
    resetMs,
    p.cost > 0 ? `${format(index)}:${format(count + p.cost)}` : null,
    resetMs,
  );
}

/**
 * Leaky bucket as a queue: requests leave at a constant rate, one every
 * `windowMs / limit`. A request that arrives while others wait is admitted
 * with a delay (its turn); up to `burst` requests may wait, and more are
 * refused. State: the time at which the bucket will be empty.
 */
function leakyBucket(p: LimitParams, [stored]: number[], now: number): Step {
  const interval = p.windowMs / p.limit;
  const maxDelay = interval * p.burst;
  const start = Math.max(stored ?? now, now);
  const delay = start - now;
  // Waiting room left: how many more requests could be admitted now.
  const roomAfter = (empty: number) =>
    Math.max(0, Math.floor((maxDelay - (empty - now)) / interval + EPSILON) + 1);
  // Nothing to send: no turn to wait for.
  if (p.cost === 0) return admitted(roomAfter(start), ceilMs(delay), null, 0);
  const emptyAt = start + p.cost * interval;
  // As in the token bucket: one `allowAt`, compared and hinted without tolerance.
  const allowAt = start - maxDelay;
  if (allowAt > now) return refused(0, ceilMs(start - now), ceilExact(allowAt - now));
  return admitted(
    roomAfter(emptyAt),
    ceilMs(emptyAt - now),
    emptyAt > now ? format(emptyAt) : null,
    ceilExact(emptyAt - now),
    ceilMs(delay),
  );
}
