/**
 * Origins (RFC 6454) as CORS compares them: parsed, serialised, and matched
 * against an allowlist of exact origins, `https://*.example.com` wildcards
 * and anchored regular expressions.
 *
 * An `Origin` header is `null` or `scheme "://" host [ ":" port ]`
 * (RFC 6454 §7.1), nothing more: no path, no trailing slash, no user info.
 * Two origins are the same when their scheme, host and port are
 * (§5); the serialisation lower-cases the scheme and host and leaves out a
 * scheme's default port (§6.2), which is the form a browser sends and the
 * form `Access-Control-Allow-Origin` must repeat. A value that does not parse
 * matches nothing. Wildcards are compared label by label, never compiled into
 * a regular expression from configuration text.
 */
import { domainToASCII } from 'node:url';
import { invalidOption } from '../core/errors.js';
import { isHostName, parseHost } from './host.js';

/** An origin as a (scheme, host, port) tuple, and its serialisation. */
export interface TupleOrigin {
  /** Lower case, without `://`. */
  readonly scheme: string;
  /** Lower case; an IPv6 literal keeps its brackets. */
  readonly host: string;
  /** `undefined` for the scheme's default port. */
  readonly port: number | undefined;
  /** `scheme://host[:port]`, as RFC 6454 §6.2 serialises it. */
  readonly serialized: string;
}

// The WHATWG URL standard's special schemes and their default ports.
const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  http: 80,
  https: 443,
  ws: 80,
  wss: 443,
  ftp: 21,
};

const ORIGIN = /^([A-Za-z][A-Za-z0-9+.-]{0,31}):\/\/([^/?#@\\\s]+)$/;

/**
 * Parses an `Origin` value into its tuple, or `undefined` when it is
 * `null`, a list, or anything but `scheme://host[:port]`.
 *
 * @example
 * ```ts
 * parseOrigin('HTTPS://Example.com:443')?.serialized; // 'https://example.com'
 * parseOrigin('https://example.com/');                 // undefined (a path)
 * ```
 */
export function parseOrigin(value: string): TupleOrigin | undefined {
  if (value.length > 300) return undefined;
  const m = ORIGIN.exec(value);
  if (m === null) return undefined;
  const scheme = m[1]!.toLowerCase();
  const authority = parseHost(m[2]!);
  if (authority === undefined) return undefined;
  const port = authority.port === DEFAULT_PORTS[scheme] ? undefined : authority.port;
  // A trailing dot names the same host in DNS, but not the same origin.
  const host = authority.host;
  return {
    scheme,
    host,
    port,
    serialized: `${scheme}://${host}${port === undefined ? '' : `:${port}`}`,
  };
}

/** One entry of an origin allowlist: an exact origin, a `*.` wildcard, or an anchored RegExp. */
export type OriginPattern = string | RegExp;

interface Wildcard {
  readonly scheme: string;
  /** The host the subdomains are under, with a leading dot: `.example.com`. */
  readonly suffix: string;
  readonly port: number | undefined;
}

/** Tests an origin against an allowlist compiled once by {@link originMatcher}. */
export type OriginMatcher = (origin: TupleOrigin) => boolean;

/** Exact origins from configuration: IDN hosts become their ASCII form, as browsers send them. */
function configuredOrigin(module: string, option: string, text: string): TupleOrigin {
  let candidate = text.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(candidate);
  if (m !== null && /[\u0080-\uffff]/.test(m[2]!)) {
    const [name, ...port] = m[2]!.split(':');
    const ascii = domainToASCII(name ?? '');
    if (ascii !== '') candidate = `${m[1]}${[ascii, ...port].join(':')}${m[3]}`;
  }
  const origin = parseOrigin(candidate);
  if (origin !== undefined) return origin;
  const hint = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]+\/$/.test(candidate)
    ? ' (an origin has no path, not even "/")'
    : '';
  return invalidOption(
    module,
    option,
    `an origin "scheme://host[:port]"${hint}, a "https://*.example.com" wildcard or an anchored RegExp`,
    text,
  );
}

function wildcard(module: string, option: string, text: string): Wildcard {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/\*\.([^/?#:*]+)(?::(\d{1,5}))?$/.exec(text.trim());
  const suffix = m?.[2]?.toLowerCase();
  if (m === null || suffix === undefined || !isHostName(suffix) || !suffix.includes('.')) {
    return invalidOption(
      module,
      option,
      'a wildcard of the form "https://*.example.com" (one "*." in front of a host of two labels or more, an optional port, nothing else)',
      text,
    );
  }
  const scheme = m[1]!.toLowerCase();
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) {
    invalidOption(module, option, 'a port from 0 to 65535', text);
  }
  return {
    scheme,
    suffix: `.${suffix.replace(/\.$/, '')}`,
    port: port === DEFAULT_PORTS[scheme] ? undefined : port,
  };
}

/**
 * Checks that a RegExp entry is written anchored, and returns the one that is
 * tested: the same pattern wrapped as `^(?:...)$`. Anchors written at the two
 * ends do not anchor a top-level alternation: in
 * `/^https:\/\/a\.example\.com|https:\/\/b\.example\.com$/` the first branch
 * has no `$` and matches `https://a.example.com.evil.net`. Wrapped, every
 * branch must match the whole serialised origin.
 */
function anchored(module: string, option: string, re: RegExp): RegExp {
  // Unanchored, /example\.com/ allows https://example.com.evil.net; global
  // or sticky, test() would remember lastIndex between requests.
  const source = re.source;
  const endsAnchored = source.endsWith('$') && !/(^|[^\\])(\\\\)*\\\$$/.test(source);
  if (!source.startsWith('^') || !endsAnchored || re.global || re.sticky) {
    invalidOption(
      module,
      option,
      'a RegExp anchored at both ends (/^https:\\/\\/app\\.example\\.com$/), without the g or y flag',
      re,
    );
  }
  return new RegExp(`^(?:${source})$`, re.flags);
}

/**
 * Compiles an allowlist into one matcher, checking every entry: an exact
 * origin (`https://app.example.com`, normalised: `HTTPS://App.example.com:443`
 * is the same entry), a wildcard (`https://*.example.com` matches any
 * subdomain, at any depth, on that scheme and port, and not
 * `https://example.com` itself), or a RegExp anchored with `^` and `$`,
 * which must match the whole serialised origin (every branch of an
 * alternation, too). `*` and `null` are not entries: a
 * policy says those with options of its own. A bad entry throws a
 * `TypeError` naming it.
 *
 * @example
 * ```ts
 * const allowed = originMatcher(['https://app.example.com', 'https://*.preview.example.com']);
 * allowed(parseOrigin('https://pr-7.preview.example.com')!); // true
 * allowed(parseOrigin('https://example.com.evil.net')!);     // false
 * ```
 */
export function originMatcher(
  patterns: readonly OriginPattern[],
  module = 'cors',
  option = 'origins',
): OriginMatcher {
  const exact = new Set<string>();
  const wildcards: Wildcard[] = [];
  const expressions: RegExp[] = [];
  for (const [i, pattern] of patterns.entries()) {
    const where = `${option}[${i}]`;
    if (pattern instanceof RegExp) {
      expressions.push(anchored(module, where, pattern));
    } else if (typeof pattern !== 'string') {
      invalidOption(module, where, 'an origin string or a RegExp', pattern);
    } else if (pattern === '*') {
      throw new TypeError(
        `restwell/${module}: option "${where}" is "*"; to allow every origin, give origins: '*' (never with credentials).`,
      );
    } else if (pattern.trim().toLowerCase() === 'null') {
      throw new TypeError(
        `restwell/${module}: option "${where}" is "null"; the opaque origin is allowed with allowNull: true, never as an entry.`,
      );
    } else if (pattern.includes('*')) {
      wildcards.push(wildcard(module, where, pattern));
    } else {
      exact.add(configuredOrigin(module, where, pattern).serialized);
    }
  }
  return function allowedOrigin(origin: TupleOrigin): boolean {
    if (exact.has(origin.serialized)) return true;
    for (const w of wildcards) {
      if (
        origin.scheme === w.scheme &&
        origin.port === w.port &&
        origin.host.length > w.suffix.length &&
        origin.host.endsWith(w.suffix)
      ) {
        return true;
      }
    }
    for (const re of expressions) if (re.test(origin.serialized)) return true;
    return false;
  };
}

/** Whether an origin is on the loopback interface (`localhost`, `127.0.0.0/8`, `[::1]`). */
export function isLoopbackOrigin(origin: TupleOrigin): boolean {
  const host = origin.host;
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === '[::1]'
  );
}
