/**
 * Entity tags (RFC 9110 §8.8.3) and the lists of them that `If-Match` and
 * `If-None-Match` carry (§13.1.1, §13.1.2). Framework-free: plain strings in,
 * plain values out.
 *
 * ```
 * entity-tag = [ weak ] opaque-tag
 * weak       = %s"W/"                      ; case-sensitive
 * opaque-tag = DQUOTE *etagc DQUOTE
 * etagc      = %x21 / %x23-7E / obs-text   ; any visible char but DQUOTE, no space
 * If-Match   = "*" / #entity-tag
 * ```
 *
 * A comma is an `etagc`, so `"a,b"` is one tag, not two: lists are split by a
 * scanner that knows where a quoted tag ends, never by `split(',')`.
 */

/** One parsed entity-tag. */
export interface EntityTag {
  /** True for `W/"..."`. */
  readonly weak: boolean;
  /** The opaque-tag with its quotes, for example `"v3"`. Compared byte for byte. */
  readonly opaque: string;
}

/**
 * A parsed `If-Match` / `If-None-Match` value:
 * - `any`: the field is `*`;
 * - `tags`: the listed entity-tags (possibly none, for an empty list);
 * - `invalid`: the value does not match the grammar. Such a field never
 *   matches anything: an invalid `If-Match` fails, an invalid `If-None-Match`
 *   passes (RFC 9110 §5.5: a recipient may treat an invalid field as absent or
 *   as unsatisfiable; we pick the answer that never performs a write by mistake).
 */
export type ETagList =
  | { readonly kind: 'any' }
  | { readonly kind: 'tags'; readonly tags: readonly EntityTag[] }
  | { readonly kind: 'invalid' };

const INVALID: ETagList = Object.freeze({ kind: 'invalid' });
const ANY: ETagList = Object.freeze({ kind: 'any' });

/** Whether `c` (a char code) is an `etagc`: %x21 / %x23-7E / obs-text (%x80-FF). */
function isEtagc(c: number): boolean {
  return c === 0x21 || (c >= 0x23 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** Optional whitespace: SP / HTAB (RFC 9110 §5.6.3). */
function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Reads one entity-tag starting at `i`. Returns the tag and the index after
 * it, or `undefined` when the input at `i` is not an entity-tag.
 */
function readTag(value: string, i: number): { tag: EntityTag; end: number } | undefined {
  let weak = false;
  // `W/` is case-sensitive (%s"W/"): `w/"x"` is not an entity-tag.
  if (value.charCodeAt(i) === 0x57 /* W */ && value.charCodeAt(i + 1) === 0x2f /* / */) {
    weak = true;
    i += 2;
  }
  if (value.charCodeAt(i) !== 0x22 /* " */) return undefined;
  const start = i;
  i++;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) return { tag: { weak, opaque: value.slice(start, i + 1) }, end: i + 1 };
    if (!isEtagc(c)) return undefined;
  }
  return undefined; // unterminated
}

/** Parses one entity-tag, e.g. a response's `ETag` field. `undefined` when invalid. */
export function parseEntityTag(value: string | undefined): EntityTag | undefined {
  if (value === undefined) return undefined;
  let i = 0;
  let end = value.length;
  while (i < end && isOws(value.charCodeAt(i))) i++;
  while (end > i && isOws(value.charCodeAt(end - 1))) end--;
  const read = readTag(value, i);
  return read !== undefined && read.end === end ? read.tag : undefined;
}

/**
 * Parses an `If-Match` / `If-None-Match` field value. `undefined` in, `undefined`
 * out (the field is absent). Empty list elements are skipped, as RFC 9110 §5.6.1
 * requires of recipients (`, "a" ,, "b"` is two tags).
 */
export function parseETagList(value: string | undefined): ETagList | undefined {
  if (value === undefined) return undefined;
  const n = value.length;
  let i = 0;
  while (i < n && isOws(value.charCodeAt(i))) i++;
  if (value.charCodeAt(i) === 0x2a /* * */) {
    let j = i + 1;
    while (j < n && isOws(value.charCodeAt(j))) j++;
    // `*` stands alone: `*, "a"` matches no grammar.
    return j === n ? ANY : INVALID;
  }
  const tags: EntityTag[] = [];
  // After a tag only OWS then a comma (or the end) may follow.
  let expectComma = false;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (isOws(c)) {
      i++;
      continue;
    }
    if (c === 0x2c /* , */) {
      expectComma = false;
      i++;
      continue;
    }
    if (expectComma) return INVALID;
    const read = readTag(value, i);
    if (read === undefined) return INVALID;
    tags.push(read.tag);
    i = read.end;
    expectComma = true;
  }
  return { kind: 'tags', tags };
}

/** Strong comparison (RFC 9110 §8.8.3.2): both strong, opaque-tags identical. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison (RFC 9110 §8.8.3.2): opaque-tags identical, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/** Formats a tag back to its field form: `W/"x"` or `"x"`. */
export function formatEntityTag(tag: EntityTag): string {
  return tag.weak ? `W/${tag.opaque}` : tag.opaque;
}

/**
 * Normalises an application-supplied validator to an entity-tag: a valid
 * entity-tag (`"v3"`, `W/"v3"`) is kept; a bare opaque value made of `etagc`
 * characters (`v3`, a row version, a hash) is quoted (`"v3"`). Anything else
 * (a double quote or a space inside) is a programming error.
 */
export function toEntityTag(value: string): string {
  if (parseEntityTag(value) !== undefined) return value.trim();
  if (value.length > 0) {
    let ok = true;
    for (let i = 0; i < value.length && ok; i++) ok = isEtagc(value.charCodeAt(i));
    if (ok) return `"${value}"`;
  }
  throw new TypeError(
    `restwell/conditional: ${JSON.stringify(value)} is not an entity-tag (RFC 9110 §8.8.3): use "v3", W/"v3" or a bare value without spaces or quotes.`,
  );
}

/**
 * The ETag of a content-coded representation: a strong tag names exactly one
 * representation (RFC 9110 §8.8.3), so the gzip variant of `"abc"` is
 * `"abc-gzip"`. Weak tags already admit semantically equivalent variants and are
 * kept as they are. Used by `restwell/compression`.
 */
export function encodingETag(etag: string, coding: string): string {
  const tag = parseEntityTag(etag);
  if (tag === undefined || tag.weak) return etag;
  return `${tag.opaque.slice(0, -1)}-${coding}"`;
}

/**
 * The identity tag behind a tag that `encodingETag` suffixed with one of
 * `codings`, or the tag itself. Weak tags are never suffixed, so are returned
 * as they are.
 */
export function stripEncodingSuffix(tag: EntityTag, codings: readonly string[]): EntityTag {
  if (tag.weak) return tag;
  for (const coding of codings) {
    const suffix = `-${coding}"`;
    if (tag.opaque.length > suffix.length + 1 && tag.opaque.endsWith(suffix)) {
      return { weak: false, opaque: `${tag.opaque.slice(0, -suffix.length)}"` };
    }
  }
  return tag;
}

/** Which coding suffix `tag` carries among `codings`, if any. */
export function encodingSuffixOf(tag: EntityTag, codings: readonly string[]): string | undefined {
  if (tag.weak) return undefined;
  for (const coding of codings) {
    const suffix = `-${coding}"`;
    if (tag.opaque.length > suffix.length + 1 && tag.opaque.endsWith(suffix)) return coding;
  }
  return undefined;
}
