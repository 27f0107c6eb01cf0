/**
 * Idempotency's promise across mount orders: compression inside or outside it,
 * and the body parser before it (or, wrongly, after it).
 */
import { gunzipSync } from 'node:zlib';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../../src/adapters/express/index.js';
import { compression } from '../../src/compression/index.js';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import { idempotency } from '../../src/idempotency/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';
import { type Listening, listen, rawRequest } from '../helpers/raw.js';

const run = Math.random().toString(36).slice(2, 8);
let keyN = 0;
const newKey = () => `mount-${run}-${++keyN}`;
const PAYLOAD = { items: Array.from({ length: 200 }, (_, i) => ({ i, name: `item number ${i}` })) };
const JSON_TEXT = JSON.stringify(PAYLOAD);

describe.each(adapters)('idempotency and compression through $name', (adapter) => {
  const orders: Array<{ name: string; use: (idem: Middleware) => Middleware[] }> = [
    { name: 'compression inside idempotency', use: (idem) => [jsonBody(), idem, compression()] },
    { name: 'compression outside idempotency', use: (idem) => [compression(), jsonBody(), idem] },
  ];

  describe.each(orders)('$name', ({ use }) => {
    let server: Listening;
    const calls = { count: 0 };
    beforeAll(async () => {
      const idem = idempotency({ store: new MemoryStore({ evict: false }) });
      server = await listen(
        adapter.build({
          before: (state) => {
            state.principal = { id: 'user-1' };
          },
          routes: [
            {
              method: 'post',
              path: '/v1/reports',
              use: use(idem),
              handler: () => {
                calls.count++;
                return { status: 201, body: PAYLOAD };
              },
            },
          ],
        }),
      );
    });
    afterAll(() => server.close());

    const post = (key: string, acceptEncoding?: string) =>
      rawRequest(server.port, {
        method: 'POST',
        path: '/v1/reports',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': key,
          ...(acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }),
        },
        body: '{"n":1}',
      });

    it('replays coded bytes only to a client that accepts the coding, identity to any other', async () => {
      const key = newKey();
      const before = calls.count;
      const first = await post(key, 'gzip');
      expect(first.status).toBe(201);
      expect(first.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(first.body).toString()).toBe(JSON_TEXT);

      const gzip = await post(key, 'gzip, deflate');
      expect(gzip.headers['idempotent-replayed']).toBe('true');
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzip.body).toString()).toBe(JSON_TEXT);
      expect(gzip.headers['content-type']).toBe(first.headers['content-type']);
      expect(gzip.headers.vary).toMatch(/accept-encoding/i);

      for (const acceptEncoding of [undefined, 'identity', 'gzip;q=0', 'x-unknown']) {
        const plain = await post(key, acceptEncoding);
        expect(plain.status, String(acceptEncoding)).toBe(201);
        expect(plain.headers['idempotent-replayed']).toBe('true');
        expect(plain.headers['content-encoding'], String(acceptEncoding)).toBeUndefined();
        expect(plain.body.toString()).toBe(JSON_TEXT);
        expect(Number(plain.headers['content-length'])).toBe(Buffer.byteLength(JSON_TEXT));
      }
      expect(calls.count).toBe(before + 1);
    });
  });
});

describe.each([
  { name: 'express5', factory: express5 },
  { name: 'express4', factory: express4 as unknown as typeof express5 },
])('idempotency and express.json() through $name', ({ factory }) => {
  function build(order: 'parser first' | 'parser after') {
    const app = factory();
    const rw = expressAdapter({ logger: silentLogger });
    const calls = { count: 0 };
    const idem = rw(
      async (ctx, next) => {
        ctx.state.principal = { id: 'user-1' };
        await next();
      },
      idempotency({ store: new MemoryStore({ evict: false }) }),
    );
    if (order === 'parser first') app.use(express5.json(), idem);
    else app.use(idem, express5.json());
    app.post('/v1/payments', (req, res) => {
      calls.count++;
      res.status(201).json({ amount: typeof (req.body as { amount?: unknown }).amount });
    });
    app.use(rw.errorHandler());
    return { app, calls };
  }

  it('parser first: another body under the same key is 422, and an 8,000-level body is handled', async () => {
    const { app, calls } = build('parser first');
    const key = newKey();
    await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', key)
      .send({ amount: 1 })
      .expect(201);
    const other = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', key)
      .send({ amount: 2 })
      .expect(422);
    expect(other.body.code).toBe('idempotency-key-reused');
    const deep = `{"amount":${'['.repeat(8_000)}1${']'.repeat(8_000)}}`;
    const deepKey = newKey();
    for (let i = 0; i < 2; i++) {
      const res = await request(app)
        .post('/v1/payments')
        .set('Idempotency-Key', deepKey)
        .set('content-type', 'application/json')
        .send(deep);
      expect(res.status).toBe(201);
    }
    expect(calls.count).toBe(2);
  });

  it('parser after: refused with a 415 problem rather than replaying for another body', async () => {
    const { app, calls } = build('parser after');
    const key = newKey();
    const res = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', key)
      .send({ amount: 1 })
      .expect(415);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(calls.count).toBe(0);
  });
});
