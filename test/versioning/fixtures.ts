/**
 * The API the versioning suites share: three majors of a users resource.
 *
 * - v1 → v2: `name` is renamed `fullName` (requests forward, responses and the
 *   webhook payload back), and a validation error's pointer follows it.
 * - v2 → v3: `email` becomes `emails: [...]`; the list's `?q=` becomes
 *   `?search=`; the `X-Tenant` header becomes `Tenant`; creating a user
 *   answers 201 where v2 answered 200; a missing user is `user-not-found`
 *   where v2 said `not-found`.
 *
 * Handlers are written against v3 only.
 */
import { z } from 'zod';
import {
  objectsAt,
  renameField,
  transformField,
  versionChange,
} from '../../src/versioning/index.js';

export const fullName = versionChange({
  description: 'Users: `name` is renamed `fullName`.',
  request: [
    {
      // v1's own body: a v1 client's 400 names v1's fields.
      paths: ['POST /users'],
      schema: z.object({ name: z.string().min(1), email: z.email() }),
      migrate: (req) => renameField(req.body, 'name', 'fullName'),
    },
    { paths: ['PATCH /users/:id'], migrate: (req) => renameField(req.body, 'name', 'fullName') },
  ],
  response: [
    {
      paths: ['/users', '/users/:id'],
      migrate: (res) => {
        const users = res.path === '/users' && res.method !== 'POST' ? '/data/*' : '';
        for (const user of objectsAt(res.body, users)) renameField(user, 'fullName', 'name');
      },
    },
    {
      // A validation error points at the field the client sent.
      paths: ['POST /users', 'PATCH /users/:id'],
      errors: 'only',
      migrate: (res) => {
        for (const issue of objectsAt(res.body, '/errors/*')) {
          transformField(issue, 'pointer', (p) => (p === '/fullName' ? '/name' : p));
        }
      },
    },
  ],
  payload: {
    types: ['user.created'],
    migrate: (event) => {
      for (const user of objectsAt(event.body, '/data')) renameField(user, 'fullName', 'name');
    },
  },
});

export const emails = versionChange({
  description:
    'Users: `email` becomes `emails`, a list; `?q=` becomes `?search=`; `X-Tenant` becomes `Tenant`.',
  request: [
    {
      paths: ['POST /users', 'PATCH /users/:id'],
      migrate: (req) => {
        transformField(req.body, 'email', (email) => [email]);
        renameField(req.body, 'email', 'emails');
      },
    },
    {
      paths: ['GET /users'],
      migrate: (req) => {
        const q = req.query.get('q');
        if (q !== null) {
          req.query.delete('q');
          req.query.set('search', q);
        }
      },
    },
    {
      migrate: (req) => {
        const tenant = req.headers.get('x-tenant');
        if (tenant !== undefined) {
          req.headers.delete('x-tenant');
          req.headers.set('tenant', tenant);
        }
      },
    },
  ],
  response: [
    {
      paths: ['/users', '/users/:id'],
      migrate: (res) => {
        const users = res.path === '/users' && res.method !== 'POST' ? '/data/*' : '';
        for (const user of objectsAt(res.body, users)) {
          transformField(user, 'emails', (list) => (Array.isArray(list) ? list[0] : list));
          renameField(user, 'emails', 'email');
        }
      },
    },
    {
      paths: ['POST /users'],
      migrate: (res) => {
        if (res.status === 201) res.status = 200;
      },
    },
    {
      paths: ['/users/:id'],
      errors: 'only',
      migrate: (res) => {
        for (const problem of objectsAt(res.body, '')) {
          if (problem.code === 'user-not-found') problem.code = 'not-found';
        }
      },
    },
  ],
  payload: {
    types: ['user.created'],
    migrate: (event) => {
      for (const user of objectsAt(event.body, '/data')) {
        transformField(user, 'emails', (list) => (Array.isArray(list) ? list[0] : list));
        renameField(user, 'emails', 'email');
      }
    },
  },
});

export const nickname = versionChange({
  description: 'Users have an optional `nickname`.',
  additive: true,
});

/**
 * The handlers' own (v3) body schema: stricter than v1's on the name, so that
 * a v1 body can pass v1's schema and fail v3's, and the error migration shows.
 */
export const CreateUserV3 = z.object({
  fullName: z.string().min(2),
  emails: z.array(z.email()).min(1),
});
