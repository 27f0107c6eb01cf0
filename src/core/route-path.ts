/**
 * The path a request reaches a route by, as Express 4 and 5 and @koa/router
 * match it with their default options (`caseSensitive: false` /
 * `sensitive: false`, `strict: false`), for every module that must apply a
 * rule to a route whatever the spelling of its path: rate-limit route
 * policies, the authorization table, the webhook admin API.
 *
 * - an absolute-form request target (`http://host/v1/payments`, RFC 9112
 *   §3.2.2) is reduced to its path, as the routers' `parseurl` does;
 * - the path ends at the first `?` or `#`;
 * - letters compare case-insensitively;
 * - one trailing `/` is optional (`/v1/payments/` is `/v1/payments`);
 * - percent-encoded unreserved characters (`%70` is `p`) and runs of `/` are
 *   what RFC 3986 §6.2.2 calls equivalent; the routers do not, and answer
 *   those spellings 404, but a rule that treats them as equal is right behind
 *   a proxy or a router that normalises them.
 *
 * So a rule matched on this path covers a superset of what the routers route:
 * it may apply to a request the router then refuses with 404, never miss one
 * that reaches the handler.
 */
const UNRESERVED_ESCAPE =
  /%(4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[Dd]|2[Ee]|5[Ff]|7[Ee])/g;

/**
 * The path with every spelling the routers treat alike made one, its case kept (parameters, such
 * as ids, are case-sensitive): absolute form reduced to the path, the query cut, unreserved
 * escapes decoded, runs of `/` made one, one trailing `/` dropped. Other escapes (`%2F`) stay.
 */
export function equivalentPath(target: string): string {
  let path = target;
  // Absolute form: `scheme://authority/path`. The routers' parseurl keeps only the path.
  if (path.charCodeAt(0) !== 47 /* / */) {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(path);
    if (scheme !== null) path = path.slice(scheme[0].length) || '/';
  }
  const end = path.search(/[?#]/);
  if (end >= 0) path = path.slice(0, end);
  if (path.includes('%')) {
    path = path.replace(UNRESERVED_ESCAPE, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
  if (path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

/** The path the routers match (see the module comment): lower-case, no trailing `/` except for the root. */
export function normalisedPath(target: string): string {
  return equivalentPath(target).toLowerCase();
}
