/**
 * `rw.methodNotAllowed()` on Koa: a @koa/router route answers the methods it
 * does not route itself, after its own middleware, with the same 405 problem
 * and `Allow` (RFC 9110 §15.5.6) as the adapter makes of `allowedMethods()`
 * and as Express's `rw.methodNotAllowed()`; OPTIONS keeps the allowedMethods()
 * answer (RFC 9110 §9.3.7) and HEAD follows GET (RFC 9110 §9.3.2).
 */
import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import express from 'express';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../../src/adapters/express/index.js';
import { type KoaMiddleware, koaAdapter } from '../../src/adapters/koa/index.js';
import type { Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import { deprecated } from '../../src/versioning/deprecation.js';
import { type Listening, listen, type RawResponse, rawRequest } from '../helpers/raw.js';

const PROBLEM = /^application\/problem\+json/;
const DEPRECATION = `@${Date.UTC(2026, 0, 1) / 1000}`;

const mark = (): Middleware =>
  deprecated({ deprecation: '2026-01-01', sunset: '2027-06-30', now: () => 0 });

/** Counts the requests the route's own middleware saw, by method. */
function seen(): Middleware & { methods: string[] } {
  const methods: string[] = [];
  const mw = async (ctx: Parameters<Middleware>[0], next: Parameters<Middleware>[1]) => {
    methods.push(ctx.request.method);
    await next();
  };
  return Object.assign(mw, { methods });
}

type Wiring = 'all-last' | 'all-first' | 'allowedMethods';

interface Built {
  app: RequestListener;
  seen: string[];
}

/**
 * `/items/:id` routes GET and POST, `/forms/:id` only POST, `/bare` no method of
 * its own. With `allowedMethods`, no route mounts methodNotAllowed(): the
 * router's own answers, made problems by the adapter.
 */
function koaApp(KoaClass: typeof Koa3, wiring: Wiring, prefix = ''): Built {
  const app = new KoaClass();
  app.silent = true;
  const rw = koaAdapter({ logger: silentLogger });
  const router = new Router();
  const probe = seen();
  const route = rw(probe, mark());
  const answer = rw.methodNotAllowed();
  // First, the all() route's middleware runs for every method, the routed ones passed on to
  // their routes: those need no mount of their own.
  const own = wiring === 'all-first' ? [] : [route];
  if (wiring === 'all-first') router.all('/items/:id', route, answer);
  router.get('/items/:id', ...own, (ctx) => {
    ctx.set('X-Handler', 'get');
    ctx.body = { id: ctx.params.id };
  });
  router.post('/items/:id', ...own, (ctx) => {
    ctx.status = 201;
    ctx.body = { created: ctx.params.id };
  });
  router.post('/forms/:id', (ctx) => {
    ctx.status = 201;
    ctx.body = {};
  });
  if (wiring !== 'allowedMethods') {
    if (wiring === 'all-last') router.all('/items/:id', route, answer);
    router.all('/forms/:id', answer);
    router.all('/bare', answer);
  }
  app.use(rw());
  if (prefix === '') {
    app.use(router.routes());
    app.use(router.allowedMethods());
  } else {
    const outer = new Router();
    outer.use(prefix, router.routes(), router.allowedMethods());
    app.use(outer.routes());
    app.use(outer.allowedMethods());
  }
  return { app: app.callback() as RequestListener, seen: probe.methods };
}

function expressApp(): RequestListener {
  const app = express();
  const rw = expressAdapter({ logger: silentLogger });
  app.use(rw());
  app
    .route('/items/:id')
    .all(rw(mark()))
    .get((req, res) => {
      res.set('X-Handler', 'get').json({ id: req.params.id });
    })
    .post((req, res) => {
      res.status(201).json({ created: req.params.id });
    })
    .all(rw.methodNotAllowed());
  app
    .route('/forms/:id')
    .post((_req, res) => {
      res.status(201).json({});
    })
    .all(rw.methodNotAllowed());
  app.use(rw.notFound());
  app.use(rw.errorHandler());
  return app as unknown as RequestListener;
}

/** What two servers must agree on: everything but the trace id. */
function answer(res: RawResponse) {
  const text = res.body.toString();
  const body =
    text === '' ? '' : (({ traceId: _, ...rest }) => rest)(JSON.parse(text) as { traceId: string });
  return {
    status: res.status,
    contentType: res.headers['content-type'],
    allow: res.headers.allow,
    body,
  };
}

describe.each([
  ['koa3', Koa3],
  ['koa2', Koa2 as unknown as typeof Koa3],
] as const)('rw.methodNotAllowed() through %s', (_name, KoaClass) => {
  const servers: Listening[] = [];
  const start = async (listener: RequestListener) => {
    const server = await listen(listener);
    servers.push(server);
    return server.port;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  describe('mounted last on the route', () => {
    let built: Built;
    let port: number;
    let router: number;
    let viaExpress: number;
    beforeAll(async () => {
      built = koaApp(KoaClass, 'all-last');
      port = await start(built.app);
      router = await start(koaApp(KoaClass, 'allowedMethods').app);
      viaExpress = await start(expressApp());
    });
    /** One request to this app, to the router's own answers, and to Express. */
    const all = (method: string, path: string) =>
      Promise.all([
        rawRequest(port, { method, path }),
        rawRequest(router, { method, path }),
        rawRequest(viaExpress, { method, path }),
      ]);

    it('answers a 405 problem after the route middleware ran: the deprecation is on it', async () => {
      built.seen.length = 0;
      const res = await rawRequest(port, { method: 'DELETE', path: '/items/7' });
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers.allow).toBe('GET, HEAD, POST');
      expect(res.headers.deprecation).toBe(DEPRECATION);
      expect(res.headers.sunset).toBe('Wed, 30 Jun 2027 00:00:00 GMT');
      expect(JSON.parse(res.body.toString())).toMatchObject({
        status: 405,
        code: 'method-not-allowed',
        detail: 'DELETE is not supported by this resource.',
      });
      expect(built.seen).toEqual(['DELETE']);
    });

    it.each(['DELETE', 'PUT', 'PATCH', 'TRACE', 'PROPFIND', 'MKCOL'])(
      '%s: the same answer as allowedMethods() and as Express, but for the deprecation',
      async (method) => {
        const [own, fromRouter, fromExpress] = await all(method, '/items/7');
        expect(own.status).toBe(405);
        expect(answer(own)).toEqual(answer(fromRouter));
        expect(answer(own)).toEqual(answer(fromExpress));
        // The router's own answer runs no route middleware; Express's and this one do.
        expect(fromRouter.headers.deprecation).toBeUndefined();
        expect(fromExpress.headers.deprecation).toBe(DEPRECATION);
        expect(own.headers.deprecation).toBe(DEPRECATION);
      },
    );

    it('lists only the methods the router routes for the path, not every method all() takes', async () => {
      const res = await rawRequest(port, { method: 'GET', path: '/forms/1' });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(answer(res)).toEqual(
        answer(await rawRequest(router, { method: 'GET', path: '/forms/1' })),
      );
    });

    it('HEAD on a path without GET is a 405 as well, with no body', async () => {
      const res = await rawRequest(port, { method: 'HEAD', path: '/forms/1' });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.body.length).toBe(0);
    });

    it('serves the routed methods as before, HEAD following GET', async () => {
      built.seen.length = 0;
      const get = await rawRequest(port, { method: 'GET', path: '/items/7' });
      expect(get.status).toBe(200);
      expect(JSON.parse(get.body.toString())).toEqual({ id: '7' });
      const head = await rawRequest(port, { method: 'HEAD', path: '/items/7' });
      expect(head.status).toBe(200);
      expect(head.headers['x-handler']).toBe('get');
      expect(head.headers['content-length']).toBe(get.headers['content-length']);
      expect(head.headers.deprecation).toBe(DEPRECATION);
      expect(head.body.length).toBe(0);
      const post = await rawRequest(port, { method: 'POST', path: '/items/7' });
      expect(post.status).toBe(201);
      // The route middleware ran once for each: never again on the way to the 405 answer.
      expect(built.seen).toEqual(['GET', 'HEAD', 'POST']);
    });

    it('answers OPTIONS as allowedMethods() and Express do: 200, Allow, no content', async () => {
      const [own, fromRouter, fromExpress] = await all('OPTIONS', '/items/7');
      expect(own.status).toBe(200);
      expect(own.headers.allow).toBe('GET, HEAD, POST');
      expect(own.headers['content-type']).toBeUndefined();
      expect(own.body.length).toBe(0);
      expect(own.headers.deprecation).toBe(DEPRECATION);
      expect(answer(own)).toEqual(answer(fromRouter));
      expect(answer(own)).toEqual(answer(fromExpress));
    });

    it('a route with no method of its own answers 405 with an empty Allow (RFC 9110 §10.2.1)', async () => {
      const res = await rawRequest(port, { method: 'GET', path: '/bare' });
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers.allow).toBe('');
    });

    it('leaves a path it is not mounted on to the router: 404', async () => {
      const res = await rawRequest(port, { method: 'DELETE', path: '/elsewhere' });
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    });
  });

  describe('mounted before the route methods', () => {
    let built: Built;
    let port: number;
    beforeAll(async () => {
      built = koaApp(KoaClass, 'all-first');
      port = await start(built.app);
    });

    it('passes the routed methods on, HEAD with GET, and answers the others', async () => {
      built.seen.length = 0;
      const get = await rawRequest(port, { method: 'GET', path: '/items/7' });
      expect(get.status).toBe(200);
      expect(JSON.parse(get.body.toString())).toEqual({ id: '7' });
      expect(get.headers.deprecation).toBe(DEPRECATION);
      const head = await rawRequest(port, { method: 'HEAD', path: '/items/7' });
      expect(head.status).toBe(200);
      expect(head.headers['x-handler']).toBe('get');
      expect((await rawRequest(port, { method: 'POST', path: '/items/7' })).status).toBe(201);
      const del = await rawRequest(port, { method: 'DELETE', path: '/items/7' });
      expect(del.status).toBe(405);
      expect(del.headers.allow).toBe('GET, HEAD, POST');
      expect(del.headers.deprecation).toBe(DEPRECATION);
      const options = await rawRequest(port, { method: 'OPTIONS', path: '/items/7' });
      expect(options.status).toBe(200);
      expect(options.headers.allow).toBe('GET, HEAD, POST');
      expect(options.headers['content-type']).toBeUndefined();
      // The route middleware ran once for each request.
      expect(built.seen).toEqual(['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS']);
    });
  });

  describe('in a router mounted under a prefix', () => {
    let port: number;
    beforeAll(async () => {
      port = await start(koaApp(KoaClass, 'all-last', '/v1').app);
    });

    it('reads the methods of the nested routes', async () => {
      const del = await rawRequest(port, { method: 'DELETE', path: '/v1/items/7' });
      expect(del.status).toBe(405);
      expect(del.headers.allow).toBe('GET, HEAD, POST');
      expect(del.headers.deprecation).toBe(DEPRECATION);
      const options = await rawRequest(port, { method: 'OPTIONS', path: '/v1/items/7' });
      expect(options.status).toBe(200);
      expect(options.headers.allow).toBe('GET, HEAD, POST');
      expect((await rawRequest(port, { method: 'GET', path: '/v1/items/7' })).status).toBe(200);
    });
  });

  describe('beside routes of their own', () => {
    let port: number;
    const optionsRan: string[] = [];
    beforeAll(async () => {
      const app = new KoaClass();
      app.silent = true;
      const rw = koaAdapter({ logger: silentLogger });
      const router = new Router();
      // Another all() route on the path, one that passes every method on: it names no method.
      router.all('/things', rw(mark()));
      router.get('/things', (ctx) => {
        ctx.body = [];
      });
      // OPTIONS routed by the route itself: passed on, the router still answers it.
      const options = async (
        ctx: { path: string; set(k: string, v: string): void },
        next: () => Promise<unknown>,
      ) => {
        optionsRan.push(ctx.path);
        ctx.set('X-Options', 'route');
        await next();
      };
      router.options('/things', options);
      router.all('/things', rw.methodNotAllowed());
      // The same, with the OPTIONS route after the 405 answer.
      router.all('/later', rw.methodNotAllowed());
      router.get('/later', (ctx) => {
        ctx.body = [];
      });
      router.options('/later', options);
      app.use(rw());
      app.use(router.routes());
      app.use(router.allowedMethods());
      port = await start(app.callback() as RequestListener);
    });

    it('lists the methods routes name, not those of an all() route', async () => {
      const res = await rawRequest(port, { method: 'PUT', path: '/things' });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(res.headers.deprecation).toBe(DEPRECATION);
    });

    it.each(['/things', '/later'])(
      '%s: a routed OPTIONS runs its route, answered with the routed methods',
      async (path) => {
        optionsRan.length = 0;
        const res = await rawRequest(port, { method: 'OPTIONS', path });
        expect(res.status).toBe(200);
        expect(res.headers['x-options']).toBe('route');
        expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
        expect(res.headers['content-type']).toBeUndefined();
        expect(res.body.length).toBe(0);
        expect(optionsRan).toEqual([path]);
      },
    );
  });

  describe('outside a router', () => {
    it('fails loudly: a 500 problem, logged with the reason', async () => {
      const app = new KoaClass();
      app.silent = true;
      const errors: unknown[] = [];
      const rw = koaAdapter({
        logger: { error: (_msg, fields) => errors.push(fields?.err), warn() {}, info() {} },
      });
      app.use(rw());
      app.use(rw.methodNotAllowed() as unknown as KoaMiddleware as Koa3.Middleware);
      const port = await start(app.callback() as RequestListener);
      const res = await rawRequest(port, { method: 'DELETE', path: '/x' });
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(String(errors[0])).toContain('methodNotAllowed() found no @koa/router match');
    });
  });
});
