/**
 * The example's API versions, shared by the Express and Koa apps.
 *
 * - Users, by URI prefix: `/v1/users` and `/v2/users`. v2 renamed `name` to
 *   `fullName`; the handlers are written for v2 only, and one declared change
 *   migrates v1 requests forward and v2 responses (errors included) back. v1 is
 *   deprecated, with a sunset date and a link to the migration guide.
 * - Payments, by a dated `Api-Version` header (as Stripe does): 2025-06-01
 *   replaced `createdAt` (ISO 8601) with `created` (epoch seconds). The
 *   handlers write the newest shape; one migration serves 2024-11-20.
 * - One deprecated route, `GET /v1/payments/:id/status`, replaced by the
 *   payment itself, with a sunset date.
 */
import type { Context } from 'restwell';
import {
  defineVersions,
  deprecated,
  objectsAt,
  renameField,
  transformField,
  versionChange,
  versionOf,
  versioning,
} from 'restwell/versioning';

/** A JSON Pointer into a v1 user, pointed at the same member of a v2 user. */
const v2Pointer = (pointer: unknown) =>
  typeof pointer === 'string' && (pointer === '/name' || pointer.startsWith('/name/'))
    ? `/fullName${pointer.slice('/name'.length)}`
    : pointer;
const v1Pointer = (pointer: unknown) =>
  typeof pointer === 'string' && (pointer === '/fullName' || pointer.startsWith('/fullName/'))
    ? `/name${pointer.slice('/fullName'.length)}`
    : pointer;

export const fullName = versionChange({
  description: 'Users: `name` is renamed `fullName`.',
  request: {
    paths: ['POST /users', 'PUT /users/:id', 'PATCH /users/:id'],
    migrate: (req) => {
      if (Array.isArray(req.body)) {
        // A JSON Patch (RFC 6902): its operations point at members by name.
        for (const op of objectsAt(req.body, '/*')) {
          transformField(op, 'path', v2Pointer);
          transformField(op, 'from', v2Pointer);
        }
      } else {
        // A user (POST, PUT) or a merge patch (RFC 7396): the member itself.
        renameField(req.body, 'name', 'fullName');
      }
    },
  },
  response: [
    // Told apart by the patterns, which match as the router does: `/V1/Users` and `/v1/users/`
    // reach the list handler too, and a test of `res.path` against '/users' would miss them.
    {
      paths: ['GET /users'],
      migrate: (res) => {
        for (const user of objectsAt(res.body, '/data/*')) renameField(user, 'fullName', 'name');
      },
    },
    {
      paths: ['POST /users', '/users/:id'],
      migrate: (res) => renameField(res.body, 'fullName', 'name'),
    },
    {
      // A v1 client's validation errors name the member it sent.
      paths: ['POST /users', 'PUT /users/:id', 'PATCH /users/:id'],
      errors: 'only',
      migrate: (res) => {
        for (const issue of objectsAt(res.body, '/errors/*')) {
          transformField(issue, 'pointer', v1Pointer);
        }
      },
    },
  ],
});

export const usersApi = defineVersions({
  versions: [
    {
      version: 'v1',
      deprecation: '2026-11-01',
      sunset: '2027-06-30',
      links: { deprecation: 'https://api.example.com/docs/users-v2' },
    },
    { version: 'v2', changes: [fullName] },
  ],
});

/** Users: `/v1/users/...` and `/v2/users/...`, one router written for v2. */
export const usersVersions = () => versioning(usersApi);

/** Where a request's users live: `/v2/users`, or `/v1/users` for a v1 client. */
export const usersBase = (ctx: Context): string =>
  `/${versionOf(ctx.state)?.name ?? usersApi.newest.name}/users`;

export const createdSeconds = versionChange({
  description: 'Payments: `createdAt` (an ISO 8601 string) becomes `created` (epoch seconds).',
  // The list and one payment told apart by pattern, as for users.
  response: [
    {
      paths: ['GET /payments'],
      migrate: (res) => {
        for (const payment of objectsAt(res.body, '/data/*')) toCreatedAt(payment);
      },
    },
    { paths: ['POST /payments', '/payments/:id'], migrate: (res) => toCreatedAt(res.body) },
  ],
});

/** A payment of 2025-06-01 made one of 2024-11-20: `created` back to `createdAt`. */
function toCreatedAt(payment: unknown): void {
  transformField(payment, 'created', (s) => new Date(Number(s) * 1000).toISOString());
  renameField(payment, 'created', 'createdAt');
}

export const paymentsApi = defineVersions({
  versions: [{ version: '2024-11-20' }, { version: '2025-06-01', changes: [createdSeconds] }],
});

/** Payments: `Api-Version: 2024-11-20` or `2025-06-01` (the default), under /v1. */
export const paymentsVersions = () =>
  versioning(paymentsApi, { strategy: 'header', basePath: '/v1' });

/** A payment of 2025-06-01, as the handlers write it. */
export const toPayment = <P extends { createdAt: string }>({ createdAt, ...rest }: P) => ({
  ...rest,
  created: Math.floor(Date.parse(createdAt) / 1000),
});

/** `GET /v1/payments/:id/status`: deprecated, the payment itself carries its status. */
export const statusRouteDeprecation = () =>
  deprecated({
    deprecation: '2026-01-01',
    sunset: '2027-06-30',
    links: {
      deprecation: 'https://api.example.com/docs/payment-status',
      sunset: 'https://api.example.com/docs/payment-status#sunset',
      successor: (ctx) => `/v1/payments/${ctx.request.params.id}`,
    },
  });
