/**
 * Which requests a migration applies to: `METHOD /path` patterns, matched as
 * Express and @koa/router match routes by default, so that a migration runs
 * where the router sends the request (DESIGN.md, "Match what the router
 * matched"):
 *
 * - literal segments compare case-insensitively, on the path as sent
 *   (percent-encoded: `/us%65rs` is not `/users`, for the routers either);
 * - one trailing slash is ignored (`/users/` is `/users`);
 * - `:name` matches one non-empty segment and `*`, last, the rest (none or more);
 * - a pattern for `GET` also matches `HEAD` (RFC 9110 §9.3.2).
 *
 * @module
 */
import { invalidOption } from '../core/errors.js';

/** One compiled `METHOD /path` pattern. */
export interface PathPattern {
  /** The pattern as written, for messages. */
  readonly source: string;
  /** Upper-case method, or `undefined` for every method. */
  readonly method: string | undefined;
  /** Lower-cased literal segments, `:name` parameters, or `*`. */
  readonly segments: readonly Segment[];
}

type Segment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'rest' };

const METHOD = /^[A-Za-z]+$/;
const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
// RFC 3986 §3.3 pchar, without `:` leading a segment (a parameter).
const LITERAL = /^[A-Za-z0-9\-._~!$&'()+,;=@%][A-Za-z0-9\-._~!$&'()+,;=:@%]*$/;

/** Compiles `'POST /users'`, `'/users/:id'` or `'/files/*'`; a malformed pattern throws a TypeError naming `option`. */
export function compilePathPattern(pattern: unknown, option: string): PathPattern {
  if (typeof pattern !== 'string') invalidOption('versioning', option, 'a string', pattern);
  const space = pattern.indexOf(' ');
  const method = space < 0 ? undefined : pattern.slice(0, space);
  const path = space < 0 ? pattern : pattern.slice(space + 1);
  if (method !== undefined && !METHOD.test(method)) {
    invalidOption('versioning', option, "'METHOD /path' or '/path', e.g. 'POST /users'", pattern);
  }
  if (!path.startsWith('/')) {
    invalidOption('versioning', option, "a path starting with '/', e.g. '/users/:id'", pattern);
  }
  const parts = splitPath(path);
  const segments: Segment[] = [];
  for (const [i, part] of parts.entries()) {
    const param = PARAM.exec(part);
    if (part === '*' && i === parts.length - 1) segments.push({ kind: 'rest' });
    else if (param !== null) segments.push({ kind: 'param', name: param[1]! });
    else if (LITERAL.test(part)) segments.push({ kind: 'literal', value: part.toLowerCase() });
    else {
      invalidOption(
        'versioning',
        option,
        "a path of literal segments, ':name' parameters and a final '*'",
        pattern,
      );
    }
  }
  return { source: pattern, method: method?.toUpperCase(), segments };
}

/** The segments of a path: `/users/7/` → `['users', '7']`, `/` → `[]`. */
function splitPath(path: string): string[] {
  let end = path.length;
  if (end > 1 && path.charCodeAt(end - 1) === 0x2f /* / */) end--;
  const inner = path.slice(1, end);
  return inner === '' ? [] : inner.split('/');
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The parameters of `path` under `pattern` when the request matches it, else
 * `undefined`. `path` is the routed path (without the version prefix).
 */
export function matchPathPattern(
  pattern: PathPattern,
  method: string,
  path: string,
): Record<string, string> | undefined {
  if (pattern.method !== undefined && pattern.method !== method) {
    if (!(pattern.method === 'GET' && method === 'HEAD')) return undefined;
  }
  const parts = splitPath(path);
  const params: Record<string, string> = {};
  const { segments } = pattern;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.kind === 'rest') return params;
    const part = parts[i];
    if (part === undefined || part === '') return undefined;
    if (segment.kind === 'param') params[segment.name] = decode(part);
    else if (part.toLowerCase() !== segment.value) return undefined;
  }
  return parts.length === segments.length ? params : undefined;
}
