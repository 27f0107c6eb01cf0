/**
 * Version identifiers: majors (`v1`, `v2`, ...) and dated versions
 * (`2025-06-01`, as Stripe and Cadwyn name theirs). One API uses one kind,
 * so that versions have one order: majors by number, dated ones by date.
 *
 * How each strategy writes a version:
 *
 * | version      | URI prefix     | header (`Api-Version`) | media type                            |
 * |--------------|----------------|------------------------|---------------------------------------|
 * | `v2`         | `/v2/users`    | `v2` or `2`            | `application/vnd.acme.v2+json`        |
 * | `2025-06-01` | `/2025-06-01/` | `2025-06-01`           | `application/vnd.acme.2025-06-01+json` |
 *
 * @module
 */

/** The two kinds of version an API can use. */
export type VersionKind = 'major' | 'dated';

/** A version identifier, read and ordered. */
export interface VersionId {
  /** The canonical name: `v2` or `2025-06-01`. */
  readonly name: string;
  readonly kind: VersionKind;
  /** The order key: the major number, or the date's epoch milliseconds (UTC midnight). */
  readonly order: number;
}

// Up to nine digits: an order key that is an exact integer, and a name that is a short token.
const MAJOR = /^[vV](0|[1-9][0-9]{0,8})$/;
const BARE_MAJOR = /^(0|[1-9][0-9]{0,8})$/;
const DATED = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

/** The longest text read as a version; anything longer is no version at all. */
export const MAX_VERSION_LENGTH = 10;

/**
 * Reads a version as a URI segment, a media-type token or a configuration value
 * writes it: `v2` (`V2` too: routers match paths case-insensitively by default)
 * or a calendar date `YYYY-MM-DD`. `undefined` for anything else, including
 * dates that do not exist (`2025-02-30`).
 */
export function parseVersionId(text: string): VersionId | undefined {
  if (text.length > MAX_VERSION_LENGTH || text.length < 2) return undefined;
  const major = MAJOR.exec(text);
  if (major !== null) {
    const n = Number(major[1]);
    return { name: `v${n}`, kind: 'major', order: n };
  }
  const dated = DATED.exec(text);
  if (dated === null) return undefined;
  const year = Number(dated[1]);
  const month = Number(dated[2]);
  const day = Number(dated[3]);
  const ms = Date.UTC(year, month - 1, day);
  const date = new Date(ms);
  if (
    year < 1970 ||
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day
  ) {
    return undefined;
  }
  return { name: text, kind: 'dated', order: ms };
}

/**
 * Reads a version as a client writes it in a header: as {@link parseVersionId},
 * and a bare major number (`2` for `v2`), the spelling most header-versioned
 * APIs use. Surrounding whitespace is ignored (RFC 9110 §5.5).
 */
export function parseHeaderVersion(value: string): VersionId | undefined {
  const text = value.trim();
  if (BARE_MAJOR.test(text)) return parseVersionId(`v${text}`);
  return parseVersionId(text);
}
