/**
 * The Koa example's versioned routes (proposed additions to
 * examples/koa/app.ts), on the example's own domain.
 */
import Router from '@koa/router';
import Koa from 'koa';
import { compression } from '../../../src/compression/index.js';
import { conditional } from '../../../src/conditional/index.js';
import { jsonBody } from '../../../src/core/body.js';
import { NotFoundError } from '../../../src/core/errors.js';
import type { Logger } from '../../../src/core/logger.js';
import { validate } from '../../../src/core/validate.js';
import { koaAdapter } from '../../../src/adapters/koa/index.js';
import { userValidators } from '../../../examples/shared/caching.js';
import { Repository, type User } from '../../../examples/shared/domain.js';
import { CreatePayment } from '../../../examples/shared/schemas.js';
import {
  CreateUserV2,
  PatchUserV2,
  paymentsVersions,
  ReplaceUserV2,
  statusRouteDeprecation,
  toPayment,
  toUserV2,
  userFields,
  usersMounts,
  usersVersions,
} from './versions.js';

export function createApp({
  logger,
  repo = new Repository(),
}: {
  logger: Logger;
  repo?: Repository;
}) {
  const app = new Koa();
  app.proxy = false;
  const rw = koaAdapter({ trustProxy: 'loopback', logger });
  const router = new Router();

  // Users: one router, written for v2, under /v1/users and /v2/users.
  const users = new Router();
  const userOr404 = (id: string): User => {
    const user = repo.users.get(id);
    if (user === undefined) throw new NotFoundError(`No user ${id}.`);
    return user;
  };
  const versioned = rw(userValidators(repo));
  users.get('/', (ctx) => {
    ctx.body = { data: repo.listUsers().map(toUserV2) };
  });
  users.post('/', rw(validate({ body: CreateUserV2 })), (ctx) => {
    const user = repo.createUser(userFields(ctx.request.body) as { email: string; name: string });
    ctx.status = 201;
    ctx.set('Location', `${ctx.path.replace(/\/$/, '')}/${user.id}`);
    ctx.body = toUserV2(user);
  });
  users.get('/:id', versioned, (ctx) => {
    ctx.body = toUserV2(userOr404(ctx.params.id!));
  });
  const update = (id: string, body: Parameters<typeof userFields>[0]) => {
    userOr404(id);
    return repo.updateUser(id, userFields(body))!;
  };
  users.put('/:id', versioned, rw(validate({ body: ReplaceUserV2 })), (ctx) => {
    const user = update(ctx.params.id!, ctx.request.body);
    ctx.set('ETag', `"v${user.version}"`);
    ctx.body = toUserV2(user);
  });
  users.patch('/:id', versioned, rw(validate({ body: PatchUserV2 })), (ctx) => {
    const user = update(ctx.params.id!, ctx.request.body);
    ctx.set('ETag', `"v${user.version}"`);
    ctx.body = toUserV2(user);
  });
  router.use(usersMounts, rw(usersVersions));
  router.use(usersMounts, users.routes(), users.allowedMethods());

  // Payments: dated versions in the Api-Version header.
  router.use('/v1/payments', rw(paymentsVersions));
  router.get('/v1/payments', (ctx) => {
    ctx.body = { data: repo.listPayments().map(toPayment) };
  });
  router.post('/v1/payments', rw(validate({ body: CreatePayment })), (ctx) => {
    const payment = repo.createPayment(ctx.request.body);
    ctx.status = 201;
    ctx.set('Location', `/v1/payments/${payment.id}`);
    ctx.body = toPayment(payment);
  });
  router.get('/v1/payments/:id', (ctx) => {
    const payment = repo.payments.get(ctx.params.id!);
    if (payment === undefined) throw new NotFoundError(`No payment ${ctx.params.id}.`);
    ctx.body = toPayment(payment);
  });
  // Deprecated: the payment itself carries its status.
  router.get('/v1/payments/:id/status', rw(statusRouteDeprecation), (ctx) => {
    const payment = repo.payments.get(ctx.params.id!);
    if (payment === undefined) throw new NotFoundError(`No payment ${ctx.params.id}.`);
    ctx.body = { status: payment.status };
  });

  app.use(rw(compression(), jsonBody({ limit: 64 * 1024 }), conditional()));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
