/**
 * The durable stack when its servers fail. A Redis of its own (another port,
 * its own directory: the shared one is never touched) is restarted under a
 * running worker: the delayed job survives and runs, and an add while Redis
 * is down is a 503 within the queue's timeout, not a request held forever.
 * PostgreSQL is reached through a TCP proxy this test can cut: while it is
 * cut, the log's reads are 503 problems and the worker keeps the job and
 * retries it, delivering it once PostgreSQL answers again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { BullMqDeliveryQueue } from '../../../../src/webhooks/delivery/bullmq.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { PostgresEndpointStore } from '../../../../src/webhooks/delivery/postgres-endpoints.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { receiver } from '../engine/helpers.js';
import { job, queues, recordingLogger, until } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A redis-server of this test's own, persisting to an append-only file in a directory of its own. */
async function ownRedis() {
  const dir = await mkdtemp(join(tmpdir(), 'rw-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'],
      { stdio: 'ignore' },
    );
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    await until(async () => {
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      }
    });
    probe.disconnect();
  };
  /** Stops it as an operator restarting it would: SIGTERM, which flushes the append-only file. */
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    c.kill('SIGTERM');
    await once(c, 'exit');
  };
  await start();
  cleanups.push(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { url: `redis://127.0.0.1:${port}`, start, stop };
}

/** A TCP proxy to the shared PostgreSQL that can be cut (every connection dropped, none taken) and mended. */
async function cuttableProxy() {
  const target = new URL(services.databaseUrl);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const port = await freePort();
  const up = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };
  const down = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s !== undefined) await new Promise((r) => s.close(r));
  };
  await up();
  cleanups.push(down);
  const url = new URL(services.databaseUrl);
  url.port = String(port);
  url.hostname = '127.0.0.1';
  return { url: url.toString(), up, down };
}

describe.runIf(services.redis)('BullMqDeliveryQueue when its Redis restarts', () => {
  it('keeps a delayed job across the restart and runs it; an add while Redis is down is a 503', async () => {
    const server = await ownRedis();
    const { logger } = recordingLogger();
    const queue = new BullMqDeliveryQueue({
      connection: server.url,
      prefix: 'rw-restart',
      lockDurationMs: 2000,
      stalledIntervalMs: 500,
      timeoutMs: 300,
      logger,
    });
    cleanups.push(() => queue.close());
    const ran: string[] = [];
    queue.process(
      async (j) => {
        ran.push(j.id);
        return { type: 'done' };
      },
      { concurrency: 2 },
    );
    await queue.ready();
    await queue.add(job('evt_before/ep_1'), { delayMs: 1500 });
    await server.stop();
    // Bounded by timeoutMs, not by how long Redis stays down (unbounded, this add never settles).
    const err = await queue.add(job('evt_down/ep_1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503 });
    await server.start();
    await until(() => ran.includes('evt_before/ep_1'), 15_000);
    // The add that timed out was kept in the client's queue and ran on the reconnect: harmless,
    // and never run twice.
    await queue.add(job('evt_after/ep_1'));
    await until(() => ran.includes('evt_after/ep_1'), 10_000);
    expect(ran.filter((id) => id === 'evt_before/ep_1')).toHaveLength(1);
    expect(ran.filter((id) => id === 'evt_down/ep_1').length).toBeLessThanOrEqual(1);
  }, 40_000);
});

describe.runIf(services.redis && services.postgres)(
  'the engine on BullMQ when PostgreSQL is cut off',
  () => {
    it('reads are 503 problems, and the worker keeps the job and delivers it once PostgreSQL is back', async () => {
      const schema = `restwell_wh_faults_${Math.random().toString(36).slice(2, 8)}`;
      const admin = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
      cleanups.push(async () => {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.end();
      });
      await migrateWebhookDelivery(admin, { schema });
      const proxy = await cuttableProxy();
      const pool = new pg.Pool({ connectionString: proxy.url, max: 5 });
      pool.on('error', () => {});
      cleanups.push(() => pool.end());
      const q = queues('pgdown');
      cleanups.push(() => q.cleanup());
      const log = new PostgresDeliveryLog({ pool, schema, timeoutMs: 500 });
      const endpointStore = new PostgresEndpointStore({ pool, schema, timeoutMs: 500 });
      const { logger, lines } = recordingLogger();
      const delivery = webhookDelivery({
        queue: q.open({ logger, faultDelayMs: 200 }),
        log,
        endpointStore,
        guard: ssrfGuard({ allowLoopback: true }),
        allowHttp: true,
        schedule: retrySchedule({ delaysMs: [100], jitter: 0, maxAttempts: 5 }),
        breaker: false,
        health: false,
        logger,
      });
      cleanups.push(() => delivery.stop());
      const hooks = await receiver();
      cleanups.push(() => hooks.close());
      await delivery.endpoints.create({ url: hooks.url });
      const { deliveries } = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
      await proxy.down();
      // The admin API's reads: a 503 problem each, never a 500 or a hang.
      for (const read of [
        () => log.queryDeliveries({}),
        () => log.queryAttempts({}),
        () => log.endpointStats('ep', 0),
        () => endpointStore.list(),
        () => log.updateDelivery(deliveries[0]!.id, (d) => d),
      ]) {
        const err = await read().catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 503 });
      }
      // So is a dispatch: the event was not accepted, and the caller is told so.
      expect(
        await delivery.dispatch({ type: 'payment.succeeded', data: {} }).catch((e) => e),
      ).toMatchObject({ status: 503 });
      delivery.startWorker({ concurrency: 2 });
      await until(() => lines.some((l) => /runs again later/.test(l.message)), 10_000);
      expect(hooks.requests).toHaveLength(0);
      await proxy.up();
      await until(
        async () => (await log.getDelivery(deliveries[0]!.id))?.status === 'delivered',
        15_000,
      );
      expect(hooks.requests).toHaveLength(1);
      expect(await q.open({ logger: silentLogger }).counts()).toMatchObject({ failed: 0 });
    }, 40_000);
  },
);
