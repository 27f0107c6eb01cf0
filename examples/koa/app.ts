/**
 * The example payments API on Koa, wired with restwell. Same routes and
 * behaviour as the Express example.
 */
import Router from '@koa/router';
import Koa from 'koa';
import {
  jsonBody,
  type Logger,
  type Middleware,
  NotFoundError,
  type Store,
  validate,
} from 'restwell';
import { compression } from 'restwell/compression';
import { conditional } from 'restwell/conditional';
import { idempotency } from 'restwell/idempotency';
import { hsts, httpsOnly, requestHygiene, securityHeaders } from 'restwell/security';
import { generateWebhookSecret, webhookOf } from 'restwell/webhooks';
import { contextOf, koaAdapter } from 'restwell/koa';
import { createAuth, type ExampleCredentials, principalScope } from '../shared/auth.js';
import { exampleCors } from '../shared/cors.js';
import { deliveryOf, type ExampleDelivery, localDelivery } from '../shared/delivery.js';
import { userETag, userValidators } from '../shared/caching.js';
import { apiRateLimit, type ExampleLimits, unverifiedRateLimit } from '../shared/rate-limits.js';
import { createPaginators, oneFilter, pageOf } from '../shared/pagination.js';
import {
  paymentsVersions,
  statusRouteDeprecation,
  toPayment,
  usersBase,
  usersVersions,
} from '../shared/versions.js';
import { createWebhooks } from '../shared/webhooks.js';
import { Repository, type User } from '../shared/domain.js';
import {
  patchedUser,
  paymentRepresentation,
  replacedUser,
  userFields,
  userPatchTypes,
  userRepresentation,
} from '../shared/representation.js';
import { CreatePayment, CreateUser, ReplaceUser } from '../shared/schemas.js';

export interface ExampleOptions {
  /** Rate-limit counters: a cache, which may evict (a forgotten counter starts afresh). */
  counters: Store;
  /** Idempotency records: a ledger, which never drops a live key. */
  records: Store;
  repo?: Repository;
  logger?: Logger;
  /** Rate limits; the defaults suit a demo. */
  limits?: ExampleLimits;
  /** Seals list cursors; every process of one API needs the same (see shared/pagination.ts). */
  cursorSecret?: string;
  /** API keys and the JWT secret every /v1 request authenticates with (see shared/auth.ts). */
  credentials: ExampleCredentials;
  /** Records every write after its response (see shared/audit.ts); none when unset. */
  auditLog?: Middleware;
  /** Browser origins allowed to call the API (CORS). */
  corsOrigins?: readonly string[];
  /** When set, plain HTTP is refused and GET/HEAD are redirected to https://<httpsHost>. */
  httpsHost?: string;
  /**
   * Outgoing webhooks: the engine payments emit events to, and its admin API (see
   * shared/delivery.ts). A memory engine whose worker is not started when unset.
   */
  outgoing?: ExampleDelivery;
  /** The secret webhooks to POST /webhooks/restwell are signed with; one is drawn when unset. */
  webhookSecret?: string;
}

export function createApp({
  counters,
  records,
  repo = new Repository(),
  logger,
  limits,
  cursorSecret,
  credentials,
  auditLog,
  corsOrigins = ['http://localhost:5173'],
  httpsHost,
  webhookSecret = generateWebhookSecret(),
  outgoing = deliveryOf(localDelivery()),
}: ExampleOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  const rw = koaAdapter({ trustProxy: 'loopback', ...(logger ? { logger } : {}) });
  const auth = createAuth(credentials);
  const router = new Router();

  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  const pages = createPaginators(cursorSecret);
  const userExists = (id: string) => repo.users.has(id);
  // Users: one set of routes, written for v2 (`fullName`), under /v1/users and /v2/users. v1
  // clients send and get `name`: one declared change migrates their requests and responses.
  const users = new Router();
  // Cursor pages: ?limit=, ?sort=-createdAt,name (allowlisted), ?cursor= from the Link header.
  users.get('/', rw(pages.users), (ctx) => {
    const context = contextOf(ctx);
    const base = usersBase(context);
    ctx.body = pageOf(pages.users, context, repo.listUsers(), (u) => userRepresentation(u, base));
  });
  users.post('/', rw(validate({ body: CreateUser })), (ctx) => {
    const base = usersBase(contextOf(ctx));
    const user = repo.createUser(userFields(ctx.request.body as Parameters<typeof userFields>[0]));
    ctx.status = 201;
    ctx.set('Location', `${base}/${user.id}`);
    ctx.body = userRepresentation(user, base);
  });

  const userOr404 = (id: string): User => {
    const user = repo.users.get(id);
    if (user === undefined) throw new NotFoundError(`No user ${id}.`);
    return user;
  };
  // Versioned: 304 on a matching If-None-Match, 412 on a stale If-Match, before the handler runs.
  const versioned = rw(userValidators(repo));
  // Every routed method, and OPTIONS through a route of its own (allowedMethods() still answers it):
  // Accept-Patch on each response, 415 for another PATCH format.
  const patchTypes = rw(userPatchTypes());
  users.use('/:id', patchTypes);
  users.options('/:id', patchTypes);
  users.get('/:id', versioned, (ctx) => {
    ctx.body = userRepresentation(userOr404(ctx.params.id!), usersBase(contextOf(ctx)));
  });
  // A full replace: a field the body leaves out is reset; id, version and the times are the server's.
  users.put('/:id', versioned, rw(validate({ body: ReplaceUser })), (ctx) => {
    const id = ctx.params.id!;
    const user = repo.updateUser(id, replacedUser(userOr404(id), ctx.request.body))!;
    ctx.set('ETag', userETag(user));
    ctx.body = userRepresentation(user, usersBase(contextOf(ctx)));
  });
  // A merge patch (null removes, untouched members stay) or a JSON Patch, by Content-Type.
  users.patch('/:id', versioned, (ctx) => {
    const id = ctx.params.id!;
    const context = contextOf(ctx);
    const base = usersBase(context);
    const user = repo.updateUser(id, patchedUser(context, userOr404(id), base))!;
    ctx.set('ETag', userETag(user));
    ctx.body = userRepresentation(user, base);
  });
  users.delete('/:id', versioned, (ctx) => {
    if (!repo.deleteUser(ctx.params.id!)) throw new NotFoundError(`No user ${ctx.params.id}.`);
    ctx.status = 204;
  });
  const usersVersioning = usersVersions();
  const usersMounts = usersVersioning.prefixes.map((prefix) => `${prefix}/users`);
  router.use(usersMounts, rw(usersVersioning));
  router.use(usersMounts, users.routes(), users.allowedMethods());

  // Payments are versioned by a dated Api-Version header; the handlers write the newest shape.
  router.use('/v1/payments', rw(paymentsVersions()));
  // Newest first; ?userId= filters, ?since= and ?until= bound a time window.
  router.get('/v1/payments', rw(pages.payments), (ctx) => {
    const context = contextOf(ctx);
    const payments = repo.listPayments(oneFilter(context, 'userId'));
    ctx.body = pageOf(pages.payments, context, payments, (p) =>
      toPayment(paymentRepresentation(p, userExists)),
    );
  });
  // A retried POST must never charge twice: the key is required, and a retry replays the first answer.
  router.post(
    '/v1/payments',
    rw(
      idempotency({
        store: records,
        required: true,
        // Keys are scoped to the principal, as its verifier named it: one client's key never
        // replays another's answer, not even a token's whose subject reads like a key's.
        scope: principalScope,
        // A 5xx once the payment may have been made (its events failed to queue) is kept and
        // replayed: a retry with the same key must never charge again; a new key tries afresh.
        onServerError: 'record',
      }),
      validate({ body: CreatePayment }),
    ),
    async (ctx) => {
      const payment = repo.createPayment(
        ctx.request.body as Parameters<Repository['createPayment']>[0],
      );
      // Queued, never sent from here; with a database, write the events in the payment's own
      // transaction instead (writeOutboxEvent), so that they exist if and only if it commits.
      await outgoing.paymentMade(payment);
      ctx.status = 201;
      ctx.set('Location', `/v1/payments/${payment.id}`);
      ctx.body = toPayment(paymentRepresentation(payment, userExists));
    },
  );
  router.get('/v1/payments/:id', (ctx) => {
    const payment = repo.payments.get(ctx.params.id!);
    if (payment === undefined) throw new NotFoundError(`No payment ${ctx.params.id}.`);
    ctx.body = toPayment(paymentRepresentation(payment, userExists));
  });

  // Deprecated (Deprecation, Sunset, a successor-version link): the payment itself carries its status.
  const statusDeprecation = rw(statusRouteDeprecation());
  router.get('/v1/payments/:id/status', statusDeprecation, (ctx) => {
    const payment = repo.payments.get(ctx.params.id!);
    if (payment === undefined) throw new NotFoundError(`No payment ${ctx.params.id}.`);
    ctx.body = { status: payment.status };
  });
  // Every answer says so, a 405 included: the route answers the other methods itself.
  router.all('/v1/payments/:id/status', statusDeprecation, rw.methodNotAllowed());

  // Webhooks from the payment provider: authenticated by their signature, not by an API key.
  // The global jsonBody() keeps the exact bytes, which the receiver verifies.
  const webhooks = createWebhooks(records, webhookSecret);
  router.post('/webhooks/restwell', rw(webhooks.receiver), async (ctx) => {
    ctx.body = await webhooks.apply(webhookOf(contextOf(ctx)));
  });

  // Global and first: trace ids, problem details for every error, rate limits (before any body is
  // read), JSON bodies within a limit.
  // Compression sits outside conditional, so that ETags name the identity body; every GET gets
  // an ETag and its 304.
  app.use(
    rw(
      // First, so that writes refused further in (429, 413, 415) are on the record too.
      ...(auditLog === undefined ? [] : [auditLog]),
      // Plain HTTP refused (GET/HEAD redirected to httpsHost) once the API is served over TLS.
      ...(httpsHost === undefined
        ? []
        : [
            httpsOnly({
              redirect: { host: httpsHost },
              skip: (ctx) => ctx.request.path === '/health',
            }),
          ]),
      // Headers before next(): every answer carries them, preflights and problems included.
      hsts(),
      securityHeaders(),
      // Before anything that refuses a request, so browser scripts can read those problems too.
      exampleCors(corsOrigins),
      // Malformed targets and headers refused before anything downstream reads them.
      requestHygiene(),
      // Every request counted per IP before its credential is checked, so that a flood of forged
      // keys or tokens (each answered 401 below) is limited too; a counter is all it costs.
      unverifiedRateLimit(counters, limits),
      // Who is calling (an API key or a JWT), then the route table, failing closed: before the
      // other limits and every body read, so an unauthenticated request costs nothing further.
      auth.authenticate,
      auth.authorization,
      compression(),
      apiRateLimit(counters, limits),
      jsonBody({ limit: 64 * 1024 }),
      conditional(),
    ),
  );
  // Webhook endpoints, their deliveries, dead letters and replays, for admins.
  app.use(rw(outgoing.admin));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
