/**
 * A hostile client and a failing store against the idempotency middleware:
 * spellings of one target, bodies no parser read, unreadable records, record
 * writes that fail, and headers that must never be replayed.
 */
import { connect } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { sha256Parts } from '../../src/core/hash.js';
import type { Logger } from '../../src/core/logger.js';
import { idempotency, type IdempotencyOptions } from '../../src/idempotency/index.js';
import type { Store } from '../../src/stores/types.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';
import { ledgerStores } from '../helpers/ledgers.js';
import { listen, raw, rawRequest } from '../helpers/raw.js';

const PROBLEM = /^application\/problem\+json/;
const run = Math.random().toString(36).slice(2, 8);
let keyN = 0;
const newKey = () => `review-${run}-${++keyN}`;
const ledgers = ledgerStores('idem_review');
const storeCases = ledgers.cases;
afterAll(() => ledgers.cleanup());

const matrix = storeCases.flatMap((s) =>
  adapters
    .filter((a) => s.name === 'memory' || a.name === 'express5' || a.name === 'koa3')
    .map((a) => ({ store: s, adapter: a })),
);

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (m) => lines.push(m),
    error: (m) => lines.push(m),
    info() {},
  };
}

/** `store` with some methods replaced; the others bound to it. */
function withOverrides(store: Store, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop in overrides) return overrides[prop as keyof Store];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The store key the middleware uses for a route-mounted key of principal `u`. */
const storeKeyOf = (route: string, key: string) =>
  `idem:${sha256Parts(['principal:u', 'POST', route, key])}`;

describe.each(matrix)(
  'idempotency under attack on $store.name through $adapter.name',
  ({ store: storeCase, adapter }) => {
    let store: Store;
    beforeAll(async () => {
      if (storeCase.enabled) store = await storeCase.setup();
    });

    function app(options: Partial<IdempotencyOptions> & { global?: boolean; over?: Store } = {}) {
      const { global = false, over, ...rest } = options;
      const calls = { count: 0 };
      const logger = recordingLogger();
      const idem = idempotency({ store: over ?? store, leaseMs: 2_000, ...rest });
      const listener = adapter.build({
        options: { logger },
        use: global ? [jsonBody(), idem] : [jsonBody()],
        before: (state) => {
          state.principal = { id: 'u' };
        },
        routes: [
          {
            method: 'post',
            path: '/v1/payments',
            use: global ? [] : [idem],
            handler: () => {
              calls.count++;
              return { status: 201, body: { id: `pay_${calls.count}` } };
            },
          },
        ],
      });
      return { listener, calls, logger };
    }

    describe.runIf(storeCase.enabled)('', () => {
      it('mounted before the router, runs one key once however the path is spelled', async () => {
        const { listener, calls } = app({ global: true });
        const key = newKey();
        const first = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ amount: 1 })
          .expect(201);
        // Both frameworks route these to the same handler (case-insensitive, trailing slash ignored).
        for (const spelling of ['/V1/PAYMENTS', '/v1/payments/', '/v1/Payments//']) {
          const res = await request(listener)
            .post(spelling)
            .set('Idempotency-Key', key)
            .send({ amount: 1 });
          expect([404, 422]).toContain(res.status);
          expect(res.headers['content-type']).toMatch(PROBLEM);
        }
        expect(calls.count).toBe(1);
        // The absolute form names the same target (RFC 9112 §3.2.2): a replay.
        const server = await listen(listener);
        try {
          const body = JSON.stringify({ amount: 1 });
          const replay = await rawRequest(server.port, {
            method: 'POST',
            path: `http://127.0.0.1:${server.port}/v1/payments`,
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body,
          });
          expect(replay.status).toBe(201);
          expect(replay.headers['idempotent-replayed']).toBe('true');
          expect(replay.body.toString()).toBe(first.text);
        } finally {
          await server.close();
        }
        expect(calls.count).toBe(1);
      });

      it('answers an unreadable record 422, never a 500 for the life of the record', async () => {
        const { listener, calls, logger } = app();
        for (const garbage of [
          'not json',
          'null',
          '{"v":1,"state":"done","fp":"%FP%"}',
          '{"v":2}',
          // Well-formed JSON that Node would refuse to send: a 500 on every replay.
          '{"v":1,"state":"done","fp":"%FP%","status":201,"headers":[["bad name","x"]],"body":""}',
          '{"v":1,"state":"done","fp":"%FP%","status":201,"headers":[["x-a","1\\r\\nx-b: 2"]],"body":""}',
          '{"v":1,"state":"done","fp":"%FP%","status":99,"headers":[],"body":""}',
        ]) {
          const key = newKey();
          // Learn the request's fingerprint from a first, real run.
          const seed = newKey();
          await request(listener)
            .post('/v1/payments')
            .set('Idempotency-Key', seed)
            .send({ a: 1 })
            .expect(201);
          const fp = (
            JSON.parse((await store.get(storeKeyOf('/v1/payments', seed)))!) as { fp: string }
          ).fp;
          await store.set(storeKeyOf('/v1/payments', key), garbage.replace('%FP%', fp), 60_000);
          for (let i = 0; i < 2; i++) {
            const res = await request(listener)
              .post('/v1/payments')
              .set('Idempotency-Key', key)
              .send({ a: 1 });
            expect(res.status).toBe(422);
            expect(res.headers['content-type']).toMatch(PROBLEM);
            expect(res.body.code).toBe('idempotency-response-not-replayable');
          }
        }
        // Same key, another request: still 422 idempotency-key-reused when the fingerprint is readable.
        const key = newKey();
        await store.set(
          storeKeyOf('/v1/payments', key),
          '{"v":1,"state":"done","fp":"other"}',
          60_000,
        );
        const reused = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ a: 1 });
        expect(reused.body.code).toBe('idempotency-key-reused');
        expect(calls.count).toBe(7);
        expect(logger.lines.filter((l) => /cannot read/.test(l))).toHaveLength(1);
      });

      it('keeps at most once when the record write fails once: the retry replays', async () => {
        let failures = 1;
        const over = withOverrides(store, {
          compareAndSet: async (key, expected, value, ttlMs) => {
            if (failures > 0 && value.includes('"state":"done"')) {
              failures--;
              throw new Error('connection reset');
            }
            return store.compareAndSet(key, expected, value, ttlMs);
          },
        });
        const { listener, calls, logger } = app({ over });
        const key = newKey();
        const first = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ a: 1 })
          .expect(201);
        // The background write lands within the lease; until then a retry gets 409.
        let retry = await request(listener)
          .post('/v1/payments')
          .set('Idempotency-Key', key)
          .send({ a: 1 });
        for (let i = 0; i < 50 && retry.status === 409; i++) {
          await new Promise((r) => setTimeout(r, 20));
          retry = await request(listener)
            .post('/v1/payments')
            .set('Idempotency-Key', key)
            .send({ a: 1 });
        }
        expect(retry.status).toBe(201);
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(retry.text).toBe(first.text);
        expect(calls.count).toBe(1);
        expect(logger.lines.some((l) => /retrying while the claim holds/.test(l))).toBe(true);
      });
    });
  },
);

describe.each(adapters.filter((a) => a.framework === 'express'))(
  'a body the parser declined, through $name',
  (adapter) => {
    it('is a 415 problem, never a 5xx, and runs nothing', async () => {
      let calls = 0;
      const listener = adapter.build({
        before: (state) => {
          state.principal = { id: 'u' };
        },
        framework: { express: [express5.json()] },
        routes: [
          {
            method: 'post',
            path: '/v1/payments',
            use: [idempotency({ store: new MemoryStore({ evict: false }) })],
            handler: () => {
              calls++;
              return { status: 201, body: {} };
            },
          },
        ],
      });
      const res = await request(listener)
        .post('/v1/payments')
        .set('Idempotency-Key', newKey())
        .set('Content-Type', 'text/plain')
        .send('amount=100');
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.code).toBe('unsupported-media-type');
      expect(res.body.detail).toContain('text/plain');
      expect(calls).toBe(0);
    });
  },
);

describe('retryAfterSeconds', () => {
  it('must be an integer: Retry-After is delay-seconds, digits only (RFC 9110 §10.2.3)', () => {
    const store = new MemoryStore({ evict: false });
    expect(() => idempotency({ store, retryAfterSeconds: 1.5 })).toThrow(
      /option "retryAfterSeconds" must be a positive integer/,
    );
    expect(() => idempotency({ store, retryAfterSeconds: 2 })).not.toThrow();
  });
});

describe("a body the parser declined but stood in for with {} (Express 4's express.json())", () => {
  it('is a 415 too: the stream is unread, and a parser after idempotency could read another body', async () => {
    const adapter = adapters.find((a) => a.name === 'express4')!;
    let calls = 0;
    const listener = adapter.build({
      before: (state) => {
        state.principal = { id: 'u' };
      },
      // body-parser 1.x sets req.body = {} before it looks at the type, then leaves a
      // text/plain stream unread; express.text() mounted after idempotency would read it.
      framework: { express: [express4.json() as unknown as express5.RequestHandler] },
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          use: [idempotency({ store: new MemoryStore({ evict: false }) })],
          handler: () => {
            calls++;
            return { status: 201, body: {} };
          },
        },
      ],
    });
    const key = newKey();
    const res = await request(listener)
      .post('/v1/payments')
      .set('Idempotency-Key', key)
      .set('Content-Type', 'text/plain')
      .send('amount=100');
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('unsupported-media-type');
    // A parsed JSON body and a bodiless request are fingerprinted as before.
    await request(listener)
      .post('/v1/payments')
      .set('Idempotency-Key', newKey())
      .send({ a: 1 })
      .expect(201);
    await request(listener).post('/v1/payments').set('Idempotency-Key', newKey()).expect(201);
    expect(calls).toBe(2);
  });
});

describe('recordHeaders', () => {
  it('refuses Set-Cookie and framing fields at construction', () => {
    const store = new MemoryStore({ evict: false });
    for (const name of ['Set-Cookie', 'content-length', 'Transfer-Encoding', 'connection']) {
      expect(() => idempotency({ store, recordHeaders: [name] })).toThrow(/option "recordHeaders"/);
    }
    expect(() => idempotency({ store, recordHeaders: ['x-request-cost'] })).not.toThrow();
  });
});

describe.each(adapters)('scope values that are not a scope, through $name', (adapter) => {
  function build(scope: (ctx: never) => unknown) {
    const calls = { count: 0 };
    const listener = adapter.build({
      use: [jsonBody()],
      before: (state, headers) => {
        state.principal = { id: String(headers['x-user']) };
      },
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          use: [
            idempotency({
              store: new MemoryStore({ evict: false }),
              scope: scope as IdempotencyOptions['scope'],
            }),
          ],
          handler: (req) => {
            calls.count++;
            return { status: 201, body: { for: req.headers['x-user'] } };
          },
        },
      ],
    });
    return { listener, calls };
  }

  it("treats '' and null as no scope: two users never share one key space", async () => {
    for (const none of ['', null]) {
      const { listener, calls } = build(() => none);
      const key = newKey();
      await request(listener)
        .post('/v1/payments')
        .set('x-user', 'alice')
        .set('Idempotency-Key', key)
        .send({ a: 1 })
        .expect(201);
      const bob = await request(listener)
        .post('/v1/payments')
        .set('x-user', 'bob')
        .set('Idempotency-Key', key)
        .send({ a: 1 })
        .expect(201);
      expect(bob.body).toEqual({ for: 'bob' });
      expect(bob.headers['idempotent-replayed']).toBeUndefined();
      expect(calls.count).toBe(2);
    }
  });

  it('refuses a scope that is an object, rather than one scope named [object Object]', async () => {
    const { listener, calls } = build(() => ({ account: 1 }));
    const res = await request(listener)
      .post('/v1/payments')
      .set('x-user', 'alice')
      .set('Idempotency-Key', newKey())
      .send({ a: 1 });
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(calls.count).toBe(0);
  });
});

describe("anonymous: 'ip' without an address", () => {
  it('refuses the key instead of one scope shared by every request whose socket is gone', async () => {
    const store = new MemoryStore({ evict: false });
    const mw = idempotency({ store, anonymous: 'ip' });
    let ran = 0;
    const ctx = {
      request: {
        method: 'POST',
        url: '/v1/payments',
        path: '/v1/payments',
        route: '/v1/payments',
        ip: undefined,
        headers: {},
        body: undefined,
        rawBody: undefined,
        bodyConsumed: false,
        header: (name: string) => (name === 'idempotency-key' ? 'k-gone' : undefined),
      },
      state: {},
      log: recordingLogger(),
      traceId: 't',
    } as unknown as Parameters<typeof mw>[0];
    await expect(
      mw(ctx, async () => {
        ran++;
      }),
    ).rejects.toMatchObject({ code: 'idempotency-key-unscoped' });
    expect(ran).toBe(0);
  });
});

describe.each(adapters)('replaying a coded answer, through $name', (adapter) => {
  function build(body: Buffer, encoding: string, maxRecordedBodyBytes?: number) {
    const calls = { count: 0 };
    const logger = recordingLogger();
    const listener = adapter.build({
      options: { logger },
      use: [jsonBody()],
      before: (state) => {
        state.principal = { id: 'u' };
      },
      routes: [
        {
          method: 'post',
          path: '/v1/reports',
          use: [idempotency({ store: new MemoryStore({ evict: false }), maxRecordedBodyBytes })],
          handler: () => {
            calls.count++;
            return {
              status: 201,
              headers: { 'content-type': 'text/plain', 'content-encoding': encoding },
              body,
            };
          },
        },
      ],
    });
    return { listener, calls, logger };
  }

  it('undoes every coding of a list, last first, for a client that accepts none', async () => {
    const text = 'report '.repeat(100);
    const coded = brotliCompressSync(gzipSync(Buffer.from(text)));
    const { listener, calls } = build(coded, 'gzip, br');
    const key = newKey();
    const first = await raw(listener, {
      method: 'POST',
      path: '/v1/reports',
      headers: { 'idempotency-key': key, 'accept-encoding': 'gzip, br' },
    });
    expect(first.body.equals(coded)).toBe(true);
    const replay = await raw(listener, {
      method: 'POST',
      path: '/v1/reports',
      headers: { 'idempotency-key': key, 'accept-encoding': 'gzip' },
    });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['content-encoding']).toBeUndefined();
    expect(replay.body.toString()).toBe(text);
    expect(calls.count).toBe(1);
  });

  it('does not inflate a replay past 64 times maxRecordedBodyBytes', async () => {
    // 1 MB of zeros gzips to about 1 KB: recorded under a 2 KB bound.
    const coded = gzipSync(Buffer.alloc(1_000_000));
    const { listener, logger } = build(coded, 'gzip', 2_000);
    const key = newKey();
    const headers = { 'idempotency-key': key };
    await raw(listener, { method: 'POST', path: '/v1/reports', headers });
    const replay = await raw(listener, { method: 'POST', path: '/v1/reports', headers });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['content-encoding']).toBe('gzip');
    expect(replay.body.equals(coded)).toBe(true);
    expect(logger.lines.some((l) => /could not be decoded/.test(l))).toBe(true);
  });
});

describe.each(adapters)('a client that disconnects mid-request, through $name', (adapter) => {
  it('does not free the key: the answer is recorded, and the retry gets it without a second run', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const running = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const listener = adapter.build({
      use: [jsonBody()],
      before: (state) => {
        state.principal = { id: 'u' };
      },
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          use: [
            async (_ctx, next) => {
              await next();
              finished();
            },
            idempotency({ store: new MemoryStore({ evict: false }) }),
          ],
          handler: async () => {
            calls++;
            entered();
            await gate;
            return { status: 201, body: { id: 'pay_1' } };
          },
        },
      ],
    });
    const server = await listen(listener);
    try {
      const key = newKey();
      const body = '{"a":1}';
      const socket = connect(server.port, '127.0.0.1', () =>
        socket.write(
          `POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: ${key}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        ),
      );
      socket.on('error', () => {});
      await running;
      socket.destroy();
      release();
      await done;
      const retry = await rawRequest(server.port, {
        method: 'POST',
        path: '/v1/payments',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body,
      });
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(JSON.parse(retry.body.toString())).toEqual({ id: 'pay_1' });
      expect(calls).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe.each(adapters)('safe methods with a key, through $name', (adapter) => {
  it('pass GET and HEAD through untouched: no claim, no record, no replay', async () => {
    let storeCalls = 0;
    const memory = new MemoryStore({ evict: false });
    const counted = withOverrides(memory, {
      addOrGet: async (...args) => {
        storeCalls++;
        return memory.addOrGet(...args);
      },
    });
    let calls = 0;
    const listener = adapter.build({
      before: (state) => {
        state.principal = { id: 'u' };
      },
      routes: [
        {
          method: 'get',
          path: '/v1/payments',
          use: [idempotency({ store: counted, required: true })],
          handler: () => {
            calls++;
            return { status: 200, body: { n: calls } };
          },
        },
      ],
    });
    const key = newKey();
    const a = await request(listener).get('/v1/payments').set('Idempotency-Key', key).expect(200);
    const b = await request(listener).get('/v1/payments').set('Idempotency-Key', key).expect(200);
    await request(listener).head('/v1/payments').set('Idempotency-Key', key).expect(200);
    // Not even required: a GET without a key is not a 400.
    await request(listener).get('/v1/payments').expect(200);
    expect(a.body).toEqual({ n: 1 });
    expect(b.body).toEqual({ n: 2 });
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(storeCalls).toBe(0);
  });
});
