/**
 * One app description, built on every supported framework, so that a single
 * behaviour suite proves the same result through each adapter.
 *
 * @example
 * ```ts
 * describe.each(adapters)('$name', (adapter) => {
 *   const app = adapter.build({
 *     use: [jsonBody()],
 *     routes: [{ method: 'post', path: '/x', use: [idempotency({ store })], handler: () => ({ status: 201, body: { ok: true } }) }],
 *   });
 *   it('...', async () => { await request(app).post('/x').expect(201); });
 * });
 * ```
 */
import type { RequestListener } from 'node:http';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import {
  contextOf as expressContextOf,
  expressAdapter,
  type ExpressAdapterOptions,
} from '../../src/adapters/express/index.js';
import {
  type KoaAdapterOptions,
  koaAdapter,
  contextOf as koaContextOf,
} from '../../src/adapters/koa/index.js';
import type { Context, ContextState, Middleware } from '../../src/core/context.js';
import type { AdapterOptions } from '../../src/core/node.js';
import { silentLogger } from '../../src/core/logger.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options';

/** What a handler sees, the same on every framework. */
export interface HandlerRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  state: ContextState;
  /** The restwell context, as the adapter's `contextOf()` gives it to handlers. */
  context: Context;
}

/** What a handler answers. An object body is sent as JSON. */
export interface HandlerResponse {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: unknown;
  /** Written in several `res.write()` calls (Express) / as a stream (Koa). */
  chunks?: Array<string | Uint8Array>;
}

export interface RouteSpec {
  method: Method;
  path: string;
  /** restwell middlewares mounted on this route only. */
  use?: Middleware[];
  handler: (req: HandlerRequest) => HandlerResponse | Promise<HandlerResponse>;
}

export interface AppSpec {
  /** restwell middlewares mounted on every route, outermost first. */
  use?: Middleware[];
  routes: RouteSpec[];
  options?: AdapterOptions & Omit<ExpressAdapterOptions, 'principal'>;
  /** Options for the Express adapter only (e.g. `principal`), over `options`. */
  expressOptions?: ExpressAdapterOptions;
  /** Options for the Koa adapter only (e.g. `principal`), over `options`. */
  koaOptions?: KoaAdapterOptions;
  /**
   * The framework's own middleware, mounted after the global restwell mount
   * and before the routes (on Koa: inside it), as an app mounts passport or a
   * logger.
   */
  framework?: {
    express?: express5.RequestHandler[];
    koa?: Koa3.Middleware[];
  };
  /**
   * Runs in the framework's own middleware before restwell, e.g. to set a principal the way an auth
   * middleware would: `(state, headers) => { state.principal = ... }`.
   */
  before?: (state: ContextState, headers: Record<string, string | string[] | undefined>) => void;
}

export interface AdapterCase {
  name: 'express5' | 'express4' | 'koa3' | 'koa2';
  framework: 'express' | 'koa';
  build(spec: AppSpec): RequestListener;
}

function toStream(chunks: Array<string | Uint8Array>): Readable {
  return Readable.from(
    chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : Buffer.from(c))),
  );
}

function buildExpress(expressFactory: typeof express5, spec: AppSpec): RequestListener {
  const app = expressFactory();
  app.disable('x-powered-by');
  app.set('etag', false);
  const rw = expressAdapter({ logger: silentLogger, ...spec.options, ...spec.expressOptions });
  // Mounted globally, as the adapter's documentation says, so every response gets the core's treatment.
  app.use(
    rw(
      async (ctx, next) => {
        // What an authentication middleware would have put in the state.
        spec.before?.(ctx.state, ctx.request.headers);
        await next();
      },
      ...(spec.use ?? []),
    ),
  );
  for (const mw of spec.framework?.express ?? []) app.use(mw);
  const byPath = new Map<string, ReturnType<typeof app.route>>();
  for (const route of spec.routes) {
    const handler = async (
      req: express5.Request,
      res: express5.Response,
      next: express5.NextFunction,
    ) => {
      try {
        const out = await route.handler({
          method: req.method,
          path: req.path,
          params: { ...(req.params as Record<string, string>) },
          query: { ...(req.query as Record<string, unknown>) },
          headers: req.headers,
          body: req.body,
          state: expressContextOf(req).state,
          context: expressContextOf(req),
        });
        sendExpress(res, out);
      } catch (err) {
        next(err);
      }
    };
    const stack = (
      route.use?.length ? [rw(...route.use), handler] : [handler]
    ) as express5.RequestHandler[];
    let chain = byPath.get(route.path);
    if (chain === undefined) {
      chain = app.route(route.path);
      byPath.set(route.path, chain);
    }
    chain[route.method](...stack);
  }
  // A known path with an unsupported method: 405 with Allow, after every method handler.
  for (const chain of byPath.values()) chain.all(rw.methodNotAllowed() as express5.RequestHandler);
  app.use(rw.notFound());
  app.use(rw.errorHandler());
  return app as unknown as RequestListener;
}

function sendExpress(res: express5.Response, out: HandlerResponse): void {
  if (out.status !== undefined) res.status(out.status);
  for (const [k, v] of Object.entries(out.headers ?? {})) res.setHeader(k, v);
  if (out.chunks) {
    for (const c of out.chunks) res.write(c);
    res.end();
    return;
  }
  if (out.body instanceof Readable) {
    res.flushHeaders();
    out.body.pipe(res);
    return;
  }
  if (out.body === undefined) res.end();
  else if (typeof out.body === 'string' || Buffer.isBuffer(out.body)) res.send(out.body);
  else res.json(out.body);
}

function buildKoa(KoaClass: typeof Koa3, spec: AppSpec): RequestListener {
  const app = new KoaClass();
  app.silent = true;
  const rw = koaAdapter({ logger: silentLogger, ...spec.options, ...spec.koaOptions });
  const router = new Router();
  app.use(async (ctx, next) => {
    spec.before?.(ctx.state as ContextState, ctx.headers);
    await next();
  });
  app.use(rw(...(spec.use ?? [])) as unknown as Koa3.Middleware);
  for (const mw of spec.framework?.koa ?? []) app.use(mw);
  for (const route of spec.routes) {
    const handler = async (ctx: Koa3.ParameterizedContext) => {
      const out = await route.handler({
        method: ctx.method,
        path: ctx.path,
        params: { ...((ctx as unknown as { params: Record<string, string> }).params ?? {}) },
        query: { ...ctx.query },
        headers: ctx.headers,
        body: (ctx.request as unknown as { body?: unknown }).body,
        state: ctx.state as ContextState,
        context: koaContextOf(ctx),
      });
      if (out.status !== undefined) ctx.status = out.status;
      for (const [k, v] of Object.entries(out.headers ?? {})) ctx.set(k, v);
      if (out.chunks) ctx.body = toStream(out.chunks);
      else if (out.body !== undefined) ctx.body = out.body;
      else if (out.status === undefined) ctx.status = 200;
    };
    const stack = (route.use?.length
      ? [rw(...route.use), handler]
      : [handler]) as unknown as Koa3.Middleware[];
    router[route.method](route.path, ...stack);
  }
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app.callback() as RequestListener;
}

export const adapters: AdapterCase[] = [
  { name: 'express5', framework: 'express', build: (spec) => buildExpress(express5, spec) },
  {
    name: 'express4',
    framework: 'express',
    build: (spec) => buildExpress(express4 as unknown as typeof express5, spec),
  },
  { name: 'koa3', framework: 'koa', build: (spec) => buildKoa(Koa3, spec) },
  {
    name: 'koa2',
    framework: 'koa',
    build: (spec) => buildKoa(Koa2 as unknown as typeof Koa3, spec),
  },
];
