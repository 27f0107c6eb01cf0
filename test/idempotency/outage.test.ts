/**
 * Idempotency on a store that is really down: a Redis at a port where nothing
 * listens, a Redis and a PostgreSQL that accept connections and never answer,
 * a PostgreSQL at a closed port. Fail closed (the default): 503 whose detail
 * tells the client the request was not executed, Retry-After, and the handler
 * never runs. Fail open: the handler runs, unguarded. Never a 500, never a hang.
 */
import pg from 'pg';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { silentLogger } from '../../src/core/logger.js';
import { idempotency } from '../../src/idempotency/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters } from '../helpers/apps.js';
import { hangingRedis, silentServer, unreachableRedis } from '../helpers/outage.js';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const silent = await silentServer();
cleanups.push(() => silent.close());

const outages: Array<{ name: string; make(): Store }> = [
  {
    name: 'a Redis where nothing listens',
    make() {
      const client = unreachableRedis();
      cleanups.push(() => client.disconnect());
      return new RedisStore({ client, timeoutMs: 200 });
    },
  },
  {
    name: 'a Redis that never answers',
    make() {
      const client = hangingRedis(silent.port);
      cleanups.push(() => client.disconnect());
      return new RedisStore({ client, timeoutMs: 200 });
    },
  },
  {
    name: 'a PostgreSQL where nothing listens',
    make() {
      const pool = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'postgres', max: 2 });
      pool.on('error', () => {});
      cleanups.push(() => pool.end().catch(() => {}));
      return new PostgresStore({ pool, timeoutMs: 200 });
    },
  },
  {
    name: 'a PostgreSQL that never answers',
    make() {
      const pool = new pg.Pool({
        host: '127.0.0.1',
        port: silent.port,
        user: 'postgres',
        max: 2,
        connectionTimeoutMillis: 5_000,
      });
      pool.on('error', () => {});
      cleanups.push(() => pool.end().catch(() => {}));
      return new PostgresStore({ pool, timeoutMs: 200 });
    },
  },
];

describe.each(adapters.filter((a) => a.name === 'express5' || a.name === 'koa3'))(
  'idempotency on a store that is down, through $name',
  (adapter) => {
    describe.each(outages)('$name', (outage) => {
      function app(onStoreError: 'closed' | 'open') {
        const runs = { count: 0 };
        const listener = adapter.build({
          options: { logger: silentLogger },
          use: [jsonBody()],
          before: (state) => {
            state.principal = { id: 'user-1' };
          },
          routes: [
            {
              method: 'post',
              path: '/v1/payments',
              use: [idempotency({ store: outage.make(), onStoreError })],
              handler: () => {
                runs.count++;
                return { status: 201, body: { id: 'pay_1' } };
              },
            },
          ],
        });
        return { listener, runs };
      }

      it('fails closed: 503, "not executed", Retry-After, and nothing runs', async () => {
        const { listener, runs } = app('closed');
        for (let i = 0; i < 2; i++) {
          const res = await request(listener)
            .post('/v1/payments')
            .set('Idempotency-Key', 'outage-1')
            .send({ amount: 100 });
          expect(res.status).toBe(503);
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.headers['retry-after']).toMatch(/^\d+$/);
          expect(res.body.detail).toMatch(/not executed/);
        }
        expect(runs.count).toBe(0);
      });

      it('fails open when asked: the request runs, unguarded', async () => {
        const { listener, runs } = app('open');
        await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', 'outage-2')
          .send({ amount: 100 })
          .expect(201);
        expect(runs.count).toBe(1);
      });
    });
  },
);
