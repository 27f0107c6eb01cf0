/**
 * Which requests a policy applies to, matched the way the router matches
 * them, so that no other spelling of a path reaches the handler unlimited.
 *
 * A policy's `route` is compared with two things, and applies when either
 * agrees:
 *
 * 1. The route the framework matched (`ctx.request.route`: Express's
 *    `req.route.path`, @koa/router's `ctx._matchedRoute`), known when the
 *    rate limiter is mounted on the route itself. Compared as written.
 * 2. The request's path, normalised so that it matches every spelling that
 *    Express 4 (path-to-regexp 0.1), Express 5 (router 2, path-to-regexp 8)
 *    and @koa/router (path-to-regexp 8) send to the route with their default
 *    options, `caseSensitive: false` / `sensitive: false` and
 *    `strict: false`:
 *    - an absolute-form request target (`http://host/v1/payments`, RFC 9112
 *      §3.2.2) is reduced to its path, as the routers' `parseurl` does;
 *    - the path ends at the first `?` or `#`;
 *    - letters compare case-insensitively;
 *    - one trailing `/` is optional (`/v1/payments/` is `/v1/payments`).
 *
 *    It also treats as equal what RFC 3986 §6.2.2 calls equivalent but the
 *    routers do not: percent-encoded unreserved characters (`%70` is `p`) and
 *    runs of `/`. Those spellings are answered 404 by the routers; counting
 *    them costs only the caller's own quota, and keeps the policy right
 *    behind a proxy or a router that does normalise them.
 *
 * Matching is therefore a superset of what the routers route, whatever their
 * `strict` and case settings: the policy may count a request the router then
 * refuses with 404, never miss one that reaches the handler.
 */
import type { Context } from '../core/context.js';
import { invalidOption } from '../core/errors.js';
import { normalisedPath } from '../core/route-path.js';

export { normalisedPath };

/** `:name` matches one non-empty segment; anything else is literal. */
const SEGMENT = /^(?::[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9\-._~!$&',;=@%]*)$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
interface CompiledRoute {
  /** As written, for comparison with the framework's matched route. */
  pattern: string;
  /** Normalised segments; `null` for a `:param`. */
  segments: Array<string | null>;
}

function compileRoute(pattern: unknown, where: string): CompiledRoute {
  // `?`, `#`, `*`, `+` and groups are path-to-regexp syntax (optional, wildcard, repeated parts), not matched here.
  if (
    typeof pattern !== 'string' ||
    !pattern.startsWith('/') ||
    pattern.length > 1024 ||
    /[?#]/.test(pattern)
  ) {
    invalidOption(
      'rateLimit',
      where,
      "a path starting with '/' (such as '/v1/payments/:id')",
      pattern,
    );
  }
  const normal = normalisedPath(pattern);
  const segments = normal === '/' ? [] : normal.slice(1).split('/');
  for (const s of segments) {
    if (!SEGMENT.test(s)) {
      invalidOption(
        'rateLimit',
        where,
        "literal segments and ':name' parameters only (no wildcards, groups or optional parts)",
        pattern,
      );
    }
  }
  return { pattern, segments: segments.map((s) => (s.startsWith(':') ? null : s)) };
}

function pathMatches(route: CompiledRoute, path: string): boolean {
  const { segments } = route;
  if (segments.length === 0) return path === '/';
  let at = 1;
  for (let i = 0; i < segments.length; i++) {
    const slash = path.indexOf('/', at);
    const end = slash < 0 ? path.length : slash;
    if (end === at) return false;
    const literal = segments[i] as string | null;
    if (literal !== null && (end - at !== literal.length || !path.startsWith(literal, at))) {
      return false;
    }
    if (slash < 0) return i === segments.length - 1;
    at = slash + 1;
  }
  return false;
}

/** Upper-case method names; `GET` brings `HEAD`, which Express and @koa/router route to GET handlers. */
function compileMethods(methods: unknown, where: string): Set<string> {
  if (!Array.isArray(methods) || methods.length === 0) {
    invalidOption(
      'rateLimit',
      where,
      "a non-empty list of method names (such as ['POST'])",
      methods,
    );
  }
  const set = new Set<string>();
  for (const m of methods) {
    if (typeof m !== 'string' || !TOKEN.test(m)) {
      invalidOption('rateLimit', where, 'a list of method names', methods);
    }
    set.add(m.toUpperCase());
  }
  if (set.has('GET')) set.add('HEAD');
  return set;
}

/** The request facts a matcher needs, computed at most once per request. */
export class RequestFacts {
  private path: string | undefined;
  constructor(readonly ctx: Context) {}
  get normalisedPath(): string {
    this.path ??= normalisedPath(this.ctx.request.path);
    return this.path;
  }
}

export type RequestMatcher = (facts: RequestFacts) => boolean;

/**
 * A policy's `route`, `methods` and `when` as one predicate, or `undefined`
 * when the policy applies to every request. All three must agree.
 */
export function requestMatcher(
  policy: { route?: unknown; methods?: unknown; when?: unknown },
  where: string,
): RequestMatcher | undefined {
  const { route, methods, when } = policy;
  if (when !== undefined && typeof when !== 'function') {
    invalidOption('rateLimit', `${where}.when`, 'a function', when);
  }
  const routes =
    route === undefined
      ? undefined
      : (Array.isArray(route) ? route : [route]).map((r, i) =>
          compileRoute(r, Array.isArray(route) ? `${where}.route[${i}]` : `${where}.route`),
        );
  if (routes !== undefined && routes.length === 0) {
    invalidOption('rateLimit', `${where}.route`, 'a path or a non-empty list of paths', route);
  }
  const allowed = methods === undefined ? undefined : compileMethods(methods, `${where}.methods`);
  const predicate = when as ((ctx: Context) => boolean) | undefined;
  if (routes === undefined && allowed === undefined && predicate === undefined) return undefined;
  return (facts) => {
    const { request } = facts.ctx;
    if (allowed !== undefined && !allowed.has(request.method)) return false;
    if (routes !== undefined) {
      const matched = request.route;
      let hit = false;
      for (const r of routes) {
        if (r.pattern === matched || pathMatches(r, facts.normalisedPath)) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    return predicate === undefined || predicate(facts.ctx);
  };
}
