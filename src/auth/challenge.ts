/**
 * `WWW-Authenticate` challenges (RFC 9110 §11.6.1) for the Bearer scheme
 * (RFC 6750 §3) and for API keys.
 *
 * Every parameter value is sent as a quoted-string. RFC 6750 §3 restricts
 * `realm`, `error`, `error_description` and `scope` to `%x20-21 / %x23-5B /
 * %x5D-7E`: printable ASCII without `"` and `\`, so no value ever needs a
 * quoted-pair and none can close the quotes. Values are checked when they are
 * configured (realm, scopes) or are fixed texts of this module (descriptions),
 * never taken from a request.
 */
import { invalidOption } from '../core/errors.js';

/** Printable ASCII without `"` and `\` (RFC 6750 §3). */
const PARAM_VALUE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;
/** A scope token (RFC 6749 §3.3): NQCHAR, printable ASCII without space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Whether a value may be sent inside a challenge parameter's quotes. */
export function isChallengeValue(value: string): boolean {
  return PARAM_VALUE.test(value);
}

/** Whether a string is one scope token (RFC 6749 §3.3). */
export function isScopeToken(value: string): boolean {
  return SCOPE_TOKEN.test(value);
}

/** Checks a configured realm at construction. */
export function checkRealm(where: string, realm: unknown): string | undefined {
  if (realm === undefined) return undefined;
  if (typeof realm !== 'string' || realm.length === 0 || realm.length > 200) {
    invalidOption(where, 'realm', 'a non-empty string of at most 200 characters', realm);
  }
  if (!PARAM_VALUE.test(realm)) {
    invalidOption(where, 'realm', 'printable ASCII without " and \\ (RFC 6750 §3)', realm);
  }
  return realm;
}

/** The RFC 6750 §3.1 error codes. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/** What one challenge says. */
export interface ChallengeParams {
  realm?: string | undefined;
  error?: BearerErrorCode | undefined;
  description?: string | undefined;
  /** Space-separated scope tokens the request needs (only with `insufficient_scope`). */
  scope?: string | undefined;
}

function param(name: string, value: string): string {
  // Values are fixed texts or checked configuration; refusing here keeps a
  // mistake in this module from ever producing a header a client misparses.
  if (!PARAM_VALUE.test(value))
    throw new TypeError(`restwell/auth: ${name} is not a quoted-string`);
  return `${name}="${value}"`;
}

/**
 * A Bearer challenge. With no error it is the bare challenge RFC 6750 §3.1
 * asks for when the request carried no credentials: `Bearer` or
 * `Bearer realm="api"`.
 */
export function bearerChallenge(params: ChallengeParams = {}): string {
  const parts: string[] = [];
  if (params.realm !== undefined) parts.push(param('realm', params.realm));
  if (params.error !== undefined) parts.push(param('error', params.error));
  if (params.description !== undefined) parts.push(param('error_description', params.description));
  if (params.scope !== undefined) parts.push(param('scope', params.scope));
  return parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}`;
}

/**
 * A challenge for an API key sent in its own header. No scheme is registered
 * for it; `ApiKey` with a `header` parameter names where the key goes, so a
 * client learns it from the 401 (RFC 9110 §11.6.1 requires a challenge on
 * every 401).
 */
export function apiKeyChallenge(header: string, realm?: string): string {
  return `ApiKey ${realm === undefined ? '' : `${param('realm', realm)}, `}${param('header', header)}`;
}

/** How a request may authenticate, for the challenges of its 401 and 403 answers. */
export interface ChallengeSettings {
  realm: string | undefined;
  /** Whether bearer tokens (JWT, introspection, or API keys in `Authorization`) are accepted. */
  bearer: boolean;
  /** The header API keys go in, as clients spell it (`X-API-Key`), when that is accepted. */
  apiKeyHeader: string | undefined;
}

/** The default when no `authenticate()` ran: a bare Bearer challenge. */
export const DEFAULT_CHALLENGES: ChallengeSettings = {
  realm: undefined,
  bearer: true,
  apiKeyHeader: undefined,
};

/**
 * The value of `WWW-Authenticate` for a 401: one challenge per accepted way
 * in, the Bearer one carrying `params` (RFC 9110 §11.6.1 lets one field hold
 * several challenges).
 */
export function challengesFor(settings: ChallengeSettings, params: ChallengeParams = {}): string {
  const list: string[] = [];
  if (settings.bearer) list.push(bearerChallenge({ realm: settings.realm, ...params }));
  if (settings.apiKeyHeader !== undefined)
    list.push(apiKeyChallenge(settings.apiKeyHeader, settings.realm));
  return list.join(', ');
}
