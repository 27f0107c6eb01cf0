/**
 * The principal `restwell/auth` puts on `ctx.state.principal`, and how roles,
 * scopes and the tenant are read from token claims.
 */
import type { Context, Principal } from '../core/context.js';

/** How the principal proved who it is. `external` is a principal set by the framework's own auth. */
export type AuthenticationMethod = 'jwt' | 'introspection' | 'api-key' | 'external';

/**
 * The authenticated caller, as `authenticate()` leaves it on
 * `ctx.state.principal` for every later module (rate-limit keys, idempotency
 * scopes, audit records) and for handlers. Only verified data is in it: the
 * claims of a token whose signature and claims checked out, the record of a
 * key whose secret matched.
 */
export interface AuthPrincipal extends Principal {
  /** The subject: a token's `sub` (or `client_id`), an API key's subject. */
  id: string;
  /** `user`, `client` (a machine acting for itself, RFC 9068 §5), or `api-key`. */
  type: string;
  /** Roles, for `requireRole()`: a token's `roles` claim (RFC 9068 §2.2.3.1), a key's roles. */
  roles: readonly string[];
  /** Scopes, for `requireScope()`: a token's `scope` (or `scp`) claim, a key's scopes. */
  scopes: readonly string[];
  /** The tenant the principal belongs to, when there is one. */
  tenant?: string;
  /** The verified claims (a token's payload, an introspection answer, a key's public record). */
  claims: Readonly<Record<string, unknown>>;
  /** How the principal authenticated. */
  authentication: AuthenticationMethod;
  /** When the credential stops being valid, in epoch milliseconds, when it says. */
  expiresAt?: number;
}

/** What a claims mapping returns; missing members take the defaults of {@link defaultPrincipal}. */
export interface PrincipalInit {
  id: string;
  type?: string;
  roles?: readonly string[];
  scopes?: readonly string[];
  tenant?: string;
}

/** A list of strings from a claim: an array of strings, or one space-separated string. */
export function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s.length > 0);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/**
 * The default mapping from verified claims to a principal:
 * - `id`: `sub`, else `client_id` (a client-credentials token may have no `sub`);
 * - `type`: `client` when the token names no user (no `sub`, or `sub` equal to
 *   `client_id`: RFC 9068 §5), else `user`;
 * - `roles`: the `roles` claim (RFC 9068 §2.2.3.1, after SCIM), an array or a
 *   space-separated string;
 * - `scopes`: `scope`, a space-separated string (RFC 9068 §2.2.3, RFC 7662
 *   §2.2), else `scp`, an array or a string (as some providers send it);
 * - `tenant`: the `tenant` claim, when it is a string.
 *
 * Returns `undefined` when the claims name no subject at all.
 */
export function defaultPrincipal(
  claims: Readonly<Record<string, unknown>>,
): PrincipalInit | undefined {
  const sub = typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined;
  const clientId =
    typeof claims.client_id === 'string' && claims.client_id.length > 0
      ? claims.client_id
      : undefined;
  const id = sub ?? clientId;
  if (id === undefined) return undefined;
  const init: PrincipalInit = {
    id,
    type: sub === undefined || sub === clientId ? 'client' : 'user',
    roles: stringList(claims.roles),
    scopes: stringList(claims.scope !== undefined ? claims.scope : claims.scp),
  };
  if (typeof claims.tenant === 'string' && claims.tenant.length > 0) init.tenant = claims.tenant;
  return init;
}

/** Builds the principal from a mapping's result; `undefined` when the mapping gave no usable id. */
export function buildPrincipal(
  init: PrincipalInit | undefined,
  claims: Readonly<Record<string, unknown>>,
  authentication: AuthenticationMethod,
  expiresAt: number | undefined,
): AuthPrincipal | undefined {
  if (init === undefined || init === null || typeof init !== 'object') return undefined;
  if (typeof init.id !== 'string' || init.id.length === 0) return undefined;
  const principal: AuthPrincipal = {
    id: init.id,
    type: typeof init.type === 'string' ? init.type : 'user',
    roles: Object.freeze(stringList(init.roles ?? [])),
    scopes: Object.freeze(stringList(init.scopes ?? [])),
    claims: Object.freeze({ ...claims }),
    authentication,
  };
  if (typeof init.tenant === 'string') principal.tenant = init.tenant;
  if (expiresAt !== undefined) principal.expiresAt = expiresAt;
  return principal;
}

/**
 * The request's principal with roles and scopes read safely: what
 * `authenticate()` set, or a principal from the adapter's `principal` option
 * (`req.user`), whose `roles` and `scopes` count only when they are arrays of
 * strings (or a space-separated string). `undefined` for an anonymous request.
 *
 * @example
 * ```ts
 * const me = principalOf(contextOf(req));
 * if (me?.roles.includes('admin')) { ... }
 * ```
 */
export function principalOf(ctx: Context): AuthPrincipal | undefined {
  const p = ctx.state.principal;
  if (p === undefined || p === null || typeof p !== 'object') return undefined;
  const id = typeof p.id === 'number' && Number.isFinite(p.id) ? String(p.id) : p.id;
  if (typeof id !== 'string' || id.length === 0) return undefined;
  const known = p as Partial<AuthPrincipal>;
  if (
    typeof known.authentication === 'string' &&
    Array.isArray(known.roles) &&
    Array.isArray(known.scopes) &&
    id === p.id
  ) {
    return known as AuthPrincipal;
  }
  // A principal from the framework's own authentication: take what is usable.
  const view: AuthPrincipal = {
    id,
    type: typeof p.type === 'string' ? p.type : 'user',
    roles: stringList(known.roles),
    scopes: stringList(known.scopes),
    claims:
      known.claims !== null && typeof known.claims === 'object'
        ? (known.claims as Record<string, unknown>)
        : {},
    authentication: 'external',
  };
  if (typeof known.tenant === 'string') view.tenant = known.tenant;
  return view;
}
