/**
 * Health shared across processes: three worker processes (fixtures/worker.ts)
 * on one BullMQ queue deliver to one real receiver that fails every request,
 * with small thresholds (half failed over MINIMUM attempts, disabled
 * DISABLE_AFTER_MS after the alert) and no breakers, so every worker keeps
 * attempting. The test counts, over all processes, the `onAlert` and
 * `onDisable` calls and the alert and disable transitions each process's
 * store told. With redisEndpointHealth: one alert, one disable, told to one
 * worker each. With each process's own health (memoryEndpointHealth, the
 * default): every process alerts and every process's alert runs out, which
 * shows the count can fail. Either way the endpoint ends disabled by health
 * and its events held, none lost.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { startWorker, stopWorkers } from '../worker-processes.js';
import { queues, redis as bullRedis, until } from '../bullmq/helpers.js';
import { RedisTestDeliveryLog, RedisTestEndpointStore } from '../bullmq/shared-stores.js';
import { cleanHealthKeys, redis, sleep, uniquePrefix } from './helpers.js';

const script = join(import.meta.dirname, 'fixtures', 'worker.ts');
const WORKERS = 3;
const EVENTS = 30;
const MINIMUM = 5;
const DISABLE_AFTER_MS = 1500;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopWorkers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Told {
  name: string;
  what: string;
  endpointId: string;
}

/** A receiver that fails every request, and counts them per worker (by User-Agent). */
async function failingReceiver() {
  const byWorker = new Map<string, number>();
  const server = createServer((req, res) => {
    const ua = String(req.headers['user-agent']);
    byWorker.set(ua, (byWorker.get(ua) ?? 0) + 1);
    req.resume();
    req.on('end', () => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    byWorker,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function deliverThroughWorkers(health: 'redis' | 'memory') {
  const q = queues(`health-${health}`);
  cleanups.push(() => q.cleanup());
  const stores = bullRedis();
  cleanups.push(() => stores.quit());
  const healthPrefix = uniquePrefix(health);
  const keys = redis();
  cleanups.push(async () => {
    await cleanHealthKeys(keys, healthPrefix);
    await keys.quit();
  });
  const log = new RedisTestDeliveryLog(stores, q.prefix);
  const endpointStore = new RedisTestEndpointStore(stores, q.prefix);
  // The API process's side: dispatches into the shared queue, never delivers.
  const delivery = webhookDelivery({
    queue: q.open({ logger: silentLogger }),
    log,
    endpointStore,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    logger: silentLogger,
  });
  cleanups.push(() => delivery.stop());
  const hooks = await failingReceiver();
  cleanups.push(() => hooks.close());
  const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
  const told: Told[] = [];
  const env = {
    PREFIX: q.prefix,
    HEALTH: health,
    HEALTH_PREFIX: healthPrefix,
    MINIMUM: String(MINIMUM),
    DISABLE_AFTER_MS: String(DISABLE_AFTER_MS),
  };
  await Promise.all(
    Array.from({ length: WORKERS }, (_, i) => startWorker(script, env, `${health}-${i}`, told)),
  );
  for (let i = 0; i < EVENTS; i++)
    await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
  await until(async () => (await endpointStore.get(endpoint.id))?.disabled !== undefined, 20_000);
  // Every alert raised (the last ones within a moment of the first) has run out by now.
  await sleep(DISABLE_AFTER_MS + 1000);
  await until(async () => (await log.deliveries()).every((d) => d.status === 'held'), 10_000);
  const count = (what: string) => told.filter((t) => t.what === what).length;
  const run = {
    onAlert: count('onAlert'),
    onDisable: count('onDisable'),
    alerts: count('alert'),
    disables: count('disable'),
    alertingWorkers: new Set(told.filter((t) => t.what === 'alert').map((t) => t.name)).size,
    requests: [...hooks.byWorker.values()].reduce((a, b) => a + b, 0),
    workersThatSent: hooks.byWorker.size,
    disabled: (await endpointStore.get(endpoint.id))?.disabled,
    deliveries: await log.deliveries(),
  };
  console.info(
    `[shared health, ${health}] ${WORKERS} workers, minimumAttempts ${MINIMUM}, ` +
      `${run.requests} failing requests from ${run.workersThatSent} workers: ` +
      `${run.onAlert} onAlert, ${run.alerts} alert transitions (in ${run.alertingWorkers} workers), ` +
      `${run.disables} disable transitions, ${run.onDisable} onDisable`,
  );
  return run;
}

describe.runIf(services.redis)('endpoint health shared by worker processes', () => {
  it('redisEndpointHealth alerts once and disables once over all three processes', async () => {
    const run = await deliverThroughWorkers('redis');
    // Every worker attempted, so every worker could have alerted.
    expect(run.workersThatSent).toBe(WORKERS);
    expect(run.onAlert).toBe(1);
    expect(run.alerts).toBe(1);
    expect(run.disables).toBe(1);
    expect(run.onDisable).toBe(1);
    expect(run.disabled).toMatchObject({ by: 'health' });
    // Held, not dropped: each event waits for the endpoint to be enabled.
    expect(run.deliveries).toHaveLength(EVENTS);
  }, 60_000);

  it('the same setup with each process’s own health alerts and runs out in every process', async () => {
    const run = await deliverThroughWorkers('memory');
    expect(run.workersThatSent).toBe(WORKERS);
    expect(run.onAlert).toBeGreaterThan(1);
    expect(run.alertingWorkers).toBeGreaterThan(1);
    expect(run.disables).toBeGreaterThan(1);
    // The endpoint store's check keeps most duplicate disables from reaching onDisable.
    expect(run.onDisable).toBeGreaterThanOrEqual(1);
    expect(run.disabled).toMatchObject({ by: 'health' });
    expect(run.deliveries).toHaveLength(EVENTS);
  }, 60_000);
});
