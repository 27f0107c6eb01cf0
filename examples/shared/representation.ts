/**
 * How the example's users and payments are represented and changed, shared by
 * the Express and Koa apps: PUT replaces a user as stated (a field the body
 * leaves out is reset, never kept by accident), PATCH takes a merge patch or a
 * JSON Patch and cannot touch what the server owns, and every representation
 * carries `_links` to itself and to what the client may do next.
 */
import { type Context, RestwellError } from 'restwell';
import {
  acceptPatch,
  applyPatch,
  formatJsonPointer,
  href,
  JSON_PATCH_MEDIA_TYPE,
  links,
  MERGE_PATCH_MEDIA_TYPE,
  patchedRepresentation,
  replacementShape,
  replaceRepresentation,
} from 'restwell/representation';
import type { Payment, User } from './domain.js';
import { CreateUser } from './schemas.js';

/** PATCH /v1/users/:id takes either format; Accept-Patch says so on every response of the route. */
export const userPatchTypes = () =>
  acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE] });

/** A user as the handlers write it: the newest version's shape (`fullName`, from v2 on). */
export type UserRepresentation = Omit<User, 'name'> & { fullName: string };

/** The repository's fields for a user of the newest shape. */
export type UserFields = Pick<User, 'email' | 'name'>;

/** What a PUT replaces (email, fullName) and what the server owns (id, version, the times). */
export const userShape = replacementShape({
  fields: { email: null, fullName: null },
  readOnly: ['id', 'version', 'createdAt', 'updatedAt'],
});

/** A body without the `_links` a client read with the user and sends back unchanged. */
function withoutLinks(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const { _links: _ignored, ...rest } = body as Record<string, unknown>;
  return rest;
}

/** The user a PUT body describes: read-only members unchanged, unknown members refused (400). */
export function replacedUser(user: User, body: unknown): UserFields {
  const next = replaceRepresentation(newestShape(user), withoutLinks(body), userShape);
  return { email: next.email, name: next.fullName };
}

/** What a PATCH may change; the server's members and the links stay as the client read them. */
const userPatchShape = replacementShape({
  fields: { email: null, fullName: null },
  readOnly: ['id', 'version', 'createdAt', 'updatedAt', '_links'],
});

/**
 * The user a PATCH describes: the patch (merge patch or JSON Patch, by Content-Type) is applied to
 * the representation the client read (its `_links` too), never to the stored row; a change to a
 * server-owned member, an unknown member, or a result that is not a valid user is a 422 (RFC 5789
 * §2.2) and nothing is written.
 */
export function patchedUser(ctx: Context, user: User, base: string): UserFields {
  const read = userRepresentation(user, base);
  const next = patchedRepresentation(read, applyPatch(ctx, read), userPatchShape);
  const checked = CreateUser.safeParse({ email: next.email, fullName: next.fullName });
  if (!checked.success) {
    throw new RestwellError('unprocessable-entity', 422, 'The patched user is invalid.', {
      detail: 'The patch would leave the user invalid; nothing was changed.',
      extensions: {
        errors: checked.error.issues.map((issue) => ({
          pointer: formatJsonPointer(issue.path),
          detail: issue.message,
        })),
      },
    });
  }
  return { email: checked.data.email, name: checked.data.fullName };
}

/** The repository's fields for a user the client sent (POST), in the newest shape. */
export const userFields = ({
  email,
  fullName,
}: {
  email: string;
  fullName: string;
}): UserFields => ({
  email,
  name: fullName,
});

function newestShape({ id, email, name, version, createdAt, updatedAt }: User): UserRepresentation {
  return { id, email, fullName: name, version, createdAt, updatedAt };
}

/**
 * A user with its links: itself, the list, and the writes this API allows on it. `base` is where
 * the client's version keeps users (`usersBase(ctx)`: `/v2/users`, or `/v1/users` for a v1 client).
 */
export function userRepresentation(user: User, base: string) {
  const self = `${base}${href`/${user.id}`}`;
  return {
    ...newestShape(user),
    _links: links({
      self,
      collection: base,
      update: { href: self, method: 'PATCH', type: MERGE_PATCH_MEDIA_TYPE },
      replace: { href: self, method: 'PUT' },
      delete: { href: self, method: 'DELETE' },
    }),
  };
}

/**
 * A payment with its links: itself, the list, and the user it was made for while that user exists
 * (`userId` is the client's text: linking only to a user the API issued also keeps `href` from ever
 * meeting an id such as `..`, which no URL can hold as one segment).
 */
export function paymentRepresentation(payment: Payment, userExists: (id: string) => boolean) {
  return {
    ...payment,
    _links: links({
      self: href`/v1/payments/${payment.id}`,
      collection: '/v1/payments',
      user: userExists(payment.userId) && href`/v1/users/${payment.userId}`,
    }),
  };
}
