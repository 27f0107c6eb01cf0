/**
 * Transport and browser security (`restwell/security`): one small middleware
 * per concern, each with its options checked at construction.
 *
 * - `httpsOnly()`: plain HTTP refused with a 403 `https-required` problem, or
 *   a GET/HEAD redirected with a 308 to a configured host (never the
 *   request's own `Host`, never a POST). The protocol is the socket's, or a
 *   trusted proxy's `X-Forwarded-Proto` (the adapter's `trustProxy`).
 * - `hsts()`: `Strict-Transport-Security` over TLS only (RFC 6797 §7.2), with
 *   the preload list's requirements checked.
 * - `cors()`: a strict allowlist (exact origins, `https://*.example.com`
 *   wildcards, anchored RegExps), never `*` with credentials, never a
 *   reflected origin, `null` refused by default; preflights answered 204 or
 *   refused with a 403 problem and no CORS header; `Vary` on everything that
 *   depends on the origin; Private Network Access on request.
 * - `securityHeaders()`: nosniff, frame denial, no referrer, a CSP that lets
 *   nothing load, CORP and COOP, no `X-Powered-By`.
 * - `requestHygiene()`: dot-segments in any spelling, encoded separators,
 *   fragments, NUL bytes, broken percent-encoding, overlong targets and
 *   headers, repeated single-value headers and invalid `Host` refused with
 *   4xx problems before any handler runs.
 *
 * Exported from `restwell/security`. See docs/security.md.
 *
 * @example
 * ```ts
 * import { cors, hsts, httpsOnly, requestHygiene, securityHeaders } from 'restwell/security';
 *
 * app.use(rw(
 *   httpsOnly({ redirect: { host: 'api.example.com' } }),
 *   hsts(),
 *   securityHeaders(),
 *   cors({ origins: ['https://app.example.com'], credentials: true }),
 *   requestHygiene(),
 *   // rate limits, body parsing, authentication, ...
 * ));
 * ```
 */
export {
  type CorsOptions,
  cors,
  DEFAULT_ALLOW_HEADERS,
  DEFAULT_EXPOSE_HEADERS,
} from './cors.js';
export {
  type CorsRefusal,
  CorsPreflightRefusedError,
  DuplicateHeaderError,
  HeaderTooLargeError,
  HttpsRequiredError,
  InvalidHostError,
  type MalformedTargetCode,
  MalformedTargetError,
  type SecurityProblemCode,
  type TargetPart,
  TargetTooLongError,
  TooManyHeadersError,
} from './errors.js';
export {
  API_CONTENT_SECURITY_POLICY,
  type CrossOriginOpenerPolicy,
  type CrossOriginResourcePolicy,
  type ReferrerPolicy,
  type SecurityHeadersOptions,
  securityHeaders,
  securityHeaderValues,
} from './headers.js';
export { type HostAndPort, parseHost } from './host.js';
export { type HstsOptions, hsts, hstsValue } from './hsts.js';
export { type HttpsOnlyOptions, type HttpsRedirectOptions, httpsOnly } from './https-only.js';
export {
  DEFAULT_SINGLE_VALUE_HEADERS,
  findRepeatedHeader,
  type HygieneFinding,
  inspectTarget,
  type RequestHygieneOptions,
  requestHygiene,
  type TargetRules,
  targetRules,
} from './hygiene.js';
export {
  type OriginMatcher,
  type OriginPattern,
  originMatcher,
  parseOrigin,
  type TupleOrigin,
} from './origin.js';
