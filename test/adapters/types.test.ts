/**
 * Types reach handlers: a mount with a body validator types the framework's
 * request body after it, per route, and `validated()` types every part. These
 * assertions are checked by the compiler (`tsc --noEmit` covers test/).
 */
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { contextOf, expressAdapter, validated } from '../../src/adapters/express/index.js';
import { contextOf as koaContextOf, koaAdapter } from '../../src/adapters/koa/index.js';
import type { Principal } from '../../src/core/context.js';
import { jsonBody } from '../../src/core/body.js';
import { validate } from '../../src/core/validate.js';

const Body = z.object({ email: z.email(), age: z.coerce.number() });
const Query = z.object({ limit: z.coerce.number() });

describe('the principal option', () => {
  it("reads passport's req.user and Koa's ctx.state.user as the docs show", () => {
    expressAdapter({
      principal: (req) =>
        req.user?.id !== undefined ? { id: req.user.id, type: 'user' } : undefined,
    });
    koaAdapter({ principal: (ctx) => ctx.state.user as Principal | undefined });
  });
});

describe('validated types', () => {
  it('type req.body on Express after a body validator, and validated() parts', () => {
    const app = express();
    const rw = expressAdapter();
    const v = validate({ body: Body, query: Query });
    app.post('/x', rw(jsonBody(), v), (req, res) => {
      expectTypeOf(req.body).toEqualTypeOf<{ email: string; age: number }>();
      const parts = validated(contextOf(req), v);
      expectTypeOf(parts.query).toEqualTypeOf<{ limit: number }>();
      expectTypeOf(parts.body).toEqualTypeOf<{ email: string; age: number }>();
      expectTypeOf(contextOf(req).state.principal).toEqualTypeOf<Principal | undefined>();
      res.end();
    });
  });

  it('leave req.body to Express without a body validator', () => {
    const app = express();
    const rw = expressAdapter();
    app.get('/x', rw(validate({ query: Query })), (req, res) => {
      // Express's own default, untouched.
      expectTypeOf(req.body).toBeAny();
      res.end();
    });
  });

  it('type ctx.request.body on Koa after a body validator', () => {
    const router = new Router();
    const rw = koaAdapter();
    router.post('/x', rw(validate({ body: Body })), (ctx) => {
      expectTypeOf(ctx.request.body).toEqualTypeOf<{ email: string; age: number }>();
      expectTypeOf(koaContextOf(ctx).traceId).toBeString();
    });
    new Koa().use(rw(jsonBody())).use(router.routes());
  });
});
