/**
 * Authentication and authorization (`restwell/auth`).
 *
 * - `authenticate()`: bearer tokens and API keys in, `ctx.state.principal`
 *   out (an `AuthPrincipal`: id, type, roles, scopes, tenant, the verified
 *   claims), with RFC 6750 challenges on every 401 and 403. Credentials in the
 *   query string are refused (400) and never logged.
 * - `jwtVerifier()`: JWTs through jose, by RFC 8725: an explicit algorithm
 *   list per key, never `none`, no HMAC/public-key confusion, `iss`, `aud`,
 *   `exp`, `nbf`, `iat` with a clock tolerance, a max token age, required
 *   claims, the RFC 9068 access-token profile; local keys or a remote JWKS
 *   (`remoteJwks()`) with a bounded cache, rotation and a timeout.
 *   `verify(token, { now })` is the pure verification function.
 * - `introspectionVerifier()`: opaque OAuth 2.0 tokens through RFC 7662
 *   introspection, with a bounded cache that never outlives a token.
 * - API keys: `createApiKey()` / `issueApiKey()` (CSPRNG, shown once, stored
 *   as a SHA-256), `apiKeyVerifier()` (constant-time comparison, scopes,
 *   roles, expiry, revocation, per-key IP allowlists), and key stores:
 *   `MemoryApiKeyStore` here, `RedisApiKeyStore` in `restwell/auth/redis`,
 *   `PostgresApiKeyStore` in `restwell/auth/postgres` (with
 *   migrations/postgres/005_restwell_api_keys.sql), each on its own subpath
 *   so that only an application using that backend needs its types.
 * - Authorization: `requireRole()`, `requireScope()`, `authorize()` (ABAC),
 *   `authenticated()`, `allowAnonymous()`, and `authorization()`, a route
 *   table that can deny every request no rule covers.
 *
 * jose is an optional peer dependency, loaded on the first JWT or JWKS
 * verification only: API keys and introspection work without it.
 *
 * Exported from `restwell/auth`. See docs/auth.md.
 *
 * @example
 * ```ts
 * import { apiKeyVerifier, authenticate, authorization, authenticated, jwtVerifier,
 *   MemoryApiKeyStore, requireRole } from 'restwell/auth';
 *
 * const jwt = jwtVerifier({
 *   keys: [{ secret: process.env.JWT_SECRET!, algorithms: ['HS256'] }],
 *   issuer: 'https://id.example.com',
 *   audience: 'payments-api',
 * });
 * const apiKeys = apiKeyVerifier({ store: new MemoryApiKeyStore() });
 * app.use(rw(
 *   authenticate({ jwt, apiKeys, optional: true }),
 *   authorization({ rules: [
 *     { route: '/v1/*', require: authenticated() },
 *     { route: '/v1/users/:id', methods: ['DELETE'], require: requireRole('admin') },
 *   ] }),
 * ));
 * ```
 */
export {
  type ApiKeyRecord,
  type ApiKeyStore,
  type ApiKeyVerifier,
  type ApiKeyVerifierOptions,
  apiKeyMatches,
  apiKeyRecordFor,
  apiKeyVerifier,
  type CreateApiKeyOptions,
  createApiKey,
  hashApiKey,
  type IssuedApiKey,
  issueApiKey,
  type ParsedApiKey,
  parseApiKey,
  type VerifiedApiKey,
} from './api-keys.js';
export {
  type AuthenticateOptions,
  type AuthenticationFailure,
  authenticate,
} from './authenticate.js';
export {
  type AuthorizationOptions,
  type AuthorizationRequest,
  type AuthorizationRule,
  type AuthorizeOptions,
  allowAnonymous,
  authenticated,
  authorization,
  authorize,
  type Guard,
  isCovered,
  requireRole,
  requireScope,
} from './authorize.js';
export { type BearerErrorCode, bearerChallenge } from './challenge.js';
export {
  AccessDeniedError,
  type AccessDeniedReason,
  AuthenticationRequiredError,
  CredentialsInQueryError,
  InsufficientScopeError,
  InvalidApiKeyError,
  type InvalidApiKeyReason,
  InvalidTokenError,
  type InvalidTokenReason,
  IpNotAllowedError,
  MalformedCredentialsError,
  tokenDescription,
} from './errors.js';
export type { FetchFunction } from './fetch.js';
export {
  type IntrospectedToken,
  type IntrospectionOptions,
  type IntrospectionVerifier,
  introspectionVerifier,
} from './introspection.js';
export {
  type RemoteJwks,
  type RemoteJwksOptions,
  type RemoteJwksState,
  remoteJwks,
} from './jwks.js';
export {
  type AsymmetricAlgorithm,
  type HmacAlgorithm,
  type JwksSource,
  type JwsAlgorithm,
  type JwtKey,
  type JwtVerifier,
  type JwtVerifierOptions,
  jwtVerifier,
  type PublicJwtKey,
  type SecretJwtKey,
  type VerifiedJwt,
} from './jwt.js';
export { MemoryApiKeyStore } from './key-stores/memory.js';
export {
  type AuthenticationMethod,
  type AuthPrincipal,
  defaultPrincipal,
  type PrincipalInit,
  principalOf,
} from './principal.js';
export {
  type CredentialsInQueryOptions,
  DEFAULT_CREDENTIAL_PARAMS,
  rejectCredentialsInQuery,
} from './query.js';
