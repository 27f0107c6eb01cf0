/**
 * A circuit breaker per endpoint: when an endpoint fails at least half of its
 * attempts over a minute (the seed's rule), stop sending to it for a while,
 * then let one probe through; its success closes the circuit, its failure
 * opens it again. Events wait while it is open: the breaker only says when an
 * attempt may go, it never drops anything.
 *
 * Outcomes are counted in time buckets (a tenth of the window each), so the
 * memory is a fixed ring of ten counters however many attempts are made, and
 * the window rolls forward one bucket at a time: an outcome counts for
 * between 90% and 100% of `windowMs`, depending on where in its bucket it
 * fell. State changes are computed
 * when the breaker is asked (an open circuit becomes half-open at the first
 * call after `openMs`), so no timer is left running.
 */
import { checkOptions, describeValue, invalidOption } from '../../core/errors.js';

const MODULE = 'webhooks';
/** Buckets of a window: a tenth of it each (the Redis breakers use as many). */
export const BREAKER_BUCKETS = 10;
const BUCKETS = BREAKER_BUCKETS;

/** The three states of a circuit. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** The rolling window the failure ratio is computed over, in milliseconds. @default 60_000 */
  windowMs?: number;
  /** The circuit opens when at least this share of the window's attempts failed (0 to 1, above 0). @default 0.5 */
  failureRatio?: number;
  /** The fewest attempts in the window before the ratio is trusted. @default 10 */
  minimumRequests?: number;
  /** How long the circuit stays open before a probe may go, in milliseconds. @default 30_000 */
  openMs?: number;
  /**
   * Probes let through at once while half-open; that many must succeed in a
   * row to close the circuit, and any failure opens it again. @default 1
   */
  halfOpenProbes?: number;
  /** The clock, in milliseconds since the epoch. @default Date.now */
  now?: () => number;
  /**
   * Called after each change of state, which is already in effect. It runs
   * inside the call that caused the change (`state`, `tryAcquire`, `record`,
   * ...), and what it throws propagates to that call's caller.
   */
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
}

/** What {@link CircuitBreaker.snapshot} returns: plain data. */
export interface CircuitBreakerSnapshot {
  state: BreakerState;
  /** Failures recorded in the current window. */
  failures: number;
  /** Successes recorded in the current window. */
  successes: number;
  /** When the circuit last opened (epoch ms), while it is open or half-open. */
  openedAt?: number;
}

interface Bucket {
  /** The bucket's number, `floor(time / bucketMs)`; -Infinity for an unused slot. */
  index: number;
  failures: number;
  successes: number;
}

function checkPositive(option: string, value: unknown, integer: boolean, fallback: number): number {
  if (value === undefined) return fallback;
  const expected = integer ? 'a positive integer' : 'a finite number > 0';
  if (typeof value !== 'number') invalidOption(MODULE, option, expected, value);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new RangeError(
      `restwell/${MODULE}: option "${option}" must be ${expected}, got ${describeValue(value)}.`,
    );
  }
  return value;
}

/** The numbers of a circuit, checked, with their defaults. */
export interface ResolvedCircuitOptions {
  readonly windowMs: number;
  readonly failureRatio: number;
  readonly minimumRequests: number;
  readonly openMs: number;
  readonly halfOpenProbes: number;
}

/** Checks a circuit's numbers and fills in the defaults (shared with the Redis breakers). */
export function resolveCircuitOptions(
  options: Pick<
    CircuitBreakerOptions,
    'windowMs' | 'failureRatio' | 'minimumRequests' | 'openMs' | 'halfOpenProbes'
  >,
): ResolvedCircuitOptions {
  const windowMs = checkPositive('windowMs', options.windowMs, false, 60_000);
  const ratio = options.failureRatio ?? 0.5;
  if (typeof ratio !== 'number')
    invalidOption(MODULE, 'failureRatio', 'a number above 0, at most 1', ratio);
  if (!(ratio > 0 && ratio <= 1)) {
    throw new RangeError(
      `restwell/${MODULE}: option "failureRatio" must be a number above 0, at most 1, got ${describeValue(ratio)}.`,
    );
  }
  return {
    windowMs,
    failureRatio: ratio,
    minimumRequests: checkPositive('minimumRequests', options.minimumRequests, true, 10),
    openMs: checkPositive('openMs', options.openMs, false, 30_000),
    halfOpenProbes: checkPositive('halfOpenProbes', options.halfOpenProbes, true, 1),
  };
}

/**
 * One endpoint's circuit. Before an attempt, `tryAcquire()`; after it,
 * `record(success)`. While open, `nextAttemptAt()` says when to reschedule
 * the events that wait.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ onStateChange: (s) => log.info({ endpoint, s }) });
 * if (breaker.tryAcquire()) {
 *   const result = await sendAttempt(request);
 *   breaker.record(result.ok);
 * } else {
 *   requeue(event, breaker.nextAttemptAt());
 * }
 * ```
 */
export class CircuitBreaker {
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly failureRatio: number;
  private readonly minimumRequests: number;
  private readonly openMs: number;
  private readonly halfOpenProbes: number;
  private readonly now: () => number;
  private readonly onStateChange:
    | ((state: BreakerState, previous: BreakerState) => void)
    | undefined;
  private readonly buckets: Bucket[] = Array.from({ length: BUCKETS }, () => ({
    index: Number.NEGATIVE_INFINITY,
    failures: 0,
    successes: 0,
  }));
  private current: BreakerState = 'closed';
  private openedAt = 0;
  /** Probes let through in the current half-open period and not yet recorded. */
  private probesInFlight = 0;
  /** Probe successes in a row in the current half-open period. */
  private probeSuccesses = 0;
  /** When the last probe was let through: a probe never recorded is given up after `openMs`. */
  private lastProbeAt = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    checkOptions(MODULE, options, [
      'windowMs',
      'failureRatio',
      'minimumRequests',
      'openMs',
      'halfOpenProbes',
      'now',
      'onStateChange',
    ]);
    const resolved = resolveCircuitOptions(options);
    this.windowMs = resolved.windowMs;
    this.bucketMs = this.windowMs / BUCKETS;
    this.failureRatio = resolved.failureRatio;
    this.minimumRequests = resolved.minimumRequests;
    this.openMs = resolved.openMs;
    this.halfOpenProbes = resolved.halfOpenProbes;
    const now = options.now ?? Date.now;
    if (typeof now !== 'function')
      invalidOption(MODULE, 'now', 'a function returning milliseconds since the epoch', now);
    this.now = now;
    const onStateChange = options.onStateChange;
    if (onStateChange !== undefined && typeof onStateChange !== 'function')
      invalidOption(MODULE, 'onStateChange', 'a function', onStateChange);
    this.onStateChange = onStateChange;
  }

  /** The state now: an open circuit reads half-open once `openMs` has passed. */
  get state(): BreakerState {
    this.refresh(this.now());
    return this.current;
  }

  /**
   * Whether an attempt may go now. Closed: always. Open: never. Half-open:
   * while fewer than `halfOpenProbes` probes are out; a probe whose outcome is
   * never recorded is given up after `openMs`, so a lost one does not keep the
   * circuit half-open for ever. A `true` must be followed by `record()`.
   */
  tryAcquire(): boolean {
    const now = this.now();
    this.refresh(now);
    if (this.current === 'closed') return true;
    if (this.current === 'open') return false;
    if (this.probesInFlight > 0 && now - this.lastProbeAt >= this.openMs) {
      this.probesInFlight = 0;
    }
    if (this.probesInFlight >= this.halfOpenProbes) return false;
    this.probesInFlight++;
    this.lastProbeAt = now;
    return true;
  }

  /**
   * Records an attempt's outcome. Closed: counted in the window, and the
   * circuit opens once the window holds at least `minimumRequests` attempts
   * of which at least `failureRatio` failed. Half-open: a failure opens it
   * again for `openMs`, and `halfOpenProbes` successes in a row close it with
   * an empty window (the failures that opened it are history). Open: counted
   * only (an attempt let through before the circuit opened).
   */
  record(success: boolean): void {
    const now = this.now();
    this.refresh(now);
    this.count(now, success);
    if (this.current === 'half-open') {
      if (this.probesInFlight > 0) this.probesInFlight--;
      if (!success) {
        this.open(now);
      } else if (++this.probeSuccesses >= this.halfOpenProbes) {
        this.clearWindow();
        this.transition('closed');
      }
      return;
    }
    if (this.current === 'closed' && !success) {
      const { failures, successes } = this.totals(now);
      const total = failures + successes;
      if (total >= this.minimumRequests && failures >= this.failureRatio * total) {
        this.open(now);
      }
    }
  }

  /**
   * Gives back a `tryAcquire()` whose attempt says nothing about the receiver:
   * it never went (the sender's own fault) or was aborted (a shutdown).
   * Nothing is counted, and a probe it took may go again; counting it as a
   * failure would open the circuit on the receiver's account.
   */
  release(): void {
    this.refresh(this.now());
    if (this.current === 'half-open' && this.probesInFlight > 0) this.probesInFlight--;
  }

  /**
   * When the next attempt may be tried, in epoch ms, to reschedule the
   * events that wait: 0 when closed; when open, the end of the open period;
   * when half-open, now if a probe may go, else when the probe out is given up.
   */
  nextAttemptAt(): number {
    const now = this.now();
    this.refresh(now);
    switch (this.current) {
      case 'closed':
        return 0;
      case 'open':
        return this.openedAt + this.openMs;
      case 'half-open':
        return this.probesInFlight < this.halfOpenProbes ? now : this.lastProbeAt + this.openMs;
    }
  }

  /** The state and the window's counts, as plain data (for stats, or a shared store). */
  snapshot(): CircuitBreakerSnapshot {
    const now = this.now();
    this.refresh(now);
    const { failures, successes } = this.totals(now);
    return {
      state: this.current,
      failures,
      successes,
      ...(this.current === 'closed' ? {} : { openedAt: this.openedAt }),
    };
  }

  private refresh(now: number): void {
    if (this.current === 'open' && now >= this.openedAt + this.openMs) {
      this.probesInFlight = 0;
      this.probeSuccesses = 0;
      this.transition('half-open');
    }
  }

  private open(now: number): void {
    this.openedAt = now;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    this.transition('open');
  }

  private transition(state: BreakerState): void {
    const previous = this.current;
    if (previous === state) return;
    this.current = state;
    this.onStateChange?.(state, previous);
  }

  private count(now: number, success: boolean): void {
    const index = Math.floor(now / this.bucketMs);
    const bucket = this.buckets[((index % BUCKETS) + BUCKETS) % BUCKETS]!;
    if (bucket.index !== index) {
      bucket.index = index;
      bucket.failures = 0;
      bucket.successes = 0;
    }
    if (success) bucket.successes++;
    else bucket.failures++;
  }

  /** The window's counts: the buckets of the last `windowMs`, the current one included. */
  private totals(now: number): { failures: number; successes: number } {
    const current = Math.floor(now / this.bucketMs);
    let failures = 0;
    let successes = 0;
    for (const bucket of this.buckets) {
      if (bucket.index > current - BUCKETS && bucket.index <= current) {
        failures += bucket.failures;
        successes += bucket.successes;
      }
    }
    return { failures, successes };
  }

  private clearWindow(): void {
    for (const bucket of this.buckets) {
      bucket.index = Number.NEGATIVE_INFINITY;
      bucket.failures = 0;
      bucket.successes = 0;
    }
  }
}

/**
 * The answer of {@link EndpointBreakers.tryAcquire}: the attempt may go
 * (with the `probe` that names it when it is a half-open probe the store
 * tracks: hand it back to `record` or `release`), or when to look again.
 */
export type BreakerPermit =
  | { readonly ok: true; readonly probe?: string }
  | { readonly ok: false; readonly state: 'open' | 'half-open'; readonly retryAt: number };

/** Told of each change of an endpoint's circuit, once, by the call that made it. */
export type BreakerStateListener = (
  endpointId: string,
  state: BreakerState,
  previous: BreakerState,
) => void;

/**
 * The circuit breakers of every endpoint, as the engine uses them. An
 * implementation may answer synchronously (in process) or with promises (a
 * shared store); the engine awaits both. A `tryAcquire` that throws or
 * rejects is a fault of the store, not of the receiver: the engine makes no
 * attempt, and the queue runs the job again after its `faultDelayMs`, logged.
 * A `record` or `release` that fails is logged; the attempt stands, and a
 * probe it held is given up after `openMs`.
 *
 * `now` is the engine's clock; a shared store may keep its own (Redis time).
 */
export interface EndpointBreakers {
  /** Whether an attempt to `endpointId` may go now; see {@link CircuitBreaker.tryAcquire}. */
  tryAcquire(endpointId: string, now: number): BreakerPermit | Promise<BreakerPermit>;
  /** An attempt's outcome; `probe` is the one `tryAcquire` returned, if any. */
  record(endpointId: string, success: boolean, now: number, probe?: string): void | Promise<void>;
  /** Gives back a permit whose attempt says nothing about the receiver (never sent, aborted). */
  release(endpointId: string, now: number, probe?: string): void | Promise<void>;
  /** The circuit's state now (`closed` for an endpoint never seen). */
  state(endpointId: string, now: number): BreakerState | Promise<BreakerState>;
  /** When the next attempt may go, epoch ms; see {@link CircuitBreaker.nextAttemptAt}. */
  nextAttemptAt(endpointId: string, now: number): number | Promise<number>;
  /**
   * Adds a listener of state changes; returns what removes it. A shared
   * store tells only the listeners of the process whose call made the change,
   * so that each change is told once over every worker.
   */
  onStateChange?(listener: BreakerStateListener): () => void;
}

/** The in-process {@link EndpointBreakers}, whose answers are synchronous. */
export interface MemoryEndpointBreakers extends EndpointBreakers {
  tryAcquire(endpointId: string, now?: number): BreakerPermit;
  record(endpointId: string, success: boolean, now?: number): void;
  release(endpointId: string, now?: number): void;
  state(endpointId: string, now?: number): BreakerState;
  nextAttemptAt(endpointId: string, now?: number): number;
  onStateChange(listener: BreakerStateListener): () => void;
  /** The endpoint's circuit, for its snapshot; `undefined` for an endpoint never seen. */
  get(endpointId: string): CircuitBreaker | undefined;
}

/** Options of {@link memoryEndpointBreakers}: every circuit's. */
export type MemoryEndpointBreakersOptions = Omit<CircuitBreakerOptions, 'onStateChange'>;

const MEMORY_OPTIONS = [
  'windowMs',
  'failureRatio',
  'minimumRequests',
  'openMs',
  'halfOpenProbes',
  'now',
] as const;

/**
 * The in-process {@link EndpointBreakers}: one {@link CircuitBreaker} per
 * endpoint, in this process's memory (the engine's default). With several
 * workers each judges from its own attempts; `redisEndpointBreakers()`
 * (`restwell/webhooks/bullmq`) shares one circuit per endpoint over all of
 * them. The `now` arguments are not used: each circuit reads the `now` option.
 */
export function memoryEndpointBreakers(
  options: MemoryEndpointBreakersOptions = {},
): MemoryEndpointBreakers {
  checkOptions(MODULE, options, MEMORY_OPTIONS);
  // Checked now, loudly, rather than at the first attempt to the first endpoint.
  new CircuitBreaker(options);
  const breakers = new Map<string, CircuitBreaker>();
  const listeners = new Set<BreakerStateListener>();
  const breakerOf = (endpointId: string): CircuitBreaker => {
    let breaker = breakers.get(endpointId);
    if (breaker === undefined) {
      breaker = new CircuitBreaker({
        ...options,
        onStateChange: (state, previous) => {
          for (const listener of [...listeners]) listener(endpointId, state, previous);
        },
      });
      breakers.set(endpointId, breaker);
    }
    return breaker;
  };
  return {
    tryAcquire(endpointId) {
      const breaker = breakerOf(endpointId);
      if (breaker.tryAcquire()) return { ok: true };
      const state = breaker.state === 'half-open' ? 'half-open' : 'open';
      return { ok: false, state, retryAt: breaker.nextAttemptAt() };
    },
    record(endpointId, success) {
      breakerOf(endpointId).record(success);
    },
    release(endpointId) {
      breakers.get(endpointId)?.release();
    },
    state(endpointId) {
      return breakers.get(endpointId)?.state ?? 'closed';
    },
    nextAttemptAt(endpointId) {
      return breakers.get(endpointId)?.nextAttemptAt() ?? 0;
    },
    onStateChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    get(endpointId) {
      return breakers.get(endpointId);
    },
  };
}
