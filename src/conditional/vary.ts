/**
 * `Vary` (RFC 9110 §12.5.5): the list of request fields a response depends on.
 * Merged, never clobbered: a module adding `Accept-Encoding` keeps the
 * application's `Authorization` or `Origin`. Names are case-insensitive and
 * listed once; `*` means the response varies on more than request fields and
 * absorbs every other member.
 */
import type { ResponseHeaders } from '../core/context.js';

function members(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const name = part.trim();
    if (name.length > 0) out.push(name);
  }
  return out;
}

/**
 * The `Vary` value that lists `existing`'s members and `fields`, each once
 * (first spelling kept), or `*` when either contains `*`.
 *
 * @example
 * ```ts
 * mergeVary('Origin', ['accept-encoding', 'origin']); // 'Origin, accept-encoding'
 * mergeVary('*', ['Accept-Encoding']);                 // '*'
 * ```
 */
export function mergeVary(existing: string | undefined, fields: readonly string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of [...members(existing), ...fields.flatMap((f) => members(f))]) {
    if (name === '*') return '*';
    const key = name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(name);
  }
  return out.join(', ');
}

/**
 * Adds `fields` to the response's `Vary`, keeping what is there.
 *
 * @example
 * ```ts
 * vary(ctx.response.headers, 'Accept-Encoding');
 * ```
 */
export function vary(headers: ResponseHeaders, ...fields: string[]): void {
  const current = headers.get('vary');
  const merged = mergeVary(current, fields);
  if (merged.length > 0 && merged !== current) headers.set('Vary', merged);
}
