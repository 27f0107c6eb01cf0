/**
 * The example's API versions (proposed examples/shared/versions.ts), shared
 * by the Express and Koa apps; imports point at the sources here, at
 * `restwell/versioning` in the example.
 *
 * - Users, by URI prefix: `/v1/users` and `/v2/users`. v2 renamed `name` to
 *   `fullName`; the handlers are written for v2, and one migration serves v1.
 *   v1 is deprecated, with a sunset date and a link to the migration guide.
 * - Payments, by a dated `Api-Version` header (as Stripe does): 2025-06-01
 *   replaced `createdAt` (ISO 8601) with `created` (epoch seconds).
 * - One deprecated route, `GET /v1/payments/:id/status`, replaced by the
 *   payment itself, with a sunset date.
 */
import { z } from 'zod';
import type { User } from '../../../examples/shared/domain.js';
import {
  defineVersions,
  deprecated,
  objectsAt,
  renameField,
  transformField,
  versionChange,
  versioning,
} from '../../../src/versioning/index.js';

/** Which users a response holds: a list's items, or the one user. */
const usersIn = (path: string, method: string) =>
  path === '/users' && method !== 'POST' ? '/data/*' : '';

export const fullName = versionChange({
  description: 'Users: `name` is renamed `fullName`.',
  request: {
    paths: ['POST /users', 'PUT /users/:id', 'PATCH /users/:id'],
    migrate: (req) => renameField(req.body, 'name', 'fullName'),
  },
  response: [
    {
      paths: ['/users', '/users/:id'],
      migrate: (res) => {
        for (const user of objectsAt(res.body, usersIn(res.path, res.method))) {
          renameField(user, 'fullName', 'name');
        }
      },
    },
    {
      // A v1 client's validation errors name the field it sent.
      paths: ['POST /users', 'PUT /users/:id', 'PATCH /users/:id'],
      errors: 'only',
      migrate: (res) => {
        for (const issue of objectsAt(res.body, '/errors/*')) {
          transformField(issue, 'pointer', (p) => (p === '/fullName' ? '/name' : p));
        }
      },
    },
  ],
});

export const usersApi = defineVersions({
  versions: [
    {
      version: 'v1',
      deprecation: '2026-01-01',
      sunset: '2026-07-01',
      links: { deprecation: 'https://api.example.com/docs/users-v2' },
    },
    { version: 'v2', changes: [fullName] },
  ],
});

/** The users' URI versions: `/v1/users/...` and `/v2/users/...`. */
export const usersVersions = versioning(usersApi);
/** Where the users router is mounted: under each version's prefix. */
export const usersMounts = usersVersions.prefixes.map((prefix) => `${prefix}/users`);

export const createdSeconds = versionChange({
  description: 'Payments: `createdAt` (an ISO 8601 string) becomes `created` (epoch seconds).',
  response: {
    paths: ['/payments', '/payments/:id'],
    migrate: (res) => {
      const payments = res.path === '/payments' && res.method !== 'POST' ? '/data/*' : '';
      for (const payment of objectsAt(res.body, payments)) {
        transformField(payment, 'created', (s) => new Date(Number(s) * 1000).toISOString());
        renameField(payment, 'created', 'createdAt');
      }
    },
  },
});

export const paymentsApi = defineVersions({
  versions: [{ version: '2024-11-20' }, { version: '2025-06-01', changes: [createdSeconds] }],
});

/** Payments: `Api-Version: 2024-11-20` or `2025-06-01` (the default), under /v1. */
export const paymentsVersions = versioning(paymentsApi, { strategy: 'header', basePath: '/v1' });

/** The v2 user, as the handlers write it. */
export type UserV2 = Omit<User, 'name'> & { fullName: string };
export const toUserV2 = ({ id, email, name, version, createdAt, updatedAt }: User): UserV2 => ({
  id,
  email,
  fullName: name,
  version,
  createdAt,
  updatedAt,
});

/** A payment of 2025-06-01, as the handlers write it. */
export const toPayment = <P extends { createdAt: string }>({ createdAt, ...rest }: P) => ({
  ...rest,
  created: Math.floor(Date.parse(createdAt) / 1000),
});

export const CreateUserV2 = z.object({
  email: z.email(),
  fullName: z.string().min(1).max(200),
});
export const ReplaceUserV2 = CreateUserV2;
export const PatchUserV2 = CreateUserV2.partial().refine((v) => Object.keys(v).length > 0, {
  message: 'At least one of email, fullName is required.',
});

/** From a v2 body to the repository's fields. */
export const userFields = (body: Partial<{ email: string; fullName: string }>) => ({
  ...(body.email === undefined ? {} : { email: body.email }),
  ...(body.fullName === undefined ? {} : { name: body.fullName }),
});

/** `GET /v1/payments/:id/status`: deprecated, the payment itself carries its status. */
export const statusRouteDeprecation = deprecated({
  deprecation: '2026-01-01',
  sunset: '2026-12-31',
  links: {
    deprecation: 'https://api.example.com/docs/payment-status',
    successor: (ctx) => `/v1/payments/${ctx.request.params.id}`,
  },
});
