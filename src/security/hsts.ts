/**
 * `hsts()`: HTTP Strict Transport Security (RFC 6797). Tells a browser to
 * reach this host over HTTPS only, for `max-age` seconds.
 *
 * Sent only on responses to requests that came over TLS (RFC 6797 §7.2: a
 * host MUST NOT send it over plain HTTP, where a network attacker could
 * strip it or forge one with `max-age=0`), as `ctx.request.protocol` says:
 * the socket, or a trusted proxy's `X-Forwarded-Proto`. Set before the
 * handler runs, so that every answer carries it, problems included.
 */
import { type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';

/** Options of {@link hsts}. */
export interface HstsOptions {
  /**
   * Seconds a browser remembers to use HTTPS only. `0` tells it to forget
   * (the way to undo HSTS). @default 31536000 (one year)
   */
  maxAge?: number;
  /**
   * The policy covers every subdomain too (RFC 6797 §6.1.2). @default true
   */
  includeSubDomains?: boolean;
  /**
   * Adds `preload`, the consent the browsers' preload list
   * (hstspreload.org) asks for. That list requires `maxAge` of at least
   * 31536000 and `includeSubDomains`, checked here; it also requires the
   * header on the bare domain and a redirect from HTTP on the same host,
   * which no middleware can check. Being on the list is hard to undo: read
   * hstspreload.org first. @default false
   */
  preload?: boolean;
}

const OPTIONS = ['maxAge', 'includeSubDomains', 'preload'];
const HABITS: Record<string, string> = {
  'max-age': 'The option is maxAge, in seconds.',
  setIf: 'HSTS is sent on every response to a request that came over TLS, and never otherwise.',
};

/** The shortest max-age the preload list accepts: one year. */
const PRELOAD_MIN_MAX_AGE = 31_536_000;

/**
 * The `Strict-Transport-Security` value for these options, checked as
 * {@link hsts} checks them.
 *
 * @example
 * ```ts
 * hstsValue({ maxAge: 63072000, preload: true }); // 'max-age=63072000; includeSubDomains; preload'
 * ```
 */
export function hstsValue(options: HstsOptions = {}): string {
  checkOptions('hsts', options, OPTIONS, HABITS);
  const { maxAge = 31_536_000, includeSubDomains = true, preload = false } = options;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    invalidOption('hsts', 'maxAge', 'a whole number of seconds, 0 or more', maxAge);
  }
  if (typeof includeSubDomains !== 'boolean') {
    invalidOption('hsts', 'includeSubDomains', 'a boolean', includeSubDomains);
  }
  if (typeof preload !== 'boolean') invalidOption('hsts', 'preload', 'a boolean', preload);
  if (preload && (maxAge < PRELOAD_MIN_MAX_AGE || !includeSubDomains)) {
    throw new TypeError(
      `restwell/hsts: option "preload" needs maxAge of at least ${PRELOAD_MIN_MAX_AGE} (one year) and includeSubDomains: true, as the preload list requires; got maxAge ${maxAge} and includeSubDomains ${includeSubDomains}.`,
    );
  }
  return `max-age=${maxAge}${includeSubDomains ? '; includeSubDomains' : ''}${preload ? '; preload' : ''}`;
}

/**
 * Sends `Strict-Transport-Security` on responses to requests that came over
 * TLS, never over plain HTTP. Options are checked here, once.
 *
 * @example
 * ```ts
 * app.use(rw(httpsOnly(), hsts({ maxAge: 63072000, preload: true })));
 * ```
 */
export function hsts(options: HstsOptions = {}): Middleware {
  const value = hstsValue(options);
  return responseBlind(function strictTransportSecurity(ctx, next) {
    if (ctx.request.protocol === 'https') {
      ctx.response.headers.set('Strict-Transport-Security', value);
    }
    return next();
  });
}
