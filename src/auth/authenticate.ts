/**
 * `authenticate()`: reads the request's credentials, verifies them, and puts
 * the principal on `ctx.state.principal`.
 *
 * Where credentials are read from:
 * - `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is
 *   case-insensitive, RFC 9110 §11.1): an API key when it is in the key
 *   format, else a JWT when it has the shape of one and a JWT verifier is
 *   configured, else the introspection verifier's;
 * - the API key header (`X-API-Key` by default).
 * Never from the query string (refused with 400, see query.ts) nor from the
 * body. Both headers at once is a 400 (RFC 6750 §2: one method per request).
 *
 * What the client gets when it fails (RFC 6750 §3, RFC 9110 §11.6.1):
 * - no credentials: 401 with the bare challenges (`Bearer realm="..."`, and
 *   `ApiKey header="X-API-Key"` when keys are accepted), unless `optional`;
 * - a bad token or key: 401, `Bearer error="invalid_token"` with a fixed
 *   `error_description`;
 * - an unreadable `Authorization: Bearer`, two kinds of credentials, or a
 *   credential header sent twice: 400, `Bearer error="invalid_request"`;
 * - a key used from an address its allowlist does not hold: 403;
 * - a verifier that cannot answer (JWKS, introspection, key store down): 503.
 */
import { type Context, type Middleware, principalId, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption, RestwellError } from '../core/errors.js';
import type { ApiKeyVerifier } from './api-keys.js';
import {
  type ChallengeSettings,
  challengesFor,
  checkRealm,
  DEFAULT_CHALLENGES,
} from './challenge.js';
import {
  AuthenticationRequiredError,
  CredentialsInQueryError,
  InvalidApiKeyError,
  InvalidTokenError,
  MalformedCredentialsError,
  tokenDescription,
} from './errors.js';
import type { IntrospectionVerifier } from './introspection.js';
import type { JwtVerifier } from './jwt.js';
import type { AuthenticationMethod, AuthPrincipal } from './principal.js';
import { compileParamNames, credentialParameter, DEFAULT_CREDENTIAL_PARAMS } from './query.js';

/** What the `onFailure` hook is told: never the credential itself. */
export interface AuthenticationFailure {
  /** Which verifier refused it; `none` when the request carried no usable credentials. */
  method: AuthenticationMethod | 'none';
  /** The error's code (`invalid-token`, `invalid-api-key`, ...). */
  code: string;
  /** The precise reason (`expired`, `signature`, `revoked`, ...), when there is one. */
  reason: string | undefined;
  /** The status answered. */
  status: number;
  /** The API key's public id, when a well-formed key was presented. */
  keyId: string | undefined;
}

/** Options of {@link authenticate}. */
export interface AuthenticateOptions {
  /** Verifies JWT bearer tokens (`jwtVerifier()`). */
  jwt?: JwtVerifier;
  /** Verifies opaque bearer tokens with the authorization server (`introspectionVerifier()`). */
  introspection?: IntrospectionVerifier;
  /** Verifies API keys (`apiKeyVerifier()`). */
  apiKeys?: ApiKeyVerifier;
  /** The header API keys are sent in; `false` to accept them only as `Authorization: Bearer`. @default 'X-API-Key' */
  apiKeyHeader?: string | false;
  /** The `realm` of the challenges (RFC 9110 §11.5). @default none */
  realm?: string;
  /**
   * Let requests without credentials through, anonymous, for routes that
   * decide later (`authorization()`, `requireRole()` answer 401 for them).
   * Requests with bad credentials are refused all the same. @default false
   */
  optional?: boolean;
  /**
   * Query parameters refused as credentials in the URL (400), compared
   * case-insensitively; a parameter whose value is an API key is refused
   * whatever its name. `false` turns the check off. @default DEFAULT_CREDENTIAL_PARAMS
   */
  queryParams?: readonly string[] | false;
  /** Called for every refused request, for security monitoring. Must not throw; what it throws is ignored. */
  onFailure?: (failure: AuthenticationFailure, ctx: Context) => void;
}

const OPTIONS = [
  'jwt',
  'introspection',
  'apiKeys',
  'apiKeyHeader',
  'realm',
  'optional',
  'queryParams',
  'onFailure',
] as const;

const HINTS = {
  secret:
    'Give a verifier: authenticate({ jwt: jwtVerifier({ keys: [{ secret, algorithms }], issuer, audience }) }).',
  credentialsRequired: 'Use "optional" (its opposite).',
  header: 'Did you mean "apiKeyHeader"?',
};

const CHALLENGES = Symbol.for('restwell.auth.challenges');
const TRANSPORT = Symbol.for('restwell.auth.transport');
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

/**
 * Whether `Authorization` (or the API key header) came on more than one line.
 * Node keeps the first `Authorization` line and drops the others, while a
 * proxy in front may have checked the last one: two principals in one
 * request, each component seeing another. RFC 9110 §5.3 allows a field to be
 * repeated only when it is a list, which neither is, and RFC 6750 §2 one
 * method per request, so the request is refused (400 `invalid_request`).
 */
function repeatedCredentialField(
  rawHeaders: readonly string[] | undefined,
  apiKeyHeader: string | undefined,
): boolean {
  if (rawHeaders === undefined) return false;
  let authorization = 0;
  let apiKey = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // Cheap first test: only names of the right length are lower-cased.
    if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++;
    else if (
      apiKeyHeader !== undefined &&
      name.length === apiKeyHeader.length &&
      name.toLowerCase() === apiKeyHeader
    )
      apiKey++;
  }
  return authorization > 1 || apiKey > 1;
}

/** The challenges `authenticate()` left for this request, for the 401s and 403s of later guards. */
export function challengeSettingsOf(ctx: Context): ChallengeSettings {
  return (
    ((ctx.state as Record<symbol, unknown>)[CHALLENGES] as ChallengeSettings | undefined) ??
    DEFAULT_CHALLENGES
  );
}

/** Whether this request's principal presented a bearer token (so a 403 for scope carries a Bearer challenge). */
export function authenticatedByBearer(ctx: Context): boolean {
  return (ctx.state as Record<symbol, unknown>)[TRANSPORT] === 'bearer';
}

/**
 * Authenticates requests: verifies a bearer token or an API key and sets
 * `ctx.state.principal` (an {@link AuthPrincipal}). Mount it before anything
 * that reads the principal (rate limits by principal, idempotency scopes,
 * authorization). Options are checked here.
 *
 * @example
 * ```ts
 * app.use(rw(authenticate({
 *   jwt: jwtVerifier({ keys: [{ secret: process.env.JWT_SECRET!, algorithms: ['HS256'] }], issuer, audience }),
 *   apiKeys: apiKeyVerifier({ store }),
 *   realm: 'payments',
 * })));
 * ```
 */
export function authenticate(options: AuthenticateOptions): Middleware {
  const where = 'auth authenticate';
  checkOptions(where, options, OPTIONS, HINTS);
  if (options === undefined) invalidOption(where, 'options', 'an object', options);
  const { jwt, introspection, apiKeys } = options;
  if (jwt !== undefined && jwt?.kind !== 'jwt') invalidOption(where, 'jwt', 'a jwtVerifier()', jwt);
  if (introspection !== undefined && introspection?.kind !== 'introspection') {
    invalidOption(where, 'introspection', 'an introspectionVerifier()', introspection);
  }
  if (apiKeys !== undefined && apiKeys?.kind !== 'api-key') {
    invalidOption(where, 'apiKeys', 'an apiKeyVerifier()', apiKeys);
  }
  if (jwt === undefined && introspection === undefined && apiKeys === undefined) {
    throw new TypeError(
      `restwell/${where}: give at least one of "jwt", "introspection" and "apiKeys".`,
    );
  }
  const headerOption = options.apiKeyHeader ?? 'X-API-Key';
  if (
    headerOption !== false &&
    (typeof headerOption !== 'string' || !HEADER_NAME.test(headerOption))
  ) {
    invalidOption(where, 'apiKeyHeader', 'a header name or false', headerOption);
  }
  if (typeof headerOption === 'string' && headerOption.toLowerCase() === 'authorization') {
    throw new TypeError(
      `restwell/${where}: option "apiKeyHeader" cannot be Authorization; keys sent as "Authorization: Bearer <key>" are accepted as they are. Use apiKeyHeader: false to accept them there only.`,
    );
  }
  const apiKeyHeader = apiKeys !== undefined && headerOption !== false ? headerOption : undefined;
  const apiKeyHeaderLower = apiKeyHeader?.toLowerCase();
  const realm = checkRealm(where, options.realm);
  if (options.optional !== undefined && typeof options.optional !== 'boolean') {
    invalidOption(where, 'optional', 'a boolean', options.optional);
  }
  const optional = options.optional === true;
  const queryNames =
    options.queryParams === false
      ? undefined
      : compileParamNames(where, options.queryParams ?? DEFAULT_CREDENTIAL_PARAMS);
  const onFailure = options.onFailure;
  if (onFailure !== undefined && typeof onFailure !== 'function') {
    invalidOption(where, 'onFailure', 'a function', onFailure);
  }
  const settings: ChallengeSettings = Object.freeze({
    realm,
    // Keys may always come as `Authorization: Bearer`, so a Bearer challenge is always right.
    bearer: true,
    apiKeyHeader,
  });
  const invalidRequest = {
    'WWW-Authenticate': challengesFor(
      { ...settings, apiKeyHeader: undefined },
      { error: 'invalid_request' },
    ),
  };
  const missing = { 'WWW-Authenticate': challengesFor(settings) };
  const apiKeyChallenge: Record<string, string> =
    apiKeyHeader === undefined
      ? {}
      : { 'WWW-Authenticate': challengesFor({ ...settings, bearer: false }) };
  const bearerInvalid = (description: string) => ({
    'WWW-Authenticate': challengesFor(
      { ...settings, apiKeyHeader: undefined },
      { error: 'invalid_token', description },
    ),
  });
  const invalidTokenHeaders = new Map<string, Record<string, string>>();
  const tokenHeaders = (description: string) => {
    let headers = invalidTokenHeaders.get(description);
    if (headers === undefined) {
      headers = bearerInvalid(description);
      invalidTokenHeaders.set(description, headers);
    }
    return headers;
  };

  function report(
    ctx: Context,
    method: AuthenticationFailure['method'],
    err: unknown,
    keyId?: string,
  ): void {
    if (onFailure === undefined || !(err instanceof RestwellError)) return;
    try {
      onFailure(
        {
          method,
          code: err.code,
          reason: (err as { reason?: string }).reason,
          status: err.status,
          keyId,
        },
        ctx,
      );
    } catch {
      // A monitoring hook never changes the answer.
    }
  }

  /** Re-issues a verifier's refusal with this middleware's challenge. */
  function challenged(err: unknown, viaBearer: boolean): unknown {
    if (err instanceof InvalidTokenError) {
      return new InvalidTokenError(err.reason, {
        headers: tokenHeaders(tokenDescription(err.reason)),
        cause: err.cause,
      });
    }
    if (err instanceof InvalidApiKeyError) {
      if (!viaBearer) return new InvalidApiKeyError(err.reason, apiKeyChallenge);
      // A key sent as a bearer token is refused as a bearer token (RFC 6750 §3.1).
      const description =
        err.reason === 'expired' ? 'The API key expired' : 'The API key is invalid';
      return new InvalidApiKeyError(err.reason, tokenHeaders(description));
    }
    return err;
  }

  function keyIdOf(key: string): string | undefined {
    const last = key.lastIndexOf('_');
    const middle = last < 0 ? -1 : key.lastIndexOf('_', last - 1);
    return apiKeys?.recognizes(key) ? key.slice(middle + 1, last) : undefined;
  }

  async function verifyBearer(ctx: Context, token: string): Promise<AuthPrincipal> {
    if (apiKeys?.recognizes(token) === true) {
      try {
        return (await apiKeys.verify(token, { ip: ctx.request.ip })).principal;
      } catch (err) {
        const answer = challenged(err, true);
        report(ctx, 'api-key', answer, keyIdOf(token));
        throw answer;
      }
    }
    const asJwt = jwt !== undefined && (introspection === undefined || JWS_SHAPE.test(token));
    const method: AuthenticationMethod = asJwt ? 'jwt' : 'introspection';
    try {
      if (asJwt) return (await jwt!.verify(token)).principal;
      if (introspection !== undefined) return (await introspection.verify(token)).principal;
      // Only API keys are accepted, and this is not one.
      throw new InvalidTokenError('malformed');
    } catch (err) {
      const answer = challenged(err, true);
      report(ctx, method, answer);
      throw answer;
    }
  }

  async function verifyApiKey(ctx: Context, key: string): Promise<AuthPrincipal> {
    try {
      return (await apiKeys!.verify(key, { ip: ctx.request.ip })).principal;
    } catch (err) {
      const answer = challenged(err, false);
      report(ctx, 'api-key', answer, keyIdOf(key));
      throw answer;
    }
  }

  function refuse(
    ctx: Context,
    err: RestwellError,
    method: AuthenticationFailure['method'],
  ): never {
    report(ctx, method, err);
    throw err;
  }

  return responseBlind(async function authenticateRequest(ctx, next) {
    if (queryNames !== undefined) {
      const parameter = credentialParameter(ctx, queryNames, apiKeys);
      if (parameter !== undefined) refuse(ctx, new CredentialsInQueryError(parameter), 'none');
    }
    const state = ctx.state as Record<symbol, unknown>;
    state[CHALLENGES] = settings;
    if (repeatedCredentialField(ctx.request.rawHeaders, apiKeyHeaderLower)) {
      refuse(ctx, new MalformedCredentialsError('multiple', invalidRequest), 'none');
    }

    let bearer: string | undefined;
    const authorization = ctx.request.header('authorization');
    if (authorization !== undefined) {
      const trimmed = authorization.trim();
      const space = trimmed.search(/[ \t]/);
      const scheme = space < 0 ? trimmed : trimmed.slice(0, space);
      // Another scheme (Basic for a proxy, say) is not a credential for this API.
      if (scheme.toLowerCase() === 'bearer') {
        const token = space < 0 ? '' : trimmed.slice(space + 1).trim();
        if (token.length === 0 || !TOKEN68.test(token)) {
          refuse(ctx, new MalformedCredentialsError('syntax', invalidRequest), 'none');
        }
        bearer = token;
      }
    }
    const key = apiKeyHeaderLower === undefined ? undefined : ctx.request.header(apiKeyHeaderLower);
    if (key !== undefined && bearer !== undefined) {
      refuse(ctx, new MalformedCredentialsError('multiple', invalidRequest), 'none');
    }

    let principal: AuthPrincipal;
    if (key !== undefined) {
      principal = await verifyApiKey(ctx, key.trim());
      state[TRANSPORT] = 'header';
    } else if (bearer !== undefined) {
      principal = await verifyBearer(ctx, bearer);
      state[TRANSPORT] = 'bearer';
    } else {
      // Authenticated upstream (the adapter's `principal` option, passport): kept as it is.
      if (optional || principalId(ctx.state) !== undefined) return next();
      refuse(ctx, new AuthenticationRequiredError(missing), 'none');
    }
    ctx.state.principal = principal;
    return next();
  });
}
