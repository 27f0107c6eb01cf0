/**
 * The retry schedule: the seed's delays, the cap that makes 25 attempts span
 * about 72 hours, jitter bounds with an injected random source, Retry-After
 * as a floor, and option checking.
 */
import { describe, expect, it } from 'vitest';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe('the default schedule', () => {
  const schedule = retrySchedule({ random: () => 0 });

  it('has 25 attempts', () => {
    expect(schedule.maxAttempts).toBe(25);
    expect(schedule.nominalDelaysMs()).toHaveLength(24);
  });

  it('sends attempt 1 at once, then waits 30 s, 5 min, 30 min and 2 h', () => {
    expect(schedule.delayBefore(1)).toBe(0);
    expect(schedule.nominalDelaysMs().slice(0, 4)).toEqual([
      30 * SECOND,
      5 * MINUTE,
      30 * MINUTE,
      2 * HOUR,
    ]);
    expect([2, 3, 4, 5].map((n) => schedule.delayBefore(n))).toEqual([
      30 * SECOND,
      5 * MINUTE,
      30 * MINUTE,
      2 * HOUR,
    ]);
  });

  it('then grows, capped at 3 h 30 min, never shrinking', () => {
    const delays = schedule.nominalDelaysMs();
    for (let i = 1; i < delays.length; i++)
      expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(delays.slice(4)).toEqual(Array(20).fill(3.5 * HOUR));
  });

  it('spans about 72 hours over 25 attempts: 72 h 35 min 30 s nominal', () => {
    const total = sum(schedule.nominalDelaysMs());
    expect(total).toBe(72 * HOUR + 35 * MINUTE + 30 * SECOND);
    expect(Math.abs(total - 72 * HOUR)).toBeLessThan(HOUR);
  });

  it('is past its last attempt at 26: undefined, the dead-letter queue', () => {
    expect(schedule.delayBefore(25)).toBe(3.5 * HOUR);
    expect(schedule.delayBefore(26)).toBeUndefined();
    expect(schedule.delayBefore(1000)).toBeUndefined();
  });

  it('shows the doubling with a larger cap', () => {
    const wide = retrySchedule({ maxDelayMs: 16 * HOUR, maxAttempts: 10 });
    expect(wide.nominalDelaysMs().slice(3)).toEqual([
      2 * HOUR,
      4 * HOUR,
      8 * HOUR,
      16 * HOUR,
      16 * HOUR,
      16 * HOUR,
    ]);
  });
});

describe('jitter', () => {
  it('multiplies each delay by 1 + random(0, 0.2): the lowest draw gives the nominal delay', () => {
    const schedule = retrySchedule({ random: () => 0 });
    expect(schedule.delayBefore(2)).toBe(30 * SECOND);
  });

  it('the highest draw gives at most 1.2 × the nominal delay', () => {
    const schedule = retrySchedule({ random: () => 0.999_999 });
    for (let n = 2; n <= 25; n++) {
      const nominal = schedule.nominalDelaysMs()[n - 2]!;
      const delay = schedule.delayBefore(n)!;
      expect(delay).toBeGreaterThan(nominal * 1.199);
      expect(delay).toBeLessThanOrEqual(Math.ceil(nominal * 1.2));
    }
  });

  it('a draw of 0.5 adds 10 %', () => {
    expect(retrySchedule({ random: () => 0.5 }).delayBefore(3)).toBe(330 * SECOND);
  });

  it('spreads real draws over the whole band and nowhere else', () => {
    const schedule = retrySchedule();
    const seen = Array.from({ length: 2000 }, () => schedule.delayBefore(2)!);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(30 * SECOND);
    expect(Math.max(...seen)).toBeLessThanOrEqual(36 * SECOND);
    // 2,000 draws all in one half of the band would mean no jitter at all
    expect(seen.some((d) => d < 33 * SECOND)).toBe(true);
    expect(seen.some((d) => d > 33 * SECOND)).toBe(true);
  });

  it('a custom jitter of 0 gives the nominal delays exactly', () => {
    const schedule = retrySchedule({ jitter: 0, random: () => 0.9 });
    expect(schedule.delayBefore(5)).toBe(2 * HOUR);
  });

  it('clamps a random source that strays out of [0, 1)', () => {
    expect(retrySchedule({ random: () => -5 }).delayBefore(2)).toBe(30 * SECOND);
    expect(retrySchedule({ random: () => 7 }).delayBefore(2)).toBe(36 * SECOND);
    expect(retrySchedule({ random: () => Number.NaN }).delayBefore(2)).toBe(30 * SECOND);
  });

  it('spans 72.6 to 87.1 hours with jitter', () => {
    const low = retrySchedule({ random: () => 0 });
    const high = retrySchedule({ random: () => 0.999_999_999 });
    const span = (s: typeof low) =>
      sum(Array.from({ length: 24 }, (_, i) => s.delayBefore(i + 2)!));
    expect(span(low) / HOUR).toBeCloseTo(72.59, 1);
    expect(span(high) / HOUR).toBeCloseTo(87.11, 1);
  });
});

describe("a receiver's Retry-After as a floor", () => {
  const schedule = retrySchedule({ random: () => 0 });

  it('lengthens a shorter delay to the floor', () => {
    expect(schedule.delayBefore(2, 10 * MINUTE)).toBe(10 * MINUTE);
  });

  it('leaves a longer delay as it is', () => {
    expect(schedule.delayBefore(5, 10 * MINUTE)).toBe(2 * HOUR);
  });

  it('applies to attempt 1 as well', () => {
    expect(schedule.delayBefore(1, 5 * SECOND)).toBe(5 * SECOND);
  });

  it('ignores a floor that is not a finite non-negative number', () => {
    for (const floor of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      expect(schedule.delayBefore(2, floor)).toBe(30 * SECOND);
    }
  });

  it('does not revive an event past its last attempt', () => {
    expect(schedule.delayBefore(26, 1000)).toBeUndefined();
  });
});

describe('custom schedules', () => {
  it('uses the listed delays as given and grows from the last one', () => {
    const schedule = retrySchedule({
      delaysMs: [1000, 2000],
      maxAttempts: 6,
      maxDelayMs: 10_000,
      jitter: 0,
    });
    expect(schedule.nominalDelaysMs()).toEqual([1000, 2000, 4000, 8000, 10_000]);
  });

  it('a listed delay above the cap is kept, and the rest stays there', () => {
    const schedule = retrySchedule({ delaysMs: [5000], maxAttempts: 4, maxDelayMs: 1000 });
    expect(schedule.nominalDelaysMs()).toEqual([5000, 5000, 5000]);
  });

  it('by default the cap is at least the last listed delay', () => {
    const schedule = retrySchedule({ delaysMs: [10 * HOUR], maxAttempts: 4 });
    expect(schedule.nominalDelaysMs()).toEqual([10 * HOUR, 10 * HOUR, 10 * HOUR]);
  });

  it('backoffFactor sets the growth', () => {
    const schedule = retrySchedule({ delaysMs: [1000], maxAttempts: 4, backoffFactor: 3 });
    expect(schedule.nominalDelaysMs()).toEqual([1000, 3000, 9000]);
  });

  it('a list longer than maxAttempts is cut', () => {
    expect(retrySchedule({ maxAttempts: 3 }).nominalDelaysMs()).toEqual([30 * SECOND, 5 * MINUTE]);
  });

  it('one attempt means no retry', () => {
    const schedule = retrySchedule({ maxAttempts: 1 });
    expect(schedule.nominalDelaysMs()).toEqual([]);
    expect(schedule.delayBefore(1)).toBe(0);
    expect(schedule.delayBefore(2)).toBeUndefined();
  });
});

describe('checking', () => {
  it.each([
    [{ maxAttempts: 0 }, RangeError, /"maxAttempts" must be an integer from 1 to 1000, got 0/],
    [{ maxAttempts: 2.5 }, RangeError, /"maxAttempts"/],
    [{ maxAttempts: 1001 }, RangeError, /"maxAttempts"/],
    [{ maxAttempts: '25' }, TypeError, /"maxAttempts" must be an integer/],
    [{ jitter: -0.1 }, RangeError, /"jitter" must be a number from 0 to 1/],
    [{ jitter: 1.5 }, RangeError, /"jitter"/],
    [{ jitter: Number.NaN }, RangeError, /"jitter"/],
    [{ maxDelayMs: 0 }, RangeError, /"maxDelayMs"/],
    [{ maxDelayMs: Number.POSITIVE_INFINITY }, RangeError, /"maxDelayMs"/],
    [{ backoffFactor: 0.5 }, RangeError, /"backoffFactor" must be a finite number ≥ 1/],
    [{ delaysMs: [] }, RangeError, /"delaysMs" must be a list of 1 to 1000 delays/],
    [{ delaysMs: 1000 }, TypeError, /"delaysMs" must be an array/],
    [{ delaysMs: [1000, -1] }, RangeError, /"delaysMs\[1\]" must be a finite number/],
    [{ delaysMs: [1000, '2'] }, TypeError, /"delaysMs\[1\]"/],
    [{ random: 0.5 }, TypeError, /"random" must be a function/],
    [{ maxAtempts: 3 }, TypeError, /unknown option "maxAtempts". Did you mean "maxAttempts"\?/],
  ])('refuses %j', (options, kind, message) => {
    expect(() => retrySchedule(options as never)).toThrow(kind);
    expect(() => retrySchedule(options as never)).toThrow(message);
  });

  it('refuses an attempt number that is not a positive integer', () => {
    const schedule = retrySchedule();
    for (const n of [0, -1, 1.5, Number.NaN])
      expect(() => schedule.delayBefore(n)).toThrow(RangeError);
  });

  it('nominalDelaysMs returns a copy', () => {
    const schedule = retrySchedule();
    schedule.nominalDelaysMs().fill(0);
    expect(schedule.nominalDelaysMs()[0]).toBe(30 * SECOND);
  });
});
