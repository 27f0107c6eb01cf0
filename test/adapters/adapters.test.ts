import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { type Middleware, responseBlind } from '../../src/core/context.js';
import { RestwellError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';

const PROBLEM = /^application\/problem\+json/;

function recordingLogger(): Logger & {
  errors: Array<{ msg: string; fields?: Record<string, unknown> }>;
} {
  const errors: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  return { errors, error: (msg, fields) => errors.push({ msg, fields }), warn() {}, info() {} };
}

describe.each(adapters)('adapter $name', (adapter) => {
  describe('the final response is visible to middlewares', () => {
    const seen: Array<{ status: number; type: string | undefined; body: string }> = [];
    const observe: Middleware = async (ctx, next) => {
      await next();
      const body = ctx.response.body;
      seen.push({
        status: ctx.response.status,
        type: ctx.response.headers.get('content-type'),
        body:
          typeof body === 'string'
            ? body
            : body instanceof Uint8Array
              ? Buffer.from(body).toString()
              : '<stream>',
      });
    };
    const app = adapter.build({
      use: [observe],
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          handler: () => ({
            status: 201,
            headers: { location: '/v1/payments/p1' },
            body: { id: 'p1' },
          }),
        },
      ],
    });

    it('sees status, headers and the serialised body after next()', async () => {
      seen.length = 0;
      const res = await request(app).post('/v1/payments').expect(201);
      expect(res.body).toEqual({ id: 'p1' });
      expect(res.headers.location).toBe('/v1/payments/p1');
      expect(seen).toEqual([
        { status: 201, type: expect.stringMatching(/^application\/json/), body: '{"id":"p1"}' },
      ]);
    });
  });

  describe('a middleware may replace the response', () => {
    const replace: Middleware = async (ctx, next) => {
      await next();
      ctx.response.status = 202;
      ctx.response.headers.set('x-replaced', 'yes');
      ctx.response.body = '{"replaced":true,"padding":"............."}';
    };
    const app = adapter.build({
      routes: [
        {
          method: 'get',
          path: '/r',
          use: [replace],
          handler: () => ({ body: { original: true } }),
        },
      ],
    });

    it('sends the replaced status, headers and body with a correct Content-Length', async () => {
      const res = await request(app).get('/r').expect(202);
      expect(res.headers['x-replaced']).toBe('yes');
      expect(res.text).toBe('{"replaced":true,"padding":"............."}');
      expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    });
  });

  describe('a middleware may answer without calling next', () => {
    let handlerRan = 0;
    const shortCircuit: Middleware = (ctx) => {
      ctx.response.status = 200;
      ctx.response.headers.set('content-type', 'application/json');
      ctx.response.body = '{"cached":true}';
    };
    const app = adapter.build({
      use: [async (_ctx, next) => next()],
      routes: [
        {
          method: 'get',
          path: '/c',
          use: [shortCircuit],
          handler: () => {
            handlerRan++;
            return { body: {} };
          },
        },
      ],
    });

    it('sends that answer and never runs the handler', async () => {
      const res = await request(app).get('/c').expect(200);
      expect(res.body).toEqual({ cached: true });
      expect(handlerRan).toBe(0);
    });
  });

  describe('mounts whose middlewares never read the response', () => {
    let handlerRan = 0;
    const answerEarly = responseBlind((ctx) => {
      ctx.response.status = 204;
    });
    const refuse = responseBlind(() => {
      throw new RestwellError('bad-request', 400, 'Bad Request', { detail: 'refused early' });
    });
    const reads: Array<unknown> = [];
    const reader: Middleware = async (ctx, next) => {
      await next();
      reads.push(ctx.response.body);
    };
    const app = adapter.build({
      use: [responseBlind(async (_ctx, next) => next())],
      routes: [
        {
          method: 'options',
          path: '/early',
          use: [answerEarly],
          handler: () => ({ body: 'never' }),
        },
        { method: 'get', path: '/refused', use: [refuse], handler: () => ({ body: 'never' }) },
        {
          method: 'get',
          path: '/handled',
          handler: () => {
            handlerRan++;
            return { body: { ok: true } };
          },
        },
        { method: 'get', path: '/read', use: [reader], handler: () => ({ body: 'seen' }) },
      ],
    });

    it('send an answer given without calling next', async () => {
      await request(app).options('/early').expect(204);
    });

    it('render an error thrown before the handler', async () => {
      const res = await request(app).get('/refused').expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ code: 'bad-request', detail: 'refused early' });
      expect(res.headers['trace-id']).toBe(res.body.traceId);
    });

    it('let the handler answer untouched', async () => {
      handlerRan = 0;
      const res = await request(app).get('/handled').expect(200);
      expect(res.body).toEqual({ ok: true });
      expect(handlerRan).toBe(1);
    });

    it('still show the final response to a route-level middleware that reads it', async () => {
      reads.length = 0;
      await request(app).get('/read').expect(200, 'seen');
      expect(reads.map((b) => (b instanceof Uint8Array ? Buffer.from(b).toString() : b))).toEqual([
        'seen',
      ]);
    });
  });

  describe('the context is built once per request', () => {
    const contexts = new Set<unknown>();
    const mark: Middleware = async (ctx, next) => {
      contexts.add(ctx);
      ctx.state.marked = (Number(ctx.state.marked) || 0) + 1;
      await next();
    };
    const app = adapter.build({
      use: [mark],
      routes: [
        {
          method: 'get',
          path: '/once',
          use: [mark],
          handler: (req) => ({ body: { marked: req.state.marked } }),
        },
      ],
    });

    it('shares one context and one state between a global and a route-level mount', async () => {
      contexts.clear();
      const res = await request(app).get('/once').expect(200);
      expect(res.body).toEqual({ marked: 2 });
      expect(contexts.size).toBe(1);
    });
  });

  describe('errors become RFC 9457 problem details', () => {
    const logger = recordingLogger();
    const rollback: string[] = [];
    const app = adapter.build({
      options: { logger },
      use: [
        async (_ctx, next) => {
          try {
            await next();
          } catch (err) {
            rollback.push('saw error');
            throw err;
          }
        },
      ],
      routes: [
        {
          method: 'get',
          path: '/boom',
          handler: () => {
            throw new Error('connect ECONNREFUSED db.internal:5432 SELECT * FROM secrets');
          },
        },
        {
          method: 'get',
          path: '/limited',
          use: [
            () => {
              throw new RestwellError('rate-limited', 429, 'Too Many Requests', {
                detail: 'Slow down.',
                headers: { 'Retry-After': '7' },
                extensions: { limit: 10, 'bad name': 1, ok: undefined },
              });
            },
          ],
          handler: () => ({ body: 'never' }),
        },
        { method: 'get', path: '/users/:id', handler: (req) => ({ body: { id: req.params.id } }) },
        { method: 'post', path: '/users/:id', handler: () => ({ status: 201, body: {} }) },
      ],
    });

    it('renders an unexpected handler error as a 500 problem that leaks nothing', async () => {
      logger.errors.length = 0;
      rollback.length = 0;
      const res = await request(app).get('/boom').expect(500);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        code: 'internal-error',
      });
      expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(res.headers['trace-id']).toBe(res.body.traceId);
      expect(res.text).not.toMatch(/ECONNREFUSED|db\.internal|SELECT|at .*\.ts/);
      // The full error is on the server log, with the trace id.
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]?.fields?.traceId).toBe(res.body.traceId);
      expect(String((logger.errors[0]?.fields?.err as Error | undefined)?.message)).toContain(
        'ECONNREFUSED',
      );
    });

    it('lets the error travel back through restwell middlewares', async () => {
      rollback.length = 0;
      await request(app).get('/boom').expect(500);
      expect(rollback).toEqual(['saw error']);
    });

    it('renders a restwell error with its status, code, headers and valid extensions only', async () => {
      const res = await request(app).get('/limited').expect(429);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.body).toEqual({
        type: 'about:blank',
        title: 'Too Many Requests',
        status: 429,
        detail: 'Slow down.',
        code: 'rate-limited',
        traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
        limit: 10,
      });
    });

    it('answers an unknown route with a 404 problem', async () => {
      const res = await request(app).get('/nowhere').expect(404);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ status: 404, code: 'not-found', title: 'Not Found' });
    });

    it('answers a known resource with an unsupported method with 405 and Allow', async () => {
      const res = await request(app).delete('/users/7').expect(405);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ status: 405, code: 'method-not-allowed' });
      const allow = String(res.headers.allow).split(/\s*,\s*/);
      expect(allow).toEqual(expect.arrayContaining(['GET', 'POST']));
      expect(allow).not.toContain('DELETE');
    });
  });

  describe('trace ids', () => {
    const app = adapter.build({
      routes: [{ method: 'get', path: '/t', handler: () => ({ body: { ok: true } }) }],
    });

    it('adopts the trace-id of a valid traceparent', async () => {
      const res = await request(app)
        .get('/t')
        .set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
        .expect(200);
      expect(res.headers['trace-id']).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    });

    it.each([
      ['all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
      ['upper-case hex', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
      ['version ff', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['garbage', 'hello'],
    ])('generates a fresh one for an invalid traceparent (%s)', async (_name, value) => {
      const res = await request(app).get('/t').set('traceparent', value).expect(200);
      expect(res.headers['trace-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(res.headers['trace-id']).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    });
  });

  describe('client IP and trusted proxies', () => {
    const echoIp: Middleware = (ctx) => {
      ctx.response.headers.set('content-type', 'application/json');
      ctx.response.body = JSON.stringify({ ip: ctx.request.ip, protocol: ctx.request.protocol });
    };
    const routes = [
      { method: 'get' as const, path: '/ip', use: [echoIp], handler: () => ({ body: {} }) },
    ];
    const untrusting = adapter.build({ routes });
    const trusting = adapter.build({ routes, options: { trustProxy: 'loopback' } });

    it('ignores X-Forwarded-For by default', async () => {
      const res = await request(untrusting)
        .get('/ip')
        .set('x-forwarded-for', '203.0.113.9')
        .set('x-forwarded-proto', 'https');
      expect(res.body).toEqual({ ip: '127.0.0.1', protocol: 'http' });
    });

    it('believes a trusted proxy', async () => {
      const res = await request(trusting)
        .get('/ip')
        .set('x-forwarded-for', '203.0.113.9, 10.0.0.1')
        .set('x-forwarded-proto', 'https');
      expect(res.body).toEqual({ ip: '10.0.0.1', protocol: 'https' });
    });

    it('never takes garbage or ports from the header as the client', async () => {
      const res = await request(trusting).get('/ip').set('x-forwarded-for', 'evil, 127.0.0.1:8080');
      expect(res.body.ip).toBe('127.0.0.1');
    });
  });

  describe('streaming responses pass through', () => {
    const touched: string[] = [];
    const app = adapter.build({
      use: [
        async (ctx, next) => {
          await next();
          touched.push(
            typeof ctx.response.body === 'string'
              ? 'string'
              : ctx.response.body instanceof Uint8Array
                ? 'bytes'
                : 'stream',
          );
        },
      ],
      routes: [
        {
          method: 'get',
          path: '/chunks',
          handler: () => ({ headers: { 'content-type': 'text/plain' }, chunks: ['a', 'b', 'c'] }),
        },
      ],
    });

    it('delivers a body written in chunks intact', async () => {
      const res = await request(app).get('/chunks').expect(200);
      expect(res.text).toBe('abc');
    });

    it('delivers Server-Sent Events before the stream ends', async () => {
      const rw = adapter.framework;
      const sse = buildSse(adapter.build, rw);
      const server = createServer(sse.listener);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      try {
        const first = await new Promise<string>((resolve, reject) => {
          import('node:http').then(({ get }) => {
            const req = get({ port, host: '127.0.0.1', path: '/events' }, (res) => {
              res.setEncoding('utf8');
              res.once('data', (chunk: string) => {
                resolve(chunk);
                req.destroy();
              });
            });
            req.on('error', reject);
          });
        });
        expect(first).toBe('data: first\n\n');
      } finally {
        sse.stop();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });
});

/** An app whose /events handler sends one event and keeps the stream open. */
function buildSse(
  build: (typeof adapters)[number]['build'],
  framework: 'express' | 'koa',
): { listener: RequestListener; stop(): void } {
  const streams: PassThrough[] = [];
  const listener = build({
    use: [async (_ctx, next) => next()],
    routes: [
      {
        method: 'get',
        path: '/events',
        handler: () => {
          const s = new PassThrough();
          streams.push(s);
          s.write('data: first\n\n');
          return {
            headers: { 'content-type': 'text/event-stream', 'x-framework': framework },
            body: s,
          };
        },
      },
    ],
  });
  return {
    listener,
    stop: () => {
      for (const s of streams) s.end();
    },
  };
}
