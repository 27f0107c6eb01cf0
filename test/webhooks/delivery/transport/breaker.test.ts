/**
 * The per-endpoint circuit breaker, on an injected clock: the opening rule
 * (ratio, minimum volume, rolling window), the open period, half-open probes,
 * closing and re-opening, lost probes, state-change callbacks, snapshots and
 * option checking.
 */
import { describe, expect, it } from 'vitest';
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from '../../../../src/webhooks/delivery/breaker.js';

/** A whole minute, so that buckets (of 6 s by default) start at T0. */
const T0 = 1_699_999_980_000;

function setup(options: CircuitBreakerOptions = {}) {
  let now = T0;
  const changes: [BreakerState, BreakerState][] = [];
  const breaker = new CircuitBreaker({
    now: () => now,
    onStateChange: (state, previous) => changes.push([state, previous]),
    ...options,
  });
  const clock = {
    advance(ms: number) {
      now += ms;
    },
    get now() {
      return now;
    },
  };
  /** Records `n` outcomes through tryAcquire, as a caller does. */
  const run = (n: number, success: boolean) => {
    for (let i = 0; i < n; i++) {
      expect(breaker.tryAcquire()).toBe(true);
      breaker.record(success);
    }
  };
  return { breaker, clock, changes, run };
}

/** Opens a default breaker: 10 failures, the minimum volume, all failing. */
function opened(options: CircuitBreakerOptions = {}) {
  const s = setup(options);
  s.run(10, false);
  expect(s.breaker.state).toBe('open');
  return s;
}

describe('closed', () => {
  it('starts closed and lets every attempt through', () => {
    const { breaker } = setup();
    expect(breaker.state).toBe('closed');
    for (let i = 0; i < 100; i++) expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.nextAttemptAt()).toBe(0);
  });

  it('stays closed under the minimum volume, however many fail', () => {
    const { breaker, run } = setup();
    run(9, false);
    expect(breaker.state).toBe('closed');
  });

  it('opens at the minimum volume when the failures reach the ratio: 5 of 10', () => {
    const { breaker, run, changes } = setup();
    run(5, true);
    run(4, false);
    expect(breaker.state).toBe('closed');
    run(1, false);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([['open', 'closed']]);
  });

  it('stays closed just under the ratio: 4 of 10, then 5 of 11', () => {
    const { breaker, run } = setup();
    run(6, true);
    run(4, false);
    expect(breaker.state).toBe('closed');
    run(1, true);
    run(1, false); // 5 of 12
    expect(breaker.state).toBe('closed');
    run(1, false); // 6 of 13
    expect(breaker.state).toBe('closed');
    run(1, false); // 7 of 14: exactly half
    expect(breaker.state).toBe('open');
  });

  it('never opens on a success, even when the ratio is already reached', () => {
    const { breaker, run } = setup({ minimumRequests: 4 });
    run(3, false);
    run(1, true); // 3 of 4 failed, but this outcome was a success
    expect(breaker.state).toBe('closed');
    run(1, false);
    expect(breaker.state).toBe('open');
  });

  it('honours a custom ratio and minimum', () => {
    const { breaker, run } = setup({ failureRatio: 0.9, minimumRequests: 20 });
    run(2, true);
    run(17, false);
    expect(breaker.state).toBe('closed'); // 19 attempts: under the minimum
    run(1, false); // 18 of 20 = 0.9
    expect(breaker.state).toBe('open');
  });

  it('forgets outcomes older than the window', () => {
    const { breaker, clock, run } = setup();
    run(9, false);
    clock.advance(60_000);
    run(1, false);
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot()).toMatchObject({ failures: 1, successes: 0 });
  });

  it('counts an outcome in a bucket of a tenth of the window: never longer than windowMs', () => {
    const { breaker, clock, run } = setup();
    clock.advance(5_999); // the end of the first bucket
    run(1, false);
    clock.advance(54_000); // T0 + 59,999: still in the window
    expect(breaker.snapshot().failures).toBe(1);
    clock.advance(1); // the bucket has left: the outcome counted for 54,001 ms, not 60 s
    expect(breaker.snapshot().failures).toBe(0);
  });

  it('rolls the window one bucket at a time', () => {
    const { breaker, clock, run } = setup();
    run(5, false); // at T0
    clock.advance(30_000);
    run(4, false); // at T0 + 30 s
    clock.advance(29_999);
    expect(breaker.snapshot().failures).toBe(9); // both still in the last minute
    clock.advance(1); // T0 + 60 s: the first bucket has left the window
    expect(breaker.snapshot().failures).toBe(4);
    run(1, false);
    expect(breaker.state).toBe('closed'); // 5 in the window, under the minimum
  });

  it('keeps bounded memory: a ring reused across many windows counts only the last one', () => {
    const { breaker, clock, run } = setup();
    for (let i = 0; i < 1000; i++) {
      run(1, true);
      clock.advance(997);
    }
    // about 61 attempts in the last 60 s, none older
    const { successes } = breaker.snapshot();
    expect(successes).toBeGreaterThanOrEqual(54);
    expect(successes).toBeLessThanOrEqual(61);
  });
});

describe('open', () => {
  it('refuses every attempt for openMs', () => {
    const { breaker, clock } = opened();
    expect(breaker.tryAcquire()).toBe(false);
    clock.advance(29_999);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.state).toBe('open');
  });

  it('says when the next attempt may go: openedAt + openMs', () => {
    const { breaker, clock } = opened();
    const openedAt = clock.now;
    expect(breaker.nextAttemptAt()).toBe(openedAt + 30_000);
    clock.advance(10_000);
    expect(breaker.nextAttemptAt()).toBe(openedAt + 30_000);
  });

  it('counts outcomes of attempts let through before it opened, without changing state', () => {
    const { breaker } = opened();
    breaker.record(true);
    breaker.record(false);
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot()).toMatchObject({ state: 'open', failures: 11, successes: 1 });
  });

  it('a custom openMs', () => {
    const { breaker, clock } = opened({ openMs: 5000 });
    clock.advance(4999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
  });
});

describe('half-open', () => {
  it('becomes half-open after openMs, told once', () => {
    const { breaker, clock, changes } = opened();
    clock.advance(30_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.state).toBe('half-open');
    expect(changes).toEqual([
      ['open', 'closed'],
      ['half-open', 'open'],
    ]);
  });

  it('lets one probe through at a time', () => {
    const { breaker, clock } = opened();
    clock.advance(30_000);
    expect(breaker.nextAttemptAt()).toBe(clock.now);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.tryAcquire()).toBe(false);
  });

  it("closes on the probe's success, with an empty window", () => {
    const { breaker, clock, changes } = opened();
    clock.advance(30_000);
    expect(breaker.tryAcquire()).toBe(true);
    breaker.record(true);
    expect(breaker.state).toBe('closed');
    expect(breaker.nextAttemptAt()).toBe(0);
    expect(breaker.snapshot()).toEqual({ state: 'closed', failures: 0, successes: 0 });
    expect(changes.at(-1)).toEqual(['closed', 'half-open']);
    // the failures that opened it are gone: nine more do not re-open it
    for (let i = 0; i < 9; i++) {
      expect(breaker.tryAcquire()).toBe(true);
      breaker.record(false);
    }
    expect(breaker.state).toBe('closed');
  });

  it("re-opens on the probe's failure, for a fresh openMs", () => {
    const { breaker, clock, changes } = opened();
    clock.advance(30_000);
    expect(breaker.tryAcquire()).toBe(true);
    clock.advance(1000);
    breaker.record(false);
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot().openedAt).toBe(clock.now);
    expect(breaker.nextAttemptAt()).toBe(clock.now + 30_000);
    expect(breaker.tryAcquire()).toBe(false);
    expect(changes.at(-1)).toEqual(['open', 'half-open']);
    clock.advance(30_000);
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('with halfOpenProbes: 3, lets three through and needs three successes', () => {
    const { breaker, clock } = opened({ halfOpenProbes: 3 });
    clock.advance(30_000);
    expect([1, 2, 3, 4].map(() => breaker.tryAcquire())).toEqual([true, true, true, false]);
    breaker.record(true);
    breaker.record(true);
    expect(breaker.state).toBe('half-open');
    breaker.record(true);
    expect(breaker.state).toBe('closed');
  });

  it('with halfOpenProbes: 3, one failure among them re-opens', () => {
    const { breaker, clock } = opened({ halfOpenProbes: 3 });
    clock.advance(30_000);
    breaker.tryAcquire();
    breaker.tryAcquire();
    breaker.record(true);
    breaker.record(false);
    expect(breaker.state).toBe('open');
  });

  it('frees a probe slot when a probe is recorded', () => {
    const { breaker, clock } = opened({ halfOpenProbes: 2 });
    clock.advance(30_000);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    breaker.record(true);
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('gives a probe that is never recorded up after openMs', () => {
    const { breaker, clock } = opened();
    clock.advance(30_000);
    expect(breaker.tryAcquire()).toBe(true);
    const probeAt = clock.now;
    clock.advance(29_999);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.nextAttemptAt()).toBe(probeAt + 30_000);
    clock.advance(1);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.state).toBe('half-open');
  });

  it('reports openedAt while half-open', () => {
    const { breaker, clock } = opened();
    const openedAt = clock.now;
    clock.advance(30_000);
    expect(breaker.snapshot()).toMatchObject({ state: 'half-open', openedAt });
  });
});

describe('snapshot', () => {
  it('is plain, serialisable data', () => {
    const { breaker, run } = setup();
    run(3, true);
    run(2, false);
    const snapshot = breaker.snapshot();
    expect(snapshot).toEqual({ state: 'closed', failures: 2, successes: 3 });
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
  });
});

describe('state-change callback', () => {
  it('sees the new state already in effect', () => {
    let seen: BreakerState | undefined;
    let now = T0;
    const breaker: CircuitBreaker = new CircuitBreaker({
      now: () => now,
      minimumRequests: 1,
      onStateChange: () => {
        seen = breaker.snapshot().state;
      },
    });
    breaker.record(false);
    expect(seen).toBe('open');
    now += 30_000;
    expect(breaker.state).toBe('half-open');
    expect(seen).toBe('half-open');
  });

  it('works without one', () => {
    let now = T0;
    const breaker = new CircuitBreaker({ now: () => now, minimumRequests: 1 });
    breaker.record(false);
    now += 30_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.record(true);
    expect(breaker.state).toBe('closed');
  });
});

describe('checking', () => {
  it.each([
    [{ windowMs: 0 }, RangeError, /"windowMs" must be a finite number > 0/],
    [{ windowMs: Number.POSITIVE_INFINITY }, RangeError, /"windowMs"/],
    [{ windowMs: '60000' }, TypeError, /"windowMs"/],
    [{ failureRatio: 0 }, RangeError, /"failureRatio" must be a number above 0, at most 1/],
    [{ failureRatio: 1.1 }, RangeError, /"failureRatio"/],
    [{ failureRatio: Number.NaN }, RangeError, /"failureRatio"/],
    [{ minimumRequests: 0 }, RangeError, /"minimumRequests" must be a positive integer/],
    [{ minimumRequests: 2.5 }, RangeError, /"minimumRequests"/],
    [{ openMs: -1 }, RangeError, /"openMs"/],
    [{ halfOpenProbes: 0 }, RangeError, /"halfOpenProbes"/],
    [{ now: 5 }, TypeError, /"now" must be a function/],
    [{ onStateChange: 'log' }, TypeError, /"onStateChange" must be a function/],
    [{ windowMS: 1 }, TypeError, /unknown option "windowMS". Did you mean "windowMs"\?/],
  ])('refuses %j', (options, kind, message) => {
    expect(() => new CircuitBreaker(options as never)).toThrow(kind);
    expect(() => new CircuitBreaker(options as never)).toThrow(message);
  });

  it('failureRatio 1 opens only when every attempt failed', () => {
    const { breaker, run } = setup({ failureRatio: 1, minimumRequests: 3 });
    run(1, true);
    run(5, false);
    expect(breaker.state).toBe('closed');
    const other = setup({ failureRatio: 1, minimumRequests: 3 });
    other.run(3, false);
    expect(other.breaker.state).toBe('open');
  });
});
