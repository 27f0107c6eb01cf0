/**
 * The links of a page: the same targets in the `Link` header (RFC 8288) and
 * in the body, relative to the request's path or absolute under a configured
 * base URL, every query parameter but the paginator's own kept as the client
 * sent it.
 *
 * @module
 */

import type { Context } from '../core/context.js';
import { invalidOption } from '../core/errors.js';
import { formatLinks, toUriReference, type WebLink } from '../core/link.js';

/** The relations a page links to. `self` is in the body only. */
export type PageRelation = 'self' | 'first' | 'prev' | 'next' | 'last';

/** A page's links by relation, as the body carries them. */
export type PageLinks = Partial<Record<PageRelation, string>>;

/**
 * Checks `baseUrl` and gives it without a trailing slash: an absolute http(s)
 * URL, optionally with a path prefix (an API served under `/api` behind a
 * proxy that strips it), and no query, fragment or credentials.
 */
export function checkBaseUrl(module: string, baseUrl: unknown): string | undefined {
  if (baseUrl === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = typeof baseUrl === 'string' ? new URL(baseUrl) : undefined;
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    invalidOption(
      module,
      'baseUrl',
      'an absolute http(s) URL such as https://api.example.com, with no query, fragment or credentials',
      baseUrl,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The target for the request's own path with `query`: relative (`/v1/users?…`)
 * or under `baseUrl`, and the same string in the body as in the `Link` header.
 */
export function pageHref(
  ctx: Context,
  baseUrl: string | undefined,
  query: URLSearchParams,
): string {
  const path = linkPath(ctx.request.path);
  const search = query.toString();
  const target = search === '' ? path : `${path}?${search}`;
  return baseUrl === undefined ? target : `${baseUrl}${target}`;
}

/**
 * The request's path as the path of a link. Cut at a `#`: a request target has
 * no fragment (RFC 9112 §3.2), but Node passes one through, and the query
 * written after it would be in the fragment. Leading slashes are one, since
 * `//host/...` as a relative reference names another host (RFC 3986 §4.2).
 * What a path cannot hold (RFC 3986 §3.3) is percent-encoded, `\` included,
 * which browsers resolve as `/` (`/\evil.example` is another host to them),
 * and `[` `]`, which only an IP literal may hold.
 */
export function linkPath(path: string): string {
  const hash = path.indexOf('#');
  const own = (hash < 0 ? path : path.slice(0, hash)).replace(/^\/{2,}/, '/');
  return toUriReference(own).replace(/[[\]]/g, (c) => (c === '[' ? '%5B' : '%5D'));
}

/** The request's query with `set` applied: `undefined` deletes a parameter. */
export function withParams(
  query: URLSearchParams,
  set: Readonly<Record<string, string | undefined>>,
): URLSearchParams {
  const out = new URLSearchParams(query);
  for (const [name, value] of Object.entries(set)) {
    if (value === undefined) out.delete(name);
    else out.set(name, value);
  }
  return out;
}

/** The `Link` value a paginator wrote on each response, so that writing again replaces it. */
const written = new WeakMap<Context, string>();

/**
 * Writes the `Link` header for every relation but `self`, after links other
 * code set. A second write on one response (`links()` then `respond()`)
 * replaces the first one's links rather than repeating every relation.
 */
export function writeLinkHeader(ctx: Context, links: PageLinks): void {
  const list: WebLink[] = [];
  for (const rel of ['first', 'prev', 'next', 'last'] as const) {
    const href = links[rel];
    if (href !== undefined) list.push({ href, rel });
  }
  const value = list.length > 0 ? formatLinks(list) : undefined;
  const headers = ctx.response.headers;
  const before = written.get(ctx);
  const current = headers.get('link');
  if (before !== undefined && current !== undefined) {
    const others = withoutValue(current, before);
    if (others !== undefined) {
      const field = [others, value ?? ''].filter((v) => v !== '').join(', ');
      if (field === '') headers.delete('link');
      else headers.set('link', field);
      written.delete(ctx);
      if (value !== undefined) written.set(ctx, value);
      return;
    }
  }
  if (value === undefined) return;
  headers.append('link', value);
  written.set(ctx, value);
}

/** `field` (values joined by `, `) without the value `own`, or `undefined` when it does not hold it. */
function withoutValue(field: string, own: string): string | undefined {
  if (field === own) return '';
  if (field.startsWith(`${own}, `)) return field.slice(own.length + 2);
  if (field.endsWith(`, ${own}`)) return field.slice(0, -own.length - 2);
  const at = field.indexOf(`, ${own}, `);
  return at < 0 ? undefined : `${field.slice(0, at)}${field.slice(at + own.length + 2)}`;
}
