/**
 * A users API written against v3 only (see fixtures.ts), built on every
 * adapter: under each version's URI prefix for the URI strategy, once for the
 * header and media-type strategies.
 */
import type { RequestListener } from 'node:http';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import { RestwellError, type RestwellErrorCode } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { validate } from '../../src/core/validate.js';
import {
  defineVersions,
  type DefineVersionsOptions,
  type VersioningMiddleware,
  type VersioningOptions,
  versionOf,
  versioning,
} from '../../src/versioning/index.js';
import type { AdapterCase, AppSpec, RouteSpec } from '../helpers/apps.js';
import { CreateUserV3, emails, fullName, nickname } from './fixtures.js';

export interface UserV3 {
  id: string;
  fullName: string;
  emails: string[];
}

export function threeVersions(extra: Partial<DefineVersionsOptions> = {}) {
  return defineVersions({
    versions: [
      { version: 'v1' },
      { version: 'v2', changes: [fullName] },
      { version: 'v3', changes: [emails, nickname] },
    ],
    maxActive: 3,
    ...extra,
  });
}

export interface UsersAppOptions {
  versions: VersioningMiddleware;
  /** Middlewares around versioning, outermost first: `before` outside it, `after` inside it. */
  before?: Middleware[];
  after?: Middleware[];
  /** Route prefixes; the URI strategy's by default, else `['']`. */
  prefixes?: readonly string[];
  principal?: (headers: Record<string, string | string[] | undefined>) => string | undefined;
  extraRoutes?: RouteSpec[];
  logger?: Logger;
}

const USER_NOT_FOUND = 'user-not-found' as RestwellErrorCode;

export function buildUsersApp(adapter: AdapterCase, options: UsersAppOptions): RequestListener {
  const users = new Map<string, UserV3>([
    ['u1', { id: 'u1', fullName: 'Ada Lovelace', emails: ['ada@example.com'] }],
  ]);
  let next = 2;
  const prefixes = options.prefixes ?? (isUri(options.versions) ? options.versions.prefixes : ['']);
  const routes: RouteSpec[] = [];
  for (const prefix of prefixes) {
    routes.push(
      {
        method: 'get',
        path: `${prefix}/users`,
        handler: (req) => ({
          body: {
            data: [...users.values()],
            seen: {
              search: req.context.request.query.get('search'),
              q: req.context.request.query.get('q'),
              tenant: req.headers.tenant ?? null,
              xTenant: req.headers['x-tenant'] ?? null,
              version: versionOf(req.state)?.name ?? null,
              source: versionOf(req.state)?.source ?? null,
            },
          },
        }),
      },
      {
        method: 'post',
        path: `${prefix}/users`,
        use: [validate({ body: CreateUserV3 })],
        handler: (req) => {
          const input = req.body as Omit<UserV3, 'id'>;
          const user = { id: `u${next++}`, ...input };
          users.set(user.id, user);
          return { status: 201, body: user };
        },
      },
      {
        method: 'get',
        path: `${prefix}/users/:id`,
        handler: (req) => {
          const user = users.get(req.params.id ?? '');
          if (user === undefined) {
            throw new RestwellError(USER_NOT_FOUND, 404, 'no such user', {
              detail: `No user ${req.params.id}.`,
            });
          }
          return { body: user, headers: { etag: `"r${user.fullName.length}"` } };
        },
      },
      {
        method: 'patch',
        path: `${prefix}/users/:id`,
        handler: (req) => {
          const user = users.get(req.params.id ?? '');
          if (user === undefined) throw new RestwellError(USER_NOT_FOUND, 404, 'no such user');
          Object.assign(user, req.body);
          return { body: user };
        },
      },
      {
        method: 'get',
        path: `${prefix}/stream`,
        handler: () => ({
          headers: { 'content-type': 'application/json' },
          chunks: ['{"fullName":', '"streamed","emails":["s@example.com"]}'],
        }),
      },
      {
        method: 'get',
        path: `${prefix}/text`,
        handler: () => ({ headers: { 'content-type': 'text/plain' }, body: 'fullName emails' }),
      },
    );
  }
  const spec: AppSpec = {
    use: [...(options.before ?? []), jsonBody(), options.versions, ...(options.after ?? [])],
    routes: [...routes, ...(options.extraRoutes ?? [])],
    ...(options.logger === undefined ? {} : { options: { logger: options.logger } }),
    ...(options.principal === undefined
      ? {}
      : {
          before: (state, headers) => {
            const id = options.principal?.(headers);
            if (id !== undefined) state.principal = { id };
          },
        }),
  };
  return adapter.build(spec);
}

const URI = new WeakSet<VersioningMiddleware>();
function isUri(versions: VersioningMiddleware): boolean {
  return URI.has(versions);
}

/** A versioning middleware for the three versions; remembers whether it routes by URI. */
export function usersVersioning(
  options: VersioningOptions = {},
  define: Partial<DefineVersionsOptions> = {},
): VersioningMiddleware {
  const middleware = versioning(threeVersions(define), options);
  if ((options.strategy ?? 'uri') === 'uri') URI.add(middleware);
  return middleware;
}
