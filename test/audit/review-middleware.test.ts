/**
 * audit() mounted first in the global chain, on every adapter: the record
 * holds the status the client got, and a hash of the payload it sent,
 * whatever the body and whoever parsed it.
 */
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChainedRecord } from '../../src/audit/chain.js';
import { audit } from '../../src/audit/middleware.js';
import { callbackSink } from '../../src/audit/sinks.js';
import { jsonBody } from '../../src/core/body.js';
import type { Context, Middleware } from '../../src/core/context.js';
import { sha256 } from '../../src/core/hash.js';
import { silentLogger } from '../../src/core/logger.js';
import { validate } from '../../src/core/validate.js';
import { canonicalJson } from '../../src/idempotency/canonical-json.js';
import { rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

const KEY = 'm'.repeat(32);

function recorded() {
  const records: ChainedRecord[] = [];
  const auditLog = audit({
    sink: callbackSink((r) => void records.push(r)),
    key: KEY,
    logger: silentLogger,
  });
  return { records, auditLog };
}

describe.each(adapters)('audit() first in the chain through $name', (adapter) => {
  it('records the status the client got, for answers the handler never gave', async () => {
    const { records, auditLog } = recorded();
    const server = adapter.build({
      use: [
        auditLog,
        rateLimit({ store: new MemoryStore(), limit: 1, windowMs: 60_000, key: () => 'one' }),
        jsonBody({ limit: 64 }),
      ],
      routes: [
        { method: 'post', path: '/v1/things/:id', handler: () => ({ status: 201, body: {} }) },
        { method: 'get', path: '/v1/things/:id', handler: () => ({ body: {} }) },
      ],
    });
    const statuses = [
      (await request(server).post('/v1/things/1').send({ a: 1 })).status,
      (await request(server).post('/v1/things/1').send({ a: 1 })).status,
    ];
    await auditLog.flush();
    expect(statuses).toEqual([201, 429]);
    expect(records.map((r) => [r.status, r.route])).toEqual([
      [201, '/v1/things/:id'],
      [429, null],
    ]);

    const server2 = adapter.build({
      use: [auditLog, jsonBody({ limit: 64 })],
      routes: [
        { method: 'post', path: '/v1/things/:id', handler: () => ({ status: 201, body: {} }) },
        { method: 'get', path: '/v1/things/:id', handler: () => ({ body: {} }) },
        {
          method: 'put',
          path: '/v1/conflict',
          // A framework's error that carries statusCode only (as fastify's and many clients' do).
          handler: () => {
            throw Object.assign(new Error('taken'), { statusCode: 409 });
          },
        },
        {
          method: 'patch',
          path: '/v1/odd',
          handler: () => {
            throw Object.assign(new Error('odd'), { status: 418.5 });
          },
        },
      ],
    });
    const more = [
      (await request(server2).delete('/v1/things/1')).status,
      (await request(server2).post('/v1/nothing')).status,
      (await request(server2).put('/v1/conflict')).status,
      (await request(server2).patch('/v1/odd')).status,
      (
        await request(server2)
          .post('/v1/things/2')
          .send({ a: 'x'.repeat(100) })
      ).status,
      (await request(server2).post('/v1/things/2').type('text/plain').send('x')).status,
    ];
    await auditLog.flush();
    expect(more).toEqual([405, 404, 409, 500, 413, 415]);
    expect(records.slice(2).map((r) => r.status)).toEqual(more);
  });
});

const canonicalHash = (value: unknown) => sha256(canonicalJson(value) as string);

describe.each(adapters)('the payload hash through $name', (adapter) => {
  it('is of the payload sent, not of what a validator made of it', async () => {
    const { records, auditLog } = recorded();
    const server = adapter.build({
      use: [auditLog, jsonBody()],
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          // zod strips members it does not know, and turns the amount into a number.
          use: [validate({ body: z.object({ amount: z.coerce.number() }) })],
          handler: () => ({ status: 201, body: {} }),
        },
      ],
    });
    const sent = { amount: '5', note: 'for the invoice', password: 'hunter2' };
    await request(server).post('/v1/payments').send(sent).expect(201);
    await auditLog.flush();
    expect(records[0]?.payloadSha256).toBe(canonicalHash({ ...sent, password: '[redacted]' }));
  });

  it('keeps a member named __proto__, and reads toJSON() as JSON does', async () => {
    const { records, auditLog } = recorded();
    const setBody: Middleware = async (ctx, next) => {
      // What a handler or validator may leave: a Date (toJSON), no raw bytes.
      ctx.request.rawBody = undefined;
      ctx.request.body = { when: new Date(0), secret: 'x' };
      await next();
    };
    const server = adapter.build({
      use: [auditLog, jsonBody()],
      routes: [
        { method: 'post', path: '/v1/a', handler: () => ({ status: 201, body: {} }) },
        { method: 'post', path: '/v1/b', use: [setBody], handler: () => ({ status: 201 }) },
      ],
    });
    const proto = '{"__proto__":{"amount":1000000},"amount":1}';
    await request(server).post('/v1/a').type('json').send(proto).expect(201);
    await request(server).post('/v1/b').send({}).expect(201);
    await auditLog.flush();
    // The text is canonical already: its own hash.
    expect(records[0]?.payloadSha256).toBe(sha256(proto));
    expect(records[1]?.payloadSha256).toBe(
      canonicalHash({ secret: '[redacted]', when: '1970-01-01T00:00:00.000Z' }),
    );
  });
});

describe("the payload hash of Express's own parsers", () => {
  function build(auditLog: ReturnType<typeof audit>) {
    return adapters[0]!.build({
      use: [auditLog],
      framework: {
        express: [
          express.json({ type: 'application/json' }),
          express.raw({ type: 'application/octet-stream' }),
          express.text({ type: 'text/plain' }),
        ],
      },
      routes: [{ method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) }],
    });
  }

  it('hashes a JSON body nested deeper than 64 levels, and bytes and text bodies', async () => {
    const { records, auditLog } = recorded();
    const server = build(auditLog);
    const deep = `{"amount":5,"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    await request(server).post('/v1/x').type('application/json').send(deep).expect(201);
    await request(server)
      .post('/v1/x')
      .type('application/octet-stream')
      .send(Buffer.from([1, 2, 3]))
      .expect(201);
    await request(server).post('/v1/x').type('text/plain').send('pay 5').expect(201);
    await request(server).post('/v1/x').expect(201);
    await auditLog.flush();
    expect(records.map((r) => r.payloadSha256)).toEqual([
      canonicalHash(JSON.parse(deep)),
      sha256(new Uint8Array([1, 2, 3])),
      sha256('pay 5'),
      null,
    ]);
  });
});

describe.each(adapters)('the payload hash through $name, in time', (adapter) => {
  it('is taken after the response has gone: hashing a large body holds nobody up', async () => {
    const events: string[] = [];
    const { records, auditLog } = recorded();
    // Inside audit(), on the way out: the next read of rawBody is audit() hashing it.
    const watchHashing: Middleware = async (ctx, next) => {
      await next();
      const raw = ctx.request.rawBody;
      Object.defineProperty(ctx.request, 'rawBody', {
        configurable: true,
        get() {
          events.push('hashed');
          return raw;
        },
      });
    };
    const server = adapter.build({
      use: [auditLog, jsonBody(), watchHashing],
      framework: {
        express: [
          (_req, res, next) => {
            res.on('finish', () => events.push('sent'));
            next();
          },
        ],
        koa: [
          async (ctx, next) => {
            ctx.res.on('finish', () => events.push('sent'));
            await next();
          },
        ],
      },
      routes: [{ method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) }],
    });
    await request(server).post('/v1/x').send({ a: 1 }).expect(201);
    await auditLog.flush();
    expect(events).toEqual(['sent', 'hashed']);
    expect(records[0]?.payloadSha256).toBe(canonicalHash({ a: 1 }));
  });
});

describe('flush() and close() right after the middleware returns', () => {
  const context = {
    request: {
      method: 'POST',
      path: '/v1/x',
      route: '/v1/x',
      ip: '127.0.0.1',
      body: { a: 1 },
      rawBody: undefined,
      header: () => undefined,
    },
    response: { status: 201, headers: { get: () => undefined } },
    state: {},
    traceId: '1'.repeat(32),
  } as unknown as Context;

  it('wait for the record whose payload is still to be hashed', async () => {
    const { records, auditLog } = recorded();
    await auditLog(context, async () => {});
    expect(auditLog.stats().pending).toBe(1);
    await auditLog.flush();
    expect(records.map((r) => r.payloadSha256)).toEqual([canonicalHash({ a: 1 })]);
    await auditLog(context, async () => {});
    await auditLog.close();
    expect(records).toHaveLength(2);
  });
});
