/**
 * `runDeliveryWorker()`: the entry of a process that only delivers. The API
 * process builds the engine on the same BullMQ queue, log and endpoint store
 * and only dispatches (it never calls `startWorker()`); any number of worker
 * processes, on any number of machines, take the jobs.
 *
 * On SIGTERM (or SIGINT) the worker drains: it takes no new job, waits for
 * the attempts in flight (5 s each at most), closes the queue, runs
 * `onShutdown` (close your pools there) and exits 0. A drain that outlasts
 * `shutdownTimeoutMs`, or a second signal, exits 1 at once: the jobs still
 * running keep their place in Redis and run again on another worker once
 * their lock lapses (BullMQ's stalled-job check), so nothing is lost either
 * way; an attempt cut short may reach its receiver twice.
 *
 * @example
 * ```ts
 * // worker.ts, run as `node worker.js` (one per core, or per machine)
 * await runDeliveryWorker({
 *   queue: { connection: process.env.REDIS_URL!, prefix: 'restwell' },
 *   log, endpointStore,        // the durable ones the API process uses
 *   guard: ssrfGuard(),
 *   concurrency: 64,
 *   onShutdown: () => pool.end(),
 * });
 * ```
 */
import { checkOptions, invalidOption } from '../../core/errors.js';
import { defaultLogger } from '../../core/logger.js';
import { BullMqDeliveryQueue, type BullMqDeliveryQueueOptions } from './bullmq.js';
import { type WebhookDelivery, type WebhookDeliveryOptions, webhookDelivery } from './delivery.js';

/** Options of {@link runDeliveryWorker}: the engine's, but the queue is BullMQ. */
export interface DeliveryWorkerOptions extends Omit<WebhookDeliveryOptions, 'queue'> {
  /** The queue the API process dispatches to: a BullMqDeliveryQueue, or its options. Required. */
  queue: BullMqDeliveryQueue | BullMqDeliveryQueueOptions;
  /** Attempts in flight in this process, over all endpoints. @default 32 */
  concurrency?: number;
  /** The signals that drain the worker and exit; `[]` for none (call `stop()`). @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /** Longest drain after a signal before exiting 1 anyway. @default 25000 (under Kubernetes' 30 s grace) */
  shutdownTimeoutMs?: number;
  /** Runs after the drain, before the exit: close the pools and clients you own. */
  onShutdown?: () => void | Promise<void>;
  /** Exit the process once a signal's drain is done. @default true */
  exit?: boolean;
}

/** A running worker; see {@link runDeliveryWorker}. */
export interface DeliveryWorker {
  readonly delivery: WebhookDelivery;
  readonly queue: BullMqDeliveryQueue;
  /** Drains (no new job, the running ones finish) and closes the queue; then `onShutdown`. Never exits. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped, by `stop()` or a signal. */
  readonly stopped: Promise<void>;
}

const OWN = ['queue', 'concurrency', 'signals', 'shutdownTimeoutMs', 'onShutdown', 'exit'] as const;

/**
 * Starts a delivery worker in this process, on BullMQ, and drains it on
 * SIGTERM. Resolves once the worker is connected; rejects (and starts
 * nothing) when bullmq is missing or Redis refuses.
 */
export async function runDeliveryWorker(options: DeliveryWorkerOptions): Promise<DeliveryWorker> {
  if (options === null || typeof options !== 'object')
    invalidOption('webhooks', 'options', 'an object', options);
  const {
    queue: queueOption,
    concurrency = 32,
    signals = ['SIGTERM', 'SIGINT'],
    shutdownTimeoutMs = 25_000,
    onShutdown,
    exit = true,
    ...engineOptions
  } = options;
  checkOptions('webhooks worker', { queue: queueOption, concurrency, signals, shutdownTimeoutMs }, [
    ...OWN,
  ]);
  if (queueOption === undefined)
    throw new TypeError(
      'restwell/webhooks: option "queue" is required: a BullMqDeliveryQueue or its options.',
    );
  if (!Array.isArray(signals)) invalidOption('webhooks', 'signals', 'a list of signals', signals);
  if (!Number.isSafeInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 1)
    invalidOption('webhooks', 'shutdownTimeoutMs', 'a positive integer', shutdownTimeoutMs);
  if (onShutdown !== undefined && typeof onShutdown !== 'function')
    invalidOption('webhooks', 'onShutdown', 'a function', onShutdown);
  const logger = engineOptions.logger ?? defaultLogger;
  const queue =
    queueOption instanceof BullMqDeliveryQueue
      ? queueOption
      : new BullMqDeliveryQueue({ logger, ...queueOption });
  const delivery = webhookDelivery({ ...engineOptions, queue });
  delivery.startWorker({ concurrency });
  try {
    await queue.ready();
  } catch (err) {
    await delivery.stop().catch(() => undefined);
    throw err;
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // After a signal the handlers stay, for the second signal.
      if (!signalled) for (const signal of signals) process.off(signal, onSignal);
      try {
        await delivery.stop();
      } finally {
        try {
          await onShutdown?.();
        } catch (err) {
          logger.error('restwell/webhooks: onShutdown failed', { err });
        }
        resolveStopped();
      }
    })();
    return stopping;
  };

  let signalled = false;
  function onSignal(signal: NodeJS.Signals): void {
    if (signalled) {
      logger.warn('restwell/webhooks: second signal; exiting without waiting', { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info('restwell/webhooks: delivery worker draining', { signal });
    const timer = setTimeout(() => {
      logger.error(
        'restwell/webhooks: delivery worker drain timed out; its jobs run again elsewhere',
        {
          shutdownTimeoutMs,
        },
      );
      process.exit(1);
    }, shutdownTimeoutMs);
    timer.unref();
    stop().then(
      () => {
        clearTimeout(timer);
        logger.info('restwell/webhooks: delivery worker stopped', { signal });
        if (exit) process.exit(0);
      },
      (err: unknown) => {
        logger.error('restwell/webhooks: delivery worker stopped with an error', { err });
        if (exit) process.exit(1);
      },
    );
  }
  // Installed once the worker runs, so that a failed start leaves none behind; `on`, not
  // `once`: a second signal must still be ours (exit at once).
  for (const signal of signals) process.on(signal, onSignal);
  logger.info('restwell/webhooks: delivery worker started', { concurrency });
  return { delivery, queue, stop, stopped };
}
