/**
 * OAuth 2.0 Token Introspection (RFC 7662): opaque access tokens, issued by
 * an authorization server for delegated access, are checked by asking it.
 *
 * - The request is the one of RFC 7662 §2.1: `POST` of
 *   `token=...&token_type_hint=access_token`, form-encoded, authenticated as
 *   the resource server (HTTP Basic with a client id and secret, RFC 6749
 *   §2.3.1, or headers of your own).
 * - Only `active: true` is active (§2.2); an `exp` in the past, an `nbf` in the
 *   future, or an `iss`/`aud` other than configured is inactive too.
 * - Answers are cached, keyed by the token's SHA-256 (the token itself is
 *   never kept), in a cache bounded by `maxEntries`. An active answer is kept
 *   for `cacheTtlMs` but never past the token's own `exp` (§4: a cached answer
 *   must not outlive the token); an inactive one for `inactiveTtlMs`.
 *   Concurrent introspections of one token share one request.
 * - The server's failures (unreachable, timeout, not 200, not JSON, too large)
 *   are never cached and answer 503: the token may be fine.
 */
import { checkOptions, invalidOption, ServiceUnavailableError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { InvalidTokenError } from './errors.js';
import {
  checkEndpoint,
  type FetchFunction,
  fetchJson,
  nonNegativeInteger,
  positiveInteger,
} from './fetch.js';
import {
  type AuthPrincipal,
  buildPrincipal,
  defaultPrincipal,
  type PrincipalInit,
} from './principal.js';

/** Options of {@link introspectionVerifier}. */
export interface IntrospectionOptions {
  /** The introspection endpoint (`https:`, or `http:` to a loopback address). Required. */
  endpoint: string | URL;
  /** This resource server's client id at the authorization server, for HTTP Basic. */
  clientId?: string;
  /** Its client secret, for HTTP Basic. */
  clientSecret?: string;
  /** Further headers for the request (a bearer token of the resource server, say). */
  headers?: Record<string, string>;
  /** Longest time one introspection may take. @default 2000 */
  timeoutMs?: number;
  /** Longest an active answer is cached, and never past the token's `exp`. 0 disables the cache. @default 60_000 */
  cacheTtlMs?: number;
  /** How long an inactive answer is cached. @default 10_000 */
  inactiveTtlMs?: number;
  /** Most answers cached at once; the oldest go first. @default 10_000 */
  maxEntries?: number;
  /** The `iss` an answer must carry when it has one. @default any */
  issuer?: string | readonly string[];
  /** The audience an answer's `aud` must include. @default any */
  audience?: string | readonly string[];
  /** Leeway for `exp` and `nbf`. @default 5000 */
  clockToleranceMs?: number;
  /** Largest answer read. @default 65_536 */
  maxBytes?: number;
  /** Longest token sent, in characters; longer ones are refused unsent. @default 4096 */
  maxTokenLength?: number;
  /** Maps an active answer to the principal; `undefined` refuses the token. @default defaultPrincipal */
  principal?: (claims: Readonly<Record<string, unknown>>) => PrincipalInit | undefined;
  /** The fetch function. @default globalThis.fetch */
  fetch?: FetchFunction;
  /** Where failed introspections are reported, at `warn`. @default restwell's default logger */
  logger?: Logger;
  /** The clock, in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** An introspected, active token. */
export interface IntrospectedToken {
  /** The authorization server's answer (RFC 7662 §2.2). */
  claims: Readonly<Record<string, unknown>>;
  /** The principal it maps to. */
  principal: AuthPrincipal;
  /** Whether the answer came from the cache. */
  cached: boolean;
}

/** Checks opaque tokens with the authorization server; made by {@link introspectionVerifier}. */
export interface IntrospectionVerifier {
  /** Discriminates verifiers for `authenticate()`. */
  readonly kind: 'introspection';
  /**
   * Resolves with the answer for an active token; rejects with
   * `InvalidTokenError` (reason `inactive`) for any other, or a 503 when the
   * server cannot answer. `now` replaces the clock for this call.
   */
  verify(token: string, options?: { now?: number }): Promise<IntrospectedToken>;
  /** Empties the cache (after a mass revocation, say). */
  clear(): void;
  /** How many answers are cached. */
  readonly size: number;
}

const OPTIONS = [
  'endpoint',
  'clientId',
  'clientSecret',
  'headers',
  'timeoutMs',
  'cacheTtlMs',
  'inactiveTtlMs',
  'maxEntries',
  'issuer',
  'audience',
  'clockToleranceMs',
  'maxBytes',
  'maxTokenLength',
  'principal',
  'fetch',
  'logger',
  'now',
] as const;

interface CacheEntry {
  /** Epoch ms after which the entry is not used. */
  until: number;
  /** The answer of an active token, or `undefined` for an inactive one. */
  active: { claims: Record<string, unknown>; principal: AuthPrincipal } | undefined;
}

/** The characters of a token68 (RFC 9110 §11.2), what a bearer token may hold. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

function stringsOption(option: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const values = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(values) ||
    values.length === 0 ||
    !values.every((v) => typeof v === 'string' && v.length > 0)
  ) {
    invalidOption(
      'auth introspectionVerifier',
      option,
      'a string or a non-empty list of strings',
      value,
    );
  }
  return values as string[];
}

/** Form-encodes a client id or secret for HTTP Basic, as RFC 6749 §2.3.1 requires. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/**
 * Creates a token introspection verifier (RFC 7662). Options are checked here.
 *
 * @example
 * ```ts
 * const introspection = introspectionVerifier({
 *   endpoint: 'https://auth.example.com/oauth2/introspect',
 *   clientId: 'payments-api',
 *   clientSecret: process.env.INTROSPECTION_SECRET,
 *   audience: 'https://api.example.com',
 * });
 * app.use(rw(authenticate({ introspection })));
 * ```
 */
export function introspectionVerifier(options: IntrospectionOptions): IntrospectionVerifier {
  const where = 'auth introspectionVerifier';
  checkOptions(where, options, OPTIONS);
  if (options === undefined) invalidOption(where, 'options', 'an object', options);
  const endpoint = checkEndpoint(where, 'endpoint', options.endpoint);
  const { clientId, clientSecret } = options;
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new TypeError(`restwell/${where}: give both "clientId" and "clientSecret", or neither.`);
  }
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0)) {
    invalidOption(where, 'clientId', 'a non-empty string', clientId);
  }
  if (
    clientSecret !== undefined &&
    (typeof clientSecret !== 'string' || clientSecret.length === 0)
  ) {
    // Never describe the value: it is a secret.
    throw new TypeError(`restwell/${where}: option "clientSecret" must be a non-empty string.`);
  }
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
    ...(clientId !== undefined
      ? {
          authorization: `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret!)}`).toString('base64')}`,
        }
      : {}),
    ...options.headers,
  };
  const timeoutMs = positiveInteger(where, 'timeoutMs', options.timeoutMs ?? 2000);
  const cacheTtlMs = nonNegativeInteger(where, 'cacheTtlMs', options.cacheTtlMs ?? 60_000);
  const inactiveTtlMs = nonNegativeInteger(where, 'inactiveTtlMs', options.inactiveTtlMs ?? 10_000);
  const maxEntries = positiveInteger(where, 'maxEntries', options.maxEntries ?? 10_000);
  const maxBytes = positiveInteger(where, 'maxBytes', options.maxBytes ?? 65_536);
  const maxTokenLength = positiveInteger(where, 'maxTokenLength', options.maxTokenLength ?? 4096);
  const toleranceMs = nonNegativeInteger(
    where,
    'clockToleranceMs',
    options.clockToleranceMs ?? 5000,
  );
  const issuers = stringsOption('issuer', options.issuer);
  const audiences = stringsOption('audience', options.audience);
  const mapPrincipal = options.principal ?? defaultPrincipal;
  if (typeof mapPrincipal !== 'function')
    invalidOption(where, 'principal', 'a function', mapPrincipal);
  const fetchFn = options.fetch ?? (globalThis.fetch as FetchFunction | undefined);
  if (typeof fetchFn !== 'function') invalidOption(where, 'fetch', 'a fetch function', fetchFn);
  const fetchImpl: FetchFunction = fetchFn;
  const logger = options.logger ?? defaultLogger;
  const clock = options.now ?? Date.now;
  if (typeof clock !== 'function') invalidOption(where, 'now', 'a function', clock);
  const shownEndpoint = new URL(endpoint).origin + new URL(endpoint).pathname;

  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<CacheEntry>>();

  function remember(key: string, entry: CacheEntry, now: number): void {
    if (entry.until <= now) return;
    cache.delete(key);
    while (cache.size >= maxEntries) {
      const oldest = cache.keys().next().value as string | undefined;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
    cache.set(key, entry);
  }

  /** Judges an answer: the active entry, or an inactive one. */
  function judge(answer: unknown, now: number): CacheEntry {
    const inactive: CacheEntry = { until: now + inactiveTtlMs, active: undefined };
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return inactive;
    const claims = answer as Record<string, unknown>;
    // RFC 7662 §2.2: `active` is a boolean; nothing but `true` is active.
    if (claims.active !== true) return inactive;
    const exp = claims.exp;
    if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) return inactive;
    if (typeof exp === 'number' && exp * 1000 + toleranceMs <= now) return inactive;
    const nbf = claims.nbf;
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf * 1000 - toleranceMs > now))
      return inactive;
    if (
      issuers !== undefined &&
      claims.iss !== undefined &&
      !issuers.includes(claims.iss as string)
    ) {
      return inactive;
    }
    if (audiences !== undefined) {
      const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
      if (!Array.isArray(aud) || !aud.some((a) => audiences.includes(a as string))) return inactive;
    }
    let init: PrincipalInit | undefined;
    try {
      init = mapPrincipal(claims);
    } catch {
      return inactive;
    }
    const expiresAt = typeof exp === 'number' ? exp * 1000 : undefined;
    const principal = buildPrincipal(init, claims, 'introspection', expiresAt);
    if (principal === undefined) return inactive;
    // Never past the token's own expiry (RFC 7662 §4).
    const until = Math.min(
      now + cacheTtlMs,
      expiresAt === undefined ? Number.POSITIVE_INFINITY : expiresAt,
    );
    return { until, active: { claims, principal } };
  }

  async function introspect(token: string, now: number): Promise<CacheEntry> {
    let answer: unknown;
    try {
      answer = await fetchJson({
        url: endpoint,
        method: 'POST',
        headers,
        body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        timeoutMs,
        maxBytes,
        fetch: fetchImpl,
      });
    } catch (err) {
      try {
        logger.warn('restwell/auth: token introspection failed', { endpoint: shownEndpoint, err });
      } catch {
        // A failing logger changes nothing about the answer.
      }
      throw new ServiceUnavailableError(
        'The access token cannot be checked right now. Retry later.',
        1,
        err,
      );
    }
    return judge(answer, now);
  }

  async function verify(token: string, call: { now?: number } = {}): Promise<IntrospectedToken> {
    if (
      typeof token !== 'string' ||
      token.length === 0 ||
      token.length > maxTokenLength ||
      !TOKEN68.test(token)
    ) {
      throw new InvalidTokenError('malformed');
    }
    const now = call.now ?? clock();
    const key = sha256(token);
    const hit = cache.get(key);
    if (hit !== undefined) {
      if (hit.until > now) {
        if (hit.active === undefined) throw new InvalidTokenError('inactive');
        const exp = hit.active.principal.expiresAt;
        if (exp === undefined || exp + toleranceMs > now) {
          return { claims: hit.active.claims, principal: hit.active.principal, cached: true };
        }
      }
      cache.delete(key);
    }
    let pending = inFlight.get(key);
    if (pending === undefined) {
      pending = introspect(token, now).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    const entry = await pending;
    if (cacheTtlMs > 0) remember(key, entry, now);
    if (entry.active === undefined) throw new InvalidTokenError('inactive');
    return { claims: entry.active.claims, principal: entry.active.principal, cached: false };
  }

  return {
    kind: 'introspection',
    verify,
    clear: () => cache.clear(),
    get size() {
      return cache.size;
    },
  };
}
