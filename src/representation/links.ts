/**
 * Hypermedia links (HATEOAS): a `_links` object in the style of HAL
 * (draft-kelly-json-hal §4.1.1), where each relation names a link object with
 * an `href`, and an action the caller may take now also carries its `method`.
 * A link that is not available (the next page of the last page, a refund of a
 * payment already refunded, an action this caller may not take) is left out,
 * so a client follows what is there instead of rebuilding rules it cannot
 * see.
 *
 * `href` builds the URLs: every interpolated value is percent-encoded as one
 * path segment (or one query component, after `?`), so an id holding `/`, `?`
 * or `#` can never change which resource a link names.
 */
import type { Context } from '../core/context.js';
import { checkOptions } from '../core/errors.js';

/** A link as sent: HAL's link object (draft-kelly-json-hal §5), plus `method` for actions. */
export interface Link {
  /** The target: a path (`/v1/users/usr_1`), or an absolute URL when a base is set. */
  href: string;
  /** The method to use when it is not GET, for actions (`POST` to refund). */
  method?: string;
  /** A human-readable label (HAL §5.7). */
  title?: string;
  /** The media type the target is expected to have (HAL §5.3). */
  type?: string;
}

/** A link to make: a target path or URL, or a link object with an optional condition. */
export interface LinkSpec extends Link {
  /**
   * Whether the link is there. For actions, the answer to "may this caller
   * do this now?". Fails closed: a `when` that is given shows the link only
   * when it is `true`; `false`, `undefined` and `null` leave it out (so
   * `when: caller.roles?.includes('refunds')` hides the refund from a caller
   * without roles), and any other value (a promise not awaited) throws a
   * `TypeError`. A link without `when` is always there.
   * @default true
   */
  when?: boolean;
}

/** What each relation of {@link links} may be given; `false`, `null` and `undefined` leave it out. */
export type LinkInput = string | LinkSpec | false | null | undefined;

/** Whether a relation given `V` is always in the result: a target, or a link whose `when` is absent or `true`. */
type AlwaysPresent<V> = [V] extends [string]
  ? true
  : [V] extends [LinkSpec]
    ? 'when' extends keyof V
      ? [V['when' & keyof V]] extends [true]
        ? true
        : false
      : true
    : false;

/** The `_links` object made from a spec `S`: relations that may be left out are optional. */
export type LinksOf<S> = {
  [K in keyof S as AlwaysPresent<S[K]> extends true ? K : never]: Link;
} & {
  [K in keyof S as AlwaysPresent<S[K]> extends true ? never : K]?: Link;
};

/** Options of {@link links}. */
export interface LinksOptions {
  /**
   * Makes hrefs absolute: prepended to every path, so it may hold a prefix
   * (`https://api.example.com/payments-api`). An `http:` or `https:` URL
   * without query or fragment. Prefer it to `request` behind a proxy or a
   * shared cache.
   * @default undefined (hrefs stay paths, which resolve against the request URL)
   */
  base?: string | URL;
  /**
   * Makes hrefs absolute from the request: its protocol (which honours the
   * adapter's `trustProxy`) and its `Host` header. A `Host` that is not a
   * plain host name or address (with an optional port) leaves hrefs as paths.
   * The `Host` comes from the client: with a shared cache in front, set
   * `base` instead.
   * @default undefined
   */
  request?: Context;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// RFC 3986 §3.2.2 reg-name (letters, digits, `-`, `.`) or an IPv6 literal, and an optional port.
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

const bases = new Map<string, string>();
const MAX_CACHED_BASES = 64;

function checkedBase(base: string | URL): string {
  const text = String(base);
  const known = bases.get(text);
  if (known !== undefined) return known;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError('restwell/links: option "base" must be an absolute http(s) URL.');
  }
  // `search` and `hash` are empty for a bare `?` or `#`, which `href` keeps: look at the text.
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.href.includes('?') ||
    url.href.includes('#')
  ) {
    throw new TypeError(
      'restwell/links: option "base" must be an http(s) URL without query or fragment.',
    );
  }
  if (url.username || url.password) {
    throw new TypeError('restwell/links: option "base" must not hold credentials.');
  }
  const prefix = url.href.replace(/\/+$/, '');
  if (bases.size >= MAX_CACHED_BASES) bases.clear();
  bases.set(text, prefix);
  return prefix;
}

function originOf(ctx: Context): string | undefined {
  if (typeof (ctx as Partial<Context>).request?.header !== 'function') {
    throw new TypeError(
      'restwell/links: option "request" is the restwell context: contextOf(req) on Express, contextOf(ctx) on Koa.',
    );
  }
  const host = ctx.request.header('host');
  if (host === undefined || !HOST.test(host)) return undefined;
  return `${ctx.request.protocol}://${host.toLowerCase()}`;
}

function resolve(target: string, prefix: string | undefined, relation: string): string {
  if (target.startsWith('/') && !target.startsWith('//')) {
    return prefix === undefined ? target : prefix + target;
  }
  if (SCHEME.test(target)) return target;
  throw new TypeError(
    `restwell/links: "${relation}" must be a path starting with "/" or an absolute URL.`,
  );
}

/**
 * Builds a `_links` object: each relation of `spec` becomes `{ href }` (and
 * `method`, `title`, `type` when given). A relation given `false`, `null`,
 * `undefined`, or `{ when }` with a `when` that is not `true`, is left out, so
 * conditions read inline and an action whose check did not run is not shown.
 * Paths start with `/`; with `base` or `request` they are made absolute.
 * Absolute URLs (`https://docs.example.com/...`) are kept as they are.
 *
 * @example
 * ```ts
 * res.json({
 *   ...payment,
 *   _links: links({
 *     self: href`/v1/payments/${payment.id}`,
 *     collection: '/v1/payments',
 *     customer: href`/v1/users/${payment.userId}`,
 *     refund: {
 *       href: href`/v1/payments/${payment.id}/refunds`,
 *       method: 'POST',
 *       when: payment.status === 'succeeded' && caller.can('refund'),
 *     },
 *   }),
 * });
 * ```
 */
export function links<const S extends Record<string, LinkInput>>(
  spec: S,
  options: LinksOptions = {},
): LinksOf<S> {
  checkOptions('links', options, ['base', 'request'], {
    baseUrl: 'Use base: "https://api.example.com".',
    ctx: 'Use request: ctx.',
  });
  if (options.base !== undefined && options.request !== undefined) {
    throw new TypeError('restwell/links: give "base" or "request", not both.');
  }
  const prefix =
    options.base !== undefined
      ? checkedBase(options.base)
      : options.request !== undefined
        ? originOf(options.request)
        : undefined;
  const out: Record<string, Link> = {};
  for (const relation of Object.keys(spec)) {
    const given = spec[relation];
    if (given === false || given === null || given === undefined) continue;
    if (typeof given === 'string') {
      Object.defineProperty(out, relation, {
        value: { href: resolve(given, prefix, relation) },
        enumerable: true,
        writable: true,
        configurable: true,
      });
      continue;
    }
    if (typeof given !== 'object' || typeof given.href !== 'string') {
      throw new TypeError(`restwell/links: "${relation}" must be a path, a URL or { href }.`);
    }
    if (Object.hasOwn(given, 'when') && given.when !== true) {
      if (given.when === false || given.when === undefined || given.when === null) continue;
      throw new TypeError(`restwell/links: "${relation}".when must be true or false.`);
    }
    const link: Link = { href: resolve(given.href, prefix, relation) };
    if (given.method !== undefined) {
      if (typeof given.method !== 'string' || !METHOD.test(given.method)) {
        throw new TypeError(`restwell/links: "${relation}".method must be an HTTP method.`);
      }
      link.method = given.method.toUpperCase();
    }
    if (given.title !== undefined) link.title = String(given.title);
    if (given.type !== undefined) link.type = String(given.type);
    Object.defineProperty(out, relation, {
      value: link,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out as LinksOf<S>;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `encodeURIComponent`, with lone surrogates (which it throws on) as U+FFFD, as URL parsers make them. */
function encodeComponent(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\uFFFD'));
}

/** A value `href` interpolates: a string, a finite number or a bigint. */
export type HrefValue = string | number | bigint;

function text(value: HrefValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new TypeError(
    `restwell/href: an interpolated value must be a string, a finite number or a bigint, got ${
      value === null ? 'null' : typeof value
    }.`,
  );
}

/**
 * Percent-encodes `value` as one path segment (RFC 3986 §3.3): `/`, `?`, `#`,
 * `%` and every other character outside the unreserved set are encoded, so the
 * value cannot add a segment, start a query, or end the path. An empty value,
 * `.` and `..` throw a `TypeError`: no encoding keeps them one segment (URL
 * parsers treat `%2e%2e` as `..`), and a link to the parent would be wrong.
 * Lone surrogates become U+FFFD, as URL parsers make them.
 */
export function encodePathSegment(value: HrefValue): string {
  const segment = text(value);
  if (segment === '' || segment === '.' || segment === '..') {
    throw new TypeError(
      `restwell/href: ${JSON.stringify(segment)} cannot be a path segment of a link.`,
    );
  }
  return encodeComponent(segment);
}

/**
 * A tagged template for link targets: the literal text is kept, each
 * interpolated value is encoded as one path segment ({@link encodePathSegment})
 * or, after a `?`, as one query component.
 *
 * @example
 * ```ts
 * href`/v1/users/${'a/b?c'}/payments`;   // → '/v1/users/a%2Fb%3Fc/payments'
 * href`/v1/users?cursor=${next}&limit=${20}`;
 * ```
 */
export function href(literals: TemplateStringsArray, ...values: HrefValue[]): string {
  let out = literals[0]!;
  let inQuery = out.includes('?') || out.includes('#');
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    out += inQuery ? encodeComponent(text(value)) : encodePathSegment(value);
    const literal = literals[i + 1]!;
    if (!inQuery && (literal.includes('?') || literal.includes('#'))) inQuery = true;
    out += literal;
  }
  return out;
}
