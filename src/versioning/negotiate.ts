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

/** What `Accept` asks for: no vendor type, a vendor type without a version, or versions. */
export type AcceptedVersions =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'versions';
      /** Versioned vendor types with q > 0, as `[text, q]`, in the order sent. */
      readonly candidates: ReadonlyArray<readonly [string, number]>;
    };

/** At most this many media ranges of an `Accept` are read; the rest are ignored. */
const MAX_RANGES = 64;

/**
 * The versions `Accept` asks for with `application/vnd.<vendor>.<version>+json`
 * (RFC 9110 §12.5.1: type, subtype and parameter names are case-insensitive;
 * `q` weighs a range, and `q=0` refuses it). Ranges of other types, and the
 * vendor's type without a version (`application/vnd.acme+json`), name none.
 */
export function acceptedVersions(accept: string | undefined, vendor: string): AcceptedVersions {
  if (accept === undefined) return { kind: 'none' };
  const prefix = `application/vnd.${vendor}.`;
  const candidates: Array<readonly [string, number]> = [];
  let seen = 0;
  for (const range of splitList(accept)) {
    if (++seen > MAX_RANGES) break;
    const parts = range.split(';');
    const type = parts[0]!.trim().toLowerCase();
    if (!type.startsWith(prefix) || !type.endsWith('+json')) continue;
    const token = type.slice(prefix.length, -'+json'.length);
    if (token === '') continue;
    let q = 1;
    for (const param of parts.slice(1)) {
      const eq = param.indexOf('=');
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
      const value = param.slice(eq + 1).trim();
      // RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
      q = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/.test(value) ? Number(value) : 1;
    }
    if (q > 0) candidates.push([token, q]);
  }
  // Versioned types all refused (q=0) ask for no version: the pin or default applies.
  return candidates.length === 0 ? { kind: 'none' } : { kind: 'versions', candidates };
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
 * The response `Content-Type` for `version` under the media-type strategy: a
 * plain `application/json` (or the vendor's unversioned type) becomes
 * `application/vnd.<vendor>.<version>+json`, parameters kept. Other types
 * (a problem document, a file) are left as they are (`undefined`).
 */
export function versionedContentType(
  contentType: string,
  vendor: string,
  version: string,
): string | undefined {
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type !== 'application/json' && type !== `application/vnd.${vendor}+json`) return undefined;
  return `application/vnd.${vendor}.${version}+json${semi < 0 ? '' : contentType.slice(semi)}`;
}
