import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../../../../src/core/logger.js';
import {
  BullMqDeliveryQueue,
  type BullMqDeliveryQueueOptions,
} from '../../../../src/webhooks/delivery/bullmq.js';
import type { DeliveryJob } from '../../../../src/webhooks/delivery/queue.js';
import { services } from '../../../helpers/services.js';

/** A key prefix no other run or suite uses. */
export function uniquePrefix(label: string): string {
  return `rw-test-bullmq-${label}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `prefix` (SCAN, never FLUSH: the server is shared). */
export async function cleanKeys(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) removed += await client.del(...keys);
  } while (cursor !== '0');
  return removed;
}

export function redis(): Redis {
  return new Redis(services.redisUrl, { maxRetriesPerRequest: null });
}

/** A logger that keeps its lines, for asserting what was logged. */
export function recordingLogger() {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    error: (message, fields) =>
      lines.push({ level: 'error', message, ...(fields ? { fields } : {}) }),
    warn: (message, fields) =>
      lines.push({ level: 'warn', message, ...(fields ? { fields } : {}) }),
    info: (message, fields) =>
      lines.push({ level: 'info', message, ...(fields ? { fields } : {}) }),
  };
  return { logger, lines };
}

/** Queues on one prefix, all closed (and the prefix's keys removed) by `cleanup()`. */
export function queues(label: string) {
  const prefix = uniquePrefix(label);
  const client = redis();
  const opened: BullMqDeliveryQueue[] = [];
  return {
    prefix,
    client,
    open(options: Partial<BullMqDeliveryQueueOptions> = {}): BullMqDeliveryQueue {
      const queue = new BullMqDeliveryQueue({
        connection: client,
        prefix,
        lockDurationMs: 2000,
        stalledIntervalMs: 1000,
        faultDelayMs: 50,
        ...options,
      });
      opened.push(queue);
      return queue;
    },
    async cleanup() {
      await Promise.all(opened.map((q) => q.close()));
      await cleanKeys(client, prefix);
      await client.quit();
    },
  };
}

export function job(id: string, more: Partial<DeliveryJob> = {}): DeliveryJob {
  return {
    id,
    deliveryId: id.split('#')[0]!,
    eventId: id.split('/')[0]!,
    endpointId: id.split('/')[1]?.split('#')[0] ?? 'ep_1',
    attempts: 0,
    generation: 0,
    ...more,
  };
}

/** Waits until `condition` holds, or fails after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise and its resolver. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
