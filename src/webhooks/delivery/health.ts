/**
 * Endpoint health: the seed's "your webhook endpoint has failed 90% of
 * deliveries in the last hour; we will disable it in 24 hours". Attempts are
 * counted per endpoint in a rolling window of time buckets; when the failure
 * share passes `failureRatio` over at least `minimumAttempts`, an alert goes
 * out (once) with the time the endpoint will be disabled; if it recovers
 * before then (the share falls back to the threshold or below), the alert is
 * withdrawn; otherwise it is disabled, its events then held for replay.
 *
 * Where the counts live is the {@link EndpointHealthStore}: by default this
 * process's memory ({@link memoryEndpointHealth}, wrapping
 * {@link EndpointHealth}), where each worker judges from the attempts it made
 * and may raise its own alert; `redisEndpointHealth()`
 * (`restwell/webhooks/bullmq`) judges every worker's attempts together and
 * makes each transition once over all of them.
 */
import { checkOptions, invalidOption } from '../../core/errors.js';

/** Options of the health monitor. */
export interface EndpointHealthOptions {
  /** The window the failure share is computed over. @default 1 hour */
  windowMs?: number;
  /** An alert when more than this share of the window's attempts failed. @default 0.9 */
  failureRatio?: number;
  /** The fewest attempts in the window before the share is trusted. @default 20 */
  minimumAttempts?: number;
  /** How long after the alert a still-failing endpoint is disabled; `false`: never. @default 24 hours */
  disableAfterMs?: number | false;
}

/** What an alert says. */
export interface EndpointHealthAlert {
  readonly endpointId: string;
  /** Failed attempts over attempts, in the window. */
  readonly failureRatio: number;
  readonly attempts: number;
  readonly failures: number;
  /** When the alert was raised. */
  readonly since: number;
  /** When the endpoint will be disabled unless it recovers; absent when it never will be. */
  readonly disableAt?: number;
}

/** An endpoint's health now. */
export interface EndpointHealthState {
  readonly attempts: number;
  readonly failures: number;
  readonly failureRatio: number | undefined;
  readonly alert?: EndpointHealthAlert;
}

interface Bucket {
  start: number;
  attempts: number;
  failures: number;
}

interface Tracked {
  buckets: Bucket[];
  alert: EndpointHealthAlert | undefined;
}

const BUCKETS = 60;
const HOUR = 60 * 60 * 1000;

/** Hooks of the monitor. */
export interface EndpointHealthHooks {
  now: () => number;
  onAlert: (alert: EndpointHealthAlert) => void;
  onRecover: (endpointId: string, alert: EndpointHealthAlert) => void;
  onDisable: (alert: EndpointHealthAlert) => void;
}

/**
 * Resolved options, checked. `scope` starts each option's name in a message:
 * the engine's `health.`, or none where the thresholds are options of their own
 * (`redisEndpointHealth({ windowMs })`).
 */
export function resolveHealthOptions(
  options: EndpointHealthOptions = {},
  scope = 'health.',
): Required<EndpointHealthOptions> {
  const windowMs = options.windowMs ?? HOUR;
  const failureRatio = options.failureRatio ?? 0.9;
  const minimumAttempts = options.minimumAttempts ?? 20;
  const disableAfterMs = options.disableAfterMs ?? 24 * HOUR;
  if (!Number.isSafeInteger(windowMs) || windowMs < BUCKETS)
    throw new TypeError(
      `restwell/webhooks: option "${scope}windowMs" must be an integer of at least ${BUCKETS} ms.`,
    );
  if (typeof failureRatio !== 'number' || !(failureRatio > 0 && failureRatio < 1))
    throw new TypeError(
      `restwell/webhooks: option "${scope}failureRatio" must be between 0 and 1.`,
    );
  if (!Number.isSafeInteger(minimumAttempts) || minimumAttempts < 1)
    throw new TypeError(
      `restwell/webhooks: option "${scope}minimumAttempts" must be a positive integer.`,
    );
  if (disableAfterMs !== false && (!Number.isSafeInteger(disableAfterMs) || disableAfterMs < 0))
    throw new TypeError(
      `restwell/webhooks: option "${scope}disableAfterMs" must be an integer of ms, or false.`,
    );
  return { windowMs, failureRatio, minimumAttempts, disableAfterMs };
}

/** Watches every endpoint's failure share; see the module comment. */
export class EndpointHealth {
  private readonly options: Required<EndpointHealthOptions>;
  private readonly hooks: EndpointHealthHooks;
  private readonly bucketMs: number;
  private readonly endpoints = new Map<string, Tracked>();

  constructor(options: EndpointHealthOptions, hooks: EndpointHealthHooks) {
    this.options = resolveHealthOptions(options);
    this.hooks = hooks;
    this.bucketMs = Math.floor(this.options.windowMs / BUCKETS);
  }

  /** Counts one attempt's outcome and acts on the new share. */
  record(endpointId: string, ok: boolean): void {
    const now = this.hooks.now();
    let tracked = this.endpoints.get(endpointId);
    if (tracked === undefined) {
      tracked = { buckets: [], alert: undefined };
      this.endpoints.set(endpointId, tracked);
    }
    const start = now - (now % this.bucketMs);
    let bucket = tracked.buckets[tracked.buckets.length - 1];
    if (bucket === undefined || bucket.start !== start) {
      bucket = { start, attempts: 0, failures: 0 };
      tracked.buckets.push(bucket);
    }
    bucket.attempts++;
    if (!ok) bucket.failures++;
    this.evaluate(endpointId, tracked, now);
  }

  /**
   * Disables endpoints whose alert has run out: for a periodic timer, as
   * failing endpoints may go quiet. `endpointId`: that endpoint only.
   */
  check(endpointId?: string): void {
    const now = this.hooks.now();
    if (endpointId !== undefined) {
      const tracked = this.endpoints.get(endpointId);
      if (tracked !== undefined) this.evaluate(endpointId, tracked, now);
      return;
    }
    for (const [id, tracked] of this.endpoints) this.evaluate(id, tracked, now);
  }

  /** Forgets an endpoint (deleted, or disabled and to start afresh when enabled). */
  forget(endpointId: string): void {
    this.endpoints.delete(endpointId);
  }

  state(endpointId: string): EndpointHealthState {
    const tracked = this.endpoints.get(endpointId);
    if (tracked === undefined) return { attempts: 0, failures: 0, failureRatio: undefined };
    const { attempts, failures } = this.totals(tracked, this.hooks.now());
    return {
      attempts,
      failures,
      failureRatio: attempts === 0 ? undefined : failures / attempts,
      ...(tracked.alert === undefined ? {} : { alert: tracked.alert }),
    };
  }

  private totals(tracked: Tracked, now: number): { attempts: number; failures: number } {
    const oldest = now - this.options.windowMs;
    while (tracked.buckets.length > 0 && tracked.buckets[0]!.start + this.bucketMs <= oldest)
      tracked.buckets.shift();
    let attempts = 0;
    let failures = 0;
    for (const b of tracked.buckets) {
      attempts += b.attempts;
      failures += b.failures;
    }
    return { attempts, failures };
  }

  private evaluate(endpointId: string, tracked: Tracked, now: number): void {
    const { attempts, failures } = this.totals(tracked, now);
    const ratio = attempts === 0 ? undefined : failures / attempts;
    const failing =
      ratio !== undefined &&
      attempts >= this.options.minimumAttempts &&
      ratio > this.options.failureRatio;
    const alert = tracked.alert;
    if (alert === undefined) {
      if (!failing) {
        if (attempts === 0) this.endpoints.delete(endpointId);
        return;
      }
      const { disableAfterMs } = this.options;
      tracked.alert = Object.freeze({
        endpointId,
        failureRatio: ratio,
        attempts,
        failures,
        since: now,
        ...(disableAfterMs === false ? {} : { disableAt: now + disableAfterMs }),
      });
      this.hooks.onAlert(tracked.alert);
      return;
    }
    // Recovered: the window shows the share at or below the threshold again.
    if (ratio !== undefined && ratio <= this.options.failureRatio) {
      tracked.alert = undefined;
      this.hooks.onRecover(endpointId, alert);
      return;
    }
    if (alert.disableAt !== undefined && now >= alert.disableAt) {
      this.endpoints.delete(endpointId);
      this.hooks.onDisable({
        ...alert,
        failureRatio: ratio ?? alert.failureRatio,
        attempts,
        failures,
      });
    }
  }
}

/**
 * A change of an endpoint's health: an alert raised, an alert withdrawn (the
 * endpoint recovered), or the alert run out (the endpoint is to be disabled;
 * its `failureRatio`, `attempts` and `failures` are the window's at that
 * moment). Each is made once, by one call, and told to the listeners of the
 * process that made it.
 */
export type EndpointHealthTransition =
  | { readonly type: 'alert'; readonly alert: EndpointHealthAlert }
  | { readonly type: 'recover'; readonly alert: EndpointHealthAlert }
  | { readonly type: 'disable'; readonly alert: EndpointHealthAlert };

/** Told of each health transition, once, by the call that made it. */
export type EndpointHealthListener = (transition: EndpointHealthTransition) => void;

/**
 * Where the engine keeps endpoint health, and judges it. An implementation
 * may answer synchronously (in process) or with promises (a shared store);
 * the engine awaits both. A call that throws or rejects is a fault of the
 * store, never of the receiver: the engine logs it, and the attempt stands
 * (it was made, and is logged and settled as usual).
 *
 * Transitions are told through `onTransition`: the engine logs an alert and
 * calls `onAlert`, arms a timer for `disableAt`, logs a recovery and calls
 * `onRecover`, and disables the endpoint on `disable`. A shared store tells
 * only the listeners of the process whose call made the transition, so that
 * each is acted on once over every worker.
 *
 * `now` is the engine's clock; a shared store may keep its own (Redis time).
 */
export interface EndpointHealthStore {
  /** Counts one attempt's outcome and judges the new share. */
  record(endpointId: string, ok: boolean, now: number): void | Promise<void>;
  /**
   * Judges again without an attempt, so that an endpoint whose alert has run
   * out is disabled though it went quiet: `endpointId`, or every endpoint
   * whose `disableAt` may have come.
   */
  check(now: number, endpointId?: string): void | Promise<void>;
  /** Forgets an endpoint's counts and alert (it was enabled again, or deleted). */
  forget(endpointId: string): void | Promise<void>;
  /** The endpoint's counts and alert now. */
  state(endpointId: string, now: number): EndpointHealthState | Promise<EndpointHealthState>;
  /** Adds a listener of transitions; returns what removes it. */
  onTransition(listener: EndpointHealthListener): () => void;
}

/** The in-process {@link EndpointHealthStore}, whose answers are synchronous. */
export interface MemoryEndpointHealth extends EndpointHealthStore {
  record(endpointId: string, ok: boolean, now?: number): void;
  check(now?: number, endpointId?: string): void;
  forget(endpointId: string): void;
  state(endpointId: string, now?: number): EndpointHealthState;
}

/** Options of {@link memoryEndpointHealth}: the thresholds, and the clock. */
export interface MemoryEndpointHealthOptions extends EndpointHealthOptions {
  /** The clock, in milliseconds since the epoch. @default Date.now */
  now?: () => number;
}

/**
 * The in-process {@link EndpointHealthStore} (the engine's default): an
 * {@link EndpointHealth} in this process's memory. With several workers each
 * judges from its own attempts, and each may alert and disable;
 * `redisEndpointHealth()` (`restwell/webhooks/bullmq`) judges them together.
 * The `now` arguments are not used: the monitor reads the `now` option.
 */
export function memoryEndpointHealth(
  options: MemoryEndpointHealthOptions = {},
): MemoryEndpointHealth {
  checkOptions('webhooks', options, [
    'windowMs',
    'failureRatio',
    'minimumAttempts',
    'disableAfterMs',
    'now',
  ]);
  const now = options.now ?? Date.now;
  if (typeof now !== 'function')
    invalidOption('webhooks', 'now', 'a function returning milliseconds since the epoch', now);
  const listeners = new Set<EndpointHealthListener>();
  const tell = (transition: EndpointHealthTransition): void => {
    for (const listener of [...listeners]) listener(transition);
  };
  const { now: _, ...thresholds } = options;
  const monitor = new EndpointHealth(thresholds, {
    now,
    onAlert: (alert) => tell({ type: 'alert', alert }),
    onRecover: (_id, alert) => tell({ type: 'recover', alert }),
    onDisable: (alert) => tell({ type: 'disable', alert }),
  });
  return {
    record(endpointId, ok) {
      monitor.record(endpointId, ok);
    },
    check(_now, endpointId) {
      monitor.check(endpointId);
    },
    forget(endpointId) {
      monitor.forget(endpointId);
    },
    state(endpointId) {
      return monitor.state(endpointId);
    },
    onTransition(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
