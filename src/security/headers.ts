/**
 * `securityHeaders()`: the response headers a JSON API sends so that a
 * browser never treats one of its responses as something else: a script
 * (`nosniff`), a page in a frame (clickjacking), a document that may load
 * anything (a restrictive CSP, for the HTML error page a proxy or framework
 * may still produce), a resource another site may embed (CORP), a window
 * other pages may script (COOP), or a source of `Referer` leaks. Removes
 * `X-Powered-By`.
 *
 * helmet makes the same headers, and was measured against (see
 * docs/security.md and test/security/helmet.test.ts): its defaults are for
 * HTML sites (a CSP with script and style sources, `X-Frame-Options:
 * SAMEORIGIN`), and it sends `Strict-Transport-Security` on every response,
 * plain HTTP included, where RFC 6797 §7.2 forbids it and where it cannot
 * see the protocol a trusted proxy reports. The values here are computed
 * once and written to the framework-free context, so that they are the same
 * on every adapter; `hsts()` sends HSTS over TLS only.
 */
import type { Middleware } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';

/** `Referrer-Policy` values (W3C Referrer Policy §3). */
export type ReferrerPolicy =
  | 'no-referrer'
  | 'no-referrer-when-downgrade'
  | 'origin'
  | 'origin-when-cross-origin'
  | 'same-origin'
  | 'strict-origin'
  | 'strict-origin-when-cross-origin'
  | 'unsafe-url';

/** `Cross-Origin-Opener-Policy` values (HTML §7.1.3). */
export type CrossOriginOpenerPolicy =
  | 'same-origin'
  | 'same-origin-allow-popups'
  | 'noopener-allow-popups'
  | 'unsafe-none';

/** `Cross-Origin-Resource-Policy` values (Fetch §3.8). */
export type CrossOriginResourcePolicy = 'same-origin' | 'same-site' | 'cross-origin';

/** Options of {@link securityHeaders}. Each header can be changed, or turned off with `false`. */
export interface SecurityHeadersOptions {
  /**
   * `Content-Security-Policy`. The default forbids every fetch, `<base>`,
   * form submissions and framing, which is right for any HTML a JSON API
   * may end up serving (an error page): nothing in it can run or be framed.
   * @default "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
   */
  contentSecurityPolicy?: string | false;
  /**
   * `Cross-Origin-Opener-Policy`: a page of this origin gets its own
   * browsing context group. @default 'same-origin'
   */
  crossOriginOpenerPolicy?: CrossOriginOpenerPolicy | false;
  /**
   * `Cross-Origin-Resource-Policy`: which sites may load a response in
   * `no-cors` mode (`<img>`, `<script>`). It does not affect `fetch()` in
   * CORS mode, which `cors()` governs; set `'cross-origin'` for files
   * meant to be embedded elsewhere. @default 'same-origin'
   */
  crossOriginResourcePolicy?: CrossOriginResourcePolicy | false;
  /** `Referrer-Policy`: links in an API response leak no URL. @default 'no-referrer' */
  referrerPolicy?: ReferrerPolicy | false;
  /**
   * `X-Frame-Options`, for browsers that predate CSP `frame-ancestors`.
   * @default 'DENY'
   */
  xFrameOptions?: 'DENY' | 'SAMEORIGIN' | false;
  /** `X-Content-Type-Options: nosniff`: a body is only ever its declared type. @default true */
  xContentTypeOptions?: boolean;
  /** Remove `X-Powered-By` (Express sets it unless disabled). @default true */
  removePoweredBy?: boolean;
}

const OPTIONS = [
  'contentSecurityPolicy',
  'crossOriginOpenerPolicy',
  'crossOriginResourcePolicy',
  'referrerPolicy',
  'xFrameOptions',
  'xContentTypeOptions',
  'removePoweredBy',
];
const HABITS: Record<string, string> = {
  frameguard: 'The option is xFrameOptions: "DENY", "SAMEORIGIN" or false.',
  noSniff: 'The option is xContentTypeOptions (a boolean).',
  hidePoweredBy: 'The option is removePoweredBy (a boolean).',
  xPoweredBy: 'The option is removePoweredBy (a boolean).',
  hsts: 'HSTS is its own middleware, sent over TLS only: hsts({ maxAge, includeSubDomains, preload }).',
  strictTransportSecurity:
    'HSTS is its own middleware, sent over TLS only: hsts({ maxAge, includeSubDomains, preload }).',
  crossOriginEmbedderPolicy:
    'COEP only matters for documents that embed others; a JSON API has none. Set it in your handler if you serve such documents.',
};

/** The default `Content-Security-Policy`: nothing may load, submit or frame. */
export const API_CONTENT_SECURITY_POLICY =
  "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const REFERRER_POLICIES: readonly ReferrerPolicy[] = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'origin',
  'origin-when-cross-origin',
  'same-origin',
  'strict-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
];
const OPENER_POLICIES: readonly CrossOriginOpenerPolicy[] = [
  'same-origin',
  'same-origin-allow-popups',
  'noopener-allow-popups',
  'unsafe-none',
];
const RESOURCE_POLICIES: readonly CrossOriginResourcePolicy[] = [
  'same-origin',
  'same-site',
  'cross-origin',
];

function oneOf<T extends string>(
  option: string,
  value: unknown,
  allowed: readonly T[],
): T | undefined {
  if (value === false) return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value))
    return value as T;
  return invalidOption(
    'securityHeaders',
    option,
    `one of ${allowed.map((a) => `"${a}"`).join(', ')} or false`,
    value,
  );
}

/** A CSP serialisation: directives of visible ASCII separated by `;` (CSP3 §2.2.1). */
function checkPolicy(value: unknown): string | undefined {
  if (value === false) return undefined;
  if (
    typeof value === 'string' &&
    /^[\x20-\x7e]+$/.test(value) &&
    !value.includes(',') &&
    value
      .split(';')
      .map((d) => d.trim())
      .filter((d) => d.length > 0)
      .every((d) => /^[A-Za-z0-9-]+(?:\s|$)/.test(d))
  ) {
    return value.trim();
  }
  return invalidOption(
    'securityHeaders',
    'contentSecurityPolicy',
    'a policy of ";"-separated directives, such as "default-src \'none\'", or false',
    value,
  );
}

function flag(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') invalidOption('securityHeaders', option, 'a boolean', value);
  return value;
}

/**
 * The headers {@link securityHeaders} sends for these options, as
 * `[name, value]` pairs, checked as the middleware checks them.
 *
 * @example
 * ```ts
 * securityHeaderValues({ crossOriginResourcePolicy: 'cross-origin' });
 * // [['X-Content-Type-Options', 'nosniff'], ['X-Frame-Options', 'DENY'], ...]
 * ```
 */
export function securityHeaderValues(
  options: SecurityHeadersOptions = {},
): Array<[name: string, value: string]> {
  checkOptions('securityHeaders', options, OPTIONS, HABITS);
  const {
    contentSecurityPolicy = API_CONTENT_SECURITY_POLICY,
    crossOriginOpenerPolicy = 'same-origin',
    crossOriginResourcePolicy = 'same-origin',
    referrerPolicy = 'no-referrer',
    xFrameOptions = 'DENY',
    xContentTypeOptions = true,
  } = options;
  const out: Array<[string, string]> = [];
  if (flag('xContentTypeOptions', xContentTypeOptions)) {
    out.push(['X-Content-Type-Options', 'nosniff']);
  }
  const frame = oneOf('xFrameOptions', xFrameOptions, ['DENY', 'SAMEORIGIN'] as const);
  if (frame !== undefined) out.push(['X-Frame-Options', frame]);
  const csp = checkPolicy(contentSecurityPolicy);
  if (csp !== undefined) out.push(['Content-Security-Policy', csp]);
  const referrer = oneOf('referrerPolicy', referrerPolicy, REFERRER_POLICIES);
  if (referrer !== undefined) out.push(['Referrer-Policy', referrer]);
  const corp = oneOf('crossOriginResourcePolicy', crossOriginResourcePolicy, RESOURCE_POLICIES);
  if (corp !== undefined) out.push(['Cross-Origin-Resource-Policy', corp]);
  const coop = oneOf('crossOriginOpenerPolicy', crossOriginOpenerPolicy, OPENER_POLICIES);
  if (coop !== undefined) out.push(['Cross-Origin-Opener-Policy', coop]);
  return out;
}

/**
 * Sends the security headers of a JSON API on every response (success,
 * problem, 404, preflight) and removes `X-Powered-By`. The headers are set
 * before the handler runs, so that a route may replace one (a download that
 * may be embedded sets its own `Cross-Origin-Resource-Policy`);
 * `X-Powered-By` is removed again once the response is final, since a
 * mounted sub-app sets it anew. Values are computed and checked here, once.
 *
 * @example
 * ```ts
 * app.use(rw(securityHeaders(), cors({ origins: ['https://app.example.com'] })));
 * ```
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): Middleware {
  const values = securityHeaderValues(options);
  const removePoweredBy = flag('removePoweredBy', options.removePoweredBy ?? true);
  return async function apiSecurityHeaders(ctx, next) {
    const headers = ctx.response.headers;
    for (const [name, value] of values) headers.set(name, value);
    if (!removePoweredBy) return next();
    headers.delete('x-powered-by');
    try {
      await next();
    } finally {
      // Read again: an adapter may have swapped the response view while the chain ran.
      const final = ctx.response.headers;
      if (final.has('x-powered-by')) {
        try {
          final.delete('x-powered-by');
        } catch {
          // The head is on its way already (a streamed response): too late to change it.
        }
      }
    }
  };
}
