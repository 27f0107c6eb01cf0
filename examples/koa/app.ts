/**
 * The example payments API on Koa, wired with restwell. Same routes and
 * behaviour as the Express example.
 */
import Router from '@koa/router';
import Koa from 'koa';
import { jsonBody, type Logger, NotFoundError, type Store, validate } from 'restwell';
import { idempotency } from 'restwell/idempotency';
import { koaAdapter } from 'restwell/koa';
import { apiRateLimit, type ExampleLimits } from '../shared/rate-limits.js';
import { Repository, type User } from '../shared/domain.js';
import { CreatePayment, CreateUser, PatchUser, ReplaceUser } from '../shared/schemas.js';

export interface ExampleOptions {
  store: Store;
  repo?: Repository;
  logger?: Logger;
  /** Rate limits; the defaults suit a demo. */
  limits?: ExampleLimits;
}

export function createApp({ store, repo = new Repository(), logger, limits }: ExampleOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  const rw = koaAdapter({ trustProxy: 'loopback', ...(logger ? { logger } : {}) });
  const router = new Router();

  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/v1/users', (ctx) => {
    ctx.body = { data: repo.listUsers() };
  });
  router.post('/v1/users', rw(validate({ body: CreateUser })), (ctx) => {
    const user = repo.createUser(ctx.request.body as Pick<User, 'email' | 'name'>);
    ctx.status = 201;
    ctx.set('Location', `/v1/users/${user.id}`);
    ctx.body = user;
  });

  const userOr404 = (id: string): User => {
    const user = repo.users.get(id);
    if (user === undefined) throw new NotFoundError(`No user ${id}.`);
    return user;
  };
  router.get('/v1/users/:id', (ctx) => {
    ctx.body = userOr404(ctx.params.id!);
  });
  router.put('/v1/users/:id', rw(validate({ body: ReplaceUser })), (ctx) => {
    userOr404(ctx.params.id!);
    ctx.body = repo.updateUser(ctx.params.id!, ctx.request.body as Partial<User>);
  });
  router.patch('/v1/users/:id', rw(validate({ body: PatchUser })), (ctx) => {
    userOr404(ctx.params.id!);
    ctx.body = repo.updateUser(ctx.params.id!, ctx.request.body as Partial<User>);
  });
  router.delete('/v1/users/:id', (ctx) => {
    if (!repo.deleteUser(ctx.params.id!)) throw new NotFoundError(`No user ${ctx.params.id}.`);
    ctx.status = 204;
  });

  router.get('/v1/payments', (ctx) => {
    ctx.body = { data: repo.listPayments() };
  });
  // A retried POST must never charge twice: the key is required, and a retry replays the first answer.
  router.post(
    '/v1/payments',
    rw(idempotency({ store, required: true }), validate({ body: CreatePayment })),
    (ctx) => {
      const payment = repo.createPayment(
        ctx.request.body as Parameters<Repository['createPayment']>[0],
      );
      ctx.status = 201;
      ctx.set('Location', `/v1/payments/${payment.id}`);
      ctx.body = payment;
    },
  );
  router.get('/v1/payments/:id', (ctx) => {
    const payment = repo.payments.get(ctx.params.id!);
    if (payment === undefined) throw new NotFoundError(`No payment ${ctx.params.id}.`);
    ctx.body = payment;
  });

  // Global and first: trace ids, problem details for every error, rate limits (before any body is
  // read), JSON bodies within a limit.
  app.use(rw(apiRateLimit(store, limits), jsonBody({ limit: 64 * 1024 })));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
