/**
 * `cors()`: Cross-Origin Resource Sharing (Fetch standard, "CORS protocol")
 * for an API, from a strict allowlist.
 *
 * What it does differently from `cors` and `@koa/cors`, where those are
 * known to be unsafe:
 * - no "reflect any origin" setting (`origin: true` there, and the default of
 *   `@koa/cors` before 5.0): an origin is allowed because it is on the list;
 *   the value sent back is the allowlist's serialisation of it, never the
 *   request's text;
 * - `*` with credentials is a construction error, not a silent switch to
 *   reflecting the request's origin (what `@koa/cors` does with
 *   `credentials: true` and `origin: '*'`);
 * - `null` (sandboxed frames, `file:` pages, cross-origin redirects) is
 *   refused unless `allowNull`, and never with credentials;
 * - wildcards are compared label by label, and a RegExp must be anchored at
 *   both ends, so that `https://example.com.evil.net` or
 *   `https://evilexample.com` cannot pass;
 * - allowed request headers are a list, compared case-insensitively, never
 *   the request's `Access-Control-Request-Headers` echoed back;
 * - a refused preflight gets no CORS header at all (both libraries answer
 *   it 204 with `Access-Control-Allow-Methods` and the rest);
 * - `Vary: Origin` on every response whose CORS headers depend on the
 *   origin, also those to requests without one, so that a shared cache never
 *   serves one origin's answer to another; preflights vary on the request
 *   method and headers too;
 * - Private Network Access is answered only when enabled, and only for an
 *   allowed origin.
 *
 * CORS decides which other sites' scripts may *read* responses; it stops no
 * request from reaching the server (a form post is sent whatever the
 * policy). It is not CSRF protection.
 */
import { answeredBy, type Middleware } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { vary } from '../conditional/vary.js';
import { CorsPreflightRefusedError } from './errors.js';
import {
  isLoopbackOrigin,
  type OriginMatcher,
  type OriginPattern,
  originMatcher,
  parseOrigin,
} from './origin.js';

/** Options of {@link cors}. */
export interface CorsOptions {
  /**
   * Which origins' scripts may read responses: a list of exact origins
   * (`https://app.example.com`), wildcards (`https://*.example.com`, any
   * subdomain at any depth, not the domain itself) and RegExps anchored with
   * `^` and `$`; or `'*'` for a public API read without credentials (then
   * `Access-Control-Allow-Origin: *` on every response). Required.
   */
  origins: '*' | readonly OriginPattern[];
  /**
   * Send `Access-Control-Allow-Credentials: true`: allowed origins may send
   * cookies or HTTP authentication and read the answers. Not with
   * `origins: '*'` nor `allowNull`. @default false
   */
  credentials?: boolean;
  /**
   * Methods a preflight may ask for (`Access-Control-Request-Method`,
   * compared exactly, as Fetch does). GET, HEAD and POST never need a
   * preflight. @default ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
   */
  methods?: readonly string[];
  /**
   * Request headers a preflight may ask for, compared case-insensitively.
   * `Accept`, `Accept-Language` and `Content-Language` are always allowed
   * (CORS-safelisted, Fetch §2.2.2). `*` is not accepted: list them.
   * @default the ones restwell's modules read: ['Authorization',
   * 'Content-Type', 'Idempotency-Key', 'If-Match', 'If-None-Match',
   * 'If-Modified-Since', 'If-Unmodified-Since', 'X-API-Key', 'traceparent',
   * 'tracestate']
   */
  allowHeaders?: readonly string[];
  /**
   * Response headers scripts of an allowed origin may read, besides the
   * CORS-safelisted ones (Cache-Control, Content-Language, Content-Length,
   * Content-Type, Expires, Last-Modified, Pragma), which never need
   * listing. If the adapter's `traceHeader` is not `Trace-Id`, list yours.
   * @default the ones restwell's modules send: ['Trace-Id', 'RateLimit',
   * 'RateLimit-Policy', 'Retry-After', 'Idempotent-Replayed', 'Link', 'ETag',
   * 'Location', 'Deprecation', 'Sunset']
   */
  exposeHeaders?: readonly string[];
  /**
   * Seconds a browser may cache a preflight's answer
   * (`Access-Control-Max-Age`). Browsers cap it (Chromium at 7200, Firefox
   * at 86400); a change to the allowlist reaches a browser once its cache
   * expires. @default 600
   */
  maxAge?: number;
  /**
   * Answer Private Network Access preflights
   * (`Access-Control-Request-Private-Network: true`) from allowed origins
   * with `Access-Control-Allow-Private-Network: true`, for an API on a
   * private network that public sites may call. @default false
   */
  privateNetwork?: boolean;
  /**
   * Allow the opaque origin `null` (sandboxed iframes, `file:` pages, data
   * URLs, requests after a cross-origin redirect). Any site can produce it,
   * so it is as good as `*`; never with credentials. @default false
   */
  allowNull?: boolean;
  /**
   * Allow `http:` origins other than loopback with `credentials`. A page
   * served over plain HTTP can be rewritten by anyone on its network, who
   * then reads the user's credentialed answers. @default false
   */
  allowInsecureOrigins?: boolean;
}

/** The request headers restwell's modules read, allowed by default. */
export const DEFAULT_ALLOW_HEADERS: readonly string[] = [
  'Authorization',
  'Content-Type',
  'Idempotency-Key',
  'If-Match',
  'If-None-Match',
  'If-Modified-Since',
  'If-Unmodified-Since',
  'X-API-Key',
  'traceparent',
  'tracestate',
];

/**
 * The response headers restwell's modules send that a script may need,
 * exposed by default. None is CORS-safelisted (Fetch §2.2.6 lists
 * Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
 * Last-Modified and Pragma).
 */
export const DEFAULT_EXPOSE_HEADERS: readonly string[] = [
  'Trace-Id',
  'RateLimit',
  'RateLimit-Policy',
  'Retry-After',
  'Idempotent-Replayed',
  'Link',
  'ETag',
  'Location',
  'Deprecation',
  'Sunset',
];

const DEFAULT_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const SAFELISTED_REQUEST_HEADERS = ['accept', 'accept-language', 'content-language'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const OPTIONS = [
  'origins',
  'credentials',
  'methods',
  'allowHeaders',
  'exposeHeaders',
  'maxAge',
  'privateNetwork',
  'allowNull',
  'allowInsecureOrigins',
];
const HABITS: Record<string, string> = {
  origin:
    'The allowlist is origins: a list of origins, wildcards ("https://*.example.com") and anchored RegExps, or "*". There is no setting that reflects any origin.',
  allowedHeaders: 'The option is allowHeaders.',
  exposedHeaders: 'The option is exposeHeaders.',
  allowMethods: 'The option is methods.',
  privateNetworkAccess: 'The option is privateNetwork.',
  preflightContinue:
    'Preflights are always answered here: 204 when allowed, a 403 problem without CORS headers when not.',
  optionsSuccessStatus: 'An allowed preflight is always answered 204.',
  keepHeadersOnError: 'CORS headers are always kept on problem responses.',
  secureContext:
    'Cross-Origin-Opener-Policy is securityHeaders({ crossOriginOpenerPolicy }); COEP is for documents.',
};

function headerList(option: string, value: unknown, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && TOKEN.test(v))) {
    invalidOption('cors', option, 'a list of header names', value);
  }
  if (value.includes('*')) {
    invalidOption('cors', option, 'header names; "*" is not accepted, list them', value);
  }
  return value as string[];
}

function flag(option: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') invalidOption('cors', option, 'a boolean', value);
  return value;
}

/**
 * CORS for an API: answers preflights itself (204, or a 403 problem with no
 * CORS header when the origin, method or a header is not allowed), and adds
 * `Access-Control-Allow-Origin` (with `-Credentials` and `-Expose-Headers`)
 * to every response to an allowed origin, problems included. Mount it
 * before authentication (a preflight carries no credentials) and before
 * anything that may refuse a request, so that a browser script can read the
 * refusal. Every option is checked here, once.
 *
 * @example
 * ```ts
 * app.use(rw(cors({
 *   origins: ['https://app.example.com', 'https://*.preview.example.com'],
 *   credentials: true,
 * })));
 * ```
 */
export function cors(options: CorsOptions): Middleware {
  checkOptions('cors', options, OPTIONS, HABITS);
  if (options === undefined) invalidOption('cors', 'origins', 'required', undefined);
  const credentials = flag('credentials', options.credentials);
  const privateNetwork = flag('privateNetwork', options.privateNetwork);
  const allowNull = flag('allowNull', options.allowNull);
  const allowInsecure = flag('allowInsecureOrigins', options.allowInsecureOrigins);
  const { origins } = options;

  let matcher: OriginMatcher | undefined;
  if (origins === '*') {
    if (credentials) {
      throw new TypeError(
        'restwell/cors: origins "*" cannot be used with credentials: true (Fetch refuses the pair, and reflecting the request\'s origin instead would let any site read credentialed answers). List the origins.',
      );
    }
  } else if (Array.isArray(origins) && origins.length > 0) {
    matcher = originMatcher(origins);
    if (credentials && !allowInsecure) {
      for (const [i, pattern] of origins.entries()) {
        const scheme =
          typeof pattern === 'string'
            ? /^\s*([A-Za-z][A-Za-z0-9+.-]*):/.exec(pattern)?.[1]
            : undefined;
        const origin =
          typeof pattern === 'string' && !pattern.includes('*')
            ? parseOrigin(pattern.trim())
            : undefined;
        if (
          scheme?.toLowerCase() === 'http' &&
          (origin === undefined || !isLoopbackOrigin(origin))
        ) {
          throw new TypeError(
            `restwell/cors: option "origins[${i}]" is a plain-http origin, which anyone on its network can rewrite to read credentialed answers. Serve it over https, or set allowInsecureOrigins: true.`,
          );
        }
      }
    }
  } else {
    invalidOption(
      'cors',
      'origins',
      'a non-empty list of origins, wildcards and anchored RegExps, or "*"',
      origins,
    );
  }
  if (allowNull && credentials) {
    throw new TypeError(
      'restwell/cors: allowNull cannot be used with credentials: true: any site can make a request with the null origin (a sandboxed iframe), so it would read credentialed answers.',
    );
  }

  const methods = headerList('methods', options.methods, DEFAULT_METHODS).map((m) =>
    m.toUpperCase(),
  );
  const methodSet = new Set(methods);
  const allowHeaders = headerList('allowHeaders', options.allowHeaders, DEFAULT_ALLOW_HEADERS);
  const allowHeaderSet = new Set([
    ...allowHeaders.map((h) => h.toLowerCase()),
    ...SAFELISTED_REQUEST_HEADERS,
  ]);
  const exposeHeaders = headerList('exposeHeaders', options.exposeHeaders, DEFAULT_EXPOSE_HEADERS);
  if (exposeHeaders.some((h) => /^set-cookie2?$/i.test(h))) {
    invalidOption(
      'cors',
      'exposeHeaders',
      'header names a script can be given (Fetch never exposes Set-Cookie)',
      exposeHeaders,
    );
  }
  const maxAge = options.maxAge ?? 600;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0 || maxAge > 86_400) {
    invalidOption('cors', 'maxAge', 'a whole number of seconds from 0 to 86400', maxAge);
  }

  const allowMethodsValue = methods.join(', ');
  const allowHeadersValue = allowHeaders.join(', ');
  const exposeValue = exposeHeaders.join(', ');
  const maxAgeValue = String(maxAge);
  // With '*', the answer is the same for every origin: nothing to vary on.
  const variesOnOrigin = matcher !== undefined;
  const preflightVary = [
    ...(variesOnOrigin ? ['Origin'] : []),
    'Access-Control-Request-Method',
    'Access-Control-Request-Headers',
    ...(privateNetwork ? ['Access-Control-Request-Private-Network'] : []),
  ];

  /** The `Access-Control-Allow-Origin` value for this `Origin`, or `undefined` when it is not allowed. */
  function allowedValue(origin: string | undefined): string | undefined {
    if (matcher === undefined) return '*';
    if (origin === undefined) return undefined;
    if (origin === 'null') return allowNull ? 'null' : undefined;
    const parsed = parseOrigin(origin);
    return parsed !== undefined && matcher(parsed) ? parsed.serialized : undefined;
  }

  /** Whether every name in `Access-Control-Request-Headers` is allowed. */
  function headersAllowed(requested: string | undefined): boolean {
    if (requested === undefined) return true;
    for (const part of requested.split(',')) {
      const name = part.trim().toLowerCase();
      if (name.length > 0 && !allowHeaderSet.has(name)) return false;
    }
    return true;
  }

  return async function corsPolicy(ctx, next) {
    const request = ctx.request;
    const headers = ctx.response.headers;
    const origin = request.header('origin');
    const requestedMethod = request.header('access-control-request-method');

    if (request.method === 'OPTIONS' && origin !== undefined && requestedMethod !== undefined) {
      vary(headers, ...preflightVary);
      const allowOrigin = allowedValue(origin);
      if (allowOrigin === undefined) throw new CorsPreflightRefusedError('origin');
      if (!methodSet.has(requestedMethod.trim())) throw new CorsPreflightRefusedError('method');
      if (!headersAllowed(request.header('access-control-request-headers'))) {
        throw new CorsPreflightRefusedError('headers');
      }
      headers.set('Access-Control-Allow-Origin', allowOrigin);
      if (credentials) headers.set('Access-Control-Allow-Credentials', 'true');
      headers.set('Access-Control-Allow-Methods', allowMethodsValue);
      if (allowHeadersValue.length > 0) {
        headers.set('Access-Control-Allow-Headers', allowHeadersValue);
      }
      headers.set('Access-Control-Max-Age', maxAgeValue);
      if (
        privateNetwork &&
        request.header('access-control-request-private-network')?.trim().toLowerCase() === 'true'
      ) {
        headers.set('Access-Control-Allow-Private-Network', 'true');
      }
      // Body first: Koa answers a body set to null with 204 unless the status comes after it.
      ctx.response.body = null;
      ctx.response.status = 204;
      answeredBy(ctx, 'security', '204 cors preflight');
      return;
    }

    if (variesOnOrigin) vary(headers, 'Origin');
    const allowOrigin = allowedValue(origin);
    if (allowOrigin !== undefined) {
      headers.set('Access-Control-Allow-Origin', allowOrigin);
      if (credentials) headers.set('Access-Control-Allow-Credentials', 'true');
      if (exposeValue.length > 0) headers.set('Access-Control-Expose-Headers', exposeValue);
    }
    if (!variesOnOrigin) return next();
    try {
      await next();
    } finally {
      // A handler that set Vary itself may have dropped Origin: merge it back.
      const final = ctx.response.headers;
      if (!/(^|,)\s*(origin|\*)\s*(,|$)/i.test(final.get('vary') ?? '')) {
        try {
          vary(final, 'Origin');
        } catch {
          // The head is on its way already (a streamed response): too late to change it.
        }
      }
    }
  };
}
