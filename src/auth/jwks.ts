/**
 * A remote JSON Web Key Set (RFC 7517 §5) with a bounded cache.
 *
 * jose's `createRemoteJWKSet` refreshes on an unknown `kid` with a cooldown,
 * but measures the cooldown from the last *successful* fetch and keeps no
 * stale set: while the JWKS endpoint is down, every request whose set has
 * aged out (or that names an unknown `kid`) waits for a fetch of its own, up
 * to the timeout, and its body is read without a size limit. This cache keeps
 * jose's key matching (`createLocalJWKSet`: `kid`, `alg`, `kty`, `crv`,
 * `use`, `key_ops`) and bounds everything around it:
 *
 * - one fetch at a time, shared by every request waiting for it;
 * - an unknown `kid` triggers at most one refresh per `cooldownMs`, counted
 *   from the last attempt, failed or not, so a flood of made-up `kid`s costs
 *   the endpoint one request per cooldown;
 * - a set older than `maxAgeMs` is refreshed in the background while requests
 *   keep using it; when the endpoint is down, a set up to `maxStaleMs` old
 *   still verifies the keys it holds;
 * - each fetch ends within `timeoutMs`, body included, and reads at most
 *   `maxBytes` and `maxKeys`; no redirects, `https:` only (or loopback `http:`).
 *
 * When no usable set can be had (the endpoint never answered, or the set is
 * too stale), verification fails with a 503 rather than a 401: the token may
 * be fine, and the client should retry, not discard it.
 */
import { checkOptions, invalidOption } from '../core/errors.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import {
  checkEndpoint,
  type FetchFunction,
  fetchJson,
  nonNegativeInteger,
  positiveInteger,
  UpstreamError,
} from './fetch.js';
import { type Jose, loadJose } from './jose.js';

/** Options of {@link remoteJwks}. */
export interface RemoteJwksOptions {
  /** The JWKS URL (`https:`, or `http:` to a loopback address). Required. */
  url: string | URL;
  /** Longest time one fetch may take, body included. @default 3000 */
  timeoutMs?: number;
  /**
   * Least time between two refreshes an unknown `kid` triggers, and between a
   * failed fetch and the next attempt. @default 30_000
   */
  cooldownMs?: number;
  /** Age after which the set is refreshed in the background. @default 600_000 (10 minutes) */
  maxAgeMs?: number;
  /**
   * Age after which a set that could not be refreshed is no longer used:
   * verification then answers 503 until the endpoint answers. Must be at least
   * `maxAgeMs`. @default 86_400_000 (a day)
   */
  maxStaleMs?: number;
  /** Largest JWKS document read. @default 262_144 */
  maxBytes?: number;
  /** Most keys a set may hold. @default 100 */
  maxKeys?: number;
  /** Headers sent with each fetch (an API key of the key server, say). */
  headers?: Record<string, string>;
  /** The fetch function. @default globalThis.fetch */
  fetch?: FetchFunction;
  /** Where failed refreshes are reported (at `warn`, at most one line per fetch). @default restwell's default logger */
  logger?: Logger;
  /** The cache's clock, in epoch milliseconds (tests). @default Date.now */
  now?: () => number;
}

const OPTIONS = [
  'url',
  'timeoutMs',
  'cooldownMs',
  'maxAgeMs',
  'maxStaleMs',
  'maxBytes',
  'maxKeys',
  'headers',
  'fetch',
  'logger',
  'now',
] as const;

/** Thrown while verifying when no usable key set can be had; answered 503. */
export class KeySetUnavailableError extends Error {
  override readonly name = 'KeySetUnavailableError';
  /** Seconds until the next fetch may be tried. */
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, options: { cause?: unknown } = {}) {
    super(
      'restwell/auth: the JSON Web Key Set cannot be fetched',
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

type LocalSet = ReturnType<Jose['createLocalJWKSet']>;
type KeyResolver = Parameters<LocalSet>;

/** What the cache knows, for tests and health checks. */
export interface RemoteJwksState {
  /** When the set in use was fetched, epoch ms; `undefined` before the first success. */
  fetchedAt: number | undefined;
  /** When the last fetch started. */
  attemptedAt: number | undefined;
  /** Whether the last fetch failed. */
  failing: boolean;
  /** Fetches started so far. */
  fetches: number;
}

/** A remote JWKS with a bounded cache; create it with {@link remoteJwks}. */
export interface RemoteJwks {
  /**
   * The key for a token's protected header (and its parts, as jose's
   * `JWTVerifyGetKey` receives them): a `CryptoKey`, typed loosely so that
   * these declarations do not need jose's.
   */
  getKey(
    header: Readonly<Record<string, unknown>>,
    token: Readonly<Record<string, unknown>>,
  ): Promise<object>;
  /** Fetches the set now (a deploy step may warm the cache); rejects when it cannot. */
  refresh(): Promise<void>;
  /** What the cache knows. */
  state(): RemoteJwksState;
}

/**
 * A remote JSON Web Key Set for `jwtVerifier({ jwks })`, with the bounded
 * cache described in this file's comment. Share one between verifiers of the
 * same issuer.
 *
 * @example
 * ```ts
 * const jwks = remoteJwks({ url: 'https://id.example.com/.well-known/jwks.json' });
 * const verifier = jwtVerifier({ jwks, algorithms: ['RS256'], issuer, audience });
 * ```
 */
export function remoteJwks(options: RemoteJwksOptions): RemoteJwks {
  checkOptions('auth remoteJwks', options, OPTIONS);
  const where = 'auth remoteJwks';
  const url = checkEndpoint(where, 'url', options?.url);
  const timeoutMs = positiveInteger(where, 'timeoutMs', options.timeoutMs ?? 3000);
  const cooldownMs = nonNegativeInteger(where, 'cooldownMs', options.cooldownMs ?? 30_000);
  const maxAgeMs = positiveInteger(where, 'maxAgeMs', options.maxAgeMs ?? 600_000);
  const maxStaleMs = positiveInteger(where, 'maxStaleMs', options.maxStaleMs ?? 86_400_000);
  if (maxStaleMs < maxAgeMs) invalidOption(where, 'maxStaleMs', 'at least maxAgeMs', maxStaleMs);
  const maxBytes = positiveInteger(where, 'maxBytes', options.maxBytes ?? 262_144);
  const maxKeys = positiveInteger(where, 'maxKeys', options.maxKeys ?? 100);
  const fetchFn = options.fetch ?? (globalThis.fetch as FetchFunction | undefined);
  if (typeof fetchFn !== 'function') invalidOption(where, 'fetch', 'a fetch function', fetchFn);
  const fetchImpl: FetchFunction = fetchFn;
  const logger = options.logger ?? defaultLogger;
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') invalidOption(where, 'now', 'a function', now);
  // Logged without its query, which may hold a key of the key server.
  const shownUrl = new URL(url).origin + new URL(url).pathname;
  const headers: Record<string, string> = {
    accept: 'application/jwk-set+json, application/json',
    ...options.headers,
  };

  let set: LocalSet | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let failing = false;
  let fetches = 0;
  let pending: Promise<void> | undefined;

  const retryAfter = () => Math.max(1, Math.ceil((attemptedAt + cooldownMs - now()) / 1000));

  function refresh(): Promise<void> {
    pending ??= (async () => {
      attemptedAt = now();
      fetches++;
      try {
        const jose = await loadJose();
        const document = await fetchJson({
          url,
          method: 'GET',
          headers,
          timeoutMs,
          maxBytes,
          fetch: fetchImpl,
        });
        const keys = (document as { keys?: unknown } | null)?.keys;
        if (!Array.isArray(keys)) throw new UpstreamError('body', 'not a JSON Web Key Set');
        if (keys.length > maxKeys) throw new UpstreamError('size', `more than ${maxKeys} keys`);
        set = jose.createLocalJWKSet(document as Parameters<Jose['createLocalJWKSet']>[0]);
        fetchedAt = now();
        failing = false;
      } catch (err) {
        failing = true;
        try {
          logger.warn('restwell/auth: fetching the JSON Web Key Set failed', {
            url: shownUrl,
            err,
          });
        } catch {
          // A failing logger changes nothing about the answer.
        }
        throw new KeySetUnavailableError(retryAfter(), { cause: err });
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  }

  async function getKey(
    header: Readonly<Record<string, unknown>>,
    token: Readonly<Record<string, unknown>>,
  ): Promise<object> {
    const args = [header, token] as unknown as KeyResolver;
    const t = now();
    if (set === undefined || t - fetchedAt > maxStaleMs) {
      // Nothing usable: wait for a fetch, unless one just failed.
      if (pending !== undefined) await pending;
      else if (failing && t - attemptedAt < cooldownMs)
        throw new KeySetUnavailableError(retryAfter());
      else await refresh();
    } else if (t - fetchedAt > maxAgeMs && pending === undefined && t - attemptedAt >= cooldownMs) {
      // Aged: refresh behind the requests, which keep the set they have.
      refresh().catch(() => {});
    }
    const current = set!;
    try {
      return await current(...args);
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // An unknown kid: perhaps a key rotated in since the last fetch.
      if (pending !== undefined) await pending;
      else if (now() - attemptedAt >= cooldownMs) await refresh();
      else if (failing) throw new KeySetUnavailableError(retryAfter());
      else throw err;
      return set!(...args);
    }
  }

  return {
    getKey,
    refresh,
    state: () => ({
      fetchedAt: Number.isFinite(fetchedAt) ? fetchedAt : undefined,
      attemptedAt: Number.isFinite(attemptedAt) ? attemptedAt : undefined,
      failing,
      fetches,
    }),
  };
}
