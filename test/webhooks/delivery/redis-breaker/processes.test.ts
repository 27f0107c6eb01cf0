/**
 * The breaker shared across processes: three worker processes
 * (fixtures/worker.ts) on one BullMQ queue, with the shared limiter
 * (concurrency 4), deliver to one real receiver that fails every request.
 *
 * First it fails at once, and the test counts the requests it gets until the
 * workers stop sending (every circuit open): with redisEndpointBreakers about
 * `minimumRequests` (plus the attempts already in flight when it opened), and
 * one change to open over all processes; with each process's own breaker
 * about three times as many, each process opening its own circuit. Then it
 * holds each request 800 ms before failing, and the test measures the most
 * requests open at once after the open period: the half-open probes, at most
 * `halfOpenProbes` over all processes with the shared breaker, more with the
 * per-process ones, which shows both measurements can fail.
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
import { cleanBreakerKeys, redis, sleep, uniquePrefix } from './helpers.js';

const script = join(import.meta.dirname, 'fixtures', 'worker.ts');
const WORKERS = 3;
const EVENTS = 40;
const MINIMUM = 10;
const OPEN_MS = 2500;
const PROBES = 2;
const CONCURRENCY = 4;
const HOLD_MS = 800;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopWorkers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Change {
  name: string;
  state: string;
  previous: string;
}

/** A receiver that fails every request: at once, then (`hold()`) after HOLD_MS. */
async function failingReceiver() {
  let holding = false;
  let open = 0;
  let maxOpenHolding = 0;
  let fast = 0;
  let held = 0;
  let lastAt = Date.now();
  const server = createServer((req, res) => {
    lastAt = Date.now();
    req.resume();
    req.on('end', () => {
      if (!holding) {
        fast++;
        res.writeHead(500).end();
        return;
      }
      held++;
      open++;
      maxOpenHolding = Math.max(maxOpenHolding, open);
      setTimeout(() => {
        open--;
        res.writeHead(500).end();
      }, HOLD_MS);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    hold() {
      holding = true;
    },
    get fast() {
      return fast;
    },
    get held() {
      return held;
    },
    get maxOpenHolding() {
      return maxOpenHolding;
    },
    get quietForMs() {
      return Date.now() - lastAt;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function deliverThroughWorkers(breakers: 'redis' | 'memory') {
  const q = queues(`breaker-${breakers}`);
  cleanups.push(() => q.cleanup());
  const stores = bullRedis();
  cleanups.push(() => stores.quit());
  const breakerPrefix = uniquePrefix(breakers);
  const limiterPrefix = uniquePrefix(`${breakers}-limits`);
  const keys = redis();
  cleanups.push(async () => {
    await cleanBreakerKeys(keys, breakerPrefix);
    await cleanBreakerKeys(keys, limiterPrefix);
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
  const hooks = await failingReceiver();
  cleanups.push(() => hooks.close());
  await delivery.endpoints.create({ url: hooks.url, concurrency: CONCURRENCY });
  const changes: Change[] = [];
  const env = {
    PREFIX: q.prefix,
    BREAKERS: breakers,
    BREAKER_PREFIX: breakerPrefix,
    LIMITER_PREFIX: limiterPrefix,
    MINIMUM: String(MINIMUM),
    OPEN_MS: String(OPEN_MS),
    PROBES: String(PROBES),
  };
  await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      startWorker(script, env, `${breakers}-${i}`, changes),
    ),
  );
  for (let i = 0; i < EVENTS; i++)
    await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
  // Every circuit open: the receiver hears nothing more until the open period ends.
  await until(() => hooks.fast >= MINIMUM && hooks.quietForMs >= 500, 20_000);
  const beforeOpen = hooks.fast;
  const opened = changes.filter((c) => c.previous === 'closed' && c.state === 'open').length;
  hooks.hold();
  // The open period ends (it began before the quiet), the probes go and fail after HOLD_MS.
  await sleep(OPEN_MS + HOLD_MS + 1000);
  const deliveries = await log.deliveries();
  console.info(
    `[shared breakers, ${breakers}] ${WORKERS} workers, minimumRequests ${MINIMUM}, ` +
      `halfOpenProbes ${PROBES}, endpoint concurrency ${CONCURRENCY}: ` +
      `${beforeOpen} failing requests before every circuit opened (${opened} openings told), ` +
      `then at most ${hooks.maxOpenHolding} requests open at once in half-open ` +
      `(${hooks.held} probes)`,
  );
  return {
    beforeOpen,
    opened,
    maxProbesOpen: hooks.maxOpenHolding,
    probes: hooks.held,
    deliveries,
  };
}

describe.runIf(services.redis)('circuit breakers shared by worker processes', () => {
  it('redisEndpointBreakers opens one circuit for all three processes and bounds their probes', async () => {
    const run = await deliverThroughWorkers('redis');
    // minimumRequests failures open it for all; at most the other attempts in flight then.
    expect(run.beforeOpen).toBeGreaterThanOrEqual(MINIMUM);
    expect(run.beforeOpen).toBeLessThanOrEqual(MINIMUM + CONCURRENCY - 1);
    // The change is made once, by one process, and told once.
    expect(run.opened).toBe(1);
    expect(run.maxProbesOpen).toBeGreaterThanOrEqual(1);
    expect(run.maxProbesOpen).toBeLessThanOrEqual(PROBES);
    // Events wait while it is open: none is lost or dead-lettered.
    expect(run.deliveries).toHaveLength(EVENTS);
    expect(run.deliveries.every((d) => d.status === 'pending' || d.status === 'retrying')).toBe(
      true,
    );
  }, 60_000);

  it('the same setup with each process’s own breaker sends about three times as many', async () => {
    const run = await deliverThroughWorkers('memory');
    expect(run.beforeOpen).toBeGreaterThan(2 * MINIMUM);
    expect(run.opened).toBeGreaterThan(1);
    expect(run.maxProbesOpen).toBeGreaterThan(PROBES);
    expect(run.deliveries).toHaveLength(EVENTS);
  }, 60_000);
});
