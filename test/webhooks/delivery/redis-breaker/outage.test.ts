/**
 * The engine on a redisEndpointBreakers whose Redis is down (its client
 * points at a closed port): no attempt is made, the jobs run again after the
 * queue's faultDelayMs, logged, nothing counts against the receiver, and once
 * Redis answers (a proxy opens on that port) every delivery goes out once, on
 * the memory queue and on BullMQ. A breaker that fails only when recording
 * an outcome loses nothing either: the attempt stands, logged.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryEndpointBreakers } from '../../../../src/webhooks/delivery/breaker.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import type { DeliveryQueue } from '../../../../src/webhooks/delivery/queue.js';
import { redisEndpointBreakers } from '../../../../src/webhooks/delivery/redis-breaker.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { queues, recordingLogger } from '../bullmq/helpers.js';
import { receiver, until } from '../engine/helpers.js';
import { cleanBreakerKeys, closedPort, proxyTo, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const kinds = ['memory queue', 'BullMQ queue'] as const;

describe.runIf(services.redis)('a redisEndpointBreakers whose Redis is down', () => {
  it.each(kinds)(
    'on the %s: jobs retried, none lost, none counted against the receiver',
    async (kind) => {
      const port = await closedPort();
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
        await cleanBreakerKeys(keys, prefix);
        await keys.quit();
      });
      const { logger, lines } = recordingLogger();
      let queue: DeliveryQueue;
      if (kind === 'memory queue') {
        queue = new MemoryDeliveryQueue({ logger, faultDelayMs: 50 });
      } else {
        const q = queues('breaker-outage');
        cleanups.push(() => q.cleanup());
        queue = q.open({ logger, faultDelayMs: 50 });
      }
      const log = new MemoryDeliveryLog();
      const delivery = webhookDelivery({
        queue,
        log,
        breakers: redisEndpointBreakers({ client, prefix, timeoutMs: 500, minimumRequests: 1 }),
        guard: ssrfGuard({ allowLoopback: true }),
        allowHttp: true,
        logger,
      });
      cleanups.push(() => delivery.stop());
      const hooks = await receiver(() => 200);
      cleanups.push(() => hooks.close());
      const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
      delivery.startWorker({ concurrency: 4 });
      for (let i = 0; i < 3; i++)
        await delivery.dispatch({ type: 'payment.succeeded', data: { i } });

      const faults = () =>
        lines.filter((l) => /a delivery job failed; it runs again later/.test(l.message));
      await until(() => faults().length >= 9, 10_000);
      expect(hooks.requests).toHaveLength(0);
      expect((await log.queryAttempts()).items).toHaveLength(0);
      const waiting = (await log.queryDeliveries()).items;
      expect(waiting).toHaveLength(3);
      expect(waiting.every((d) => d.status === 'pending' && d.attempts === 0)).toBe(true);
      const cause = faults()[0]?.fields?.err;
      expect(cause).toBeInstanceOf(Error);
      expect((cause as Error).message).toMatch(/endpoint breaker/);

      cleanups.push(await proxyTo(port));
      await until(
        async () => (await log.queryDeliveries()).items.every((d) => d.status === 'delivered'),
        15_000,
      );
      expect(hooks.requests).toHaveLength(3);
      const attempts = (await log.queryAttempts()).items;
      expect(attempts).toHaveLength(3);
      expect(attempts.every((a) => a.ok && a.attempt === 1)).toBe(true);
      // Nothing counted against the receiver while Redis was down: the circuit is closed.
      expect((await delivery.stats(endpoint.id)).breaker).toBe('closed');
    },
    40_000,
  );
});

describe('breakers that fail to record an outcome', () => {
  it('keep the attempt: logged, delivered, the failure logged', async () => {
    const inner = memoryEndpointBreakers();
    const { logger, lines } = recordingLogger();
    const log = new MemoryDeliveryLog();
    const delivery = webhookDelivery({
      queue: new MemoryDeliveryQueue({ logger, faultDelayMs: 50 }),
      log,
      breakers: {
        tryAcquire: (id, now) => inner.tryAcquire(id, now),
        record: async () => {
          throw new Error('store down');
        },
        release: (id, now) => inner.release(id, now),
        state: (id, now) => inner.state(id, now),
        nextAttemptAt: (id, now) => inner.nextAttemptAt(id, now),
      },
      guard: ssrfGuard({ allowLoopback: true }),
      allowHttp: true,
      logger,
    });
    cleanups.push(() => delivery.stop());
    const hooks = await receiver(() => 200);
    cleanups.push(() => hooks.close());
    await delivery.endpoints.create({ url: hooks.url });
    delivery.startWorker();
    await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await until(
      async () => (await log.queryDeliveries()).items.every((d) => d.status === 'delivered'),
      5000,
    );
    expect(hooks.requests).toHaveLength(1);
    expect((await log.queryAttempts()).items).toHaveLength(1);
    expect(lines.some((l) => /circuit breaker could not record/.test(l.message))).toBe(true);
  });

  it('refuses breaker and breakers together, and a breakers that is not one', () => {
    expect(() =>
      webhookDelivery({
        guard: false,
        breaker: { openMs: 1000 },
        breakers: memoryEndpointBreakers(),
      }),
    ).toThrow(/exclude each other/);
    expect(() => webhookDelivery({ guard: false, breakers: {} as never })).toThrow(/breakers/);
  });
});
