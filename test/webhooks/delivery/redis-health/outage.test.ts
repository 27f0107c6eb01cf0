/**
 * The engine on a redisEndpointHealth whose Redis is down (its client points
 * at a closed port), on the memory queue and on BullMQ: attempts go, every
 * health call that fails is logged, nothing counts against the receiver, and
 * no job is lost: a succeeding receiver gets each event once, a failing one
 * gets each event retried on its schedule. Once Redis answers (a proxy opens
 * on that port), the attempts are counted again.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import type { DeliveryQueue } from '../../../../src/webhooks/delivery/queue.js';
import { redisEndpointHealth } from '../../../../src/webhooks/delivery/redis-health.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { queues, recordingLogger } from '../bullmq/helpers.js';
import { receiver, until } from '../engine/helpers.js';
import { cleanHealthKeys, closedPort, proxyTo, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const kinds = ['memory queue', 'BullMQ queue'] as const;

async function setup(kind: (typeof kinds)[number], status: number) {
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
    await cleanHealthKeys(keys, prefix);
    await keys.quit();
  });
  const { logger, lines } = recordingLogger();
  let queue: DeliveryQueue;
  if (kind === 'memory queue') {
    queue = new MemoryDeliveryQueue({ logger, faultDelayMs: 50 });
  } else {
    const q = queues('health-outage');
    cleanups.push(() => q.cleanup());
    queue = q.open({ logger, faultDelayMs: 50 });
  }
  const log = new MemoryDeliveryLog();
  const alerts: string[] = [];
  const delivery = webhookDelivery({
    queue,
    log,
    breaker: false,
    healthStore: redisEndpointHealth({ client, prefix, timeoutMs: 300, minimumAttempts: 1 }),
    schedule: retrySchedule({ delaysMs: [100], backoffFactor: 1, jitter: 0, maxAttempts: 1000 }),
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    logger,
    onAlert: (a) => void alerts.push(a.endpointId),
  });
  cleanups.push(() => delivery.stop());
  const hooks = await receiver(() => status);
  cleanups.push(() => hooks.close());
  const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
  delivery.startWorker({ concurrency: 4 });
  for (let i = 0; i < 3; i++) await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
  const faults = () =>
    lines.filter((l) => /the endpoint health could not record an attempt/.test(l.message));
  return { port, log, delivery, hooks, endpoint, faults, alerts };
}

describe.runIf(services.redis)('a redisEndpointHealth whose Redis is down', () => {
  it.each(kinds)(
    'on the %s: every event delivered once, the faults logged',
    async (kind) => {
      const { log, hooks, faults, alerts } = await setup(kind, 200);
      await until(
        async () => (await log.queryDeliveries()).items.every((d) => d.status === 'delivered'),
        10_000,
      );
      expect(hooks.requests).toHaveLength(3);
      const attempts = (await log.queryAttempts()).items;
      expect(attempts).toHaveLength(3);
      expect(attempts.every((a) => a.ok && a.attempt === 1)).toBe(true);
      await until(() => faults().length === 3);
      const cause = faults()[0]?.fields?.err;
      expect(cause).toBeInstanceOf(Error);
      expect((cause as Error).message).toMatch(/endpoint health/);
      expect(alerts).toEqual([]);
    },
    30_000,
  );

  it.each(kinds)(
    'on the %s: a failing receiver retried on its schedule, none lost; counted once Redis is back',
    async (kind) => {
      const { port, log, delivery, hooks, endpoint, faults, alerts } = await setup(kind, 500);
      await until(() => hooks.requests.length >= 9, 10_000);
      const waiting = (await log.queryDeliveries()).items;
      expect(waiting).toHaveLength(3);
      expect(waiting.every((d) => d.status === 'retrying' && d.attempts >= 1)).toBe(true);
      expect(faults().length).toBeGreaterThanOrEqual(3);
      // Nothing was counted: no alert though every attempt failed and one is the minimum.
      expect(alerts).toEqual([]);
      cleanups.push(await proxyTo(port));
      await until(() => alerts.length === 1, 10_000);
      expect(alerts).toEqual([endpoint.id]);
      expect((await delivery.stats(endpoint.id)).health.attempts).toBeGreaterThan(0);
    },
    30_000,
  );
});
