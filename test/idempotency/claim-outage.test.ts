/**
 * A claim whose store call timed out can still land: a Redis that stalls (a
 * fork for a snapshot, a paused VM) runs the queued command when it resumes.
 * The client was told 503 "not executed"; its retry must then run, not get
 * 409 for the whole lease. This suite pauses a Redis of its own with SIGSTOP
 * (never the shared one).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { idempotency } from '../../src/idempotency/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { adapters } from '../helpers/apps.js';

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

let child: ChildProcess | undefined;
let client: Redis | undefined;
let dir: string | undefined;

beforeAll(async () => {
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'restwell-idem-outage-'));
  child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50 });
  client.on('error', () => {});
  // Queued until the server accepts connections.
  await client.ping();
});

afterAll(async () => {
  if (child?.pid !== undefined) {
    process.kill(child.pid, 'SIGCONT');
    child.kill('SIGKILL');
  }
  client?.disconnect();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe.each(adapters.filter((a) => a.name === 'express5' || a.name === 'koa3'))(
  'a claim that lands after its timeout, through $name',
  (adapter) => {
    it('is deleted in the background, so that a retry after the store resumes runs', async () => {
      const store = new RedisStore({
        client: client!,
        prefix: `idem-outage:${adapter.name}:${Date.now()}:`,
        timeoutMs: 300,
      });
      const calls = { count: 0 };
      const listener = adapter.build({
        use: [jsonBody()],
        before: (state) => {
          state.principal = { id: 'user-1' };
        },
        routes: [
          {
            method: 'post',
            path: '/v1/payments',
            // A lease far longer than the test: without compensation, every retry is 409.
            use: [idempotency({ store, leaseMs: 60_000 })],
            handler: () => {
              calls.count++;
              return { status: 201, body: { id: `pay_${calls.count}` } };
            },
          },
        ],
      });
      const pay = (key: string) =>
        request(listener).post('/v1/payments').set('Idempotency-Key', key).send({ amount: 1 });

      // Loads the scripts, so that the stalled command is the claim itself.
      expect((await pay(`warm-${adapter.name}`)).status).toBe(201);
      const key = `stalled-${adapter.name}`;
      process.kill(child!.pid!, 'SIGSTOP');
      let stalled: request.Response;
      try {
        stalled = await pay(key);
      } finally {
        process.kill(child!.pid!, 'SIGCONT');
      }
      expect(stalled.status).toBe(503);
      expect(stalled.body.detail).toMatch(/not executed/);
      expect(calls.count).toBe(1);
      // Commands on one connection run in order: once this answers, the stalled
      // claim and the first compensating delete have both run.
      await client!.ping();
      const retry = await pay(key);
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(calls.count).toBe(2);
      expect((await pay(key)).headers['idempotent-replayed']).toBe('true');
    }, 20_000);
  },
);
