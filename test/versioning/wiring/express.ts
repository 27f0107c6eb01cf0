/**
 * The Express example's versioned routes (proposed additions to
 * examples/express/app.ts), on the example's own domain.
 */
import express from 'express';
import { compression } from '../../../src/compression/index.js';
import { conditional } from '../../../src/conditional/index.js';
import { jsonBody } from '../../../src/core/body.js';
import { NotFoundError } from '../../../src/core/errors.js';
import type { Logger } from '../../../src/core/logger.js';
import { validate } from '../../../src/core/validate.js';
import { expressAdapter } from '../../../src/adapters/express/index.js';
import { userValidators } from '../../../examples/shared/caching.js';
import { Repository } from '../../../examples/shared/domain.js';
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
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const rw = expressAdapter({ trustProxy: 'loopback', logger });
  // Versioning sits inside compression (it reads the identity body) and after jsonBody (it
  // migrates the parsed body); each API's versioning is mounted on its own routes, below.
  app.use(rw(compression(), jsonBody({ limit: 64 * 1024 }), conditional()));

  // Users: one router, written for v2, under /v1/users and /v2/users.
  const users = express.Router();
  const versioned = rw(userValidators(repo));
  users
    .route('/')
    .get((_req, res) => {
      res.json({ data: repo.listUsers().map(toUserV2) });
    })
    .post(rw(validate({ body: CreateUserV2 })), (req, res) => {
      const user = repo.createUser(userFields(req.body) as { email: string; name: string });
      res.status(201).location(`${req.baseUrl}/${user.id}`).json(toUserV2(user));
    })
    .all(rw.methodNotAllowed());
  users
    .route('/:id')
    .get(versioned, (req, res) => {
      const user = repo.users.get(req.params.id);
      if (user === undefined) throw new NotFoundError(`No user ${req.params.id}.`);
      res.json(toUserV2(user));
    })
    .put(versioned, rw(validate({ body: ReplaceUserV2 })), (req, res) => {
      const user = repo.updateUser(req.params.id, userFields(req.body));
      if (user === undefined) throw new NotFoundError(`No user ${req.params.id}.`);
      res.set('ETag', `"v${user.version}"`).json(toUserV2(user));
    })
    .patch(versioned, rw(validate({ body: PatchUserV2 })), (req, res) => {
      const user = repo.updateUser(req.params.id, userFields(req.body));
      if (user === undefined) throw new NotFoundError(`No user ${req.params.id}.`);
      res.set('ETag', `"v${user.version}"`).json(toUserV2(user));
    })
    .all(rw.methodNotAllowed());
  app.use(usersMounts, rw(usersVersions), users);

  // Payments: dated versions in the Api-Version header.
  app.use('/v1/payments', rw(paymentsVersions));
  app
    .route('/v1/payments')
    .get((_req, res) => {
      res.json({ data: repo.listPayments().map(toPayment) });
    })
    .post(rw(validate({ body: CreatePayment })), (req, res) => {
      const payment = repo.createPayment(req.body);
      res.status(201).location(`/v1/payments/${payment.id}`).json(toPayment(payment));
    })
    .all(rw.methodNotAllowed());
  app.get('/v1/payments/:id', (req, res) => {
    const payment = repo.payments.get(req.params.id);
    if (payment === undefined) throw new NotFoundError(`No payment ${req.params.id}.`);
    res.json(toPayment(payment));
  });
  // Deprecated: the payment itself carries its status.
  app.get('/v1/payments/:id/status', rw(statusRouteDeprecation), (req, res) => {
    const payment = repo.payments.get(req.params.id);
    if (payment === undefined) throw new NotFoundError(`No payment ${req.params.id}.`);
    res.json({ status: payment.status });
  });

  app.use(rw.notFound());
  app.use(rw.errorHandler());
  return app;
}
