/**
 * The admin API's routing: which of its routes a request path names, matched
 * the way the routers match (the core's `equivalentPath`), never by a
 * raw string compare a client can spell another way.
 *
 * A path is split on its raw `/` first and each segment decoded afterwards,
 * so that an encoded slash (`%2F`) stays inside its segment: `ep_1%2Fdisable`
 * is one id (which no endpoint has), never the `disable` action of `ep_1`.
 * Before splitting, what RFC 3986 §6.2.2 calls equivalent is made equal:
 * percent-encoded unreserved characters (`%65` is `e`) and runs of `/`; one
 * trailing `/` is optional, and literal segments compare case-insensitively
 * (Express's and @koa/router's defaults). Parameters keep their case: ids
 * are case-sensitive.
 */
import { invalidOption } from '../../core/errors.js';
import { equivalentPath } from '../../core/route-path.js';

const LITERAL = /^[A-Za-z0-9\-._~]+$/;
/** Longest path looked at: longer ones are no route of the admin API. */
const MAX_PATH = 4096;

/**
 * The raw segments of a request path: unreserved escapes decoded, runs of `/`
 * made one, one trailing `/` dropped. Still percent-encoded otherwise.
 */
export function pathSegments(path: string): string[] {
  const p = equivalentPath(path.length > MAX_PATH ? path.slice(0, MAX_PATH) : path);
  if (p === '/' || p === '') return [];
  return (p.startsWith('/') ? p.slice(1) : p).split('/');
}

/** The base path's segments, lower-case, checked once at construction. */
export function compileBasePath(basePath: unknown): { path: string; segments: string[] } {
  if (
    typeof basePath !== 'string' ||
    !basePath.startsWith('/') ||
    basePath.length > 1024 ||
    /[?#%:*]/.test(basePath)
  ) {
    invalidOption(
      'webhookAdmin',
      'basePath',
      "a literal path starting with '/' (such as '/v1/webhook-endpoints')",
      basePath,
    );
  }
  const segments = pathSegments(basePath);
  if (!segments.every((s) => LITERAL.test(s))) {
    invalidOption(
      'webhookAdmin',
      'basePath',
      'literal segments of letters, digits, "-", ".", "_" and "~"',
      basePath,
    );
  }
  const lower = segments.map((s) => s.toLowerCase());
  return { path: lower.length === 0 ? '' : `/${segments.join('/')}`, segments: lower };
}

/** The segments below `base`, or `undefined` when the path is not under it. */
export function below(segments: readonly string[], base: readonly string[]): string[] | undefined {
  if (segments.length < base.length) return undefined;
  for (let i = 0; i < base.length; i++) {
    if (segments[i]!.toLowerCase() !== base[i]) return undefined;
  }
  return segments.slice(base.length);
}

/** A route below the base path: literal segments and `:name` parameters. */
export interface RoutePattern<H> {
  readonly segments: readonly string[];
  readonly methods: Readonly<Record<string, H>>;
}

/** What a path names: a route (its handler for the method, if any) or nothing. */
export type RouteMatch<H> =
  | {
      readonly found: true;
      readonly handler: H | undefined;
      /** The methods the route answers, for `Allow`. */
      readonly allow: readonly string[];
      /** Raw (still percent-encoded) parameter segments. */
      readonly params: Readonly<Record<string, string>>;
    }
  | { readonly found: false };

/** The route `rest` names, matched in order; `GET` brings `HEAD`. */
export function matchRoute<H>(
  routes: readonly RoutePattern<H>[],
  rest: readonly string[],
  method: string,
): RouteMatch<H> {
  for (const route of routes) {
    if (route.segments.length !== rest.length) continue;
    const params: Record<string, string> = {};
    let hit = true;
    for (let i = 0; i < rest.length; i++) {
      const want = route.segments[i]!;
      const seg = rest[i]!;
      if (want.startsWith(':')) {
        if (seg === '') {
          hit = false;
          break;
        }
        params[want.slice(1)] = seg;
      } else if (seg.toLowerCase() !== want) {
        hit = false;
        break;
      }
    }
    if (!hit) continue;
    const methods = Object.keys(route.methods);
    const handler =
      route.methods[method] ?? (method === 'HEAD' ? route.methods.GET : undefined) ?? undefined;
    return { found: true, handler, allow: methods, params };
  }
  return { found: false };
}

/** A raw segment decoded, or `undefined` when it is not valid percent-encoded UTF-8. */
export function decodeSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
