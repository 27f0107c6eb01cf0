/**
 * The example's validators for users, shared by the Express and Koa apps: the
 * row version is the strong ETag (`"v3"`) and `updatedAt` the Last-Modified.
 * They are loaded before the handler runs, so a GET with a matching
 * If-None-Match answers 304 without building the body, and a PUT, PATCH or
 * DELETE with a stale If-Match answers 412 without writing anything. A
 * conditional request for a user that does not exist gets the handler's 404
 * (RFC 9110 §13.2.1): users are created by POST /v1/users, never by PUT, so
 * no method here creates its target.
 */
import type { Middleware } from 'restwell';
import { conditional } from 'restwell/conditional';
import type { Repository, User } from './domain.js';

export const userETag = (user: User): string => `"v${user.version}"`;

export function userValidators(repo: Repository): Middleware {
  return conditional({
    load: (ctx) => {
      const user = repo.users.get(ctx.request.params.id ?? '');
      return user && { etag: userETag(user), lastModified: new Date(user.updatedAt) };
    },
    // PUT replaces an existing user and answers 404 otherwise: it creates nothing.
    creates: [],
    // User data: caches may keep it but must revalidate every time.
    cacheControl: 'private',
  });
}
