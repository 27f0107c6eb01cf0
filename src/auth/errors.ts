/**
 * The problems `restwell/auth` answers with. Each is a {@link RestwellError},
 * rendered as RFC 9457 problem details; the 401s and the 403 for a missing
 * scope carry the `WWW-Authenticate` challenge RFC 6750 §3 describes.
 *
 * What a client is told is a fixed text per case: never the token, the key,
 * the name of the check that failed beyond "expired" or "not valid yet", nor
 * anything from a key store or an authorization server. The precise reason
 * (`reason`) is on the error for the server's own log and the `onFailure`
 * hook.
 */
import { RestwellError } from '../core/errors.js';

/**
 * Why a bearer token was refused:
 * - `malformed`: not a compact JWS (or too long, or a JWE), or its header is unreadable;
 * - `algorithm`: its `alg` is none of those allowed (`none` never is);
 * - `key`: no configured key (or JWKS key) matches its `kid` and `alg`;
 * - `signature`: the signature does not verify, or the payload is not a JSON object;
 * - `expired`: past `exp` (with the clock tolerance);
 * - `not-yet-valid`: before `nbf`, or issued in the future;
 * - `too-old`: issued longer ago than `maxTokenAgeMs`;
 * - `issuer`, `audience`, `type`: the `iss`, `aud` or `typ` is not the expected one;
 * - `claims`: a required claim is missing or of the wrong type, or the claims
 *   map to no principal;
 * - `inactive`: the authorization server says the token is not active (RFC 7662 §2.2).
 */
export type InvalidTokenReason =
  | 'malformed'
  | 'algorithm'
  | 'key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'too-old'
  | 'issuer'
  | 'audience'
  | 'type'
  | 'claims'
  | 'inactive';

/**
 * Why an API key was refused:
 * - `malformed`: not in the key format (or another namespace's);
 * - `unknown`: no key has its id, or its secret does not match (the two are
 *   told apart only here, never to the client);
 * - `revoked`, `expired`: the key was revoked, or is past its expiry.
 */
export type InvalidApiKeyReason = 'malformed' | 'unknown' | 'revoked' | 'expired';

const TOKEN_DESCRIPTIONS: Readonly<Record<InvalidTokenReason, string>> = {
  malformed: 'The access token is invalid',
  algorithm: 'The access token is invalid',
  key: 'The access token is invalid',
  signature: 'The access token is invalid',
  expired: 'The access token expired',
  'not-yet-valid': 'The access token is not valid yet',
  'too-old': 'The access token expired',
  issuer: 'The access token is invalid',
  audience: 'The access token is invalid',
  type: 'The access token is invalid',
  claims: 'The access token is invalid',
  inactive: 'The access token is invalid',
};

/** The `error_description` (and problem `detail`) a client sees for a refused token. */
export function tokenDescription(reason: InvalidTokenReason): string {
  return TOKEN_DESCRIPTIONS[reason];
}

/** Headers of an answer, such as the `WWW-Authenticate` challenge. */
type AnswerHeaders = Record<string, string>;

/**
 * 401, code `authentication-required`: the request carries no credentials
 * this API accepts. The challenge is bare (RFC 6750 §3.1: no error code when
 * the request lacks any authentication information).
 */
export class AuthenticationRequiredError extends RestwellError {
  override readonly name = 'AuthenticationRequiredError';
  constructor(headers: AnswerHeaders = { 'WWW-Authenticate': 'Bearer' }) {
    super('authentication-required', 401, 'Authentication required', {
      detail: 'This request needs credentials: an access token or an API key.',
      headers,
    });
  }
}

/**
 * 401, code `invalid-token`, with `WWW-Authenticate: Bearer
 * error="invalid_token"` (RFC 6750 §3.1): the bearer token is malformed,
 * expired, not yet valid, for another audience or issuer, or its signature
 * does not verify. `reason` says which, for the server only.
 */
export class InvalidTokenError extends RestwellError {
  override readonly name = 'InvalidTokenError';
  /** Which check refused the token; never sent to the client beyond `tokenDescription()`. */
  readonly reason: InvalidTokenReason;
  constructor(
    reason: InvalidTokenReason,
    options: { headers?: AnswerHeaders; cause?: unknown } = {},
  ) {
    super('invalid-token', 401, `Invalid token (${reason})`, {
      detail: `${TOKEN_DESCRIPTIONS[reason]}.`,
      headers: options.headers ?? {
        'WWW-Authenticate': `Bearer error="invalid_token", error_description="${TOKEN_DESCRIPTIONS[reason]}"`,
      },
      cause: options.cause,
    });
    this.reason = reason;
  }
}

const KEY_DETAILS: Readonly<Record<InvalidApiKeyReason, string>> = {
  malformed: 'The API key is invalid.',
  unknown: 'The API key is invalid.',
  revoked: 'The API key is invalid.',
  expired: 'The API key expired.',
};

/**
 * 401, code `invalid-api-key`: the API key is malformed, unknown, revoked or
 * expired. A revoked key reads as any invalid one: a client holding a leaked
 * key learns nothing about it.
 */
export class InvalidApiKeyError extends RestwellError {
  override readonly name = 'InvalidApiKeyError';
  /** Which check refused the key; for the server's log only. */
  readonly reason: InvalidApiKeyReason;
  constructor(reason: InvalidApiKeyReason, headers: AnswerHeaders = {}) {
    super('invalid-api-key', 401, `Invalid API key (${reason})`, {
      detail: KEY_DETAILS[reason],
      headers,
    });
    this.reason = reason;
  }
}

/**
 * 400, code `malformed-credentials`, with `WWW-Authenticate: Bearer
 * error="invalid_request"` where bearer tokens are accepted (RFC 6750 §3.1):
 * the credentials cannot be read (`Authorization: Bearer` with no token, or a
 * token that is not token68), or the request uses more than one way to send
 * them (RFC 6750 §2: "Clients MUST NOT use more than one method"), or sends
 * `Authorization` or the API key header twice.
 */
export class MalformedCredentialsError extends RestwellError {
  override readonly name = 'MalformedCredentialsError';
  /** `syntax`: unreadable; `multiple`: an API key header and a bearer token together, or one of them twice. */
  readonly reason: 'syntax' | 'multiple';
  constructor(reason: 'syntax' | 'multiple', headers: AnswerHeaders = {}) {
    super('malformed-credentials', 400, `Malformed credentials (${reason})`, {
      detail:
        reason === 'multiple'
          ? 'Send one set of credentials: one API key header or one Authorization header.'
          : 'The Authorization header cannot be read: send "Authorization: Bearer <token>".',
      headers,
    });
    this.reason = reason;
  }
}

/**
 * 400, code `credentials-in-query`: the URL carries what looks like a token
 * or an API key (`?access_token=`, `?api_key=`, ...). URLs end up in access
 * logs, proxies, browser history and `Referer` headers (RFC 6750 §5.3: "Don't
 * pass bearer tokens in page URLs"), so the request is refused before
 * anything reads it, and the value is never echoed or logged. `parameter`
 * names the parameter (never its value).
 */
export class CredentialsInQueryError extends RestwellError {
  override readonly name = 'CredentialsInQueryError';
  /** The query parameter's name as the client sent it. */
  readonly parameter: string;
  constructor(parameter: string) {
    super('credentials-in-query', 400, 'Credentials in the query string', {
      detail:
        'Credentials must not be sent in the URL. Send them in a header, and treat the ones just sent as exposed.',
      extensions: { parameter },
    });
    this.parameter = parameter;
  }
}

/**
 * 403, code `insufficient-scope`: the principal lacks a scope the request
 * needs. For bearer tokens the challenge is `Bearer error="insufficient_scope",
 * scope="..."` (RFC 6750 §3.1), naming every scope required.
 */
export class InsufficientScopeError extends RestwellError {
  override readonly name = 'InsufficientScopeError';
  /** The scopes the request needs, all of them. */
  readonly required: readonly string[];
  constructor(required: readonly string[], headers: AnswerHeaders = {}) {
    super('insufficient-scope', 403, 'Insufficient scope', {
      detail: `This request needs the scope${required.length === 1 ? '' : 's'} ${required.join(' ')}.`,
      headers,
      extensions: { requiredScopes: required },
    });
    this.required = required;
  }
}

/**
 * Why a request was refused by authorization:
 * - `role`: the principal has none of the roles required;
 * - `policy`: an `authorize()` predicate said no;
 * - `uncovered`: no rule covers the route and the default is to deny.
 */
export type AccessDeniedReason = 'role' | 'policy' | 'uncovered';

/**
 * 403, code `access-denied`: the principal is known, and may not do this.
 * The detail says nothing about which rule refused it.
 */
export class AccessDeniedError extends RestwellError {
  override readonly name = 'AccessDeniedError';
  /** Which kind of rule refused the request; for the server's log only. */
  readonly reason: AccessDeniedReason;
  constructor(reason: AccessDeniedReason) {
    super('access-denied', 403, `Access denied (${reason})`, {
      detail: 'You are not allowed to perform this request.',
    });
    this.reason = reason;
  }
}

/**
 * 403, code `ip-not-allowed`: the API key is restricted to networks the
 * request does not come from (the client address as the adapter's
 * `trustProxy` setting resolves it).
 */
export class IpNotAllowedError extends RestwellError {
  override readonly name = 'IpNotAllowedError';
  constructor() {
    super('ip-not-allowed', 403, 'IP address not allowed', {
      detail: 'This API key may not be used from this network address.',
    });
  }
}
