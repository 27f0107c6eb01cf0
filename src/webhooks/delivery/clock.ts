/**
 * Time for the delivery engine: every delay (a retry, a breaker's open
 * period, a re-delay past a rate limit) goes through one {@link DeliveryClock},
 * so that tests move time forward instead of waiting for it.
 */

/** A timer handle, as the clock hands it out. */
export type TimerHandle = unknown;

/** The clock and timers the engine reads time through. */
export interface DeliveryClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once, `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The process's own clock and timers. Timers are unref'd: a pending retry keeps no process alive. */
export const systemClock: DeliveryClock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref?.();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** A clock that moves only when told to; see {@link manualClock}. */
export interface ManualClock extends DeliveryClock {
  /** Timers not yet fired. */
  readonly pending: number;
  /** The time the next timer fires, or `undefined`. */
  nextAt(): number | undefined;
  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way,
   * in order, each at its own time, and lets the work they start run (promise
   * callbacks and I/O callbacks already queued) before returning.
   */
  advance(ms: number): Promise<void>;
  /** Sets the time (never backwards) as {@link advance} does. */
  set(time: number): Promise<void>;
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Lets promise callbacks and already-queued I/O callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock for tests: `now()` is `start` until {@link ManualClock.advance}
 * moves it.
 *
 * @example
 * ```ts
 * const clock = manualClock(Date.parse('2025-01-01T00:00:00Z'));
 * const delivery = webhookDelivery({ clock, ... });
 * await clock.advance(30_000); // the second attempt runs
 * ```
 */
export function manualClock(start = 0): ManualClock {
  let time = start;
  let seq = 0;
  let timers: Timer[] = [];
  const clock: ManualClock = {
    now: () => time,
    setTimeout(fn, ms) {
      const timer: Timer = { at: time + Math.max(0, ms), seq: seq++, fn };
      timers.push(timer);
      return timer;
    },
    clearTimeout(handle) {
      timers = timers.filter((t) => t !== handle);
    },
    get pending() {
      return timers.length;
    },
    nextAt() {
      let next: number | undefined;
      for (const t of timers) if (next === undefined || t.at < next) next = t.at;
      return next;
    },
    async advance(ms) {
      await clock.set(time + ms);
    },
    async set(target) {
      if (target < time) throw new RangeError('restwell/webhooks: a manual clock never goes back.');
      await settle();
      for (;;) {
        let due: Timer | undefined;
        for (const t of timers) {
          if (t.at > target) continue;
          if (due === undefined || t.at < due.at || (t.at === due.at && t.seq < due.seq)) due = t;
        }
        if (due === undefined) break;
        timers = timers.filter((t) => t !== due);
        time = Math.max(time, due.at);
        due.fn();
        await settle();
      }
      time = target;
      await settle();
    },
  };
  return clock;
}
