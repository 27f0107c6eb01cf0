/**
 * The retry schedule of webhook delivery: when each attempt of one event is
 * tried. Pure arithmetic over an injectable random source; the queue decides
 * what to do with the delays.
 *
 * The default is the seed's schedule. Attempt 1 goes at once; attempts 2 to 5
 * wait 30 s, 5 min, 30 min and 2 h. Past the list each delay doubles, capped
 * at `maxDelayMs`, and the default cap is what makes 25 attempts span about
 * 72 hours:
 *
 * - the listed delays add up to 30 s + 5 min + 30 min + 2 h = 9,330 s (2 h 35 min 30 s);
 * - attempts 6 to 25 leave 20 delays for the remaining 72 h − 2 h 35 min 30 s =
 *   249,870 s, that is 12,493.5 s (3 h 28 min) each;
 * - doubling 2 h gives 4 h at once, more than that, so the cap is what sets the
 *   pace: at 3 h 30 min (12,600 s) the nominal total is 9,330 + 20 × 12,600 =
 *   261,330 s = 72 h 35 min 30 s.
 *
 * Jitter only lengthens a delay (× 1 + random(0, 0.2), so that receivers
 * recovering from an outage are not hit by every retry in the same second),
 * which puts the real span between 72.6 h and 87.1 h, 79.8 h on average. With
 * a larger `maxDelayMs` the doubling shows (4 h, 8 h, ...) and the span grows.
 */
import { checkOptions, describeValue, invalidOption } from '../../core/errors.js';

const MODULE = 'webhooks';
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** The seed's delays before attempts 2, 3, 4 and 5. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([
  30 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
]);
/** Attempts per event before it goes to the dead-letter queue. */
export const DEFAULT_MAX_ATTEMPTS = 25;
/** The cap of the delays past the list; see the module's comment for why 3 h 30 min. */
export const DEFAULT_MAX_DELAY_MS = 3.5 * HOUR;
/** Each delay is multiplied by 1 + random(0, jitter). */
export const DEFAULT_JITTER = 0.2;
/** Past the list, each delay is the previous one times this. */
export const DEFAULT_BACKOFF_FACTOR = 2;
/** A schedule longer than this is a mistake (a thousand attempts is years of retries). */
const MAX_ATTEMPTS_LIMIT = 1000;

/** Options of {@link retrySchedule}. */
export interface RetryScheduleOptions {
  /**
   * The delays before attempts 2, 3, ... in milliseconds, used as given; past
   * the list the last one grows by `backoffFactor` up to `maxDelayMs`. At
   * least one. @default 30 s, 5 min, 30 min, 2 h
   */
  delaysMs?: readonly number[];
  /** Attempts per event, the first one included (1 to 1000). @default 25 */
  maxAttempts?: number;
  /** Each delay is multiplied by 1 + random(0, jitter), jitter from 0 to 1. @default 0.2 */
  jitter?: number;
  /**
   * The cap of the delays past `delaysMs` (the listed ones are used as given).
   * @default 3 h 30 min, or the last listed delay when that is larger
   */
  maxDelayMs?: number;
  /** Past the list, each delay is the previous one times this (at least 1). @default 2 */
  backoffFactor?: number;
  /** The random source, returning a number in [0, 1). @default Math.random */
  random?: () => number;
}

/** When each attempt of one event goes; see {@link retrySchedule}. */
export interface RetrySchedule {
  /** Attempts per event, the first one included. @default 25 */
  readonly maxAttempts: number;
  /**
   * The delay before attempt `attempt` (1-based) in milliseconds, counted from
   * the end of the attempt before it: 0 for attempt 1, else the nominal delay
   * with jitter, and never less than `floorMs` (a receiver's `Retry-After`; a
   * value that is not a finite non-negative number is ignored). `undefined`
   * once `attempt` is past `maxAttempts`: the event goes to the dead-letter
   * queue. Throws a RangeError when `attempt` is not a positive integer.
   */
  delayBefore(attempt: number, floorMs?: number): number | undefined;
  /** The delays before attempts 2 to `maxAttempts`, without jitter, for docs and tests. */
  nominalDelaysMs(): number[];
}

function rangeError(option: string, expected: string, got: unknown): never {
  throw new RangeError(
    `restwell/${MODULE}: option "${option}" must be ${expected}, got ${describeValue(got)}.`,
  );
}

function checkNumber(
  option: string,
  value: unknown,
  expected: string,
  valid: (n: number) => boolean,
): number {
  if (typeof value !== 'number') invalidOption(MODULE, option, expected, value);
  if (!valid(value)) rangeError(option, expected, value);
  return value;
}

/**
 * The retry schedule: attempt 1 at once, then 30 s, 5 min, 30 min, 2 h, then
 * doubling delays capped at 3 h 30 min, so that 25 attempts span about 72
 * hours (the module's comment shows the arithmetic); each delay × (1 +
 * random(0, 0.2)). Options are checked here: a wrong type throws a TypeError,
 * a value out of range a RangeError, each naming the option.
 *
 * @example
 * ```ts
 * const schedule = retrySchedule();
 * schedule.delayBefore(2);               // 30,000 to 36,000
 * schedule.delayBefore(3, 600_000);      // at least the receiver's Retry-After of 10 min
 * schedule.delayBefore(26);              // undefined: to the dead-letter queue
 * ```
 */
export function retrySchedule(options: RetryScheduleOptions = {}): RetrySchedule {
  checkOptions(MODULE, options, [
    'delaysMs',
    'maxAttempts',
    'jitter',
    'maxDelayMs',
    'backoffFactor',
    'random',
  ]);
  const finiteNonNegative = (n: number) => Number.isFinite(n) && n >= 0;

  let delays: readonly number[] = DEFAULT_RETRY_DELAYS_MS;
  if (options.delaysMs !== undefined) {
    const list: unknown = options.delaysMs;
    if (!Array.isArray(list))
      invalidOption(MODULE, 'delaysMs', 'an array of delays in milliseconds', list);
    if (list.length === 0 || list.length > MAX_ATTEMPTS_LIMIT)
      rangeError('delaysMs', `a list of 1 to ${MAX_ATTEMPTS_LIMIT} delays`, list);
    for (const [i, d] of list.entries()) {
      checkNumber(`delaysMs[${i}]`, d, 'a finite number of milliseconds ≥ 0', finiteNonNegative);
    }
    delays = Object.freeze([...(list as number[])]);
  }
  const maxAttempts =
    options.maxAttempts === undefined
      ? DEFAULT_MAX_ATTEMPTS
      : checkNumber(
          'maxAttempts',
          options.maxAttempts,
          `an integer from 1 to ${MAX_ATTEMPTS_LIMIT}`,
          (n) => Number.isInteger(n) && n >= 1 && n <= MAX_ATTEMPTS_LIMIT,
        );
  const jitter =
    options.jitter === undefined
      ? DEFAULT_JITTER
      : checkNumber('jitter', options.jitter, 'a number from 0 to 1', (n) => n >= 0 && n <= 1);
  const lastListed = delays[delays.length - 1]!;
  const maxDelayMs =
    options.maxDelayMs === undefined
      ? Math.max(DEFAULT_MAX_DELAY_MS, lastListed)
      : checkNumber(
          'maxDelayMs',
          options.maxDelayMs,
          'a finite number of milliseconds > 0',
          (n) => Number.isFinite(n) && n > 0,
        );
  const factor =
    options.backoffFactor === undefined
      ? DEFAULT_BACKOFF_FACTOR
      : checkNumber(
          'backoffFactor',
          options.backoffFactor,
          'a finite number ≥ 1',
          (n) => Number.isFinite(n) && n >= 1,
        );
  const random = options.random ?? Math.random;
  if (typeof random !== 'function')
    invalidOption(MODULE, 'random', 'a function returning a number in [0, 1)', random);

  // Computed once: at most 999 numbers.
  const nominal: number[] = [];
  for (let i = 0; i < maxAttempts - 1; i++) {
    if (i < delays.length) {
      nominal.push(delays[i]!);
    } else {
      const previous = nominal[i - 1]!;
      // A listed delay above the cap is kept; growth past it stays put.
      nominal.push(previous >= maxDelayMs ? previous : Math.min(previous * factor, maxDelayMs));
    }
  }

  return {
    maxAttempts,
    delayBefore(attempt: number, floorMs?: number): number | undefined {
      if (!Number.isInteger(attempt) || attempt < 1) {
        throw new RangeError(
          `restwell/${MODULE}: the attempt number must be a positive integer, got ${describeValue(attempt)}.`,
        );
      }
      if (attempt > maxAttempts) return undefined;
      const floor =
        typeof floorMs === 'number' && Number.isFinite(floorMs) && floorMs > 0 ? floorMs : 0;
      if (attempt === 1) return Math.ceil(floor);
      const base = nominal[attempt - 2]!;
      // A random source that strays out of [0, 1) is clamped rather than
      // allowed to shorten a delay or stretch it past the jitter.
      const r = random();
      const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
      return Math.ceil(Math.max(base * (1 + unit * jitter), floor));
    },
    nominalDelaysMs(): number[] {
      return [...nominal];
    },
  };
}
