/**
 * A benchmark server: `node --import tsx bench/servers/core.ts <case>` listens
 * on a free loopback port and prints it. Cases: express, express+restwell,
 * koa, koa+restwell. Every case serves the same 1 KB JSON GET and a JSON POST.
 */
import { pathToFileURL } from 'node:url';
import { serve } from './serve.js';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import { jsonBody } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { koaAdapter } from 'restwell/koa';

const item = { id: 'usr_1', name: 'Ada Lovelace', email: 'ada@example.com', tags: ['a', 'b', 'c'] };
// About 1 KB of JSON, like a typical resource.
export const PAYLOAD = { data: Array.from({ length: 9 }, (_, i) => ({ ...item, id: `usr_${i}` })) };

export function expressApp(withRestwell: boolean) {
  const app = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  const rw = expressAdapter();
  if (withRestwell) app.use(rw(jsonBody()));
  else app.use(express.json());
  app.get('/v1/users', (_req, res) => {
    res.json(PAYLOAD);
  });
  app.post('/v1/payments', (req, res) => {
    res.status(201).json({ id: 'pay_1', ...req.body });
  });
  if (withRestwell) {
    app.use(rw.notFound());
    app.use(rw.errorHandler());
  }
  return app;
}

export function koaApp(withRestwell: boolean) {
  const app = new Koa();
  const router = new Router();
  router.get('/v1/users', (ctx) => {
    ctx.body = PAYLOAD;
  });
  router.post('/v1/payments', (ctx) => {
    ctx.status = 201;
    ctx.body = { id: 'pay_1', ...(ctx.request as { body?: object }).body };
  });
  if (withRestwell) app.use(koaAdapter()(jsonBody()));
  else {
    // The smallest fair JSON body reader for bare Koa (it has none built in).
    app.use(async (ctx, next) => {
      if (ctx.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of ctx.req) chunks.push(c as Buffer);
        (ctx.request as { body?: unknown }).body = JSON.parse(Buffer.concat(chunks).toString());
      }
      await next();
    });
  }
  app.use(router.routes());
  return app.callback();
}

const which = process.argv[2];
// Imported by the in-process part of bench/core.ts: build the apps, serve nothing.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const handler =
    which === 'express'
      ? expressApp(false)
      : which === 'express+restwell'
        ? expressApp(true)
        : which === 'koa'
          ? koaApp(false)
          : which === 'koa+restwell'
            ? koaApp(true)
            : undefined;
  if (handler === undefined) {
    console.error(`unknown case ${which}`);
    process.exit(2);
  }
  serve(handler);
}
