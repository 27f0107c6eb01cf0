import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { idempotency, type IdempotencyOptions } from '../../src/idempotency/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { migrate, PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters } from '../helpers/apps.js';
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
          const user = headers['x-user'];
          if (typeof user === 'string') state.principal = { id: user };
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

      it('never records a streamed response as empty: it is passed through and not made idempotent', async () => {
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
          .expect(200);
        expect(second.text).toBe('a,b\n1,2\n');
        expect(second.headers['idempotent-replayed']).toBeUndefined();
        expect(calls.count).toBe(2);
        expect(logger.warnings.some((w) => /not recorded/.test(w))).toBe(true);
      });
    });
  },
);

describe.each(adapters)('idempotency with a store that is down, through $name', (adapter) => {
  const down: Store = {
    kind: 'down',
    evicts: false,
    get: () => Promise.reject(new Error('ECONNREFUSED')),
    set: () => Promise.reject(new Error('ECONNREFUSED')),
    add: () => Promise.reject(new Error('ECONNREFUSED')),
    addOrGet: () => Promise.reject(new Error('ECONNREFUSED')),
    compareAndSet: () => Promise.reject(new Error('ECONNREFUSED')),
    compareAndDelete: () => Promise.reject(new Error('ECONNREFUSED')),
    delete: () => Promise.reject(new Error('ECONNREFUSED')),
  };
  const build = (onStoreError: 'closed' | 'open') => {
    const calls = { count: 0 };
    const listener = adapter.build({
      options: { logger: quietLogger() },
      routes: [
        {
          method: 'post',
          path: '/pay',
          use: [idempotency({ store: down, onStoreError })],
          handler: () => {
            calls.count++;
            return { status: 201, body: { ok: true } };
          },
        },
      ],
    });
    return { listener, calls };
  };

  it('fails closed by default: 503, nothing executed, no internals leaked', async () => {
    const { listener, calls } = build('closed');
    const res = await request(listener)
      .post('/pay')
      .set('Idempotency-Key', 'k1')
      .send({})
      .expect(503);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.code).toBe('service-unavailable');
    expect(res.text).not.toMatch(/ECONNREFUSED/);
    expect(calls.count).toBe(0);
  });

  it("executes without idempotency with onStoreError: 'open'", async () => {
    const { listener, calls } = build('open');
    await request(listener).post('/pay').set('Idempotency-Key', 'k1').send({}).expect(201);
    expect(calls.count).toBe(1);
  });
});

describe('idempotency options', () => {
  it.each([
    [{}, /store/],
    [{ store: new MemoryStore({ evict: false }), ttlMs: 0 }, /ttlMs/],
    [{ store: new MemoryStore({ evict: false }), leaseMs: -1 }, /leaseMs/],
    [{ store: new MemoryStore({ evict: false }), onStoreError: 'maybe' }, /onStoreError/],
    [{ store: new MemoryStore({ evict: false }), methods: 'POST' }, /methods/],
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
