/**
 * Worker processes on one BullMQ queue: the API side (this test) only
 * dispatches, into Redis, with a log and endpoint store the workers share;
 * worker children (fixtures/worker.ts, runDeliveryWorker) deliver to a real
 * receiver here. Two workers both take jobs; SIGTERM drains a worker before
 * it exits 0; and a worker SIGKILLed in the middle of deliveries loses
 * none: a new worker runs them again (at least once; duplicates counted).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import type { DeliveryLog, DeliveryRecord } from '../../../../src/webhooks/delivery/log.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { PostgresEndpointStore } from '../../../../src/webhooks/delivery/postgres-endpoints.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { receiver } from '../engine/helpers.js';
import { queues, redis, until } from './helpers.js';
import { RedisTestDeliveryLog, RedisTestEndpointStore } from './shared-stores.js';

const script = join(import.meta.dirname, 'fixtures', 'worker.ts');

interface WorkerChild {
  child: ChildProcess;
  lines: { level: string; message: string }[];
}

const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startWorker(
  prefix: string,
  name: string,
  concurrency = 8,
  schema?: string,
): Promise<WorkerChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: {
      ...process.env,
      REDIS_URL: services.redisUrl,
      PREFIX: prefix,
      WORKER_NAME: name,
      CONCURRENCY: String(concurrency),
      ...(schema === undefined ? {} : { SCHEMA: schema, DATABASE_URL: services.databaseUrl }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: WorkerChild['lines'] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as WorkerChild['lines'][number]);
    } catch {
      lines.push({ level: 'raw', message: line });
    }
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`worker exited with ${code}: ${JSON.stringify(lines)}`)),
    );
  });
  return { child, lines };
}

/** Every delivery in the log, all pages. */
async function allDeliveries(log: DeliveryLog): Promise<DeliveryRecord[]> {
  const out: DeliveryRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await log.queryDeliveries({ limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}

/**
 * The API process's side: an engine on the shared queue and stores that never
 * starts a worker. `postgres`: PostgresDeliveryLog and PostgresEndpointStore on
 * a schema of its own (dropped after), the durable stack a deployment runs.
 */
async function api(label: string, stores: 'redis' | 'postgres' = 'redis') {
  const q = queues(label);
  cleanups.push(() => q.cleanup());
  let log: DeliveryLog & { deliveries(): Promise<DeliveryRecord[]> };
  let endpointStore: PostgresEndpointStore | RedisTestEndpointStore;
  let schema: string | undefined;
  if (stores === 'postgres') {
    schema = `restwell_wh_proc_${Math.random().toString(36).slice(2, 8)}`;
    const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 5 });
    pool.on('error', () => {});
    const where = schema;
    cleanups.push(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${where} CASCADE`);
      await pool.end();
    });
    await migrateWebhookDelivery(pool, { schema });
    const pgLog = new PostgresDeliveryLog({ pool, schema });
    log = Object.assign(pgLog, { deliveries: () => allDeliveries(pgLog) });
    endpointStore = new PostgresEndpointStore({ pool, schema });
  } else {
    const client = redis();
    cleanups.push(async () => {
      await client.quit();
    });
    log = new RedisTestDeliveryLog(client, q.prefix);
    endpointStore = new RedisTestEndpointStore(client, q.prefix);
  }
  const delivery = webhookDelivery({
    queue: q.open({ logger: silentLogger }),
    log,
    endpointStore,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    logger: silentLogger,
  });
  cleanups.push(() => delivery.stop());
  const hooks = await receiver();
  cleanups.push(() => hooks.close());
  return { prefix: q.prefix, schema, delivery, log, hooks };
}

/** Answers seen per event id: every request, and those answered 2xx. */
function tally(requests: readonly { json: Record<string, unknown> }[], acked: Map<string, number>) {
  const arrived = new Map<string, number>();
  for (const r of requests) {
    const id = r.json.id as string;
    arrived.set(id, (arrived.get(id) ?? 0) + 1);
  }
  const duplicates = [...acked.values()].filter((n) => n > 1).length;
  return { arrived, duplicates };
}

describe.runIf(services.redis)('delivery worker processes sharing one BullMQ queue', () => {
  it('two worker processes both take jobs', async () => {
    const { prefix, delivery, hooks, log } = await api('two');
    // Both workers are needed to hold 12 requests at once: each runs 8 at most.
    hooks.answer((_req, n) => (n <= 12 ? 'hang' : 200));
    await delivery.endpoints.create({ url: hooks.url, concurrency: 50 });
    await Promise.all([startWorker(prefix, 'a'), startWorker(prefix, 'b')]);
    for (let i = 0; i < 30; i++)
      await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
    await until(() => hooks.requests.length >= 12);
    hooks.release(200);
    hooks.answer(() => 200);
    await until(
      async () => (await log.deliveries()).every((d) => d.status === 'delivered'),
      15_000,
    );
    const agents = new Set(hooks.requests.map((r) => r.headers['user-agent']));
    expect(agents).toEqual(new Set(['restwell-webhooks a', 'restwell-webhooks b']));
  });

  it('SIGTERM drains: the attempt in flight finishes, then the worker exits 0', async () => {
    const { prefix, delivery, hooks, log } = await api('drain');
    hooks.answer(() => 'hang');
    await delivery.endpoints.create({ url: hooks.url });
    const { child } = await startWorker(prefix, 'drain');
    const { deliveries } = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await until(() => hooks.requests.length === 1);
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBeNull(); // still draining
    hooks.release(200);
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect((await log.getDelivery(deliveries[0]!.id))?.status).toBe('delivered');
    expect(hooks.requests).toHaveLength(1);
  });

  it.each(['redis', 'postgres'] as const)(
    'at least once across a worker killed mid-delivery (%s log and endpoints): none lost, duplicates counted',
    async (stores) => {
      if (stores === 'postgres' && !services.postgres) {
        if (process.env.CI) throw new Error('PostgreSQL is needed for the durable stack');
        return;
      }
      const { prefix, schema, delivery, hooks, log } = await api(`kill-${stores}`, stores);
      const acked = new Map<string, number>();
      let hang = false;
      const answer = (req: { json: Record<string, unknown> }, n: number) => {
        // The first 10 are answered; then every request hangs, so the kill lands mid-delivery.
        if (hang || n > 10) {
          hang = true;
          return 'hang' as const;
        }
        const id = req.json.id as string;
        acked.set(id, (acked.get(id) ?? 0) + 1);
        return 200;
      };
      hooks.answer(answer);
      await delivery.endpoints.create({ url: hooks.url, concurrency: 50 });
      const first = await startWorker(prefix, 'first', 8, schema);
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        const { event } = await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
        ids.push(event.id);
      }
      // Eight attempts in flight, hanging at the receiver: kill the worker now.
      await until(() => hooks.requests.length >= 18);
      const inFlight = hooks.requests.slice(10).map((r) => r.json.id as string);
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      hang = false;
      hooks.answer((req) => {
        const id = req.json.id as string;
        acked.set(id, (acked.get(id) ?? 0) + 1);
        return 200;
      });
      const second = await startWorker(prefix, 'second', 8, schema);
      await until(
        async () => (await log.deliveries()).every((d) => d.status === 'delivered'),
        20_000,
      );
      const { arrived, duplicates } = tally(hooks.requests, acked);
      const lost = ids.filter((id) => (acked.get(id) ?? 0) === 0);
      const records = await log.deliveries();
      console.info(
        `[at-least-once, ${stores}] events ${ids.length}, requests ${hooks.requests.length}, ` +
          `cut by the kill ${inFlight.length}, acknowledged twice or more ${duplicates}, lost ${lost.length}`,
      );
      expect(lost).toEqual([]);
      expect(records).toHaveLength(ids.length);
      expect(records.every((d) => d.status === 'delivered')).toBe(true);
      // The deliveries the kill cut short were made again, by the new worker.
      expect(inFlight).toHaveLength(8);
      for (const id of inFlight) {
        expect(arrived.get(id)).toBeGreaterThanOrEqual(2);
        expect(acked.get(id)).toBe(1);
      }
      const again = hooks.requests.filter(
        (r) => r.headers['user-agent'] === 'restwell-webhooks second',
      );
      expect(again.length).toBeGreaterThanOrEqual(inFlight.length);
      expect(second.lines.some((l) => /lost its worker/.test(l.message))).toBe(true);
    },
    40_000,
  );
});
