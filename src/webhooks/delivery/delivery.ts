/**
 * The delivery engine: `webhookDelivery()` fans events out to the endpoints
 * that subscribe to them, queues one job per delivery, and runs the worker
 * that makes the attempts: signed afresh each time, shaped for the
 * endpoint's pinned version, bounded per endpoint (concurrency, rate, a
 * circuit breaker), retried on the schedule with a receiver's `Retry-After`
 * as a floor, recorded attempt by attempt in the delivery log, and ending
 * delivered, dead-lettered, or held while the endpoint is disabled.
 *
 * `dispatch()` never sends: it stores the event and queues its deliveries,
 * and returns. Sending happens in the worker (`startWorker()`), in this
 * process or in another one on the same queue.
 */
import { setMaxListeners } from 'node:events';
import { checkOptions, invalidOption, ValidationError } from '../../core/errors.js';
import { defaultLogger, type Logger } from '../../core/logger.js';
import type { ApiVersions } from '../../versioning/api.js';
import { hmacSigner } from '../hmac.js';
import { standardWebhooksSigner } from '../standard.js';
import { type AttemptRequest, type AttemptResult, sendAttempt } from './attempt.js';
import {
  type BreakerPermit,
  type BreakerState,
  type CircuitBreakerOptions,
  type EndpointBreakers,
  memoryEndpointBreakers,
} from './breaker.js';
import { type DeliveryClock, systemClock } from './clock.js';
import {
  type EndpointRecord,
  type EndpointStore,
  MemoryEndpointStore,
  type WebhookEndpoint,
  WebhookEndpoints,
} from './endpoints.js';
import {
  createEvent,
  DEFAULT_MAX_EVENT_BYTES,
  type EventInput,
  eventEnvelope,
  generateId,
  isEventType,
  matchesFilters,
  type WebhookEvent,
} from './events.js';
import {
  type EndpointHealthAlert,
  type EndpointHealthOptions,
  type EndpointHealthState,
  type EndpointHealthStore,
  memoryEndpointHealth,
} from './health.js';
import { type EndpointLimiter, memoryEndpointLimiter } from './limits.js';
import {
  type AttemptRecord,
  type DeadReason,
  type DeliveryLog,
  type DeliveryRecord,
  type DeliveryStatus,
  MemoryDeliveryLog,
} from './log.js';
import { MemoryDeliveryQueue } from './memory-queue.js';
import { WebhookDeliveryClosedError, WebhookEventNotFoundError } from './problems.js';
import type { DeliveryJob, DeliveryQueue, JobOutcome } from './queue.js';
import { type RetrySchedule, retrySchedule } from './schedule.js';
import type { SsrfGuard } from './ssrf.js';

/** Makes one HTTP attempt: `sendAttempt()`, or a stand-in in tests. */
export type SendAttempt = (request: AttemptRequest) => Promise<AttemptResult>;

/** The signature schemes of part 1. */
export type SigningScheme = 'hmac' | 'standard-webhooks';

/** An event dead-lettered, as the `onDeadLetter` hook sees it. */
export interface DeadLetterNotice {
  readonly delivery: DeliveryRecord;
  readonly reason: DeadReason;
  readonly lastAttempt: AttemptRecord;
}

/** A fast failure (400, 401, 403), as the `onFastFailure` hook sees it. */
export interface FastFailureNotice extends DeadLetterNotice {
  readonly endpoint: WebhookEndpoint;
}

/** An endpoint disabled by the engine, as the `onDisable` hook sees it. */
export interface DisableNotice {
  readonly endpoint: WebhookEndpoint;
  readonly by: 'gone' | 'health';
  readonly reason: string;
  readonly alert?: EndpointHealthAlert;
}

/** Options of {@link webhookDelivery}. */
export interface WebhookDeliveryOptions {
  /** Where endpoints are kept. @default a MemoryEndpointStore */
  endpointStore?: EndpointStore;
  /** Where events, deliveries and attempts are kept. @default a MemoryDeliveryLog */
  log?: DeliveryLog;
  /** Where delivery jobs wait. @default a MemoryDeliveryQueue on `clock` */
  queue?: DeliveryQueue;
  /** Time, for every delay. @default the system clock */
  clock?: DeliveryClock;
  /**
   * Refuses endpoint URLs at registration (and, passed to the transport, at
   * connect time): the SSRF guard. `false` turns the registration check off.
   * Required, so that an engine without one is a decision.
   */
  guard: SsrfGuard | false;
  /** Accept `http://` endpoint URLs (local development). @default false */
  allowHttp?: boolean;
  /** How deliveries are signed. @default 'hmac' (`X-Signature: t=,v1=`) */
  signing?: SigningScheme;
  /** The header of the `hmac` scheme. @default 'X-Signature' */
  signatureHeader?: string;
  /**
   * The API's versions: each endpoint pins one (the newest unless it names
   * one) and payloads are shaped for it with `shapePayload`.
   */
  versions?: ApiVersions;
  /** The header that names the version a delivery is shaped for. @default 'Api-Version' */
  versionHeader?: string;
  /** When attempts go. @default retrySchedule() (25 attempts over about 72 h) */
  schedule?: RetrySchedule;
  /** The longest `Retry-After` honoured; longer ones are cut to it. @default 24 hours */
  maxRetryAfterMs?: number;
  /** Hard limit of one attempt, connect and response. @default 5000 */
  timeoutMs?: number;
  /** Most bytes of a response body kept as the excerpt (0 to 1 MiB). @default 2048 */
  maxResponseBytes?: number;
  /**
   * Most bytes of an event's `data` as JSON; `dispatch()` refuses a larger
   * one with a 400. It is stored once and sent on every attempt. @default 1 MiB
   */
  maxEventBytes?: number;
  /**
   * The numbers of the in-process circuit breakers; `false` for none.
   * @default 50% failures over 60 s, 10 attempts at least, open 30 s
   */
  breaker?: Omit<CircuitBreakerOptions, 'now' | 'onStateChange'> | false;
  /**
   * Where the circuits live, instead of `breaker`'s in-process ones:
   * `redisEndpointBreakers()` (`restwell/webhooks/bullmq`) shares one per
   * endpoint over every worker. Not with `breaker`: its numbers are given to it.
   * @default memoryEndpointBreakers(breaker)
   */
  breakers?: EndpointBreakers;
  /**
   * The thresholds of the in-process health monitor (alerts and auto-disable
   * of failing endpoints); `false` for none.
   * @default 90% over an hour, 20 attempts at least, disabled 24 h after
   */
  health?: EndpointHealthOptions | false;
  /**
   * Where endpoint health lives, instead of `health`'s in-process monitor:
   * `redisEndpointHealth()` (`restwell/webhooks/bullmq`) judges every
   * worker's attempts together and raises each alert, recovery and disable
   * once over all of them. Not with `health`: its thresholds are given to it.
   * @default memoryEndpointHealth(health)
   */
  healthStore?: EndpointHealthStore;
  /** Per-endpoint concurrency and rate. @default the in-process limiter */
  limiter?: EndpointLimiter;
  /** Makes one HTTP attempt. @default sendAttempt */
  send?: SendAttempt;
  /** @default 'restwell-webhooks' */
  userAgent?: string;
  /** The data of synthetic test events. @default `{ test: true, message }` */
  testEventData?: (type: string, endpoint: WebhookEndpoint) => unknown;
  /** How often the log is swept of what is past retention, and health re-checked. @default 1 hour */
  sweepIntervalMs?: number;
  /** Server-side log lines: alerts, disables, dead letters, faults. @default the JSON stderr logger */
  logger?: Logger;
  onAlert?: (alert: EndpointHealthAlert) => void | Promise<void>;
  onRecover?: (endpointId: string) => void | Promise<void>;
  onFastFailure?: (notice: FastFailureNotice) => void | Promise<void>;
  onDeadLetter?: (notice: DeadLetterNotice) => void | Promise<void>;
  onDisable?: (notice: DisableNotice) => void | Promise<void>;
  onBreakerStateChange?: (endpointId: string, state: BreakerState, previous: BreakerState) => void;
}

/** What `dispatch()` queued. */
export interface DispatchResult {
  readonly event: WebhookEvent;
  /** One per endpoint (two for an endpoint in dual delivery), with its state: `pending` or `held`. */
  readonly deliveries: readonly {
    readonly id: string;
    readonly endpointId: string;
    readonly version?: string;
    readonly status: DeliveryStatus;
  }[];
}

/** What `replay()` selects in the dead-letter queue. */
export interface ReplayFilter {
  endpointId?: string;
  types?: readonly string[];
  /** The events' `createdAt`, epoch ms or a Date: from (inclusive) … to (exclusive). */
  from?: number | Date;
  to?: number | Date;
  eventIds?: readonly string[];
}

/** An endpoint's delivery statistics. */
export interface EndpointStats {
  readonly endpointId: string;
  /** The window attempts are counted over. */
  readonly windowMs: number;
  readonly attempts: number;
  readonly succeeded: number;
  /** Succeeded over attempts; `undefined` without attempts. */
  readonly successRate?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly breaker: BreakerState;
  /** Deliveries in the dead-letter queue. */
  readonly dlq: number;
  readonly held: number;
  readonly pending: number;
  readonly health: EndpointHealthState;
}

/** The engine; see {@link webhookDelivery}. */
export interface WebhookDelivery {
  /** Registers and manages endpoints; enabling one re-queues its held events. */
  readonly endpoints: WebhookEndpoints;
  readonly log: DeliveryLog;
  readonly queue: DeliveryQueue;
  /** Stores the event and queues a delivery per subscribed endpoint; sends nothing. */
  dispatch<T>(event: EventInput<T>): Promise<DispatchResult>;
  /** Starts the worker in this process: at most `concurrency` attempts in flight in all. */
  startWorker(options?: { concurrency?: number }): void;
  /**
   * Stops taking jobs, waits for the attempts in flight (each ends within
   * `timeoutMs`), closes the queue; `dispatch` then refuses. With `abort: true`
   * the attempts in flight are aborted instead of awaited: each is logged as
   * `aborted`, spends nothing of its retry budget, counts against neither the
   * breaker nor the health of its endpoint, and its job stays queued (on a
   * durable queue; the memory queue ends with the process).
   */
  stop(options?: { abort?: boolean }): Promise<void>;
  /** Delivers the event to the endpoint again, with a fresh retry budget, whatever happened before. */
  resend(eventId: string, endpointId: string): Promise<DeliveryRecord[]>;
  /** Re-queues the dead letters the filter selects, each with a fresh retry budget. */
  replay(
    filter?: ReplayFilter,
  ): Promise<{ readonly replayed: number; readonly deliveryIds: readonly string[] }>;
  /** Queues a synthetic event (marked `test: true`) for one endpoint; no real data is read. */
  sendTestEvent(endpointId: string, type?: string): Promise<DispatchResult>;
  /** Success rate, p50/p99 latency, breaker state and counts, over `windowMs` (default 24 h). */
  stats(endpointId: string, options?: { windowMs?: number }): Promise<EndpointStats>;
}

const OPTIONS = [
  'endpointStore',
  'log',
  'queue',
  'clock',
  'guard',
  'allowHttp',
  'signing',
  'signatureHeader',
  'versions',
  'versionHeader',
  'schedule',
  'maxRetryAfterMs',
  'timeoutMs',
  'maxResponseBytes',
  'maxEventBytes',
  'breaker',
  'breakers',
  'health',
  'healthStore',
  'limiter',
  'send',
  'userAgent',
  'testEventData',
  'sweepIntervalMs',
  'logger',
  'onAlert',
  'onRecover',
  'onFastFailure',
  'onDeadLetter',
  'onDisable',
  'onBreakerStateChange',
] as const;

const HOUR = 60 * 60 * 1000;
const HALF_OPEN_RECHECK_MS = 1000;
/** Statuses that say the request itself is wrong: retrying cannot help (the seed's fast failure). */
const FAST_FAILURE = new Set([400, 401, 403]);
/** Statuses whose `Retry-After` is honoured (RFC 9110 §10.2.3, RFC 6585 §4). */
const RETRY_AFTER = new Set([429, 503]);

/** The engine's breakers: the ones given, the in-process ones of `breaker`, or none. */
function breakersOf(
  options: WebhookDeliveryOptions,
  now: () => number,
): EndpointBreakers | undefined {
  const given = options.breakers;
  if (given !== undefined) {
    if (
      given === null ||
      typeof given !== 'object' ||
      typeof given.tryAcquire !== 'function' ||
      typeof given.record !== 'function' ||
      typeof given.release !== 'function' ||
      typeof given.state !== 'function'
    )
      invalidOption('webhooks', 'breakers', 'an EndpointBreakers (redisEndpointBreakers())', given);
    if (options.breaker !== undefined)
      throw new TypeError(
        'restwell/webhooks: options "breaker" and "breakers" exclude each other: give the circuit\'s numbers to the breakers (redisEndpointBreakers({ client, minimumRequests, ... })).',
      );
    return given;
  }
  if (options.breaker === false) return undefined;
  return memoryEndpointBreakers({ ...options.breaker, now });
}

/** The engine's health: the store given, the in-process one of `health`, or none. */
function healthOf(
  options: WebhookDeliveryOptions,
  now: () => number,
): EndpointHealthStore | undefined {
  const given = options.healthStore;
  if (given !== undefined) {
    if (
      given === null ||
      typeof given !== 'object' ||
      typeof given.record !== 'function' ||
      typeof given.check !== 'function' ||
      typeof given.forget !== 'function' ||
      typeof given.state !== 'function' ||
      typeof given.onTransition !== 'function'
    )
      invalidOption(
        'webhooks',
        'healthStore',
        'an EndpointHealthStore (redisEndpointHealth())',
        given,
      );
    if (options.health !== undefined)
      throw new TypeError(
        'restwell/webhooks: options "health" and "healthStore" exclude each other: give the thresholds to the store (redisEndpointHealth({ client, minimumAttempts, ... })).',
      );
    return given;
  }
  if (options.health === false) return undefined;
  return memoryEndpointHealth({ ...options.health, now });
}

/** The id of the delivery of `eventId` to `endpoint` in `version`'s shape. */
export function deliveryIdOf(
  eventId: string,
  endpoint: EndpointRecord,
  version: string | undefined,
): string {
  return endpoint.versions.length > 1 && version !== undefined
    ? `${eventId}/${endpoint.id}/${version}`
    : `${eventId}/${endpoint.id}`;
}

/** The job id of a delivery's retry budget: BullMQ refuses `:` in custom ids, so `/` and `#`. */
function jobIdOf(deliveryId: string, generation: number): string {
  return generation === 0 ? deliveryId : `${deliveryId}#${generation}`;
}

function versionsOf(endpoint: EndpointRecord): readonly (string | undefined)[] {
  return endpoint.versions.length === 0 ? [undefined] : endpoint.versions;
}

/** An integer option from `min` to `max`, or its default; a TypeError naming it otherwise. */
function numberOption(
  option: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max)
    invalidOption('webhooks', option, `an integer from ${min} to ${max}`, value);
  return value as number;
}

/** A header name option (RFC 9110 §5.1: a token), or its default. */
function headerName(option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/.test(value))
    invalidOption('webhooks', option, 'a header name', value);
  return value;
}

function toMs(value: number | Date | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms))
    throw new ValidationError([{ pointer: `/${option}`, detail: 'must be a time', in: 'body' }]);
  return ms;
}

/**
 * Creates the delivery engine.
 *
 * @example
 * ```ts
 * const delivery = webhookDelivery({ guard: ssrfGuard(), versions: api });
 * const { endpoint, secret } = await delivery.endpoints.create({
 *   url: 'https://shop.example/hooks', eventTypes: ['payment.*'],
 * });
 * delivery.startWorker();
 * await delivery.dispatch({ type: 'payment.succeeded', data: payment }); // queued, not sent
 * ```
 */
export function webhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
  checkOptions('webhooks', options, OPTIONS);
  if (options === undefined) invalidOption('webhooks', 'options', 'an object', options);
  if (options.send !== undefined && typeof options.send !== 'function')
    invalidOption('webhooks', 'send', 'a function', options.send);
  if (options.guard === undefined)
    throw new TypeError(
      'restwell/webhooks: option "guard" is required: an SSRF guard (ssrfGuard()), or false to register URLs unchecked.',
    );
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  const logger = options.logger ?? defaultLogger;
  const store = options.endpointStore ?? new MemoryEndpointStore();
  const log = options.log ?? new MemoryDeliveryLog();
  const queue = options.queue ?? new MemoryDeliveryQueue({ clock, logger });
  const schedule = options.schedule ?? retrySchedule();
  const limiter = options.limiter ?? memoryEndpointLimiter();
  const versions = options.versions;
  const versionHeader = headerName('versionHeader', options.versionHeader, 'Api-Version');
  const signing = options.signing ?? 'hmac';
  if (signing !== 'hmac' && signing !== 'standard-webhooks')
    invalidOption('webhooks', 'signing', "'hmac' or 'standard-webhooks'", signing);
  // Checked here, loudly: a bad value left to the transport would fail every attempt as the
  // receiver's fault, and the breaker and health would disable sound endpoints for it.
  const signatureHeader = headerName('signatureHeader', options.signatureHeader, 'X-Signature');
  const maxRetryAfterMs = numberOption('maxRetryAfterMs', options.maxRetryAfterMs, 24 * HOUR, 0);
  const timeoutMs = numberOption('timeoutMs', options.timeoutMs, 5000, 1, 10 * 60_000);
  const maxResponseBytes = numberOption(
    'maxResponseBytes',
    options.maxResponseBytes,
    2048,
    0,
    1024 * 1024,
  );
  const maxEventBytes = numberOption(
    'maxEventBytes',
    options.maxEventBytes,
    DEFAULT_MAX_EVENT_BYTES,
    1,
  );
  const userAgent = options.userAgent ?? 'restwell-webhooks';
  if (typeof userAgent !== 'string' || !/^[\x21-\x7e][\x20-\x7e]{0,199}$/.test(userAgent))
    invalidOption('webhooks', 'userAgent', 'printable ASCII of at most 200 characters', userAgent);
  const sweepIntervalMs = numberOption('sweepIntervalMs', options.sweepIntervalMs, HOUR, 1000);
  const send = options.send ?? sendAttempt;
  const guard = options.guard === false ? undefined : options.guard;

  /** Runs a hook; what it throws or rejects is logged, never thrown into the worker. */
  function hook<A extends unknown[]>(
    name: string,
    fn: ((...args: A) => void | Promise<void>) | undefined,
    ...args: A
  ): void {
    if (fn === undefined) return;
    try {
      const result = fn(...args);
      if (result instanceof Promise)
        result.catch((err: unknown) =>
          logger.error(`restwell/webhooks: the ${name} hook failed`, { err }),
        );
    } catch (err) {
      logger.error(`restwell/webhooks: the ${name} hook failed`, { err });
    }
  }

  const endpoints: WebhookEndpoints = new WebhookEndpoints({
    store,
    ...(guard === undefined ? {} : { guard }),
    allowHttp: options.allowHttp === true,
    versions: versions?.supported ?? [],
    ...(versions === undefined ? {} : { defaultVersion: versions.newest.name }),
    now,
    onEnable: async (endpoint) => {
      // A fresh start: the counts and alert of before the disable are history. A store that
      // fails to forget is logged; the endpoint is enabled all the same.
      if (health !== undefined)
        await Promise.resolve()
          .then(() => health.forget(endpoint.id))
          .catch((err: unknown) =>
            logger.error('restwell/webhooks: the endpoint health could not forget an endpoint', {
              endpointId: endpoint.id,
              err,
            }),
          );
      await requeue({ endpointId: endpoint.id, status: 'held' });
    },
  });

  const breakers = breakersOf(options, now);
  const unlistenBreakers = breakers?.onStateChange?.((endpointId, state, previous) => {
    logger.info('restwell/webhooks: circuit breaker state changed', {
      endpointId,
      state,
      previous,
    });
    hook('onBreakerStateChange', options.onBreakerStateChange, endpointId, state, previous);
  });
  /** Gives back a permit whose attempt says nothing about the receiver; never thrown. */
  async function releasePermit(endpointId: string, permit: BreakerPermit | undefined) {
    if (breakers === undefined || permit === undefined || !permit.ok) return;
    try {
      await breakers.release(endpointId, now(), permit.probe);
    } catch (err) {
      logger.error('restwell/webhooks: the circuit breaker could not give back a permit', {
        endpointId,
        err,
      });
    }
  }

  const healthTimers = new Set<unknown>();
  const shutdown = new AbortController();
  // Each attempt in flight listens for the shutdown, and takes its listener off when it ends:
  // as many as the worker's concurrency at once, which is no leak (Node warns past 10).
  setMaxListeners(0, shutdown.signal);
  const health = healthOf(options, now);
  /** Judges health again (one endpoint, or every one due); never thrown, a failure logged. */
  async function checkHealth(endpointId?: string): Promise<void> {
    if (health === undefined) return;
    try {
      await health.check(now(), endpointId);
    } catch (err) {
      logger.error('restwell/webhooks: the endpoint health could not be checked', {
        ...(endpointId === undefined ? {} : { endpointId }),
        err,
      });
    }
  }
  /**
   * Disables the alerted endpoint when its time comes, not at the next sweep (up to
   * sweepIntervalMs late) nor at its next attempt, which an open breaker or a quiet endpoint
   * may not make. A shared store keeps its own time, which may run a little ahead of this
   * clock: while the same alert still stands, the timer is armed again.
   */
  function armDisable(alert: EndpointHealthAlert): void {
    if (alert.disableAt === undefined || !working) return;
    const timer = clock.setTimeout(
      async () => {
        healthTimers.delete(timer);
        await checkHealth(alert.endpointId);
        if (health === undefined || !working) return;
        try {
          const still = (await health.state(alert.endpointId, now())).alert;
          if (still !== undefined && still.since === alert.since)
            armDisable({ ...still, disableAt: Math.max(still.disableAt ?? 0, now() + 100) });
        } catch (err) {
          // The sweep looks again, and so does the endpoint's next attempt.
          logger.error('restwell/webhooks: the endpoint health could not be read', {
            endpointId: alert.endpointId,
            err,
          });
        }
      },
      Math.max(0, alert.disableAt - now()),
    );
    healthTimers.add(timer);
  }
  // Each transition is told once, to the process whose call made it (with a shared store, one
  // worker of all): that process logs it, calls the hook, and disables the endpoint.
  const unlistenHealth = health?.onTransition((transition) => {
    const { alert } = transition;
    switch (transition.type) {
      case 'alert':
        logger.warn('restwell/webhooks: endpoint failing most deliveries', { ...alert });
        armDisable(alert);
        hook('onAlert', options.onAlert, alert);
        return;
      case 'recover':
        logger.info('restwell/webhooks: endpoint recovered', { endpointId: alert.endpointId });
        hook('onRecover', options.onRecover, alert.endpointId);
        return;
      case 'disable': {
        const reason = `Disabled after failing ${Math.round(alert.failureRatio * 100)}% of deliveries since ${new Date(alert.since).toISOString()}.`;
        void disableBy(alert.endpointId, 'health', reason, alert);
        return;
      }
    }
  });

  async function disableBy(
    endpointId: string,
    by: 'gone' | 'health',
    reason: string,
    alert?: EndpointHealthAlert,
  ): Promise<void> {
    try {
      // Already disabled (by its owner, or by another attempt's 410 in flight): keep that
      // reason, and tell the hooks once.
      if ((await store.get(endpointId))?.disabled !== undefined) return;
      const endpoint = await endpoints.disable(endpointId, reason, by);
      logger.warn('restwell/webhooks: endpoint disabled', { endpointId, by, reason });
      hook('onDisable', options.onDisable, {
        endpoint,
        by,
        reason,
        ...(alert === undefined ? {} : { alert }),
      });
    } catch (err) {
      logger.error('restwell/webhooks: an endpoint could not be disabled', { endpointId, err });
    }
  }

  const signers = new Map<
    string,
    { key: string; sign: (body: string, id: string) => Record<string, string> }
  >();
  function signerOf(record: EndpointRecord, at: number) {
    const secrets = endpoints.activeSecrets(record, at);
    const key = secrets.join(' ');
    const cached = signers.get(record.id);
    if (cached !== undefined && cached.key === key) return cached.sign;
    let sign: (body: string, id: string) => Record<string, string>;
    if (signing === 'hmac') {
      const signer = hmacSigner({ secrets, header: signatureHeader, now });
      sign = (body) => signer.sign(body);
    } else {
      const signer = standardWebhooksSigner({ secrets, now });
      sign = (body, id) => signer.sign(body, { id });
    }
    signers.set(record.id, { key, sign });
    return sign;
  }

  function build(event: WebhookEvent, record: EndpointRecord, version: string | undefined) {
    let payload: unknown = eventEnvelope(event, record.payload);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': userAgent,
    };
    if (version !== undefined && versions !== undefined) {
      payload = versions.shapePayload(payload, { version, type: event.type });
      headers[versionHeader] = version;
      const policy = versions.get(version)?.policy;
      // RFC 9745 §2 and RFC 8594 §3, as the versioning module sends them on responses.
      if (policy?.deprecationHeader !== undefined) headers.deprecation = policy.deprecationHeader;
      if (policy?.sunsetHeader !== undefined) headers.sunset = policy.sunsetHeader;
      if (policy !== undefined && policy.links.length > 0) headers.link = policy.links.join(', ');
    }
    const body = JSON.stringify(payload);
    // Dual delivery: each shape is its own message (Standard Webhooks: a webhook-id per message).
    const messageId =
      record.versions.length > 1 && version !== undefined ? `${event.id}/${version}` : event.id;
    Object.assign(headers, signerOf(record, now())(body, messageId));
    return { body, headers };
  }

  let closed = false;
  let working = false;

  async function queueDelivery(
    event: WebhookEvent,
    record: EndpointRecord,
    version: string | undefined,
  ): Promise<DispatchResult['deliveries'][number]> {
    const id = deliveryIdOf(event.id, record, version);
    const at = now();
    const status: DeliveryStatus = record.disabled === undefined ? 'pending' : 'held';
    const inserted = await log.insertDelivery({
      id,
      eventId: event.id,
      eventType: event.type,
      eventCreatedAt: Date.parse(event.createdAt),
      endpointId: record.id,
      ...(version === undefined ? {} : { version }),
      status,
      generation: 0,
      attempts: 0,
      totalAttempts: 0,
      ...(event.test === true ? { test: true } : {}),
      createdAt: at,
      updatedAt: at,
    });
    const current = inserted ? undefined : await log.getDelivery(id);
    // Dispatching an event again (an outbox relay's retry) queues nothing twice; a delivery
    // stored but not yet queued (a crash in between) is queued now, the queue ignoring a duplicate.
    if (
      inserted ? status === 'pending' : current?.status === 'pending' && current.generation === 0
    ) {
      await queue.add(job(id, event.id, record.id, version, 0));
    } else if (inserted) {
      const held = await log.getDelivery(id);
      if (held !== undefined) await unlessEnabledMeanwhile(held);
    }
    return {
      id,
      endpointId: record.id,
      ...(version === undefined ? {} : { version }),
      status: current?.status ?? status,
    };
  }

  function job(
    deliveryId: string,
    eventId: string,
    endpointId: string,
    version: string | undefined,
    generation: number,
  ): DeliveryJob {
    return {
      id: jobIdOf(deliveryId, generation),
      deliveryId,
      eventId,
      endpointId,
      ...(version === undefined ? {} : { version }),
      attempts: 0,
      generation,
    };
  }

  /** A fresh retry budget for one delivery: a new generation, queued (or held if its endpoint is disabled). */
  async function restart(
    delivery: DeliveryRecord,
    record: EndpointRecord,
  ): Promise<DeliveryRecord> {
    const held = record.disabled !== undefined;
    const updated = await log.updateDelivery(delivery.id, (d) => {
      const { deadReason: _d, nextAttemptAt: _n, ...rest } = d;
      return {
        ...rest,
        status: held ? 'held' : 'pending',
        generation: d.generation + 1,
        attempts: 0,
        updatedAt: now(),
      };
    });
    if (updated === undefined) return delivery;
    if (!held) {
      await queue.add(
        job(updated.id, updated.eventId, updated.endpointId, updated.version, updated.generation),
      );
    }
    return updated;
  }

  async function requeue(query: {
    endpointId?: string;
    status: DeliveryStatus;
    types?: readonly string[];
    from?: number;
    to?: number;
    eventIds?: readonly string[];
  }): Promise<string[]> {
    // Collected first: restarting changes the state the query selects on.
    const selected: DeliveryRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await log.queryDeliveries({
        ...query,
        limit: 500,
        ...(cursor === undefined ? {} : { cursor }),
      });
      selected.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const ids: string[] = [];
    const records = new Map<string, EndpointRecord | undefined>();
    for (const delivery of selected) {
      if (!records.has(delivery.endpointId))
        records.set(delivery.endpointId, await store.get(delivery.endpointId));
      const record = records.get(delivery.endpointId);
      if (record === undefined) continue;
      await restart(delivery, record);
      ids.push(delivery.id);
    }
    return ids;
  }

  /**
   * Settles the delivery as `change` says, unless a replay or resend started a
   * new budget meanwhile (its generation moved on): then only the attempt is
   * counted, and `undefined` says the job is stale.
   */
  async function settle(
    current: DeliveryJob,
    change: Partial<DeliveryRecord> & { status: DeliveryStatus },
    attempted: boolean,
  ): Promise<DeliveryRecord | undefined> {
    let applied = false;
    const record = await log.updateDelivery(current.deliveryId, (d) => {
      const totalAttempts = d.totalAttempts + (attempted ? 1 : 0);
      if (d.generation !== current.generation) return { ...d, totalAttempts };
      applied = true;
      const { nextAttemptAt: _n, ...rest } = d;
      return { ...rest, ...change, totalAttempts, updatedAt: now() };
    });
    return applied ? record : undefined;
  }

  async function finish(
    current: DeliveryJob,
    change: Partial<DeliveryRecord> & { status: DeliveryStatus },
  ): Promise<DeliveryRecord | undefined> {
    return settle(current, change, false);
  }

  /** A payload that could not be built: dead-lettered at once, with the error in the log. */
  async function payloadFailure(
    current: DeliveryJob,
    delivery: DeliveryRecord,
    event: WebhookEvent,
    record: EndpointRecord,
    err: unknown,
  ): Promise<JobOutcome> {
    const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const attempt: AttemptRecord = {
      deliveryId: delivery.id,
      eventId: event.id,
      eventType: event.type,
      endpointId: record.id,
      ...(current.version === undefined ? {} : { version: current.version }),
      generation: current.generation,
      attempt: current.attempts + 1,
      at: now(),
      durationMs: 0,
      ok: false,
      failure: 'payload',
      message:
        text.length > 300
          ? `the payload could not be built: ${text.slice(0, 300)}…`
          : `the payload could not be built: ${text}`,
      ...(event.test === true ? { test: true } : {}),
    };
    await log.recordAttempt(attempt);
    const dead = await settle(
      current,
      { status: 'dead', deadReason: 'payload', attempts: attempt.attempt, lastFailure: 'payload' },
      true,
    );
    if (dead !== undefined) {
      logger.error('restwell/webhooks: a delivery payload could not be built; dead-lettered', {
        deliveryId: dead.id,
        endpointId: record.id,
        ...(current.version === undefined ? {} : { version: current.version }),
        err,
      });
      hook('onDeadLetter', options.onDeadLetter, {
        delivery: dead,
        reason: 'payload',
        lastAttempt: attempt,
      });
    }
    return { type: 'done' };
  }

  /**
   * A delivery just held for a disabled endpoint: `enable()` may have run
   * between reading the endpoint and holding it, re-queuing the held
   * deliveries it found, which this one was not yet. Look again.
   */
  async function unlessEnabledMeanwhile(held: DeliveryRecord): Promise<void> {
    const again = await store.get(held.endpointId);
    if (again !== undefined && again.disabled === undefined) await restart(held, again);
  }

  function delay(current: DeliveryJob, ms: number): JobOutcome {
    // Spread re-delays a little, so that jobs turned away together do not return together.
    return { type: 'delay', at: now() + Math.ceil(ms * (1 + Math.random() * 0.2)), job: current };
  }

  async function process(current: DeliveryJob): Promise<JobOutcome> {
    const delivery = await log.getDelivery(current.deliveryId);
    // A job of an earlier budget (a replay or resend superseded it), or one already settled.
    if (
      delivery === undefined ||
      delivery.generation !== current.generation ||
      (delivery.status !== 'pending' && delivery.status !== 'retrying')
    ) {
      return { type: 'done' };
    }
    const record = await store.get(current.endpointId);
    if (record === undefined) {
      await finish(current, { status: 'canceled' });
      return { type: 'done' };
    }
    // Kept, not dropped: enabling the endpoint queues it again.
    if (record.disabled !== undefined) {
      const held = await finish(current, { status: 'held' });
      if (held !== undefined) await unlessEnabledMeanwhile(held);
      return { type: 'done' };
    }
    const event = await log.getEvent(current.eventId);
    if (event === undefined) {
      await finish(current, { status: 'canceled', lastFailure: 'event-expired' });
      return { type: 'done' };
    }
    // A limiter that fails (its store down) throws here, before any attempt: the queue runs the
    // job again after its faultDelayMs, logged, and nothing counts against the receiver.
    const slot = await limiter.tryAcquire(record.id, record, now());
    if (!slot.ok) return delay(current, slot.retryInMs);
    let result: AttemptResult;
    let unbuilt: { readonly err: unknown } | undefined;
    try {
      // A breaker that fails (its store down) throws here, before any attempt, as the limiter
      // does: the queue runs the job again after its faultDelayMs, and the slot is given back.
      const permit =
        breakers === undefined ? undefined : await breakers.tryAcquire(record.id, now());
      // An open circuit: wait for it without spending an attempt.
      if (permit !== undefined && !permit.ok) {
        // Half-open with the probes out: look again soon, as their success closes the
        // circuit long before the breaker would give them up.
        const at =
          permit.state === 'half-open'
            ? Math.min(permit.retryAt, now() + HALF_OPEN_RECHECK_MS)
            : permit.retryAt;
        return { type: 'delay', at: Math.max(at, now() + 1), job: current };
      }
      let built: { body: string; headers: Record<string, string> } | undefined;
      try {
        built = build(event, record, current.version);
      } catch (err) {
        // The sender's own fault (a migration that throws, a version no longer served):
        // nothing was sent, so the breaker counts nothing, and no retry would mend it.
        await releasePermit(record.id, permit);
        unbuilt = { err };
      }
      if (built === undefined) {
        result = { ok: false, startedAt: now(), durationMs: 0 };
      } else {
        try {
          result = await send({
            url: record.url,
            body: built.body,
            headers: built.headers,
            timeoutMs,
            maxRetryAfterMs,
            maxResponseBytes,
            ...(guard === undefined ? {} : { guard }),
            signal: shutdown.signal,
            now,
          });
        } catch (err) {
          // Only the engine's own faults land here (the transport never throws): a probe is
          // given back, and nothing is counted against the receiver.
          await releasePermit(record.id, permit);
          throw err;
        }
        // An attempt aborted by stop() says nothing about the receiver.
        if (result.failure === 'aborted') await releasePermit(record.id, permit);
        else if (breakers !== undefined && permit !== undefined) {
          // Never thrown: the attempt was made and must be logged; a probe not recorded is
          // given up after openMs.
          const outcome = result.ok;
          await Promise.resolve()
            .then(() =>
              breakers.record(record.id, outcome, now(), permit.ok ? permit.probe : undefined),
            )
            .catch((err: unknown) =>
              logger.error('restwell/webhooks: the circuit breaker could not record an attempt', {
                endpointId: record.id,
                err,
              }),
            );
        }
      }
    } finally {
      // Never thrown: the attempt is made and must be recorded; a lease not given back expires.
      await Promise.resolve()
        .then(() => limiter.release(record.id, now(), slot.lease))
        .catch((err: unknown) =>
          logger.error('restwell/webhooks: the endpoint limiter could not release a slot', {
            endpointId: record.id,
            err,
          }),
        );
    }
    if (unbuilt !== undefined) return payloadFailure(current, delivery, event, record, unbuilt.err);
    if (result.failure !== 'aborted' && health !== undefined) {
      // Never thrown: the attempt was made and must be logged and settled; a store that cannot
      // count it is logged, and the outcome is missing from the share.
      const outcome = result.ok;
      await Promise.resolve()
        .then(() => health.record(record.id, outcome, now()))
        .catch((err: unknown) =>
          logger.error('restwell/webhooks: the endpoint health could not record an attempt', {
            endpointId: record.id,
            err,
          }),
        );
    }
    const attempt: AttemptRecord = {
      deliveryId: delivery.id,
      eventId: event.id,
      eventType: event.type,
      endpointId: record.id,
      ...(current.version === undefined ? {} : { version: current.version }),
      generation: current.generation,
      attempt: current.attempts + 1,
      at: result.startedAt,
      durationMs: result.durationMs,
      ok: result.ok,
      ...(result.status === undefined ? {} : { status: result.status }),
      ...(result.failure === undefined ? {} : { failure: result.failure }),
      ...(result.message === undefined ? {} : { message: result.message }),
      ...(result.responseExcerpt === undefined ? {} : { responseExcerpt: result.responseExcerpt }),
      ...(event.test === true ? { test: true } : {}),
    };
    await log.recordAttempt(attempt);
    if (result.failure === 'aborted') {
      // Logged, as the request may have reached the receiver, but not spent: the job runs
      // again with the same budget when a worker takes it.
      return { type: 'delay', at: now(), job: current };
    }
    const counts = {
      attempts: attempt.attempt,
      ...(result.status === undefined ? {} : { lastStatus: result.status }),
      ...(result.failure === undefined ? {} : { lastFailure: result.failure }),
    };
    if (result.ok) {
      await settle(current, { status: 'delivered', ...counts }, true);
      return { type: 'done' };
    }
    if (result.status === 410) {
      // 410 Gone: the receiver says the endpoint is no more. Its events are held from now on.
      await settle(current, { status: 'held', ...counts }, true);
      await disableBy(record.id, 'gone', 'The endpoint answered 410 Gone.');
      return { type: 'done' };
    }
    if (result.status !== undefined && FAST_FAILURE.has(result.status)) {
      const dead = await settle(
        current,
        {
          status: 'dead',
          deadReason: 'fast-failure',
          ...counts,
        },
        true,
      );
      if (dead !== undefined) {
        logger.warn('restwell/webhooks: delivery refused by the receiver; not retried', {
          deliveryId: dead.id,
          endpointId: record.id,
          status: result.status,
        });
        const notice = { delivery: dead, reason: 'fast-failure' as const, lastAttempt: attempt };
        hook('onFastFailure', options.onFastFailure, {
          ...notice,
          endpoint: endpoints.view(record),
        });
        hook('onDeadLetter', options.onDeadLetter, notice);
      }
      return { type: 'done' };
    }
    const floor =
      result.status !== undefined &&
      RETRY_AFTER.has(result.status) &&
      result.retryAfterMs !== undefined
        ? Math.min(result.retryAfterMs, maxRetryAfterMs)
        : undefined;
    const wait = schedule.delayBefore(attempt.attempt + 1, floor);
    if (wait === undefined) {
      const dead = await settle(
        current,
        {
          status: 'dead',
          deadReason: 'exhausted',
          ...counts,
        },
        true,
      );
      if (dead !== undefined) {
        logger.warn('restwell/webhooks: delivery dead-lettered after its last attempt', {
          deliveryId: dead.id,
          endpointId: record.id,
          attempts: attempt.attempt,
        });
        hook('onDeadLetter', options.onDeadLetter, {
          delivery: dead,
          reason: 'exhausted',
          lastAttempt: attempt,
        });
      }
      return { type: 'done' };
    }
    const at = now() + wait;
    const retrying = await settle(
      current,
      { status: 'retrying', ...counts, nextAttemptAt: at },
      true,
    );
    if (retrying === undefined) return { type: 'done' };
    return { type: 'delay', at, job: { ...current, attempts: attempt.attempt } };
  }

  let sweepTimer: unknown;
  function armSweep(): void {
    sweepTimer = clock.setTimeout(async () => {
      await checkHealth();
      try {
        await log.sweep(now());
      } catch (err) {
        logger.error('restwell/webhooks: the delivery log sweep failed', { err });
      }
      if (working) armSweep();
    }, sweepIntervalMs);
  }

  return {
    endpoints,
    log,
    queue,

    async dispatch(input) {
      if (closed) throw new WebhookDeliveryClosedError();
      const event = createEvent(input, now, maxEventBytes);
      await log.putEvent(event);
      const stored = (await log.getEvent(event.id)) ?? event;
      const deliveries: DispatchResult['deliveries'][number][] = [];
      for (const record of await store.list()) {
        if (!matchesFilters(stored.type, record.eventTypes)) continue;
        for (const version of versionsOf(record))
          deliveries.push(await queueDelivery(stored, record, version));
      }
      return { event: stored, deliveries };
    },

    startWorker(workerOptions = {}) {
      if (closed) throw new WebhookDeliveryClosedError();
      if (working) return;
      const concurrency = workerOptions.concurrency ?? 32;
      if (!Number.isSafeInteger(concurrency) || concurrency < 1)
        invalidOption('webhooks', 'concurrency', 'a positive integer', concurrency);
      working = true;
      queue.process(process, { concurrency });
      armSweep();
    },

    async stop(stopOptions = {}) {
      checkOptions('webhooks stop', stopOptions, ['abort']);
      closed = true;
      working = false;
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer);
      for (const timer of healthTimers) clock.clearTimeout(timer);
      healthTimers.clear();
      unlistenBreakers?.();
      unlistenHealth?.();
      // The queue stops taking jobs first, so that only the attempts in flight are aborted.
      const closing = queue.close();
      if (stopOptions.abort === true) shutdown.abort();
      await closing;
    },

    async resend(eventId, endpointId) {
      if (closed) throw new WebhookDeliveryClosedError();
      const event = await log.getEvent(eventId);
      if (event === undefined) throw new WebhookEventNotFoundError(eventId);
      const record = await endpoints.record(endpointId);
      const out: DeliveryRecord[] = [];
      for (const version of versionsOf(record)) {
        const id = deliveryIdOf(eventId, record, version);
        const existing = await log.getDelivery(id);
        if (existing === undefined) {
          await queueDelivery(event, record, version);
          const created = await log.getDelivery(id);
          if (created !== undefined) out.push(created);
        } else {
          out.push(await restart(existing, record));
        }
      }
      return out;
    },

    async replay(filter = {}) {
      if (closed) throw new WebhookDeliveryClosedError();
      checkOptions('webhooks replay', filter, ['endpointId', 'types', 'from', 'to', 'eventIds']);
      if (
        filter.types !== undefined &&
        (!Array.isArray(filter.types) || !filter.types.every(isEventType))
      )
        throw new ValidationError([
          { pointer: '/types', detail: 'must be a list of event types', in: 'body' },
        ]);
      if (
        filter.eventIds !== undefined &&
        (!Array.isArray(filter.eventIds) || !filter.eventIds.every((i) => typeof i === 'string'))
      )
        throw new ValidationError([
          { pointer: '/eventIds', detail: 'must be a list of event ids', in: 'body' },
        ]);
      if (filter.endpointId !== undefined) await endpoints.record(filter.endpointId);
      const from = toMs(filter.from, 'from');
      const to = toMs(filter.to, 'to');
      const deliveryIds = await requeue({
        status: 'dead',
        ...(filter.endpointId === undefined ? {} : { endpointId: filter.endpointId }),
        ...(filter.types === undefined ? {} : { types: filter.types }),
        ...(filter.eventIds === undefined ? {} : { eventIds: filter.eventIds }),
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
      });
      return { replayed: deliveryIds.length, deliveryIds };
    },

    async sendTestEvent(endpointId, type = 'webhook.test') {
      if (closed) throw new WebhookDeliveryClosedError();
      if (!isEventType(type))
        throw new ValidationError([
          { pointer: '/type', detail: 'must be an event type', in: 'body' },
        ]);
      const record = await endpoints.record(endpointId);
      const view = endpoints.view(record);
      const data =
        options.testEventData?.(type, view) ??
        ({
          test: true,
          message: `A test event of type ${type}; it describes no real data.`,
        } as const);
      const event: WebhookEvent = {
        ...createEvent({ id: generateId('evt_test'), type, data }, now, maxEventBytes),
        test: true,
      };
      await log.putEvent(event);
      const deliveries = [];
      for (const version of versionsOf(record))
        deliveries.push(await queueDelivery(event, record, version));
      return { event, deliveries };
    },

    async stats(endpointId, statsOptions = {}) {
      const windowMs = statsOptions.windowMs ?? 24 * HOUR;
      if (!Number.isSafeInteger(windowMs) || windowMs <= 0)
        throw new ValidationError([
          { pointer: '/windowMs', detail: 'must be a positive integer of ms', in: 'query' },
        ]);
      await endpoints.record(endpointId);
      const s = await log.endpointStats(endpointId, now() - windowMs);
      return {
        endpointId,
        windowMs,
        attempts: s.attempts,
        succeeded: s.succeeded,
        ...(s.attempts === 0 ? {} : { successRate: s.succeeded / s.attempts }),
        ...(s.p50Ms === undefined ? {} : { p50Ms: s.p50Ms }),
        ...(s.p99Ms === undefined ? {} : { p99Ms: s.p99Ms }),
        breaker: breakers === undefined ? 'closed' : await breakers.state(endpointId, now()),
        dlq: s.dead,
        held: s.held,
        pending: s.pending,
        health:
          health === undefined
            ? { attempts: 0, failures: 0, failureRatio: undefined }
            : await health.state(endpointId, now()),
      };
    },
  };
}
