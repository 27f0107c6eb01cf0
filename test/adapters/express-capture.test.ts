/**
 * The Express capture holds the handler's response back only once the chain
 * passes the request on, and keeps its place among Express middleware that
 * wrap the response's methods: restwell sees the handler's response first,
 * and sends the final one through what was mounted before it.
 */
import type { ServerResponse } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { expressAdapter } from '../../src/adapters/express/index.js';
import type { Middleware } from '../../src/core/context.js';

/** Reads the final response: replaces the handler's body with its length. */
const measures: Middleware = Object.assign(
  async (ctx: Parameters<Middleware>[0], next: () => Promise<void>) => {
    await next();
    const body = ctx.response.body;
    const text = typeof body === 'string' ? body : Buffer.from(body as Uint8Array).toString();
    ctx.response.headers.set('content-type', 'text/plain');
    ctx.response.body = `measured ${text.length}`;
  },
  {},
) as Middleware;

/** Answers on its own, without passing the request on. */
const answers: Middleware = async (ctx) => {
  ctx.response.status = 202;
  ctx.response.headers.set('content-type', 'text/plain');
  ctx.response.body = 'answered early';
};

describe.each([
  ['express 4', express4],
  ['express 5', express5],
] as const)('%s', (_name, express) => {
  it('sends the final response through a wrapper an earlier middleware put on res.end', async () => {
    const app = express();
    const rw = expressAdapter();
    const seen: string[] = [];
    app.use((_req, res, next) => {
      const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
      (res as { end: unknown }).end = (chunk?: unknown) => {
        seen.push(chunk === undefined ? '' : String(chunk));
        return end(chunk);
      };
      next();
    });
    app.use(rw(measures));
    app.get('/x', (_req, res) => {
      res.send('12345');
    });
    const res = await request(app).get('/x').expect(200);
    expect(res.text).toBe('measured 5');
    // The wrapper saw the response restwell sent, not the handler's.
    expect(seen).toEqual(['measured 5']);
  });

  it('holds the response of a handler inside a mounted sub-app', async () => {
    const app = express();
    const sub = express();
    const rw = expressAdapter();
    sub.get('/x', (_req, res) => {
      res.send('123');
    });
    app.use(rw(measures));
    app.use('/sub', sub);
    const res = await request(app).get('/sub/x').expect(200);
    expect(res.text).toBe('measured 3');
  });

  it('writes an answer the chain gives on its own straight through, then captures the next request', async () => {
    const app = express();
    const rw = expressAdapter();
    app.get('/early', rw(answers), (_req, res) => {
      res.send('never');
    });
    app.get('/x', rw(measures), (_req, res) => {
      res.send('1234');
    });
    const early = await request(app).get('/early').expect(202);
    expect(early.text).toBe('answered early');
    expect(early.headers['content-length']).toBe('14');
    const res = await request(app).get('/x').expect(200);
    expect(res.text).toBe('measured 4');
    const head = await request(app).head('/early').expect(202);
    expect(head.headers['content-length']).toBe('14');
  });
});
