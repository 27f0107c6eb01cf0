/**
 * Benchmark server for ETags and compression: `node --import tsx bench/servers/caching.ts`.
 * Every case is an app of its own, mounted in this one process under its own
 * prefix (`/<case>/body/1k`), so that cases measured in turn share one heap
 * and one JIT. Each serves `GET /body/1k`, `/body/100k` and `/body/1m`
 * (prebuilt JSON strings, so that only the middleware's work differs).
 *
 * Express 5:
 * - `express`: nothing mounted, Express's ETag off;
 * - `express-etag`: Express's built-in ETag (weak, `etag` package, in `res.send`)
 *   and its own 304 (`req.fresh`);
 * - `restwell-core`: restwell mounted with one middleware that never reads the
 *   response (the context, trace id, problem details);
 * - `restwell-capture`: one middleware that reads the response (the core plus
 *   holding the response back so that it can be seen);
 * - `restwell-etag`: `conditional()`, a strong ETag hashed from the final body;
 * - `restwell-supplied`: `conditional()`, the handler setting `ETag: "v1"` (no hashing);
 * - `restwell-load`: `conditional({ load })`, a matching `If-None-Match` answered
 *   304 before the handler;
 * - `compression`: the `compression` package (expressjs), its defaults;
 * - `restwell-compression`: `compression()`, its defaults.
 *
 * Koa 3:
 * - `koa`: nothing mounted;
 * - `koa-etag`: `koa-conditional-get` + `koa-etag` (strong, `etag` package);
 * - `koa-restwell-etag`: `conditional()`;
 * - `koa-compress`: `koa-compress`, its defaults;
 * - `koa-restwell-compression`: `compression()`, its defaults.
 *
 * The peers' defaults match restwell's: brotli quality 4, gzip level 6, 1 KB threshold.
 */
import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import compressionPeer from 'compression';
import express from 'express';
import Koa from 'koa';
import koaCompress from 'koa-compress';
import koaConditionalGet from 'koa-conditional-get';
import koaEtag from 'koa-etag';
import type { Middleware } from 'restwell';
import { responseBlind } from 'restwell/kit';
import { compression } from 'restwell/compression';
import { conditional } from 'restwell/conditional';
import { expressAdapter } from 'restwell/express';
import { koaAdapter } from 'restwell/koa';
import { serve } from './serve.js';

/** A JSON array of plausible API records, `bytes` long give or take one record. */
function jsonList(bytes: number): string {
  const items: unknown[] = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const item = {
      id: `usr_${(i * 7919).toString(36).padStart(8, '0')}`,
      name: `User ${i}`,
      email: `user${i}@example.com`,
      createdAt: new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString(),
      plan: ['free', 'pro', 'team'][i % 3],
      active: i % 5 !== 0,
      score: (i * 37) % 1000,
      tags: ['alpha', 'beta', 'gamma'].slice(0, (i % 3) + 1),
    };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return JSON.stringify(items);
}

const bodies: Record<string, string> = {
  '1k': jsonList(1024),
  '100k': jsonList(100 * 1024),
  '1m': jsonList(1024 * 1024),
};

/** A middleware that reads nothing and, unmarked, makes the adapter hold the response back. */
const seesTheResponse: Middleware = async (_ctx, next) => {
  await next();
};
/** The same, marked as never reading the response: the adapter core alone. */
const blind: Middleware = responseBlind(async (_ctx, next) => {
  await next();
});

function expressCase(name: string): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', name === 'express-etag' ? 'weak' : false);
  const rw = expressAdapter();
  if (name === 'restwell-core') app.use(rw(blind));
  if (name === 'restwell-capture') app.use(rw(seesTheResponse));
  if (name === 'restwell-etag' || name === 'restwell-supplied') app.use(rw(conditional()));
  if (name === 'restwell-load') app.use(rw(conditional({ load: () => ({ etag: '"v1"' }) })));
  if (name === 'compression') app.use(compressionPeer());
  if (name === 'restwell-compression') app.use(rw(compression()));
  app.get('/body/:size', (req, res) => {
    const body = bodies[req.params.size ?? ''] ?? '';
    if (name === 'restwell-supplied') res.setHeader('ETag', '"v1"');
    res.type('application/json').send(body);
  });
  if (name.startsWith('restwell')) app.use(rw.errorHandler());
  return app as unknown as RequestListener;
}

function koaCase(name: string): RequestListener {
  const app = new Koa();
  // koa-compress reports every response a client cuts short (autocannon does, at the end of a run).
  app.silent = true;
  const rw = koaAdapter();
  if (name === 'koa-etag') {
    app.use(koaConditionalGet());
    app.use(koaEtag());
  }
  if (name === 'koa-restwell-etag') app.use(rw(conditional()) as unknown as Koa.Middleware);
  if (name === 'koa-compress') app.use(koaCompress());
  if (name === 'koa-restwell-compression') app.use(rw(compression()) as unknown as Koa.Middleware);
  const router = new Router();
  router.get('/body/:size', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = bodies[ctx.params.size ?? ''] ?? '';
  });
  app.use(router.routes());
  return app.callback() as RequestListener;
}

const EXPRESS_CASES = [
  'express',
  'express-etag',
  'restwell-core',
  'restwell-capture',
  'restwell-etag',
  'restwell-supplied',
  'restwell-load',
  'compression',
  'restwell-compression',
] as const;
const KOA_CASES = [
  'koa',
  'koa-etag',
  'koa-restwell-etag',
  'koa-compress',
  'koa-restwell-compression',
] as const;

const apps = new Map<string, RequestListener>();
for (const name of EXPRESS_CASES) apps.set(name, expressCase(name));
for (const name of KOA_CASES) apps.set(name, koaCase(name));
serve((req, res) => {
  const url = req.url ?? '/';
  const slash = url.indexOf('/', 1);
  const app = slash < 0 ? undefined : apps.get(url.slice(1, slash));
  if (app === undefined) {
    res.statusCode = 404;
    res.end();
    return;
  }
  req.url = url.slice(slash);
  app(req, res);
});
