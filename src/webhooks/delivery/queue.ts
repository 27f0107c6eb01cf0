/**
 * The queue contract the engine runs on. A job is plain JSON (BullMQ stores
 * it in Redis as such) and has a deterministic id: adding a job whose id is
 * waiting, delayed or running is a no-op, so dispatching an event twice (an
 * outbox relay that retries) queues each delivery once.
 *
 * The processor never throws to say "try later": it returns what to do next,
 * which maps onto BullMQ's `moveToDelayed` + `DelayedError` without spending
 * one of BullMQ's own attempts (the engine counts attempts itself, in the job).
 */

/** One delivery of one event to one endpoint (in one version's shape). */
export interface DeliveryJob {
  /** `<eventId>/<endpointId>` (`/<version>` more in dual delivery), `#<n>` more for the n-th replay. */
  readonly id: string;
  /** The delivery this job carries out: the job id without its `#<n>`. */
  readonly deliveryId: string;
  readonly eventId: string;
  readonly endpointId: string;
  /** The version to shape the payload for, when the endpoint pins one. */
  readonly version?: string;
  /** Attempts already made in this retry budget. */
  readonly attempts: number;
  /** Which retry budget: 0 first, one more for each replay or resend. */
  readonly generation: number;
}

/** What the processor asks for once a job has run. */
export type JobOutcome =
  | { readonly type: 'done' }
  /**
   * Run the job again at `at` (epoch ms), with `job` (its attempt count
   * updated or not; its `id` unchanged, as the queue holds it under that id).
   */
  | { readonly type: 'delay'; readonly at: number; readonly job: DeliveryJob };

/** Processes one job; a throw is a fault of the engine or a store (logged, retried later). */
export type JobProcessor = (job: DeliveryJob) => Promise<JobOutcome>;

/** Counts of the jobs a queue holds. */
export interface QueueCounts {
  readonly waiting: number;
  readonly delayed: number;
  readonly active: number;
}

/** Where delivery jobs wait. BullMQ on Redis, or {@link MemoryDeliveryQueue} embedded. */
export interface DeliveryQueue {
  /** Adds `job` to run after `delayMs` (0: now); a no-op when a job of this id is held. */
  add(job: DeliveryJob, options?: { delayMs?: number }): Promise<void>;
  /**
   * Starts running jobs, at most `concurrency` at once, in this process. A
   * queue runs one processor.
   */
  process(processor: JobProcessor, options: { concurrency: number }): void;
  /** Stops taking jobs and resolves once the running ones have finished. */
  close(): Promise<void>;
  counts(): Promise<QueueCounts>;
}
