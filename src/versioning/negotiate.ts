/**
 * Where a request names its version, by strategy. Never the query string: a
 * version there breaks caching (a cache keys on the URI, and the same
 * resource then has as many URIs as parameter orders) and is a habit the seed
 * rules out.
 *
 * @module
 */
import { parseHeaderVersion, parseVersionId, type VersionId } from './version-id.js';

/** How a client names its version. */
export type VersioningStrategy = 'uri' | 'header' | 'media-type';

/** Where a request sits relative to the versioned API. */
export interface Located {
  /** The path as routed, without the base path and the version prefix. */
  readonly routedPath: string;
  /** URI strategy: the version segment as sent (`v1`), when it looks like a version. */
  readonly segment: string | undefined;
}

// What a URI segment that names a version looks like, supported or not.
const LOOKS_LIKE_VERSION = /^(?:[vV][0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2})$/;

/**
 * Locates `path` under `base` (`''` for the root, else `/api` without a
 * trailing slash). `undefined` when the path is outside it, or, under the URI
 * strategy, when its first segment does not look like a version (`/health`):
 * such requests are not versioned and pass through.
 */
export function locate(path: string, base: string, uri: boolean): Located | undefined {
  let rest = path;
  if (base !== '') {
    if (path.length < base.length || path.slice(0, base.length).toLowerCase() !== base) {
      return undefined;
    }
    rest = path.slice(base.length);
    if (rest !== '' && rest.charCodeAt(0) !== 0x2f /* / */) return undefined;
  }
  if (!uri) return { routedPath: rest === '' ? '/' : rest, segment: undefined };
  const end = rest.indexOf('/', 1);
  const segment = end < 0 ? rest.slice(1) : rest.slice(1, end);
  if (!LOOKS_LIKE_VERSION.test(segment)) return undefined;
  const after = end < 0 ? '' : rest.slice(end);
  return { routedPath: after === '' ? '/' : after, segment };
}

/** The version a URI segment names, or `undefined` when it is no valid version. */
export function uriVersion(segment: string): VersionId | undefined {
  return parseVersionId(segment);
}

/** What a header names: nothing (`absent`), a version, or something that is not one. */
export type HeaderVersion =
  | { readonly kind: 'absent' }
  | { readonly kind: 'version'; readonly id: VersionId }
  | { readonly kind: 'invalid' };

/** Reads the version header's value (repeated fields arrive joined by `, ` and are invalid). */
export function headerVersion(value: string | undefined): HeaderVersion {
  if (value === undefined || value.trim() === '') return { kind: 'absent' };
  const id = parseHeaderVersion(value);
  return id === undefined ? { kind: 'invalid' } : { kind: 'version', id };
}

/**
 * What `Accept` asks for: no versioned vendor type (`none`), versions
 * (`versions`), or a version spelt as a media-type parameter (`parameter`:
 * `application/json; version=2`), which this API does not read and must not
 * answer in another version without a word.
 */
export type AcceptedVersions =
  | { readonly kind: 'none' }
  | { readonly kind: 'parameter' }
  | {
      readonly kind: 'versions';
      /** Versioned vendor types with q > 0, as `[text, q]`, in the order sent. */
      readonly candidates: ReadonlyArray<readonly [string, number]>;
      /**
       * Whether another range (`*\/*`, `application/*`, `application/json`, the
       * vendor's unversioned type) accepts an answer in the pinned or default
       * version, should no version named be served (RFC 9110 §12.5.1).
       */
      readonly fallback: boolean;
    };

/** At most this many media ranges of an `Accept` are read; the rest are ignored. */
const MAX_RANGES = 64;
// RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;
/** Parameters other APIs name a version with (ASP.NET's `v`, `api-version`), never read here. */
const VERSION_PARAMETERS = new Set(['version', 'v', 'api-version']);

interface MediaRange {
  /** `type/subtype`, lower-cased. */
  readonly type: string;
  readonly q: number;
  /** Parameter names other than `q`, lower-cased. */
  readonly params: readonly string[];
}

/** The first {@link MAX_RANGES} media ranges of `accept`; a malformed q-value counts as 1. */
function mediaRanges(accept: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const range of splitList(accept)) {
    if (out.length === MAX_RANGES) break;
    const parts = range.split(';');
    let q = 1;
    const params: string[] = [];
    for (const param of parts.slice(1)) {
      const eq = param.indexOf('=');
      const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      if (name === 'q') {
        const value = param.slice(eq + 1).trim();
        q = QVALUE.test(value) ? Number(value) : 1;
      } else if (name !== '') params.push(name);
    }
    out.push({ type: parts[0]!.trim().toLowerCase(), q, params });
  }
  return out;
}

/**
 * The q-value `accept` gives the media type `type` (lower case): that of the
 * most specific range that matches it, `type/subtype` before `type/*` before
 * `*\/*` (RFC 9110 §12.5.1), 0 when none does. 1 without `Accept`, or with
 * an empty one: every type is acceptable.
 */
export function acceptQuality(accept: string | undefined, type: string): number {
  if (accept === undefined) return 1;
  const ranges = mediaRanges(accept);
  if (ranges.length === 0) return 1;
  const major = type.slice(0, type.indexOf('/') + 1);
  let specificity = -1;
  let q = 0;
  for (const range of ranges) {
    const s =
      range.type === type ? 2 : range.type === `${major}*` ? 1 : range.type === '*/*' ? 0 : -1;
    if (s > specificity) {
      specificity = s;
      q = range.q;
    }
  }
  return q;
}

/**
 * The versions `Accept` asks for with `application/vnd.<vendor>.<version>+json`
 * (RFC 9110 §12.5.1: type, subtype and parameter names are case-insensitive;
 * `q` weighs a range, and `q=0` refuses it). Ranges of other types, and the
 * vendor's type without a version (`application/vnd.acme+json`), name none.
 */
export function acceptedVersions(accept: string | undefined, vendor: string): AcceptedVersions {
  if (accept === undefined) return { kind: 'none' };
  const prefix = `application/vnd.${vendor}.`;
  const unversioned = `application/vnd.${vendor}+json`;
  const candidates: Array<readonly [string, number]> = [];
  let fallback = false;
  for (const { type, q, params } of mediaRanges(accept)) {
    if (q === 0) continue;
    const versioned = type.startsWith(prefix) && type.endsWith('+json');
    const json = versioned || type === unversioned || type === 'application/json';
    if (json && params.some((name) => VERSION_PARAMETERS.has(name))) return { kind: 'parameter' };
    const token = versioned ? type.slice(prefix.length, -'+json'.length) : '';
    if (token !== '') candidates.push([token, q]);
    else if (json || type === '*/*' || type === 'application/*') fallback = true;
  }
  // Versioned types all refused (q=0) ask for no version: the pin or default applies.
  return candidates.length === 0 ? { kind: 'none' } : { kind: 'versions', candidates, fallback };
}

/** Splits a field value on the commas that separate its members, not those inside quoted strings. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x2c /* , */) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * The response `Content-Type` for `version` under the media-type strategy,
 * `undefined` to leave it. Only a plain `application/json` or the vendor's
 * unversioned type is changed (a problem document, a file keep theirs), to
 * the first of these that `accept` accepts (RFC 9110 §12.5.1), parameters
 * kept: `application/vnd.<vendor>.<version>+json`, the vendor's unversioned
 * type, `application/json`. When `accept` accepts none of them, the
 * versioned type.
 */
export function versionedContentType(
  contentType: string,
  vendor: string,
  version: string,
  accept?: string,
): string | undefined {
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const unversioned = `application/vnd.${vendor}+json`;
  if (type !== 'application/json' && type !== unversioned) return undefined;
  const params = semi < 0 ? '' : contentType.slice(semi);
  const versioned = `application/vnd.${vendor}.${version}+json`;
  let chosen = versioned;
  if (acceptQuality(accept, versioned) === 0) {
    if (acceptQuality(accept, unversioned) > 0) chosen = unversioned;
    else if (acceptQuality(accept, 'application/json') > 0) chosen = 'application/json';
  }
  return chosen === type ? undefined : `${chosen}${params}`;
}
