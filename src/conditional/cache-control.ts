/**
 * `Cache-Control` response directives (RFC 9111 §5.2.2, RFC 8246 `immutable`,
 * RFC 5861 `stale-while-revalidate` / `stale-if-error`): presets for the usual
 * cases and an object form for the rest. Builds the field value once, when the
 * application starts, never per request.
 */
import { invalidOption, nearestName } from '../core/errors.js';

/**
 * - `immutable`: fingerprinted static assets (`app.3f2a.js`): `public, max-age=31536000, immutable`.
 * - `private`: per-user data: a browser may store it but must revalidate every
 *   time, a shared cache must not store it: `private, no-cache`.
 * - `no-cache`: anyone may store it, everyone revalidates before reuse (pair it with ETags).
 * - `no-store`: secrets (tokens, card data): nobody stores it.
 */
export type CacheControlPreset = 'immutable' | 'private' | 'no-cache' | 'no-store';

/** Directives in object form. Durations are seconds. */
export interface CacheControlOptions {
  /** `public`: shared caches may store it, even for an authenticated request. @default false */
  public?: boolean;
  /** `private`: only the user's own cache may store it. Excludes `public`. @default false */
  private?: boolean;
  /** `no-cache`: stored responses must be revalidated before each reuse. @default false */
  noCache?: boolean;
  /** `no-store`: no cache may store it. @default false */
  noStore?: boolean;
  /** `max-age=N`: fresh for N seconds. @default undefined (not sent) */
  maxAge?: number;
  /** `s-maxage=N`: freshness for shared caches, overriding `max-age`. @default undefined */
  sMaxAge?: number;
  /** `stale-while-revalidate=N` (RFC 5861): may be served stale for N s while revalidating. @default undefined */
  staleWhileRevalidate?: number;
  /** `stale-if-error=N` (RFC 5861): may be served stale for N s when the origin fails. @default undefined */
  staleIfError?: number;
  /** `must-revalidate`: once stale, never reused without revalidation. @default false */
  mustRevalidate?: boolean;
  /** `proxy-revalidate`: `must-revalidate` for shared caches only. @default false */
  proxyRevalidate?: boolean;
  /** `immutable` (RFC 8246): does not change while fresh; no revalidation on reload. @default false */
  immutable?: boolean;
  /** `no-transform`: intermediaries (and `restwell/compression`) must not change the content. @default false */
  noTransform?: boolean;
}

const PRESETS: Record<CacheControlPreset, string> = {
  immutable: 'public, max-age=31536000, immutable',
  private: 'private, no-cache',
  'no-cache': 'no-cache',
  'no-store': 'no-store',
};

const SECONDS: Array<[keyof CacheControlOptions, string]> = [
  ['maxAge', 'max-age'],
  ['sMaxAge', 's-maxage'],
  ['staleWhileRevalidate', 'stale-while-revalidate'],
  ['staleIfError', 'stale-if-error'],
];
const FLAGS: Array<[keyof CacheControlOptions, string]> = [
  ['mustRevalidate', 'must-revalidate'],
  ['proxyRevalidate', 'proxy-revalidate'],
  ['immutable', 'immutable'],
  ['noTransform', 'no-transform'],
];

/**
 * Response directives of RFC 9111 §5.2.2, RFC 8246 and RFC 5861, with whether
 * they take an argument (`true`: delta-seconds required; `'optional'`: a
 * field-name list may follow `private` and `no-cache`).
 */
const RESPONSE_DIRECTIVES: Record<string, boolean | 'optional'> = {
  'max-age': true,
  's-maxage': true,
  'stale-while-revalidate': true,
  'stale-if-error': true,
  'no-cache': 'optional',
  private: 'optional',
  public: false,
  'no-store': false,
  'no-transform': false,
  'must-revalidate': false,
  'proxy-revalidate': false,
  'must-understand': false,
  immutable: false,
};
const PRESET_AND_DIRECTIVE_NAMES = [
  ...new Set([...Object.keys(PRESETS), ...Object.keys(RESPONSE_DIRECTIVES)]),
];
const DIRECTIVE = /^([A-Za-z-]+)(?:\s*=\s*(\d+|"[^"\r\n]*"|[!#$%&'*+.^_`|~0-9A-Za-z-]+))?$/;

/**
 * Checks a `Cache-Control` value given as a string: a preset name, or a
 * field value made of known response directives. A typo (`'privat'`,
 * `'max-age'` without its seconds) would otherwise reach every response as a
 * directive caches ignore; it throws a `TypeError` naming the nearest preset
 * or directive instead. Returns the field value.
 */
export function cacheControlValue(option: string, value: string): string {
  const preset = (PRESETS as Record<string, string | undefined>)[value];
  if (preset !== undefined) return preset;
  const parts = value.split(',').map((p) => p.trim());
  if (value.trim().length === 0 || parts.some((p) => p.length === 0) || /[\r\n]/.test(value)) {
    invalidOption('conditional', option, 'a preset, directives or a field value', value);
  }
  for (const part of parts) {
    const m = DIRECTIVE.exec(part);
    const name = m?.[1]?.toLowerCase();
    const takes = name === undefined ? undefined : RESPONSE_DIRECTIVES[name];
    if (m === null || name === undefined || takes === undefined) {
      const word = (part.split('=', 1)[0] ?? '').trim();
      const nearest = nearestName(word, PRESET_AND_DIRECTIVE_NAMES);
      throw new TypeError(
        `restwell/conditional: option "${option}" has an unknown directive ${JSON.stringify(word.slice(0, 40))}.${
          nearest === undefined
            ? ` Presets: ${Object.keys(PRESETS).join(', ')}.`
            : ` Did you mean "${nearest}"?`
        }`,
      );
    }
    const argument = m[2];
    if (takes === true && (argument === undefined || !/^\d+$/.test(argument))) {
      invalidOption('conditional', option, `"${name}=<seconds>" with a non-negative integer`, part);
    }
    if (takes === false && argument !== undefined) {
      invalidOption('conditional', option, `"${name}" without an argument`, part);
    }
  }
  return value;
}

/**
 * The `Cache-Control` field value for a preset or a set of directives.
 * Throws a `TypeError` for contradictory or invalid directives.
 *
 * @example
 * ```ts
 * cacheControl('immutable');                                   // 'public, max-age=31536000, immutable'
 * cacheControl('private');                                     // 'private, no-cache'
 * cacheControl({ public: true, maxAge: 60, staleWhileRevalidate: 30 });
 * // 'public, max-age=60, stale-while-revalidate=30'
 * ```
 */
export function cacheControl(spec: CacheControlPreset | CacheControlOptions): string {
  if (typeof spec === 'string') {
    const preset = PRESETS[spec];
    if (preset === undefined) {
      const nearest =
        typeof spec === 'string' ? nearestName(spec, Object.keys(PRESETS)) : undefined;
      invalidOption(
        'conditional',
        'cacheControl',
        `${nearest === undefined ? '' : `"${nearest}" (the nearest preset), or `}one of ${Object.keys(
          PRESETS,
        )
          .map((p) => `'${p}'`)
          .join(', ')} or an object`,
        spec,
      );
    }
    return preset;
  }
  if (spec === null || typeof spec !== 'object') {
    invalidOption('conditional', 'cacheControl', 'a preset name or an object', spec);
  }
  if (spec.public && spec.private) {
    invalidOption('conditional', 'cacheControl', 'either public or private, not both', spec);
  }
  const parts: string[] = [];
  if (spec.public) parts.push('public');
  if (spec.private) parts.push('private');
  if (spec.noCache) parts.push('no-cache');
  if (spec.noStore) parts.push('no-store');
  for (const [key, name] of SECONDS) {
    const value = spec[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      invalidOption(
        'conditional',
        `cacheControl.${key}`,
        'a non-negative integer (seconds)',
        value,
      );
    }
    parts.push(`${name}=${value}`);
  }
  for (const [key, name] of FLAGS) if (spec[key]) parts.push(name);
  if (parts.length === 0) {
    invalidOption('conditional', 'cacheControl', 'at least one directive', spec);
  }
  return parts.join(', ');
}

/**
 * Whether a `Cache-Control` field value carries `directive` (case-insensitive,
 * with or without an argument). Tolerant of any spacing; quoted arguments
 * containing commas are rare enough in responses to be read loosely.
 */
export function hasDirective(value: string | undefined, directive: string): boolean {
  if (value === undefined) return false;
  const wanted = directive.toLowerCase();
  for (const part of value.split(',')) {
    const name = part.trim().split('=', 1)[0]!.trim().toLowerCase();
    if (name === wanted) return true;
  }
  return false;
}
