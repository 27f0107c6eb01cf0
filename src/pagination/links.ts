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
import { formatLinks, type WebLink } from '../core/link.js';

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
 * or under `baseUrl`. A path that begins with `//` is written with one slash,
 * since as a relative reference it would name another host (RFC 3986 §4.2).
 */
export function pageHref(
  ctx: Context,
  baseUrl: string | undefined,
  query: URLSearchParams,
): string {
  const path = ctx.request.path.replace(/^\/{2,}/, '/');
  const search = query.toString();
  const target = search === '' ? path : `${path}?${search}`;
  return baseUrl === undefined ? target : `${baseUrl}${target}`;
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

/** Writes the `Link` header for every relation but `self`, appended to links already set. */
export function writeLinkHeader(ctx: Context, links: PageLinks): void {
  const list: WebLink[] = [];
  for (const rel of ['first', 'prev', 'next', 'last'] as const) {
    const href = links[rel];
    if (href !== undefined) list.push({ href, rel });
  }
  if (list.length > 0) ctx.response.headers.append('link', formatLinks(list));
}
