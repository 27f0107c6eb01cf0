/**
 * The example payments API on Express, wired with restwell.
 *
 * Every error, including unknown routes (404) and unsupported methods (405),
 * is an RFC 9457 problem with a trace id.
 */
import express from 'express';
import {
  jsonBody,
  type Logger,
  type Middleware,
  NotFoundError,
  type Store,
  validate,
} from 'restwell';
import { contextOf, expressAdapter } from 'restwell/express';
import { compression } from 'restwell/compression';
import { conditional } from 'restwell/conditional';
import { idempotency } from 'restwell/idempotency';
import { hsts, httpsOnly, requestHygiene, securityHeaders } from 'restwell/security';
import { generateWebhookSecret, webhookOf } from 'restwell/webhooks';
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
import { Repository } from '../shared/domain.js';
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
}: ExampleOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // restwell/conditional makes the ETags (strong, one per encoding); Express's weak one would win otherwise.
  app.set('etag', false);
  const rw = expressAdapter({ trustProxy: 'loopback', ...(logger ? { logger } : {}) });
  const auth = createAuth(credentials);

  // Global: trace ids, problem details, compression (outside conditional, so ETags name the
  // identity body), rate limits (before any body is read), JSON bodies within a limit, and
  // ETags with 304s on every GET.
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
  const versioned = rw(userValidators(repo));
  const pages = createPaginators(cursorSecret);
  const userExists = (id: string) => repo.users.has(id);
  const userOr404 = (id: string) => {
    const user = repo.users.get(id);
    if (user === undefined) throw new NotFoundError(`No user ${id}.`);
    return user;
  };

  // Webhook endpoints, their deliveries, dead letters and replays, for admins.
  app.use(rw(outgoing.admin));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Users: one router, written for v2 (`fullName`), under /v1/users and /v2/users. v1 clients
  // send and get `name`: one declared change migrates their requests and responses.
  const users = express.Router();
  users
    .route('/')
    // Cursor pages: ?limit=, ?sort=-createdAt,name (allowlisted), ?cursor= from the Link header.
    .get(rw(pages.users), (req, res) => {
      const ctx = contextOf(req);
      const base = usersBase(ctx);
      res.json(pageOf(pages.users, ctx, repo.listUsers(), (u) => userRepresentation(u, base)));
    })
    .post(rw(validate({ body: CreateUser })), (req, res) => {
      const base = usersBase(contextOf(req));
      const user = repo.createUser(userFields(req.body));
      res.status(201).location(`${base}/${user.id}`).json(userRepresentation(user, base));
    })
    .all(rw.methodNotAllowed());

  users
    .route('/:id')
    // Every method: Accept-Patch on each response (OPTIONS included), 415 for another PATCH format.
    .all(rw(userPatchTypes()))
    // Versioned: 304 on a matching If-None-Match, 412 on a stale If-Match, before the handler runs.
    .get(versioned, (req, res) => {
      res.json(userRepresentation(userOr404(req.params.id), usersBase(contextOf(req))));
    })
    // A full replace: a field the body leaves out is reset; id, version and the times are the server's.
    .put(versioned, rw(validate({ body: ReplaceUser })), (req, res) => {
      const current = userOr404(req.params.id);
      const user = repo.updateUser(req.params.id, replacedUser(current, req.body))!;
      res.set('ETag', userETag(user)).json(userRepresentation(user, usersBase(contextOf(req))));
    })
    // A merge patch (null removes, untouched members stay) or a JSON Patch, by Content-Type.
    .patch(versioned, (req, res) => {
      const ctx = contextOf(req);
      const base = usersBase(ctx);
      const user = repo.updateUser(
        req.params.id,
        patchedUser(ctx, userOr404(req.params.id), base),
      )!;
      res.set('ETag', userETag(user)).json(userRepresentation(user, base));
    })
    .delete(versioned, (req, res) => {
      if (!repo.deleteUser(req.params.id)) throw new NotFoundError(`No user ${req.params.id}.`);
      res.status(204).end();
    })
    .all(rw.methodNotAllowed());
  const usersVersioning = usersVersions();
  app.use(
    usersVersioning.prefixes.map((prefix) => `${prefix}/users`),
    rw(usersVersioning),
    users,
  );

  // Payments are versioned by a dated Api-Version header; the handlers write the newest shape.
  app.use('/v1/payments', rw(paymentsVersions()));
  app
    .route('/v1/payments')
    // Newest first; ?userId= filters, ?since= and ?until= bound a time window.
    .get(rw(pages.payments), (req, res) => {
      const ctx = contextOf(req);
      const payments = repo.listPayments(oneFilter(ctx, 'userId'));
      res.json(
        pageOf(pages.payments, ctx, payments, (p) =>
          toPayment(paymentRepresentation(p, userExists)),
        ),
      );
    })
    // A retried POST must never charge twice: the key is required, and a retry replays the first answer.
    .post(
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
      async (req, res) => {
        const payment = repo.createPayment(req.body);
        // Queued, never sent from here; with a database, write the events in the payment's own
        // transaction instead (writeOutboxEvent), so that they exist if and only if it commits.
        await outgoing.paymentMade(payment);
        res
          .status(201)
          .location(`/v1/payments/${payment.id}`)
          .json(toPayment(paymentRepresentation(payment, userExists)));
      },
    )
    .all(rw.methodNotAllowed());

  app
    .route('/v1/payments/:id')
    .get((req, res) => {
      const payment = repo.payments.get(req.params.id);
      if (payment === undefined) throw new NotFoundError(`No payment ${req.params.id}.`);
      res.json(toPayment(paymentRepresentation(payment, userExists)));
    })
    .all(rw.methodNotAllowed());

  // Deprecated (Deprecation, Sunset, a successor-version link): the payment itself carries its status.
  app
    .route('/v1/payments/:id/status')
    // Every answer says so, a 405 included.
    .all(rw(statusRouteDeprecation()))
    .get((req, res) => {
      const payment = repo.payments.get(req.params.id);
      if (payment === undefined) throw new NotFoundError(`No payment ${req.params.id}.`);
      res.json({ status: payment.status });
    })
    .all(rw.methodNotAllowed());

  // Webhooks from the payment provider: authenticated by their signature, not by an API key.
  // The global jsonBody() keeps the exact bytes, which the receiver verifies.
  const webhooks = createWebhooks(records, webhookSecret);
  app.post('/webhooks/restwell', rw(webhooks.receiver), async (req, res) => {
    res.json(await webhooks.apply(webhookOf(contextOf(req))));
  });

  app.use(rw.notFound());
  app.use(rw.errorHandler());
  return app;
}
