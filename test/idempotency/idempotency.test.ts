import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import { NotFoundError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { idempotency, type IdempotencyOptions } from '../../src/idempotency/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { migrate, PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters } from '../helpers/apps.js';
import { unreachableRedis } from '../helpers/outage.js';
import { services } from '../helpers/services.js';

const PROBLEM = /^application\/problem\+json/;
const run = Math.random().toString(36).slice(2, 8);
let keyN = 0;
const newKey = () => `key-${run}-${++keyN}`;

interface StoreCase {
  name: string;
  enabled: boolean;
  setup(): Promise<Store>;
  teardown(): Promise<void>;
}

let redis: Redis | undefined;
let pool: pg.Pool | undefined;
const table = `restwell_idem_test_${run}`;

const storeCases: StoreCase[] = [
  {
    name: 'memory',
    enabled: true,
    setup: async () => new MemoryStore({ evict: false }),
    teardown: async () => {},
  },
  {
    name: 'redis',
    enabled: services.redis,
    setup: async () => {
      redis ??= new Redis(services.redisUrl);
      return new RedisStore({ client: redis, prefix: `idem-test:${run}:` });
    },
    teardown: async () => {
      const keys = (await redis?.keys(`idem-test:${run}:*`)) ?? [];
      if (keys.length > 0) await redis?.del(...keys);
    },
  },
  {
    name: 'postgres',
    enabled: services.postgres,
    setup: async () => {
      pool ??= new pg.Pool({ connectionString: services.databaseUrl, max: 20 });
      await migrate(pool, { table });
      return new PostgresStore({ pool, table });
    },
    teardown: async () => {},
  },
];

afterAll(async () => {
  await pool?.query(`DROP TABLE IF EXISTS ${table}`);
  await pool?.end();
  await redis?.quit();
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const quietLogger = (): Logger & { warnings: string[]; errors: string[] } => {
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    errors,
    warn: (m) => warnings.push(m),
    error: (m) => errors.push(m),
    info() {},
  };
};

const recordingLogger = () => {
  const entries: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    entries,
    warnings,
    errors,
    warn: (message: string, fields?: Record<string, unknown>) => {
      warnings.push(message);
      entries.push({ level: 'warn', message, fields });
    },
    error: (message: string, fields?: Record<string, unknown>) => {
      errors.push(message);
      entries.push({ level: 'error', message, fields });
    },
    info() {},
  };
};

/** A JSON parser without a depth bound, as express.json() is. */
const unboundedJson: Middleware = async (ctx, next) => {
  if (ctx.request.header('content-type')?.startsWith('application/json')) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of ctx.request.stream()) chunks.push(chunk);
    ctx.request.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }
  await next();
};

// Every store with the fastest adapter of each framework; the memory store with all four.
const matrix = storeCases.flatMap((s) =>
  adapters
    .filter((a) => s.name === 'memory' || a.name === 'express5' || a.name === 'koa3')
    .map((a) => ({ store: s, adapter: a })),
);

describe.each(matrix)(
  'idempotency on $store.name through $adapter.name',
  ({ store: storeCase, adapter }) => {
    let store: Store;
    beforeAll(async () => {
      if (storeCase.enabled) store = await storeCase.setup();
    });
    afterAll(async () => {
      if (storeCase.enabled) await storeCase.teardown();
    });

    function app(
      options: Partial<IdempotencyOptions> = {},
      hooks: { gate?: Promise<void>; fail?: 'throw' | '500' } = {},
    ) {
      const calls = { count: 0 };
      const logger = quietLogger();
      const listener = adapter.build({
        options: { logger },
        use: [jsonBody()],
        before: (state, headers) => {
          const user = headers['x-user'] ?? 'user-1';
          if (user !== 'anonymous' && typeof user === 'string') state.principal = { id: user };
        },
        routes: [
          {
            method: 'post',
            path: '/v1/payments',
            use: [idempotency({ store, required: true, leaseMs: 2_000, ...options })],
            handler: async (req) => {
              calls.count++;
              await hooks.gate;
              if (hooks.fail === 'throw') throw new Error('card network down');
              if (hooks.fail === '500') return { status: 500, body: { error: 'boom' } };
              return {
                status: 201,
                headers: { location: `/v1/payments/pay_${calls.count}`, 'x-not-recorded': 'first' },
                body: {
                  id: `pay_${calls.count}`,
                  amount: (req.body as { amount?: number }).amount,
                },
              };
            },
          },
          {
            method: 'post',
            path: '/v1/exports',
            use: [idempotency({ store, ...options })],
            handler: () => {
              calls.count++;
              return {
                headers: { 'content-type': 'text/csv' },
                body: Readable.from([Buffer.from('a,b\n'), Buffer.from('1,2\n')]),
              };
            },
          },
        ],
      });
      return { listener, calls, logger };
    }

    function extra(
      options: Partial<IdempotencyOptions> = {},
      adapterOptions: { trustProxy?: boolean } = {},
      gate?: Promise<void>,
    ) {
      const calls = { big: 0, throws: 0, empty: 0, unbounded: 0, late: 0, hang: 0 };
      const logger = recordingLogger();
      const idem = idempotency({ store, leaseMs: 2_000, ...options });
      const listener = adapter.build({
        options: { logger, ...adapterOptions },
        before: (state, headers) => {
          const user = headers['x-user'] ?? 'user-1';
          if (user === 'anonymous' || typeof user !== 'string') return;
          state.principal = { id: headers['x-numeric'] === '1' ? Number(user) : user };
        },
        routes: [
          {
            method: 'post',
            path: '/v1/big',
            use: [jsonBody(), idem],
            handler: () => {
              calls.big++;
              return {
                status: 201,
                headers: { 'content-type': 'text/plain' },
                body: 'x'.repeat(1_100_000),
              };
            },
          },
          {
            method: 'post',
            path: '/v1/throws',
            use: [jsonBody(), idem],
            handler: (req) => {
              calls.throws++;
              const status = Number(req.headers['x-throw'] ?? 0);
              if (status === 404) throw new NotFoundError();
              if (status === 503) throw new Error('upstream down');
              return { status: 201, body: { ok: true } };
            },
          },
          {
            method: 'post',
            path: '/v1/empty',
            use: [jsonBody(), idem],
            handler: () => {
              calls.empty++;
              return { status: 201, headers: { location: '/v1/things/1' } };
            },
          },
          {
            method: 'post',
            path: '/v1/described',
            use: [jsonBody(), idem],
            handler: () => ({
              status: 200,
              headers: {
                'content-language': 'en',
                'content-disposition': 'inline; filename="receipt.json"',
                'content-location': '/v1/receipts/1',
                'cache-control': 'private, max-age=60',
                'last-modified': 'Tue, 01 Dec 2026 09:00:00 GMT',
                expires: 'Tue, 01 Dec 2026 10:00:00 GMT',
                vary: 'Accept-Language',
                link: '</v1/receipts/2>; rel="next"',
                etag: '"r1"',
                'x-custom': 'kept',
              },
              body: { receipt: 1 },
            }),
          },
          {
            method: 'post',
            path: '/v1/unbounded',
            use: [unboundedJson, idem],
            handler: () => {
              calls.unbounded++;
              return { status: 201, body: { ok: true } };
            },
          },
          {
            method: 'post',
            path: '/v1/late-parser',
            use: [idem, jsonBody()],
            handler: () => {
              calls.late++;
              return { status: 201, body: { ok: true } };
            },
          },
          {
            method: 'post',
            path: '/v1/hang',
            use: [jsonBody(), idem],
            handler: async (req) => {
              calls.hang++;
              if (req.headers['x-release'] === undefined) await gate;
              return { status: 201, body: { ok: true } };
            },
          },
        ],
      });
      return { listener, calls, logger };
    }

    describe.runIf(storeCase.enabled)('', () => {
      it('replays the first response exactly, with Idempotent-Replayed', async () => {
        const { listener, calls } = app();
        const key = newKey();
        const first = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1000 })
          .expect(201);
        expect(first.headers['idempotent-replayed']).toBeUndefined();
        const again = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1000 })
          .expect(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.text).toBe(first.text);
        expect(again.headers.location).toBe(first.headers.location);
        expect(again.headers['content-type']).toBe(first.headers['content-type']);
        expect(again.headers['x-not-recorded']).toBeUndefined();
        expect(calls.count).toBe(1);
      });

      it('treats a quoted sf-string key and the same bare key alike', async () => {
        const { listener, calls } = app();
        const key = newKey();
        await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', `"${key}"`)
          .send({ amount: 5 })
          .expect(201);
        const again = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 5 })
          .expect(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(calls.count).toBe(1);
      });

      it('answers 422 when the key comes back with a different request', async () => {
        const { listener, calls } = app();
        const key = newKey();
        await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1000 })
          .expect(201);
        const reused = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 9999 })
          .expect(422);
        expect(reused.headers['content-type']).toMatch(PROBLEM);
        expect(reused.body.code).toBe('idempotency-key-reused');
        expect(calls.count).toBe(1);
      });

      it('fingerprints the canonical JSON, not its key order or spacing', async () => {
        const { listener, calls } = app();
        const key = newKey();
        await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .set('content-type', 'application/json')
          .send('{"amount":1,"currency":"EUR"}')
          .expect(201);
        const again = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .set('content-type', 'application/json')
          .send('{ "currency": "EUR",  "amount": 1 }')
          .expect(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(calls.count).toBe(1);
      });

      it('answers 409 with Retry-After while the first request is in flight, and 422 wins over 409', async () => {
        const gate = deferred();
        const { listener, calls } = app({}, { gate: gate.promise });
        const key = newKey();
        const first = request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .then((r) => r);
        await waitFor(() => calls.count === 1);
        const during = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(409);
        expect(during.body.code).toBe('idempotency-key-in-flight');
        expect(Number(during.headers['retry-after'])).toBeGreaterThan(0);
        const other = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 2 })
          .expect(422);
        expect(other.body.code).toBe('idempotency-key-reused');
        gate.resolve();
        expect((await first).status).toBe(201);
        expect(calls.count).toBe(1);
      });

      it('runs the handler exactly once for 50 parallel identical requests', async () => {
        const gate = deferred();
        const { listener, calls } = app({}, { gate: gate.promise });
        const key = newKey();
        const { createServer } = await import('node:http');
        const server = createServer(listener).listen(0, '127.0.0.1');
        await new Promise((r) => server.once('listening', r));
        const port = (server.address() as import('node:net').AddressInfo).port;
        try {
          const responses = Promise.all(
            Array.from({ length: 50 }, () =>
              fetch(`http://127.0.0.1:${port}/v1/payments`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', 'idempotency-key': key },
                body: JSON.stringify({ amount: 42 }),
              }).then(async (r) => ({ status: r.status, body: await r.text() })),
            ),
          );
          await waitFor(() => calls.count >= 1);
          setTimeout(() => gate.resolve(), 50);
          const all = await responses;
          expect(calls.count).toBe(1);
          const created = all.filter((r) => r.status === 201);
          expect(created.length).toBeGreaterThanOrEqual(1);
          expect(new Set(created.map((r) => r.body)).size).toBe(1);
          expect(all.every((r) => r.status === 201 || r.status === 409)).toBe(true);
        } finally {
          server.closeAllConnections();
          server.close();
        }
      });

      it('requires a key where configured, and checks its syntax and length', async () => {
        const { listener, calls } = app();
        const missing = await request(listener)
          .post('/v1/payments')
          .send({ amount: 1 })
          .expect(400);
        expect(missing.body.code).toBe('idempotency-key-missing');
        for (const bad of ['a b', '"unterminated', '""', 'x'.repeat(256), 'é', 'a,b', '"a"b']) {
          const res = await request(listener)
            .post('/v1/payments')
            .set('Idempotency-Key', bad)
            .send({ amount: 1 })
            .expect(400);
          expect(res.headers['content-type']).toMatch(PROBLEM);
          expect(res.body.code).toBe('idempotency-key-invalid');
        }
        const longest = newKey().padEnd(255, 'x');
        await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', longest)
          .send({ amount: 1 })
          .expect(201);
        expect(calls.count).toBe(1);
      });

      it('scopes keys to the principal: the same key from two users never collides', async () => {
        const { listener, calls } = app();
        const key = newKey();
        const a = await request(listener)
          .post('/v1/payments')
          .set('x-user', 'alice')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(201);
        const b = await request(listener)
          .post('/v1/payments')
          .set('x-user', 'bob')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(201);
        expect(b.headers['idempotent-replayed']).toBeUndefined();
        expect(a.body.id).not.toBe(b.body.id);
        expect(calls.count).toBe(2);
      });

      it('releases the key when the handler throws or answers 5xx, so a retry runs', async () => {
        for (const fail of ['throw', '500'] as const) {
          const key = newKey();
          const broken = app({}, { fail });
          await request(broken.listener)
            .post('/v1/payments')
            .set('Idempotency-Key', key)
            .send({ amount: 1 })
            .expect(500);
          const healthy = app();
          const retry = await request(healthy.listener)
            .post('/v1/payments')
            .set('Idempotency-Key', key)
            .send({ amount: 1 })
            .expect(201);
          expect(retry.headers['idempotent-replayed']).toBeUndefined();
        }
      });

      it("keeps a 5xx and replays it with onServerError: 'record'", async () => {
        const key = newKey();
        const broken = app({ onServerError: 'record' }, { fail: '500' });
        await request(broken.listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(500);
        const again = await request(broken.listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(500);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(broken.calls.count).toBe(1);
      });

      it('never executes a streamed answer twice: a retry gets 422 idempotency-response-not-replayable', async () => {
        const { listener, calls, logger } = app();
        const key = newKey();
        const first = await request(listener)
          .post('/v1/exports')
          .set('Idempotency-Key', key)
          .expect(200);
        expect(first.text).toBe('a,b\n1,2\n');
        const second = await request(listener)
          .post('/v1/exports')
          .set('Idempotency-Key', key)
          .expect(422);
        expect(second.headers['content-type']).toMatch(PROBLEM);
        expect(second.body.code).toBe('idempotency-response-not-replayable');
        expect(second.body.originalStatus).toBe(200);
        expect(calls.count).toBe(1);
        expect(logger.warnings.some((w) => /not-replayable/.test(w))).toBe(true);
      });

      it('never executes an answer too large to record twice (1.1 MB)', async () => {
        const { listener, calls } = extra();
        const key = newKey();
        const first = await request(listener)
          .post('/v1/big')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        expect(first.text.length).toBe(1_100_000);
        const second = await request(listener)
          .post('/v1/big')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(422);
        expect(second.body.code).toBe('idempotency-response-not-replayable');
        expect(second.body.originalStatus).toBe(201);
        expect(calls.big).toBe(1);
      });

      it('renders a thrown error first and records it as sent; a thrown 4xx frees the key', async () => {
        const { listener, calls } = extra({ onServerError: 'record' });
        const key = newKey();
        const first = await request(listener)
          .post('/v1/throws')
          .set('x-throw', '503')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(500);
        expect(first.headers['content-type']).toMatch(PROBLEM);
        const again = await request(listener)
          .post('/v1/throws')
          .set('x-throw', '503')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(500);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.headers['content-type']).toBe(first.headers['content-type']);
        expect(again.text).toBe(first.text);
        expect(calls.throws).toBe(1);

        const notFound = newKey();
        const missing = await request(listener)
          .post('/v1/throws')
          .set('x-throw', '404')
          .set('Idempotency-Key', notFound)
          .send({ n: 1 })
          .expect(404);
        expect(missing.body.code).toBe('not-found');
        const retried = await request(listener)
          .post('/v1/throws')
          .set('Idempotency-Key', notFound)
          .send({ n: 1 })
          .expect(201);
        expect(retried.headers['idempotent-replayed']).toBeUndefined();
        expect(calls.throws).toBe(3);
      });

      it('replays a bodiless 201 byte for byte', async () => {
        const { listener, calls } = extra();
        const key = newKey();
        const first = await request(listener)
          .post('/v1/empty')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        const again = await request(listener)
          .post('/v1/empty')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.text).toBe(first.text);
        expect(first.text).toBe('');
        expect(again.headers['content-type']).toBe(first.headers['content-type']);
        expect(again.headers['content-length']).toBe(first.headers['content-length']);
        expect(again.headers.location).toBe('/v1/things/1');
        expect(calls.empty).toBe(1);
      });

      it('records representation metadata (Content-Language, Cache-Control, Content-Disposition, ...)', async () => {
        const { listener } = extra();
        const key = newKey();
        const first = await request(listener)
          .post('/v1/described')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(200);
        const again = await request(listener)
          .post('/v1/described')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(200);
        for (const name of [
          'content-language',
          'content-disposition',
          'content-location',
          'cache-control',
          'last-modified',
          'expires',
          'vary',
          'link',
          'etag',
        ]) {
          expect(first.headers[name], name).toBeDefined();
          expect(again.headers[name], name).toBe(first.headers[name]);
        }
        expect(again.headers['x-custom']).toBeUndefined();
        const custom = extra({ recordHeaders: ['X-Custom'] });
        const k2 = newKey();
        await request(custom.listener)
          .post('/v1/described')
          .set('Idempotency-Key', k2)
          .send({ n: 1 });
        const replayed = await request(custom.listener)
          .post('/v1/described')
          .set('Idempotency-Key', k2)
          .send({ n: 1 });
        expect(replayed.headers['x-custom']).toBe('kept');
      });

      it('scopes numeric principal ids, never gives one user the answer of another, and follows a principal across addresses', async () => {
        const { listener, calls } = extra({}, { trustProxy: true });
        const key = newKey();
        const first = await request(listener)
          .post('/v1/empty')
          .set('x-user', '42')
          .set('x-numeric', '1')
          .set('x-forwarded-for', '2001:db8::1')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        expect(first.headers['idempotent-replayed']).toBeUndefined();
        // The same principal retrying over IPv4 gets its answer.
        const moved = await request(listener)
          .post('/v1/empty')
          .set('x-user', '42')
          .set('x-numeric', '1')
          .set('x-forwarded-for', '192.0.2.7')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        expect(moved.headers['idempotent-replayed']).toBe('true');
        // Another user, same key, same body, same address: its own execution.
        const other = await request(listener)
          .post('/v1/empty')
          .set('x-user', '43')
          .set('x-numeric', '1')
          .set('x-forwarded-for', '192.0.2.7')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .expect(201);
        expect(other.headers['idempotent-replayed']).toBeUndefined();
        expect(calls.empty).toBe(2);
      });

      it("refuses a keyed request without a principal by default, and scopes it by IP with anonymous: 'ip'", async () => {
        const refused = extra();
        const res = await request(refused.listener)
          .post('/v1/empty')
          .set('x-user', 'anonymous')
          .set('Idempotency-Key', newKey())
          .send({ n: 1 })
          .expect(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.code).toBe('idempotency-key-unscoped');
        expect(refused.calls.empty).toBe(0);
        expect(refused.logger.warnings.some((w) => /anonymous: 'ip'/.test(w))).toBe(true);
        // Without a key, an anonymous request passes as before.
        await request(refused.listener)
          .post('/v1/empty')
          .set('x-user', 'anonymous')
          .send({ n: 1 })
          .expect(201);

        const byIp = extra({ anonymous: 'ip' }, { trustProxy: true });
        const key = newKey();
        const send = (ip: string) =>
          request(byIp.listener)
            .post('/v1/empty')
            .set('x-user', 'anonymous')
            .set('x-forwarded-for', ip)
            .set('Idempotency-Key', key)
            .send({ n: 1 })
            .expect(201);
        await send('2001:db8::1');
        expect((await send('2001:db8::1')).headers['idempotent-replayed']).toBe('true');
        // The documented weakness: the same client retrying from another address runs again.
        expect((await send('192.0.2.7')).headers['idempotent-replayed']).toBeUndefined();
        expect(byIp.calls.empty).toBe(2);
      });

      it('names a custom header in its problem details', async () => {
        const { listener } = extra({ header: 'X-Request-Key', required: true });
        const missing = await request(listener).post('/v1/empty').send({ n: 1 }).expect(400);
        expect(missing.body.detail).toMatch(/X-Request-Key/);
        expect(missing.body.detail).not.toMatch(/Idempotency-Key/);
        const invalid = await request(listener)
          .post('/v1/empty')
          .set('X-Request-Key', 'a b')
          .send({ n: 1 })
          .expect(400);
        expect(invalid.body.detail).toMatch(/X-Request-Key/);
        expect(invalid.body.detail).not.toMatch(/Idempotency-Key/);
      });

      it('accepts an sf-string key with parameters as the same key', async () => {
        const { listener, calls } = extra();
        const key = newKey();
        await request(listener)
          .post('/v1/empty')
          .set('Idempotency-Key', `"${key}";foo=1`)
          .send({ n: 1 })
          .expect(201);
        const again = await request(listener)
          .post('/v1/empty')
          .set('Idempotency-Key', `"${key}"`)
          .send({ n: 1 })
          .expect(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(calls.empty).toBe(1);
      });

      it('fingerprints an 8,000-level body without overflowing the stack', async () => {
        const { listener, calls } = extra();
        const deep = `${'['.repeat(8_000)}1${']'.repeat(8_000)}`;
        const key = newKey();
        const send = (body: string) =>
          request(listener)
            .post('/v1/unbounded')
            .set('content-type', 'application/json')
            .set('Idempotency-Key', key)
            .send(body);
        const first = await send(deep);
        expect(first.status).toBe(201);
        expect((await send(deep)).headers['idempotent-replayed']).toBe('true');
        const other = `${'['.repeat(8_000)}2${']'.repeat(8_000)}`;
        expect((await send(other)).status).toBe(422);
        expect(calls.unbounded).toBe(1);
      });

      it('refuses when the body parser runs after idempotency, instead of hashing an unread body, and logs the fix', async () => {
        const { listener, calls, logger } = extra();
        // A 415, not a 500: the same unread body is what a client gets by sending a media
        // type the parser before idempotency declines, and a client must not cause a 5xx.
        const res = await request(listener)
          .post('/v1/late-parser')
          .set('Idempotency-Key', newKey())
          .send({ amount: 1 })
          .expect(415);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.body.code).toBe('unsupported-media-type');
        expect(calls.late).toBe(0);
        expect(logger.entries.some((e) => /mount a body parser/.test(e.message))).toBe(true);
        // A bodiless request on that route is fine.
        await request(listener)
          .post('/v1/late-parser')
          .set('Idempotency-Key', newKey())
          .expect(201);
      });

      it('stops renewing the lease of a hung handler after maxExecutionMs, so that a retry runs', async () => {
        const gate = deferred();
        const { listener, calls, logger } = extra(
          { leaseMs: 300, maxExecutionMs: 900 },
          {},
          gate.promise,
        );
        const key = newKey();
        const hung = request(listener)
          .post('/v1/hang')
          .set('Idempotency-Key', key)
          .send({ n: 1 })
          .then((r) => r);
        await waitFor(() => calls.hang === 1);
        // Past one lease: the claim is still held because it is renewed.
        await new Promise((r) => setTimeout(r, 450));
        // x-release: were the claim lost, this retry would run and answer at once.
        const during = await request(listener)
          .post('/v1/hang')
          .set('Idempotency-Key', key)
          .set('x-release', '1')
          .send({ n: 1 });
        expect(during.status).toBe(409);
        await waitFor(() => logger.warnings.some((w) => /maxExecutionMs/.test(w)));
        let retried = 409;
        const until = Date.now() + 5_000;
        while (retried === 409 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 100));
          const r = await request(listener)
            .post('/v1/hang')
            .set('Idempotency-Key', key)
            .set('x-release', '1')
            .send({ n: 1 });
          retried = r.status;
        }
        expect(retried).toBe(201);
        gate.resolve();
        await hung;
      });
    });
  },
);

// A real outage: a Redis client pointed at a port where nothing listens (test/idempotency/outage.test.ts
// adds a hanging Redis and PostgreSQL).
describe.each(adapters)('idempotency with a store that is down, through $name', (adapter) => {
  const client = unreachableRedis();
  afterAll(() => client.disconnect());
  const down = new RedisStore({ client, timeoutMs: 200 });
  const build = (onStoreError: 'closed' | 'open') => {
    const calls = { count: 0 };
    const logger = recordingLogger();
    const listener = adapter.build({
      options: { logger },
      use: [jsonBody()],
      before: (state) => {
        state.principal = { id: 'user-1' };
      },
      routes: [
        {
          method: 'post',
          path: '/pay',
          use: [idempotency({ store: down, onStoreError, leaseMs: 200 })],
          handler: () => {
            calls.count++;
            return { status: 201, body: { ok: true } };
          },
        },
      ],
    });
    return { listener, calls, logger };
  };

  it('fails closed by default: 503 that says "not executed", nothing executed, no internals leaked, one log line', async () => {
    const { listener, calls, logger } = build('closed');
    for (let i = 0; i < 3; i++) {
      const res = await request(listener)
        .post('/pay')
        .set('Idempotency-Key', `k${i}`)
        .send({})
        .expect(503);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.code).toBe('service-unavailable');
      expect(res.body.detail).toMatch(/not executed/);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection/);
    }
    expect(calls.count).toBe(0);
    // An outage fails every request: one line per interval, not one per request.
    expect(logger.errors).toHaveLength(1);
  });

  it("executes without idempotency with onStoreError: 'open'", async () => {
    const { listener, calls } = build('open');
    await request(listener).post('/pay').set('Idempotency-Key', 'k1').send({}).expect(201);
    expect(calls.count).toBe(1);
  });
});

describe.each(adapters.filter((a) => a.name === 'express5' || a.name === 'koa3'))(
  'idempotency on a ledger store through $name',
  (adapter) => {
    const build = (store: Store) => {
      const calls = { count: 0 };
      const logger = recordingLogger();
      const listener = adapter.build({
        options: { logger },
        use: [jsonBody()],
        before: (state, headers) => {
          state.principal = { id: String(headers['x-user'] ?? 'user-1') };
        },
        routes: [
          {
            method: 'post',
            path: '/v1/payments',
            use: [idempotency({ store })],
            handler: () => {
              calls.count++;
              return { status: 201, body: { id: `pay_${calls.count}` } };
            },
          },
        ],
      });
      return { listener, calls, logger };
    };

    async function serve(listener: import('node:http').RequestListener) {
      const { createServer } = await import('node:http');
      const server = createServer(listener).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as import('node:net').AddressInfo).port;
      const post = (user: string, key: string) =>
        fetch(`http://127.0.0.1:${port}/v1/payments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-user': user },
          body: '{"amount":10}',
        }).then(async (r) => ({ status: r.status, body: await r.text(), headers: r.headers }));
      return {
        post,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      };
    }

    it("replays a payment after 12,000 other clients' requests", async () => {
      const { listener, calls } = build(new MemoryStore({ evict: false, maxEntries: 20_000 }));
      const client = await serve(listener);
      try {
        const first = await client.post('payer', 'pay-1');
        expect(first.status).toBe(201);
        for (let batch = 0; batch < 12_000; batch += 100) {
          const answers = await Promise.all(
            Array.from({ length: 100 }, (_, i) => client.post(`client-${batch + i}`, 'k')),
          );
          expect(answers.every((a) => a.status === 201)).toBe(true);
        }
        const retry = await client.post('payer', 'pay-1');
        expect(retry.status).toBe(201);
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
        expect(retry.body).toBe(first.body);
        expect(calls.count).toBe(12_001);
      } finally {
        client.close();
      }
    }, 60_000);

    it('answers new keys 503 store-full when the ledger is full, runs nothing, logs once, and still replays', async () => {
      const { listener, calls, logger } = build(new MemoryStore({ evict: false, maxEntries: 10 }));
      const client = await serve(listener);
      try {
        const first = await client.post('payer', 'pay-1');
        expect(first.status).toBe(201);
        for (let i = 0; i < 9; i++) expect((await client.post(`c${i}`, 'k')).status).toBe(201);
        expect(calls.count).toBe(10);
        for (let i = 0; i < 5; i++) {
          const full = await client.post(`late-${i}`, 'k');
          expect(full.status).toBe(503);
          expect(full.headers.get('content-type')).toMatch(PROBLEM);
          expect(full.headers.get('retry-after')).toBe('1');
          const doc = JSON.parse(full.body);
          expect(doc.code).toBe('store-full');
          expect(doc.detail).toMatch(/not executed/);
        }
        expect(calls.count).toBe(10);
        expect(logger.warnings.filter((w) => /full/.test(w))).toHaveLength(1);
        const retry = await client.post('payer', 'pay-1');
        expect(retry.status).toBe(201);
        expect(retry.headers.get('idempotent-replayed')).toBe('true');
        expect(retry.body).toBe(first.body);
      } finally {
        client.close();
      }
    });
  },
);

describe.each(adapters)('idempotency store round trips through $name', (adapter) => {
  it('costs two store calls for a first request and one for a replay', async () => {
    const inner = new MemoryStore({ evict: false });
    const calls: string[] = [];
    const counted = new Proxy(inner, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(name));
          return value.apply(target, args);
        };
      },
    }) as Store;
    const listener = adapter.build({
      use: [jsonBody()],
      before: (state) => {
        state.principal = { id: 7 };
      },
      routes: [
        {
          method: 'post',
          path: '/pay',
          use: [idempotency({ store: counted })],
          handler: () => ({ status: 201, body: { ok: true } }),
        },
      ],
    });
    const send = () => request(listener).post('/pay').set('Idempotency-Key', 'rt').send({ a: 1 });
    expect((await send()).status).toBe(201);
    expect(calls).toEqual(['addOrGet', 'compareAndSet']);
    calls.length = 0;
    expect((await send()).headers['idempotent-replayed']).toBe('true');
    expect(calls).toEqual(['addOrGet']);
  });
});

describe('idempotency options', () => {
  it.each([
    [{}, /store/],
    [{ store: new MemoryStore({ evict: false }), ttlMs: 0 }, /ttlMs/],
    [{ store: new MemoryStore({ evict: false }), leaseMs: -1 }, /leaseMs/],
    [{ store: new MemoryStore({ evict: false }), onStoreError: 'maybe' }, /onStoreError/],
    [{ store: new MemoryStore({ evict: false }), methods: 'POST' }, /methods/],
    [{ store: new MemoryStore({ evict: false }), maxExecutionMs: 0 }, /maxExecutionMs/],
    [{ store: new MemoryStore({ evict: false }), anonymous: 'allow' }, /anonymous/],
    [{ store: new MemoryStore({ evict: false }), recordHeaders: 'etag' }, /recordHeaders/],
    [{ store: new MemoryStore({ evict: false }), header: 'bad header' }, /header/],
    [
      { store: new MemoryStore({ evict: false }), leseMs: 10 },
      /unknown option "leseMs". Did you mean "leaseMs"/,
    ],
    [{ store: new MemoryStore({ evict: false }), ttl: 10 }, /ttlMs/],
    [{ store: new MemoryStore() }, /never drops a live key/],
    [{ store: new MemoryStore({ evict: false }), ttlMs: 400_000_000_000 }, /ttlMs/],
  ])('reject a misconfiguration at construction (%o)', (options, name) => {
    expect(() => idempotency(options as IdempotencyOptions)).toThrow(TypeError);
    expect(() => idempotency(options as IdempotencyOptions)).toThrow(name);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
