/**
 * The engine on a redisEndpointLimiter whose Redis is down (its client points
 * at a closed port): no attempt is made, the jobs run again after the queue's
 * faultDelayMs, logged, nothing counts against the receiver (no attempt in the
 * log, health and breaker untouched), and once Redis answers (a proxy opens on
 * that port) every delivery goes out once. On the memory queue and on BullMQ.
 */
import net from 'node:net';
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
import { cleanLimiterKeys, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A loopback port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/** A TCP proxy from `port` to the shared Redis: Redis "comes back" on that port. */
async function proxyTo(port: number) {
  const target = new URL(services.redisUrl);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
}

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
