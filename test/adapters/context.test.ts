/**
 * The context is reachable: handlers and the framework's own middleware read
 * and write it through `contextOf()`, the principal can come from the
 * framework's auth, validated parts are read typed, and a module that
 * answered a request itself is named in one debug line.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Context as KoaContext, Next as KoaNext } from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { expressAdapter, contextOf as expressContextOf } from '../../src/adapters/express/index.js';
import { koaAdapter, contextOf as koaContextOf } from '../../src/adapters/koa/index.js';
import { answeredBy, type Middleware } from '../../src/core/context.js';
import type { Logger } from '../../src/core/logger.js';
import { validate, validated } from '../../src/core/validate.js';
import { byIp, rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

type Line = { msg: string; fields?: Record<string, unknown> };

function debugLogger(): Logger & {
  debug(m: string, f?: Record<string, unknown>): void;
  lines: Line[];
} {
  const lines: Line[] = [];
  return {
    lines,
    error() {},
    warn() {},
    info() {},
    debug: (msg, fields) => lines.push({ msg, fields }),
  };
}

/** What a passport-like middleware does on each framework: the user on the framework's request. */
const auth = {
  express: (req: Request, _res: Response, next: NextFunction) => {
    const id = req.headers['x-user'];
    if (typeof id === 'string') (req as Request & { user?: { id: string } }).user = { id };
    next();
  },
  koa: async (ctx: KoaContext, next: KoaNext) => {
    const id = ctx.get('x-user');
    if (id !== '') ctx.state.user = { id };
    await next();
  },
};

describe.each(adapters)('the context through $name', (adapter: AdapterCase) => {
  it('is the state the framework middleware reads and writes (res.locals, ctx.state)', async () => {
    const app = adapter.build({
      framework: {
        express: [
          (req, res, next) => {
            res.locals.fromFramework = 'yes';
            res.locals.sawTrace = (
              req as Request & { headers: Record<string, string> }
            ).headers.traceparent?.split('-')[1];
            next();
          },
        ],
        koa: [
          async (ctx, next) => {
            ctx.state.fromFramework = 'yes';
            ctx.state.sawTrace = ctx.get('traceparent').split('-')[1];
            await next();
          },
        ],
      },
      routes: [
        {
          method: 'get',
          path: '/c',
          handler: (req) => ({
            body: {
              fromFramework: req.context.state.fromFramework,
              traceId: req.context.traceId,
              sawTrace: req.context.state.sawTrace,
            },
          }),
        },
      ],
    });
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await request(app)
      .get('/c')
      .set('traceparent', `00-${trace}-00f067aa0ba902b7-01`)
      .expect(200);
    expect(res.body).toEqual({ fromFramework: 'yes', traceId: trace, sawTrace: trace });
  });

  it('takes the principal from the framework auth, read when a later mount first needs it', async () => {
    const seen: unknown[] = [];
    const readsPrincipal: Middleware = async (ctx, next) => {
      seen.push(ctx.state.principal?.id);
      await next();
    };
    const app = adapter.build({
      expressOptions: {
        principal: (req) => {
          const user = req.user as { id: string } | undefined;
          return user ? { id: user.id, type: 'user' } : undefined;
        },
      },
      koaOptions: {
        principal: (ctx) => {
          const user = ctx.state.user as { id: string } | undefined;
          return user ? { id: user.id, type: 'user' } : undefined;
        },
      },
      // The auth middleware runs after the global mount, before the route's.
      framework: { express: [auth.express], koa: [auth.koa as never] },
      routes: [
        {
          method: 'get',
          path: '/me',
          use: [readsPrincipal],
          handler: (req) => ({ body: { principal: req.context.state.principal ?? null } }),
        },
      ],
    });
    const res = await request(app).get('/me').set('x-user', 'u1').expect(200);
    expect(seen).toEqual(['u1']);
    expect(res.body.principal).toEqual({ id: 'u1', type: 'user' });
    const anonymous = await request(app).get('/me').expect(200);
    expect(anonymous.body.principal).toBeNull();
  });

  it('keeps a principal middleware already set', async () => {
    const app = adapter.build({
      before: (state) => {
        state.principal = { id: 'set-by-middleware' };
      },
      expressOptions: { principal: () => ({ id: 'from-option' }) },
      koaOptions: { principal: () => ({ id: 'from-option' }) },
      routes: [
        {
          method: 'get',
          path: '/me',
          handler: (req) => ({ body: { id: req.context.state.principal?.id } }),
        },
      ],
    });
    const res = await request(app).get('/me').expect(200);
    expect(res.body.id).toBe('set-by-middleware');
  });

  it('gives the handler and the framework middleware the rate-limit state', async () => {
    const seenByFramework: unknown[] = [];
    const app = adapter.build({
      use: [
        rateLimit({
          store: new MemoryStore(),
          policies: [{ name: 'per-ip', limit: 5, windowMs: 60_000, key: byIp() }],
        }),
      ],
      framework: {
        express: [
          (req, _res, next) => {
            seenByFramework.push(expressContextOf(req).state.rateLimit);
            next();
          },
        ],
        koa: [
          async (ctx, next) => {
            seenByFramework.push(koaContextOf(ctx).state.rateLimit);
            await next();
          },
        ],
      },
      routes: [
        {
          method: 'get',
          path: '/limited',
          handler: (req) => ({ body: { rateLimit: req.context.state.rateLimit } }),
        },
      ],
    });
    const res = await request(app).get('/limited').expect(200);
    expect(res.body.rateLimit).toMatchObject({ policy: 'per-ip', limit: 5, remaining: 4 });
    expect(seenByFramework).toEqual([res.body.rateLimit]);
  });

  it('gives the handler the validated parts, typed', async () => {
    const listQuery = validate({
      query: z.object({ limit: z.coerce.number().int().max(100) }),
    });
    const app = adapter.build({
      routes: [
        {
          method: 'get',
          path: '/list',
          use: [listQuery],
          handler: (req) => {
            const { query } = validated(req.context, listQuery);
            const limit: number = query.limit;
            return { body: { limit, type: typeof limit } };
          },
        },
      ],
    });
    const res = await request(app).get('/list?limit=7').expect(200);
    expect(res.body).toEqual({ limit: 7, type: 'number' });
  });

  describe('the debug line naming the module that answered', () => {
    const answering: Middleware = (ctx) => {
      answeredBy(ctx, 'test-module', '429 limit reached');
      ctx.response.status = 429;
      ctx.response.body = 'slow down';
    };

    it('is logged once at debug level when debug is on', async () => {
      const logger = debugLogger();
      const app = adapter.build({
        options: { logger, debug: true },
        routes: [{ method: 'get', path: '/a', use: [answering], handler: () => ({ body: 'x' }) }],
      });
      await request(app).get('/a').expect(429);
      expect(logger.lines).toEqual([
        {
          msg: 'answered by module',
          fields: expect.objectContaining({
            module: 'test-module',
            reason: '429 limit reached',
            status: 429,
            method: 'GET',
            path: '/a',
            traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
          }),
        },
      ]);
    });

    it('names a problem the adapter rendered', async () => {
      const logger = debugLogger();
      const app = adapter.build({
        options: { logger, debug: true },
        routes: [
          {
            method: 'get',
            path: '/p',
            handler: () => {
              throw Object.assign(new Error('nope'), { status: 403, expose: true });
            },
          },
        ],
      });
      await request(app).get('/p').expect(403);
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]?.fields).toMatchObject({ module: 'problem', status: 403 });
    });

    it('is not logged by default, nor for requests the handler answered', async () => {
      const logger = debugLogger();
      const off = adapter.build({
        options: { logger },
        routes: [{ method: 'get', path: '/a', use: [answering], handler: () => ({ body: 'x' }) }],
      });
      await request(off).get('/a').expect(429);
      const on = adapter.build({
        options: { logger, debug: true },
        routes: [{ method: 'get', path: '/h', handler: () => ({ body: 'x' }) }],
      });
      await request(on).get('/h').expect(200);
      expect(logger.lines).toEqual([]);
    });
  });
});

describe.each([
  ['express', expressAdapter as (o: unknown) => unknown],
  ['koa', koaAdapter as (o: unknown) => unknown],
] as const)('%s adapter options', (name, create) => {
  it('rejects a logger without a method the adapter calls, naming it', () => {
    expect(() => create({ logger: { error() {}, warn() {} } })).toThrow(
      new RegExp(`restwell/${name}: option "logger" has no info\\(\\) method`),
    );
    expect(() => create({ logger: { warn() {}, info() {} } })).toThrow(/has no error\(\) method/);
  });

  it('requires debug() of the logger when debug is on', () => {
    expect(() => create({ debug: true, logger: { error() {}, warn() {}, info() {} } })).toThrow(
      /has no debug\(\) method/,
    );
    expect(() =>
      create({ debug: true, logger: { error() {}, warn() {}, info() {}, debug() {} } }),
    ).not.toThrow();
  });

  it('rejects unknown option names with the nearest valid one', () => {
    expect(() => create({ trustproxy: true })).toThrow(
      new RegExp(`restwell/${name}: unknown option "trustproxy". Did you mean "trustProxy"\\?`),
    );
    expect(() => create({ problems: { typebase: 'x' } })).toThrow(/Did you mean "typeBase"\?/);
  });

  it('rejects bad values with the option name, never the value', () => {
    expect(() => create({ principal: 'req.user' })).toThrow(
      /option "principal" must be a function/,
    );
    expect(() => create({ debug: 'yes' })).toThrow(/option "debug" must be a boolean/);
    expect(() => create({ traceHeader: 'bad header' })).toThrow(/option "traceHeader"/);
    expect(() => create({ logger: { secret: 'hunter2' } })).not.toThrow(/hunter2/);
  });
});

describe('contextOf before any restwell mount', () => {
  it('throws a TypeError that says where to mount', async () => {
    const { contextOf: expressContextOf } = await import('../../src/adapters/express/index.js');
    const { contextOf: koaContextOf } = await import('../../src/adapters/koa/index.js');
    expect(() => expressContextOf({})).toThrow(/mount rw\(\.\.\.\) before/);
    expect(() => koaContextOf({})).toThrow(/mount rw\(\.\.\.\) before/);
  });
});
