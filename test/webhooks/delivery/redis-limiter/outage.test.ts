/**
 * The engine on a redisEndpointLimiter whose Redis is down (its client points
 * at a closed port): no attempt is made, the jobs run again after the queue's
 * faultDelayMs, logged, nothing counts against the receiver (no attempt in the
 * log, health and breaker untouched), and once Redis answers (a proxy opens on
 * that port) every delivery goes out once. On the memory queue and on BullMQ.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import type { DeliveryQueue } from '../../../../src/webhooks/delivery/queue.js';
import { redisEndpointLimiter } from '../../../../src/webhooks/delivery/redis-limiter.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { queues, recordingLogger } from '../bullmq/helpers.js';
import { receiver, until } from '../engine/helpers.js';
import { cleanLimiterKeys, closedPort, proxyTo, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const kinds = ['memory queue', 'BullMQ queue'] as const;

describe.runIf(services.redis)('a redisEndpointLimiter whose Redis is down', () => {
  it.each(kinds)(
    'on the %s: jobs retried, none lost, none counted against the receiver',
    async (kind) => {
      const port = await closedPort();
      // Fails at once while nothing listens, and keeps trying to connect.
      const client = new Redis({
        host: '127.0.0.1',
        port,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 50,
      });
      client.on('error', () => {});
      cleanups.push(async () => client.disconnect());
      const prefix = uniquePrefix('outage');
      const keys = redis();
      cleanups.push(async () => {
        await cleanLimiterKeys(keys, prefix);
        await keys.quit();
      });
      const { logger, lines } = recordingLogger();
      let queue: DeliveryQueue;
      if (kind === 'memory queue') {
        queue = new MemoryDeliveryQueue({ logger, faultDelayMs: 50 });
      } else {
        const q = queues('limiter-outage');
        cleanups.push(() => q.cleanup());
        queue = q.open({ logger, faultDelayMs: 50 });
      }
      const log = new MemoryDeliveryLog();
      const delivery = webhookDelivery({
        queue,
        log,
        limiter: redisEndpointLimiter({ client, prefix, timeoutMs: 500 }),
        guard: ssrfGuard({ allowLoopback: true }),
        allowHttp: true,
        logger,
      });
      cleanups.push(() => delivery.stop());
      const hooks = await receiver(() => 200);
      cleanups.push(() => hooks.close());
      const { endpoint } = await delivery.endpoints.create({ url: hooks.url, concurrency: 1 });
      delivery.startWorker({ concurrency: 4 });
      for (let i = 0; i < 3; i++)
        await delivery.dispatch({ type: 'payment.succeeded', data: { i } });

      const faults = () =>
        lines.filter((l) => /a delivery job failed; it runs again later/.test(l.message));
      // Every job turned back more than once: retried, each time logged with the cause.
      await until(() => faults().length >= 9, 10_000);
      expect(hooks.requests).toHaveLength(0);
      expect((await log.queryAttempts()).items).toHaveLength(0);
      const waiting = (await log.queryDeliveries()).items;
      expect(waiting).toHaveLength(3);
      expect(waiting.every((d) => d.status === 'pending' && d.attempts === 0)).toBe(true);
      const stats = await delivery.stats(endpoint.id);
      expect(stats.health.attempts).toBe(0);
      expect(stats.breaker).toBe('closed');
      const cause = faults()[0]?.fields?.err;
      expect(cause).toBeInstanceOf(Error);
      expect((cause as Error).message).toMatch(/endpoint limiter/);

      // Redis answers again on that port: every delivery goes out, each once.
      cleanups.push(await proxyTo(port));
      await until(
        async () => (await log.queryDeliveries()).items.every((d) => d.status === 'delivered'),
        15_000,
      );
      expect(hooks.requests).toHaveLength(3);
      const attempts = (await log.queryAttempts()).items;
      expect(attempts).toHaveLength(3);
      expect(attempts.every((a) => a.ok && a.attempt === 1)).toBe(true);
      // Every slot was given back through the proxy.
      expect(await keys.zcard(`{${prefix}:${endpoint.id}}:leases`)).toBe(0);
    },
    40_000,
  );
});
