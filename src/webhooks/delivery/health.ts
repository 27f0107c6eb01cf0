/**
 * Endpoint health: the seed's "your webhook endpoint has failed 90% of
 * deliveries in the last hour; we will disable it in 24 hours". Attempts are
 * counted per endpoint in a rolling window of time buckets; when the failure
 * share passes `failureRatio` over at least `minimumAttempts`, an alert goes
 * out (once) with the time the endpoint will be disabled; if it recovers
 * before then (the share falls back to the threshold or below), the alert is
 * withdrawn; otherwise it is disabled, its events then held for replay.
 *
 * The counts live in the worker's process, so each worker judges from the
 * attempts it made and may raise its own alert (the breakers can be shared
 * through Redis, `redisEndpointBreakers`; health cannot yet).
 */

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

/** Resolved options, checked. */
export function resolveHealthOptions(
  options: EndpointHealthOptions = {},
): Required<EndpointHealthOptions> {
  const windowMs = options.windowMs ?? HOUR;
  const failureRatio = options.failureRatio ?? 0.9;
  const minimumAttempts = options.minimumAttempts ?? 20;
  const disableAfterMs = options.disableAfterMs ?? 24 * HOUR;
  if (!Number.isSafeInteger(windowMs) || windowMs < BUCKETS)
    throw new TypeError(
      `restwell/webhooks: option "health.windowMs" must be an integer of at least ${BUCKETS} ms.`,
    );
  if (typeof failureRatio !== 'number' || !(failureRatio > 0 && failureRatio < 1))
    throw new TypeError('restwell/webhooks: option "health.failureRatio" must be between 0 and 1.');
  if (!Number.isSafeInteger(minimumAttempts) || minimumAttempts < 1)
    throw new TypeError(
      'restwell/webhooks: option "health.minimumAttempts" must be a positive integer.',
    );
  if (disableAfterMs !== false && (!Number.isSafeInteger(disableAfterMs) || disableAfterMs < 0))
    throw new TypeError(
      'restwell/webhooks: option "health.disableAfterMs" must be an integer of ms, or false.',
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

  /** Disables endpoints whose alert has run out: for a periodic timer, as failing endpoints may go quiet. */
  check(): void {
    const now = this.hooks.now();
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
