/**
 * Evaluating preconditions (RFC 9110 §13): a pure decision over the request's
 * conditional header fields and the selected representation's current
 * validators. No HTTP objects, no framework: the middleware, a handler or a
 * test calls it with plain values, as jshttp `fresh` does.
 */
import {
  type EntityTag,
  encodingETag,
  encodingSuffixOf,
  formatEntityTag,
  parseEntityTag,
  parseETagList,
  stripEncodingSuffix,
  strongMatch,
  weakMatch,
} from './etag-list.js';
import { httpSeconds, parseHttpDate } from './http-date.js';

/** The validators of the selected representation, as the application knows them. */
export interface Validators {
  /** The current entity-tag, e.g. `"v3"` or `W/"v3"`. */
  etag?: string | undefined;
  /** When the representation last changed. */
  lastModified?: Date | undefined;
}

/** The request's conditional header fields, raw (repeated fields joined with `, `). */
export interface ConditionalHeaders {
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
  ifModifiedSince?: string | undefined;
  ifUnmodifiedSince?: string | undefined;
}

/** Which precondition decided the answer. */
export type PreconditionField =
  | 'If-Match'
  | 'If-Unmodified-Since'
  | 'If-None-Match'
  | 'If-Modified-Since';

/**
 * The outcome of evaluating a request's preconditions (RFC 9110 §13.2.2): carry on, answer 304
 * (GET/HEAD), or fail with 412, naming the field that failed.
 */
export type PreconditionResult =
  /** Perform the method as if there were no preconditions. */
  | { readonly outcome: 'proceed' }
  /**
   * GET/HEAD only: answer 304. `etag` is the tag to send on the 304: the one the
   * client matched (so that a cache can find the stored response it freshens,
   * RFC 9111 §4.3.4), or the current one.
   */
  | { readonly outcome: 'not-modified'; readonly by: PreconditionField; readonly etag?: string }
  /** Answer 412 and do not perform the method. */
  | { readonly outcome: 'failed'; readonly by: PreconditionField };

/** How {@link evaluatePreconditions} compares tags when the representation may be content-coded. */
export interface EvaluateOptions {
  /**
   * Content codings whose `-<coding>` suffix a strong request tag may carry (set
   * by `restwell/compression`, which names each encoded representation
   * `"tag-br"`). The suffix is removed before comparing: the encoded and the
   * identity representation share the resource state the validator stands for.
   * @default []
   */
  codings?: readonly string[];
  /**
   * The coding the 200 would be sent with for this request (`undefined`:
   * identity). A 304 carries the ETag that 200 would carry: the current tag
   * suffixed with this coding after `If-None-Match: *` or `If-Modified-Since`;
   * after a matching list, the matched tag of this coding's variant when the
   * client sent it (else the tag the client matched, so that its cache finds
   * the response it freshens, RFC 9111 §4.3.4).
   * @default undefined
   */
  preferredCoding?: string | undefined;
}

const PROCEED: PreconditionResult = Object.freeze({ outcome: 'proceed' });

/** Whether a request carries any of the four conditional fields this module evaluates. */
export function hasPreconditions(h: ConditionalHeaders): boolean {
  return (
    h.ifMatch !== undefined ||
    h.ifNoneMatch !== undefined ||
    h.ifModifiedSince !== undefined ||
    h.ifUnmodifiedSince !== undefined
  );
}

/**
 * Evaluates the preconditions in the order of RFC 9110 §13.2.2.
 *
 * `current` is `undefined` when the target resource has no current
 * representation (it does not exist). Callers must not call this when the
 * response without preconditions would not be 2xx (§13.2.1): then
 * preconditions are ignored.
 *
 * @example
 * ```ts
 * const result = evaluatePreconditions('PUT', { ifMatch: req.headers['if-match'] }, { etag: row.version });
 * if (result.outcome === 'failed') throw new PreconditionFailedError(result.by);
 * ```
 */
export function evaluatePreconditions(
  method: string,
  headers: ConditionalHeaders,
  current: Validators | undefined,
  options: EvaluateOptions = {},
): PreconditionResult {
  const codings = options.codings ?? [];
  const safe = method === 'GET' || method === 'HEAD';
  const currentTag = current?.etag === undefined ? undefined : parseEntityTag(current.etag);
  const lastModified = current?.lastModified;

  // Step 1: If-Match. Strong comparison (§13.1.1).
  if (headers.ifMatch !== undefined) {
    if (!ifMatchPasses(headers.ifMatch, current !== undefined, currentTag, codings)) {
      return { outcome: 'failed', by: 'If-Match' };
    }
  } else if (headers.ifUnmodifiedSince !== undefined) {
    // Step 2: If-Unmodified-Since, only without If-Match (§13.1.4). Ignored when
    // the value is not an HTTP-date or the resource has no modification date.
    const since = parseHttpDate(headers.ifUnmodifiedSince);
    if (since !== undefined && lastModified !== undefined) {
      if (httpSeconds(lastModified) > httpSeconds(since)) {
        return { outcome: 'failed', by: 'If-Unmodified-Since' };
      }
    }
  }

  // Step 3: If-None-Match. Weak comparison (§13.1.2).
  if (headers.ifNoneMatch !== undefined) {
    const matched = ifNoneMatchMatches(
      headers.ifNoneMatch,
      current !== undefined,
      currentTag,
      codings,
      options.preferredCoding,
    );
    if (matched !== false) {
      if (!safe) return { outcome: 'failed', by: 'If-None-Match' };
      const etag = matched === true ? codedTag(current?.etag, options) : formatEntityTag(matched);
      return etag === undefined
        ? { outcome: 'not-modified', by: 'If-None-Match' }
        : { outcome: 'not-modified', by: 'If-None-Match', etag };
    }
    return PROCEED;
  }

  // Step 4: If-Modified-Since, GET and HEAD only, ignored when If-None-Match is
  // present (handled above) or the value is not a valid HTTP-date (§13.1.3).
  if (safe && headers.ifModifiedSince !== undefined && lastModified !== undefined) {
    const since = parseHttpDate(headers.ifModifiedSince);
    if (since !== undefined && httpSeconds(lastModified) <= httpSeconds(since)) {
      const etag = codedTag(current?.etag, options);
      return etag === undefined
        ? { outcome: 'not-modified', by: 'If-Modified-Since' }
        : { outcome: 'not-modified', by: 'If-Modified-Since', etag };
    }
  }
  return PROCEED;
}

/** The tag the 200 would carry: the current one, suffixed with the coding it would be sent in. */
function codedTag(etag: string | undefined, options: EvaluateOptions): string | undefined {
  if (etag === undefined || options.preferredCoding === undefined) return etag;
  return encodingETag(etag, options.preferredCoding);
}

/**
 * §13.1.1: `*` is true when a current representation exists; a list is true
 * when one member strongly matches the current tag. An invalid field matches
 * nothing.
 */
function ifMatchPasses(
  value: string,
  exists: boolean,
  currentTag: EntityTag | undefined,
  codings: readonly string[],
): boolean {
  const list = parseETagList(value);
  if (list === undefined || list.kind === 'invalid') return false;
  if (list.kind === 'any') return exists;
  if (currentTag === undefined) return false;
  for (const tag of list.tags) {
    // As sent first: an application's own tag may end like a coding suffix (`"17-pt-br"`).
    if (strongMatch(tag, currentTag)) return true;
    if (strongMatch(stripEncodingSuffix(tag, codings), currentTag)) return true;
  }
  return false;
}

/**
 * §13.1.2: `*` matches when a current representation exists; a list matches
 * when one member weakly matches the current tag. Returns `false` when nothing
 * matches, the request tag to echo on a 304 when one does (preferring the one
 * suffixed with the negotiated coding), or `true` for `*`. An invalid field
 * matches nothing.
 */
function ifNoneMatchMatches(
  value: string,
  exists: boolean,
  currentTag: EntityTag | undefined,
  codings: readonly string[],
  preferred: string | undefined,
): EntityTag | boolean {
  const list = parseETagList(value);
  if (list === undefined || list.kind === 'invalid') return false;
  if (list.kind === 'any') return exists;
  if (currentTag === undefined) return false;
  let first: EntityTag | undefined;
  let plain: EntityTag | undefined;
  for (const tag of list.tags) {
    // As sent first: an application's own tag may end like a coding suffix (`"17-pt-br"`).
    if (weakMatch(tag, currentTag)) {
      plain ??= tag;
      first ??= tag;
      continue;
    }
    // Weak comparison ignores `W/` (§8.8.3.2), so `W/"v3-br"` (the tag of our
    // brotli 200, weakened by an intermediary that changed it) stands for the
    // same identity tag as `"v3-br"`. The 304 carries the tag as the 200 did.
    const strong: EntityTag = tag.weak ? { weak: false, opaque: tag.opaque } : tag;
    if (!weakMatch(stripEncodingSuffix(strong, codings), currentTag)) continue;
    const coding = encodingSuffixOf(strong, codings);
    if (coding !== undefined && coding === preferred) return strong;
    if (coding === undefined) plain ??= tag;
    first ??= strong;
  }
  if (first === undefined) return false;
  // Without a suffixed match for this request's coding, the current tag is what a 200 would carry.
  return plain !== undefined ? currentTag : first;
}
