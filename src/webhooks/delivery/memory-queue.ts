/**
 * The embedded {@link DeliveryQueue}: jobs in this process's memory, timers
 * from the engine's clock. For development, tests and single-process apps
 * that accept losing queued deliveries when the process dies; the durable
 * queue is BullMQ on Redis.
 */
import { defaultLogger, type Logger } from '../../core/logger.js';
import { type DeliveryClock, systemClock, type TimerHandle } from './clock.js';
import type { DeliveryJob, DeliveryQueue, JobProcessor, QueueCounts } from './queue.js';

/** Options of {@link MemoryDeliveryQueue}. */
export interface MemoryDeliveryQueueOptions {
  /** @default the system clock */
  clock?: DeliveryClock;
  /** Where a processor's faults are logged. @default the JSON stderr logger */
  logger?: Logger;
  /** Delay before a job whose processor threw runs again. @default 1000 */
  faultDelayMs?: number;
}

interface Held {
  job: DeliveryJob;
  at: number;
  seq: number;
}

/** See the module comment. */
export class MemoryDeliveryQueue implements DeliveryQueue {
  private readonly clock: DeliveryClock;
  private readonly logger: Logger;
  private readonly faultDelayMs: number;
  /** Every job held, by id: waiting (due), delayed or running. */
  private readonly held = new Map<string, Held | 'active'>();
  /** Waiting and delayed, ordered by time then arrival. */
  private scheduled: Held[] = [];
  private seq = 0;
  private processor: JobProcessor | undefined;
  private concurrency = 1;
  private active = 0;
  private closed = false;
  private timer: TimerHandle | undefined;
  private timerAt: number | undefined;
  private readonly idle: Array<() => void> = [];

  constructor(options: MemoryDeliveryQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? defaultLogger;
    this.faultDelayMs = options.faultDelayMs ?? 1000;
  }

  async add(job: DeliveryJob, options: { delayMs?: number } = {}): Promise<void> {
    if (this.closed) throw new Error('restwell/webhooks: the delivery queue is closed.');
    if (this.held.has(job.id)) return;
    // Jobs are JSON, as in Redis: a job that only works as a live object fails here, not there.
    const copy = JSON.parse(JSON.stringify(job)) as DeliveryJob;
    this.schedule(copy, this.clock.now() + Math.max(0, options.delayMs ?? 0));
  }

  process(processor: JobProcessor, options: { concurrency: number }): void {
    if (this.processor !== undefined)
      throw new Error('restwell/webhooks: the delivery queue already has a processor.');
    this.processor = processor;
    this.concurrency = Math.max(1, options.concurrency);
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  async counts(): Promise<QueueCounts> {
    const now = this.clock.now();
    let waiting = 0;
    for (const h of this.scheduled) if (h.at <= now) waiting++;
    return { waiting, delayed: this.scheduled.length - waiting, active: this.active };
  }

  /** Ids of the jobs held (waiting, delayed or running): for tests and diagnostics. */
  jobIds(): string[] {
    return [...this.held.keys()];
  }

  private schedule(job: DeliveryJob, at: number): void {
    const held: Held = { job, at, seq: this.seq++ };
    this.held.set(job.id, held);
    // Insert in order; the list is short-lived and mostly appended to.
    let i = this.scheduled.length;
    while (i > 0 && this.scheduled[i - 1]!.at > at) i--;
    this.scheduled.splice(i, 0, held);
    this.pump();
  }

  private pump(): void {
    if (this.processor === undefined || this.closed) return;
    const now = this.clock.now();
    while (this.active < this.concurrency && this.scheduled.length > 0) {
      const next = this.scheduled[0]!;
      if (next.at > now) break;
      this.scheduled.shift();
      this.run(next.job);
    }
    this.arm();
  }

  /** One timer, for the earliest delayed job. */
  private arm(): void {
    const next = this.scheduled[0];
    if (next === undefined || this.active >= this.concurrency || this.closed) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = undefined;
      return;
    }
    if (this.timer !== undefined && this.timerAt === next.at) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.pump();
    }, next.at - this.clock.now());
  }

  private run(job: DeliveryJob): void {
    this.active++;
    this.held.set(job.id, 'active');
    const processor = this.processor!;
    void (async () => {
      let next: { at: number; job: DeliveryJob } | undefined;
      try {
        const outcome = await processor(job);
        if (outcome.type === 'delay') next = { at: outcome.at, job: outcome.job };
      } catch (err) {
        this.logger.error('restwell/webhooks: a delivery job failed; it runs again later', {
          jobId: job.id,
          err,
        });
        next = { at: this.clock.now() + this.faultDelayMs, job };
      }
      this.active--;
      this.held.delete(job.id);
      if (next !== undefined && !this.closed) {
        this.schedule(JSON.parse(JSON.stringify(next.job)) as DeliveryJob, next.at);
      }
      if (this.active === 0 && this.closed) for (const resolve of this.idle.splice(0)) resolve();
      this.pump();
    })();
  }
}
