/**
 * The bound held across processes: three worker processes (fixtures/worker.ts)
 * on one BullMQ queue deliver to one real receiver that holds each request
 * 200 ms and records the most requests it had open at once. With
 * redisEndpointLimiter the endpoint's `concurrency: 2` holds over all three;
 * with each worker's own memoryEndpointLimiter it does not (the same setup
 * opens up to 3 × 2), which shows the measurement can fail.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { startWorker, stopWorkers } from '../worker-processes.js';
import { queues, redis as bullRedis, until } from '../bullmq/helpers.js';
import { RedisTestDeliveryLog, RedisTestEndpointStore } from '../bullmq/shared-stores.js';
import { cleanLimiterKeys, holdingReceiver, redis, uniquePrefix } from './helpers.js';

const script = join(import.meta.dirname, 'fixtures', 'worker.ts');
const WORKERS = 3;
const EVENTS = 24;
const HOLD_MS = 200;
const CONCURRENCY = 2;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopWorkers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Runs the whole setup with one kind of limiter; resolves what the receiver measured. */
async function deliverThroughWorkers(limiter: 'redis' | 'memory') {
  const q = queues(`limit-${limiter}`);
  cleanups.push(() => q.cleanup());
  const stores = bullRedis();
  cleanups.push(() => stores.quit());
  const limiterPrefix = uniquePrefix(limiter);
  const keys = redis();
  cleanups.push(async () => {
    await cleanLimiterKeys(keys, limiterPrefix);
    await keys.quit();
  });
  const log = new RedisTestDeliveryLog(stores, q.prefix);
  // The API process's side: dispatches into the shared queue, never delivers.
  const delivery = webhookDelivery({
    queue: q.open({ logger: silentLogger }),
    log,
    endpointStore: new RedisTestEndpointStore(stores, q.prefix),
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    logger: silentLogger,
  });
  cleanups.push(() => delivery.stop());
  const hooks = await holdingReceiver(HOLD_MS);
  cleanups.push(() => hooks.close());
  await delivery.endpoints.create({ url: hooks.url, concurrency: CONCURRENCY });
  const env = { PREFIX: q.prefix, LIMITER: limiter, LIMITER_PREFIX: limiterPrefix };
  await Promise.all(
    Array.from({ length: WORKERS }, (_, i) => startWorker(script, env, `${limiter}-${i}`)),
  );
  for (let i = 0; i < EVENTS; i++)
    await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
  await until(async () => (await log.deliveries()).every((d) => d.status === 'delivered'), 30_000);
  const attempts = await log.attempts();
  const workers = new Set(hooks.agents);
  console.info(
    `[shared limits, ${limiter}] ${WORKERS} workers, ${EVENTS} events, endpoint concurrency ${CONCURRENCY}: ` +
      `at most ${hooks.maxOpen} requests open at once, ${hooks.ids.length} requests, ` +
      `${attempts.length} attempts, from ${workers.size} workers`,
  );
  return {
    maxOpen: hooks.maxOpen,
    requests: hooks.ids.length,
    attempts,
    workers,
    events: new Set(hooks.ids).size,
  };
}

describe.runIf(services.redis)('endpoint limits shared by worker processes', () => {
  it('redisEndpointLimiter holds concurrency 2 over three worker processes', async () => {
    const run = await deliverThroughWorkers('redis');
    expect(run.maxOpen).toBeLessThanOrEqual(CONCURRENCY);
    // The bound was reached, not starved, and more than one process delivered.
    expect(run.maxOpen).toBe(CONCURRENCY);
    expect(run.workers.size).toBeGreaterThan(1);
    expect(run.events).toBe(EVENTS);
    // A job turned away spends no attempt: one attempt per event, all successful.
    expect(run.attempts).toHaveLength(EVENTS);
    expect(run.attempts.every((a) => a.ok)).toBe(true);
  }, 60_000);

  it('the same setup with each worker’s memoryEndpointLimiter exceeds it', async () => {
    const run = await deliverThroughWorkers('memory');
    expect(run.maxOpen).toBeGreaterThan(CONCURRENCY);
    expect(run.maxOpen).toBeLessThanOrEqual(CONCURRENCY * WORKERS);
    expect(run.events).toBe(EVENTS);
  }, 60_000);
});
