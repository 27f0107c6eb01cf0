/**
 * Acknowledge fast, process asynchronously. A receiver answers 200 as soon as
 * an event is handed over, and the work happens after the response:
 * {@link WebhookQueue} is the one method a receiver needs, which the
 * in-process {@link InProcessQueue} here implements, and so can a durable
 * queue.
 *
 * The in-process queue retries a failed event with exponential backoff and
 * jitter, and after its last attempt logs an error and calls `onFailure`
 * (where an application forgets the event's id in the ledger, so that the
 * sender's manual resend is processed, or writes it to a table of its own). A
 * failure is never dropped silently. What it cannot survive is the process
 * itself ending: events still pending then are lost, which is why `close()`
 * waits for them on shutdown, and why work that must survive a crash belongs
 * in a durable queue, or in the request itself (answer 200 after the commit).
 */
import { checkOptions, invalidOption } from '../core/errors.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { WebhookQueueFullError } from './errors.js';

/** Where a receiver hands a verified event once it has claimed it. */
export interface WebhookQueue<T = unknown> {
  /**
   * Accepts `event` for processing, or throws (the receiver then releases the
   * claim and the sender retries later). Resolving means the queue owns it.
   */
  enqueue(event: T): void | Promise<void>;
}

/** Options of {@link InProcessQueue}. */
export interface InProcessQueueOptions<T> {
  /** Processes one event; a throw or a rejection is a failed attempt. Required. */
  process: (event: T) => void | Promise<void>;
  /** How many events are processed at once. @default 1 */
  concurrency?: number;
  /** Attempts per event, the first included. @default 5 */
  attempts?: number;
  /**
   * The delay before retry `n` (1 for the first retry), in milliseconds, at
   * most 2^31 - 1 (longer ones are shortened to it, as far as a timer reaches).
   * @default exponential from 1 s, doubling, capped at 5 min, each delay
   * stretched by a random 0 to 20 % (jitter, so that retries after an outage
   * do not all land at once)
   */
  retryDelayMs?: (retry: number) => number;
  /**
   * Most events held (waiting, running or between attempts). Past it,
   * `enqueue` throws `WebhookQueueFullError` (503 with `Retry-After`): the sender
   * keeps the event and retries, which is safer than an unbounded backlog.
   * @default 10_000
   */
  maxPending?: number;
  /**
   * Called once with an event whose last attempt failed, after the error is
   * logged. What it throws is logged too.
   */
  onFailure?: (event: T, error: unknown, attempts: number) => void | Promise<void>;
  /** Where failed attempts and failed events are logged. @default the JSON stderr logger */
  logger?: Logger;
}

const OPTION_NAMES = [
  'process',
  'concurrency',
  'attempts',
  'retryDelayMs',
  'maxPending',
  'onFailure',
  'logger',
] as const;

/** The longest delay a Node timer keeps (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** The default retry delay: 1 s, 2 s, 4 s, ... up to 5 min, each times 1 to 1.2. */
export function backoffDelayMs(retry: number): number {
  const base = Math.min(1000 * 2 ** Math.max(0, retry - 1), 300_000);
  return Math.round(base * (1 + Math.random() * 0.2));
}

interface Job<T> {
  readonly event: T;
  attempt: number;
}

/**
 * An in-process queue with retries (see the file comment).
 *
 * @example
 * ```ts
 * const queue = new InProcessQueue<ReceivedWebhook>({
 *   process: (webhook) => applyPayment(webhook.payload),
 *   onFailure: (webhook) => ledger.forget(webhook.id!),
 * });
 * app.post('/webhooks/restwell', rw(webhookReceiver({ verify, dedupe: ledger, queue })));
 * process.once('SIGTERM', () => queue.close().then(() => process.exit(0)));
 * ```
 */
export class InProcessQueue<T = unknown> implements WebhookQueue<T> {
  private readonly processOne: (event: T) => void | Promise<void>;
  private readonly concurrency: number;
  private readonly attempts: number;
  private readonly retryDelayMs: (retry: number) => number;
  private readonly maxPending: number;
  private readonly onFailure:
    | ((event: T, error: unknown, attempts: number) => void | Promise<void>)
    | undefined;
  private readonly logger: Logger;
  private readonly ready: Job<T>[] = [];
  private running = 0;
  private held = 0;
  private closed = false;
  private idle: Array<() => void> = [];

  constructor(options: InProcessQueueOptions<T>) {
    checkOptions('webhooks', options, OPTION_NAMES);
    const {
      process,
      concurrency = 1,
      attempts = 5,
      retryDelayMs = backoffDelayMs,
      maxPending = 10_000,
      onFailure,
      logger = defaultLogger,
    } = options ?? ({} as InProcessQueueOptions<T>);
    if (typeof process !== 'function') invalidOption('webhooks', 'process', 'a function', process);
    for (const [name, value] of Object.entries({ concurrency, attempts, maxPending })) {
      if (!Number.isSafeInteger(value) || value < 1)
        invalidOption('webhooks', name, 'a positive integer', value);
    }
    if (typeof retryDelayMs !== 'function')
      invalidOption('webhooks', 'retryDelayMs', 'a function of the retry number', retryDelayMs);
    if (onFailure !== undefined && typeof onFailure !== 'function')
      invalidOption('webhooks', 'onFailure', 'a function', onFailure);
    if (logger === null || typeof logger !== 'object' || typeof logger.error !== 'function')
      invalidOption('webhooks', 'logger', 'a logger with error() and warn()', logger);
    this.processOne = process;
    this.concurrency = concurrency;
    this.attempts = attempts;
    this.retryDelayMs = retryDelayMs;
    this.maxPending = maxPending;
    this.onFailure = onFailure;
    this.logger = logger;
  }

  /** Events held: waiting, running, or between attempts. */
  get pending(): number {
    return this.held;
  }

  /**
   * Accepts `event`; it is processed after the caller's response. Throws
   * `WebhookQueueFullError` when `maxPending` events are held or the queue is closed.
   */
  enqueue(event: T): void {
    if (this.closed || this.held >= this.maxPending) throw new WebhookQueueFullError();
    this.held++;
    this.ready.push({ event, attempt: 0 });
    // After the current turn: the receiver's response goes out before the work starts.
    setImmediate(() => this.pump());
  }

  /** Resolves once nothing is held (every event processed, or failed for good). */
  drain(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Refuses new events and resolves once those held are done. For a graceful shutdown. */
  close(): Promise<void> {
    this.closed = true;
    return this.drain();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.ready.length > 0) {
      const job = this.ready.shift()!;
      this.running++;
      void this.run(job);
    }
  }

  private async run(job: Job<T>): Promise<void> {
    job.attempt++;
    let failure: { error: unknown } | undefined;
    try {
      await this.processOne(job.event);
    } catch (error) {
      failure = { error };
    }
    this.running--;
    if (failure === undefined) {
      this.settle();
    } else if (job.attempt < this.attempts) {
      let delay = Number(this.retryDelayMs(job.attempt));
      if (!Number.isFinite(delay) || delay < 0) delay = backoffDelayMs(job.attempt);
      // Node runs a timer of more than 2^31 - 1 ms after 1 ms instead (TimeoutOverflowWarning):
      // a delay of a month would retry at once.
      delay = Math.min(delay, MAX_TIMER_MS);
      this.logger.warn('restwell/webhooks: processing a webhook event failed; it will be retried', {
        attempt: job.attempt,
        attempts: this.attempts,
        retryInMs: delay,
        err: failure.error,
      });
      // Not unref'd: a process with events still to retry stays up until they are done.
      setTimeout(() => {
        this.ready.push(job);
        this.pump();
      }, delay);
    } else {
      this.logger.error('restwell/webhooks: processing a webhook event failed for good', {
        attempts: job.attempt,
        err: failure.error,
      });
      try {
        await this.onFailure?.(job.event, failure.error, job.attempt);
      } catch (err) {
        this.logger.error("restwell/webhooks: the queue's onFailure callback failed", { err });
      }
      this.settle();
    }
    this.pump();
  }

  private settle(): void {
    this.held--;
    if (this.held === 0 && this.idle.length > 0) {
      const idle = this.idle;
      this.idle = [];
      for (const resolve of idle) resolve();
    }
  }
}
