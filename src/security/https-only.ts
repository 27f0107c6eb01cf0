/**
 * `httpsOnly()`: an API served over HTTPS answers nothing over plain HTTP.
 *
 * Whether a request came over TLS is `ctx.request.protocol`, which the adapter
 * takes from the socket, or from `X-Forwarded-Proto` only when the socket's
 * peer is a proxy its `trustProxy` option trusts (src/core/ip.ts): a client
 * that sends `X-Forwarded-Proto: https` itself over plain HTTP is still on
 * plain HTTP. Plain-HTTP requests are refused with a 403 `https-required`
 * problem; with `redirect`, a GET or HEAD is sent to the same path on HTTPS
 * with a 308 instead. Other methods are never redirected: their body has
 * already crossed the network in clear, and a redirect would have the client
 * send it a second time.
 *
 * The redirect's host is never the request's `Host` as such: a client (or a
 * cache poisoned by one) choosing it would make this an open redirect. It is
 * either one configured host, or the request's host when it is on a
 * configured list.
 */
import { answeredBy, type Context, type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { HttpsRequiredError } from './errors.js';
import { isHostName, parseHost } from './host.js';

/** Where {@link httpsOnly} redirects a plain-HTTP GET or HEAD. Give `host` or `hosts`. */
export interface HttpsRedirectOptions {
  /**
   * The one host every redirect goes to, for example `api.example.com`
   * (a host name, an IPv4 address or a bracketed IPv6 literal; no port,
   * no scheme).
   */
  host?: string;
  /**
   * The hosts a redirect may go to: a request whose `Host` is one of them
   * (compared case-insensitively, without its port) is redirected to that
   * host on HTTPS; any other is refused with the 403, as without `redirect`.
   */
  hosts?: readonly string[];
  /** The HTTPS port the redirect names; 443 is left out of the URL. @default 443 */
  port?: number;
}

/** Options of {@link httpsOnly}. */
export interface HttpsOnlyOptions {
  /**
   * Redirect a plain-HTTP GET or HEAD to HTTPS with a 308 (RFC 9110
   * §15.4.9), to the configured host. Every other method is refused (403)
   * either way. @default false (every plain-HTTP request is refused)
   */
  redirect?: false | HttpsRedirectOptions;
  /**
   * Lets a request through over plain HTTP when it returns true, for example
   * a load balancer's health check on the private network:
   * `skip: (ctx) => ctx.request.path === '/health'`. @default undefined
   */
  skip?: (ctx: Context) => boolean;
}

const OPTIONS = ['redirect', 'skip'];
const REDIRECT_OPTIONS = ['host', 'hosts', 'port'];
const HABITS: Record<string, string> = {
  hsts: 'HSTS is its own middleware here: hsts({ maxAge, includeSubDomains, preload }).',
  trustProxy:
    "Which proxies to believe is the adapter's option: expressAdapter({ trustProxy }) or koaAdapter({ trustProxy }).",
  statusCode: 'A refusal is always a 403 https-required problem; a redirect is always a 308.',
};

/** A host a redirect may name: a DNS name, an IPv4 address or a bracketed IPv6 literal. */
function redirectHost(option: string, value: unknown): string {
  if (typeof value === 'string') {
    const parsed = parseHost(value);
    if (parsed !== undefined && parsed.port === undefined && isRedirectable(parsed.host)) {
      return parsed.host;
    }
  }
  return invalidOption(
    'httpsOnly',
    option,
    'a host name or address without scheme or port, for example "api.example.com"',
    value,
  );
}

function isRedirectable(host: string): boolean {
  return host.startsWith('[') || isHostName(host);
}

/** Bytes a `Location` value may not carry as they are, percent-encoded (RFC 3986 §2.1). */
function encodeTarget(url: string): string {
  if (url.charCodeAt(0) !== 0x2f) return '/';
  // Node's parser refuses control and non-ASCII bytes in the target; encode
  // anything outside visible ASCII all the same, so that the header is valid
  // whatever an adapter passes.
  return /^[\x21-\x7e]*$/.test(url)
    ? url
    : url.replace(/[^\x21-\x7e]/gu, (c) =>
        Array.from(
          Buffer.from(c, 'utf8'),
          (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
        ).join(''),
      );
}

/**
 * Refuses plain-HTTP requests with a 403 `https-required` problem, or with
 * `redirect`, sends a plain-HTTP GET or HEAD to HTTPS with a 308. Mount it
 * first, before anything reads the request. It does not send HSTS: mount
 * `hsts()` for that (it is sent over HTTPS only, RFC 6797 §7.2).
 *
 * @example
 * ```ts
 * app.use(rw(httpsOnly({ redirect: { host: 'api.example.com' } }), hsts(), ...));
 * ```
 */
export function httpsOnly(options: HttpsOnlyOptions = {}): Middleware {
  checkOptions('httpsOnly', options, OPTIONS, HABITS);
  const { redirect = false, skip } = options;
  if (skip !== undefined && typeof skip !== 'function') {
    invalidOption('httpsOnly', 'skip', 'a function of the context', skip);
  }
  let fixedHost: string | undefined;
  let allowedHosts: ReadonlySet<string> | undefined;
  let portSuffix = '';
  if (redirect !== false) {
    if (redirect === null || typeof redirect !== 'object' || Array.isArray(redirect)) {
      invalidOption('httpsOnly', 'redirect', 'false or { host } or { hosts }', redirect);
    }
    checkOptions('httpsOnly redirect', redirect, REDIRECT_OPTIONS);
    if ((redirect.host === undefined) === (redirect.hosts === undefined)) {
      invalidOption(
        'httpsOnly',
        'redirect',
        'an object with exactly one of host (the canonical host) or hosts (an allowlist)',
        redirect,
      );
    }
    if (redirect.host !== undefined) fixedHost = redirectHost('redirect.host', redirect.host);
    else {
      if (!Array.isArray(redirect.hosts) || redirect.hosts.length === 0) {
        invalidOption('httpsOnly', 'redirect.hosts', 'a non-empty list of hosts', redirect.hosts);
      }
      allowedHosts = new Set(redirect.hosts.map((h, i) => redirectHost(`redirect.hosts[${i}]`, h)));
    }
    const port = redirect.port ?? 443;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      invalidOption('httpsOnly', 'redirect.port', 'a port number from 1 to 65535', port);
    }
    if (port !== 443) portSuffix = `:${port}`;
  }
  const redirects = redirect !== false;
  let warned = false;

  /** The HTTPS URL of this request, or `undefined` when its host is not one to redirect to. */
  function target(ctx: Context): string | undefined {
    let host = fixedHost;
    if (host === undefined) {
      const given = ctx.request.header('host');
      const parsed = given === undefined ? undefined : parseHost(given);
      if (parsed === undefined || !allowedHosts!.has(parsed.host)) return undefined;
      host = parsed.host;
    }
    return `https://${host}${portSuffix}${encodeTarget(ctx.request.url)}`;
  }

  return responseBlind(function httpsOnlyGuard(ctx, next) {
    if (ctx.request.protocol === 'https' || skip?.(ctx) === true) return next();
    if (!warned && /https/i.test(ctx.request.header('x-forwarded-proto') ?? '')) {
      // The usual misconfiguration: a TLS proxy in front that the adapter does not trust.
      warned = true;
      ctx.log.warn(
        "httpsOnly: refused a request whose X-Forwarded-Proto says https, from a peer the adapter does not trust; if a TLS proxy is in front, set the adapter's trustProxy option. Logged once.",
        { traceId: ctx.traceId },
      );
    }
    const method = ctx.request.method;
    if (redirects && (method === 'GET' || method === 'HEAD')) {
      const location = target(ctx);
      if (location !== undefined) {
        ctx.response.headers.set('Location', location);
        // Body first: Koa answers a body set to null with 204 unless the status comes after it.
        ctx.response.body = null;
        ctx.response.status = 308;
        answeredBy(ctx, 'security', '308 to https');
        return;
      }
    }
    throw new HttpsRequiredError();
  });
}
