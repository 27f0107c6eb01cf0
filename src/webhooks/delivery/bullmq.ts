/**
 * The durable {@link DeliveryQueue}: BullMQ on Redis. Jobs wait in Redis, so
 * they outlive the process that queued them and the worker that ran them;
 * workers in any number of processes and machines share one queue.
 *
 * - A delayed job is a BullMQ delayed job. A processor's "run again at X"
 *   is `job.moveToDelayed(X, token)` followed by BullMQ's `DelayedError`: one
 *   atomic move, checked against the job's lock token, that spends none of
 *   BullMQ's own attempts (the engine counts attempts itself, in the job).
 * - At least once: a job belongs to the worker that holds its lock, renewed
 *   every `lockDurationMs / 2`. When that worker dies the lock expires, and
 *   BullMQ's stalled-job check (every `stalledIntervalMs`, in every worker)
 *   puts the job back in the queue: it runs again, on another worker or on
 *   the same one restarted, within about `lockDurationMs + 2 ×
 *   stalledIntervalMs`. A delivery whose worker died mid-attempt may thus
 *   reach the receiver twice; receivers deduplicate by event id (part 1).
 * - A job that stalls more than `maxStalledCount` times (a delivery that
 *   kills its worker each time) goes to BullMQ's failed set, counted by
 *   `counts().failed`, and runs again on `retryFailed()`.
 * - A job whose data is no delivery job (another version wrote it) goes to
 *   the failed set at once, logged: the engine would take it for a fault of
 *   its own and retry it forever.
 * - `add` and `counts` wait for Redis at most `timeoutMs` (a 503 past it):
 *   the queue's commands wait for a reconnect, and a request that dispatches
 *   must not wait as long as Redis is down.
 * - Dedupe by job id: BullMQ ignores an add whose id it holds (waiting,
 *   delayed, running or failed); a finished job is removed at once, so the
 *   same id can be queued again later.
 *
 * bullmq (and ioredis, for a URL) are optional peer dependencies, loaded on
 * first use: importing this module loads neither.
 */
import type { Job, Queue, Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { defaultLogger, type Logger } from '../../core/logger.js';
import { bounded } from '../../stores/types.js';
import type { DeliveryJob, DeliveryQueue, JobOutcome, JobProcessor, QueueCounts } from './queue.js';

type BullMq = typeof import('bullmq');
type IORedisClass = typeof import('ioredis').Redis;

let loadingBullMq: Promise<BullMq> | undefined;
let loadingIORedis: Promise<IORedisClass> | undefined;

/** The bullmq module; rejects with an install hint when it is missing. */
function loadBullMq(): Promise<BullMq> {
  loadingBullMq ??= import('bullmq').catch((cause: unknown) => {
    loadingBullMq = undefined;
    throw new Error(
      'restwell/webhooks: the durable delivery queue needs the bullmq package, an optional peer dependency: npm install bullmq',
      { cause },
    );
  });
  return loadingBullMq;
}

function loadIORedis(): Promise<IORedisClass> {
  loadingIORedis ??= import('ioredis')
    .then((m) => m.Redis)
    .catch((cause: unknown) => {
      loadingIORedis = undefined;
      throw new Error(
        'restwell/webhooks: a Redis URL needs the ioredis package, an optional peer dependency: npm install ioredis',
        { cause },
      );
    });
  return loadingIORedis;
}

/** Options of {@link BullMqDeliveryQueue}. */
export interface BullMqDeliveryQueueOptions {
  /**
   * Your ioredis client (standalone or Cluster), or a `redis://` /
   * `rediss://` URL the queue connects to itself. A client you pass is never
   * closed by the queue; its workers use their own duplicates of it (BullMQ
   * blocks on them), opened with `maxRetriesPerRequest: null` as BullMQ
   * requires. A Cluster client needs that setting itself, and a `prefix` in
   * braces (`{restwell}`) so that a queue's keys share one slot. Required.
   */
  connection: Redis | Cluster | string;
  /** BullMQ's key prefix: every key is `<prefix>:<queueName>:…`. @default 'restwell' */
  prefix?: string;
  /** The BullMQ queue's name; no `:`. @default 'webhook-deliveries' */
  queueName?: string;
  /**
   * How long a worker's claim on a running job lasts without renewal (it is
   * renewed every half of it). A job whose worker died runs again once it
   * lapses; it must exceed the longest event-loop stall of a live worker.
   * @default 30000
   */
  lockDurationMs?: number;
  /** How often each worker looks for jobs whose worker died. @default 30000 */
  stalledIntervalMs?: number;
  /**
   * Times a job may be taken back from a dead worker before BullMQ gives up
   * on it (moves it to `failed`, see `retryFailed()`). @default 5
   */
  maxStalledCount?: number;
  /**
   * Delay before a job whose processor threw (an engine or store fault) runs
   * again, as in the memory queue; BullMQ's own retries of a job it could not
   * move (Redis down) back off from it too. @default 1000
   */
  faultDelayMs?: number;
  /**
   * Longest wait for Redis when adding a job or counting them: past it,
   * `add` (and so `dispatch`) rejects with a 503 `store-timeout` instead of
   * waiting for a Redis that is down (the queue's commands wait for a
   * reconnect, as BullMQ needs). @default 5000
   */
  timeoutMs?: number;
  /** The worker's name in BullMQ (shown on the jobs it runs). @default none */
  workerName?: string;
  /** Where faults, stalls and Redis errors are logged. @default the JSON stderr logger */
  logger?: Logger;
}

/** {@link QueueCounts} of BullMQ, with the jobs it gave up on. */
export interface BullMqQueueCounts extends QueueCounts {
  /** Jobs in BullMQ's failed set: stalled too often, or unmovable while Redis failed. */
  readonly failed: number;
}

const OPTIONS = [
  'connection',
  'prefix',
  'queueName',
  'lockDurationMs',
  'stalledIntervalMs',
  'maxStalledCount',
  'faultDelayMs',
  'timeoutMs',
  'workerName',
  'logger',
] as const;

const JOB_NAME = 'delivery';
/**
 * BullMQ's own attempts: only a throw that escapes the wrapper below (Redis
 * failing under `updateData` or `moveToDelayed`) spends one.
 */
const BULL_ATTEMPTS = 10;

function positiveInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    invalidOption('webhooks', option, 'a positive integer', value);
  return value;
}

function isClient(value: unknown): value is Redis | Cluster {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function' &&
    typeof (value as { options?: unknown }).options === 'object'
  );
}

/**
 * Whether a job's data is a {@link DeliveryJob}. Redis holds jobs across
 * deploys: one written by another version, or by hand, may not be.
 */
function isDeliveryJob(data: unknown): data is DeliveryJob {
  if (data === null || typeof data !== 'object') return false;
  const d = data as Record<string, unknown>;
  const text = (v: unknown) => typeof v === 'string' && v !== '';
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return (
    text(d.id) &&
    text(d.deliveryId) &&
    text(d.eventId) &&
    text(d.endpointId) &&
    (d.version === undefined || text(d.version)) &&
    count(d.attempts) &&
    count(d.generation)
  );
}

/**
 * Whether every key of the queue, `<prefix>:<name>:…`, has a Redis Cluster
 * hash tag: the first `{` followed, later, by a `}` with something between
 * (Redis Cluster specification, "Hash tags"). Without one, a queue's keys
 * spread over slots and BullMQ's scripts fail with CROSSSLOT.
 */
function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open === -1) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}

/** A job as JSON, for comparing the job a processor returns with the one it got. */
function sameJob(a: DeliveryJob, b: DeliveryJob): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** See the module comment. */
export class BullMqDeliveryQueue implements DeliveryQueue {
  private readonly connection: Redis | Cluster | string;
  private readonly prefix: string;
  private readonly name: string;
  private readonly lockDurationMs: number;
  private readonly stalledIntervalMs: number;
  private readonly maxStalledCount: number;
  private readonly faultDelayMs: number;
  private readonly timeoutMs: number;
  private readonly workerName: string | undefined;
  private readonly logger: Logger;
  /** The client the queue opened from a URL, closed with it. */
  private owned: Redis | undefined;
  private queue: Promise<{ bull: BullMq; queue: Queue; client: Redis | Cluster }> | undefined;
  private worker: Promise<Worker> | undefined;
  private processor: JobProcessor | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: BullMqDeliveryQueueOptions) {
    checkOptions('webhooks', options, OPTIONS);
    if (options === undefined) invalidOption('webhooks', 'options', 'an object', options);
    const { connection } = options;
    if (typeof connection === 'string') {
      if (!/^rediss?:\/\//.test(connection))
        // The URL may hold a password: never shown.
        throw new TypeError(
          'restwell/webhooks: option "connection" must be an ioredis client or a redis:// or rediss:// URL, got a string of another form.',
        );
    } else if (!isClient(connection)) {
      throw new TypeError(
        `restwell/webhooks: option "connection" must be an ioredis client or a redis:// URL, got ${connection === null ? 'null' : typeof connection}.`,
      );
    } else {
      const opts = connection.options as { keyPrefix?: unknown };
      // BullMQ's scripts compute their own keys: an ioredis keyPrefix would split them.
      if (typeof opts.keyPrefix === 'string' && opts.keyPrefix !== '')
        throw new TypeError(
          'restwell/webhooks: option "connection" is a client with a keyPrefix, which BullMQ cannot use: pass the queue a "prefix" instead.',
        );
    }
    this.connection = connection;
    const prefix = options.prefix ?? 'restwell';
    if (typeof prefix !== 'string' || prefix === '')
      invalidOption('webhooks', 'prefix', 'a non-empty string', prefix);
    this.prefix = prefix;
    const name = options.queueName ?? 'webhook-deliveries';
    if (typeof name !== 'string' || name === '' || name.includes(':'))
      invalidOption('webhooks', 'queueName', 'a non-empty string without ":"', name);
    this.name = name;
    this.lockDurationMs = positiveInt('lockDurationMs', options.lockDurationMs, 30_000);
    this.stalledIntervalMs = positiveInt('stalledIntervalMs', options.stalledIntervalMs, 30_000);
    this.maxStalledCount = positiveInt('maxStalledCount', options.maxStalledCount, 5);
    this.faultDelayMs = positiveInt('faultDelayMs', options.faultDelayMs, 1000);
    this.timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 5000);
    if ((connection as Cluster).isCluster === true && !hasHashTag(`${prefix}:${name}:`))
      throw new TypeError(
        `restwell/webhooks: option "prefix" must hold a hash tag on a Redis Cluster, as "{${prefix}}" does, so that the queue's keys share one slot; got "${prefix}".`,
      );
    if (options.workerName !== undefined && typeof options.workerName !== 'string')
      invalidOption('webhooks', 'workerName', 'a string', options.workerName);
    this.workerName = options.workerName;
    this.logger = options.logger ?? defaultLogger;
  }

  /** The BullMQ queue's name and key prefix: its keys are `<prefix>:<name>:…`. */
  get keys(): { readonly prefix: string; readonly name: string } {
    return { prefix: this.prefix, name: this.name };
  }

  async add(job: DeliveryJob, options: { delayMs?: number } = {}): Promise<void> {
    if (this.closed) throw new Error('restwell/webhooks: the delivery queue is closed.');
    if (typeof job.id !== 'string' || job.id === '' || job.id.includes(':'))
      // BullMQ reads `:` in a custom id as a key separator and refuses it.
      throw new TypeError(
        'restwell/webhooks: a delivery job id must be a non-empty string without ":".',
      );
    if (`${Number.parseInt(job.id, 10)}` === job.id)
      // BullMQ keeps integer ids for the ones it numbers itself.
      throw new TypeError('restwell/webhooks: a delivery job id must not be an integer.');
    const delay = Math.max(0, Math.ceil(options.delayMs ?? 0));
    await this.bounded('deliveryQueueAdd', async () => {
      const { queue } = await this.open();
      await queue.add(JOB_NAME, job, {
        jobId: job.id,
        ...(delay > 0 ? { delay } : {}),
        attempts: BULL_ATTEMPTS,
        backoff: { type: 'exponential', delay: this.faultDelayMs },
        // Removed when done, so that its id can be queued again; kept when BullMQ gives up.
        removeOnComplete: true,
        removeOnFail: false,
      });
    });
  }

  /**
   * Runs a Redis operation within `timeoutMs`. Its commands wait for a
   * reconnect (BullMQ's `maxRetriesPerRequest: null`), so a Redis that is down
   * would hold the caller, an API request among them, for as long as it is
   * down: a 503 instead. The command may still run once Redis is back, which
   * adding a job by its id makes harmless.
   */
  private bounded<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return bounded(operation, this.timeoutMs, run, (err) =>
      err instanceof Error && err.message.startsWith('restwell/')
        ? err
        : new StoreUnavailableError('Redis did not take the delivery queue operation.', {
            cause: err,
          }),
    );
  }

  process(processor: JobProcessor, options: { concurrency: number }): void {
    if (this.processor !== undefined)
      throw new Error('restwell/webhooks: the delivery queue already has a processor.');
    if (this.closed) throw new Error('restwell/webhooks: the delivery queue is closed.');
    this.processor = processor;
    const concurrency = Math.max(1, Math.floor(options.concurrency));
    this.worker = this.startWorker(processor, concurrency);
    // Reported here and again by ready() and close(); never an unhandled rejection.
    this.worker.catch((err: unknown) =>
      this.logger.error('restwell/webhooks: the delivery worker could not start', { err }),
    );
  }

  /**
   * Resolves once the queue (and the worker, when `process` was called) is
   * connected; rejects with what went wrong (bullmq missing, Redis refusing).
   */
  async ready(): Promise<void> {
    await this.open();
    const worker = await this.worker;
    await worker?.waitUntilReady();
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async counts(): Promise<BullMqQueueCounts> {
    const c = await this.bounded('deliveryQueueCounts', async () => {
      const { queue } = await this.open();
      return queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed');
    });
    return {
      waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
      delayed: c.delayed ?? 0,
      active: c.active ?? 0,
      failed: c.failed ?? 0,
    };
  }

  /** Queues again every job BullMQ gave up on (see `maxStalledCount`); resolves their count. */
  async retryFailed(): Promise<number> {
    const { queue } = await this.open();
    const { failed } = await queue.getJobCounts('failed');
    if ((failed ?? 0) > 0) await queue.retryJobs({ state: 'failed' });
    return failed ?? 0;
  }

  private open(): Promise<{ bull: BullMq; queue: Queue; client: Redis | Cluster }> {
    this.queue ??= (async () => {
      const bull = await loadBullMq();
      let client: Redis | Cluster;
      if (typeof this.connection === 'string') {
        const Redis = await loadIORedis();
        // Commands wait for a reconnect rather than fail (BullMQ's requirement for its workers).
        this.owned = new Redis(this.connection, { maxRetriesPerRequest: null });
        client = this.owned;
      } else {
        client = this.connection;
      }
      const queue = new bull.Queue(this.name, { connection: client, prefix: this.prefix });
      queue.on('error', (err: unknown) =>
        this.logger.error('restwell/webhooks: the delivery queue lost Redis', { err }),
      );
      await queue.waitUntilReady();
      return { bull, queue, client };
    })();
    return this.queue;
  }

  /** A standalone client with `maxRetriesPerRequest` set is given to workers as options, with it null. */
  private workerConnection(client: Redis | Cluster): Redis | Cluster | Record<string, unknown> {
    if ((client as Cluster).isCluster === true) return client;
    const options = (client as Redis).options as Record<string, unknown>;
    if (options.maxRetriesPerRequest === null) return client;
    return { ...options, maxRetriesPerRequest: null };
  }

  private async startWorker(processor: JobProcessor, concurrency: number): Promise<Worker> {
    const { bull, client } = await this.open();
    const faultDelayMs = this.faultDelayMs;
    const logger = this.logger;
    const run = async (job: Job<DeliveryJob>, token?: string): Promise<void> => {
      const current: unknown = job.data;
      if (!isDeliveryJob(current)) {
        // No retry mends it, and the engine would take it for a fault and retry it forever:
        // moved to the failed set at once, kept there to be looked at (or removed).
        logger.error(
          'restwell/webhooks: a delivery job holds no delivery job (written by another version?); moved to failed',
          { jobId: job.id },
        );
        throw new bull.UnrecoverableError('restwell/webhooks: malformed delivery job data.');
      }
      let outcome: JobOutcome;
      try {
        outcome = await processor(current);
      } catch (err) {
        logger.error('restwell/webhooks: a delivery job failed; it runs again later', {
          jobId: current.id,
          err,
        });
        outcome = { type: 'delay', at: Date.now() + faultDelayMs, job: current };
      }
      if (outcome.type === 'done') return;
      if (outcome.job.id !== current.id)
        throw new Error(
          'restwell/webhooks: a processor may not change a job id when it delays it.',
        );
      // Two steps, data first: a crash in between leaves the job running with its new
      // data, and the stalled check runs it again early, never with a stale attempt count.
      if (!sameJob(outcome.job, current)) await job.updateData(outcome.job);
      await job.moveToDelayed(Math.max(outcome.at, Date.now()), token);
      throw new bull.DelayedError();
    };
    const worker = new bull.Worker<DeliveryJob, void>(this.name, run, {
      connection: this.workerConnection(client) as Redis,
      prefix: this.prefix,
      concurrency,
      lockDuration: this.lockDurationMs,
      stalledInterval: this.stalledIntervalMs,
      maxStalledCount: this.maxStalledCount,
      ...(this.workerName === undefined ? {} : { name: this.workerName }),
    });
    worker.on('error', (err: unknown) =>
      logger.error('restwell/webhooks: the delivery worker lost Redis', { err }),
    );
    worker.on('stalled', (jobId: string) =>
      logger.warn('restwell/webhooks: a delivery job lost its worker; it runs again', { jobId }),
    );
    worker.on('failed', (job: Job<DeliveryJob> | undefined, err: Error) =>
      logger.error('restwell/webhooks: BullMQ gave up on a delivery job (see retryFailed)', {
        jobId: job?.id,
        err,
      }),
    );
    return worker;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // Waits for the running jobs: each finishes (and is completed or delayed) first.
    const worker = await this.worker?.catch(() => undefined);
    await worker?.close();
    const opened = await this.queue?.catch(() => undefined);
    await opened?.queue.close();
    if (this.owned !== undefined) await this.owned.quit().catch(() => undefined);
  }
}
