/**
 * Labels that make the entity tags `conditional()` computes for a response
 * differ by more than the body: for modules inside a hashing `conditional()`
 * whose representations differ in metadata the body does not show.
 *
 * A strong validator changes whenever the representation data or the metadata
 * that would be observable changes (RFC 9110 §8.8.1). `conditional()` hashes
 * the body; a module that varies a response's headers with something the body
 * may not reflect (`versioning()`: `Api-Version`, `Deprecation`, a versioned
 * `Content-Type`, for a route no migration changes) names that something with
 * a label, and every tag a `conditional()` of the request computes afterwards
 * mixes it in. The module cannot label such a tag itself: a `conditional()`
 * mounted outside it computes the tag after it returned.
 *
 * Kept in the request's state under a registered symbol, so that two copies of
 * the package (ESM and CJS) still understand each other; small on purpose, so
 * that a module that labels does not load the rest of `conditional()`.
 *
 * Exported from `restwell/conditional`.
 *
 * @module
 */
import type { Context } from '../core/context.js';

const LABELS = Symbol.for('restwell.conditional.tag-labels');
type Keyed = Record<symbol, unknown>;
const NONE: readonly string[] = Object.freeze([]);

/**
 * Records that the representation this request gets varies by `label`: every
 * entity tag a `conditional()` computes for this response from then on (a hash
 * of the body) mixes the label in, so that two responses with the same body and
 * different labels get different tags, and a request's `If-None-Match` /
 * `If-Match` are compared with the labelled tag. Labels are hashed, never
 * written into the tag: any string is safe (quotes, spaces, commas, non-ASCII),
 * and the tag keeps its `"<length>-<hash>"` shape, so a coding suffix
 * (`-gzip`) still comes after it and is never confused with a label. Calling it
 * twice with one label is calling it once; the order of several labels does
 * not matter.
 *
 * Validators the application states are left alone: an `ETag` the handler set,
 * or the validators a `conditional({ load })` supplied, are the application's
 * own, and it decides what they vary by. Call this after `next()` returned when
 * a `conditional()` inside you may hash the body too and you label its tag
 * yourself (as `versioning()` does): one called before `next()` mixes the label
 * into the inner one's tag as well.
 *
 * @throws TypeError when `label` is not a non-empty string (a programming error).
 * @example
 * ```ts
 * // A module that answers in one of several representations of a URI, after its next():
 * if (!ctx.response.headers.has('etag')) varyEntityTag(ctx, `tenant:${tenant}`);
 * ```
 */
export function varyEntityTag(ctx: Context, label: string): void {
  if (typeof label !== 'string' || label.length === 0) {
    throw new TypeError(
      `restwell/conditional: varyEntityTag() needs a non-empty string label, got ${label === '' ? 'an empty string' : typeof label}.`,
    );
  }
  const state = ctx.state as Keyed;
  const known = state[LABELS] as readonly string[] | undefined;
  if (known === undefined) {
    state[LABELS] = Object.freeze([label]);
    return;
  }
  if (known.includes(label)) return;
  // Sorted, so that the tag does not depend on which module labelled first.
  state[LABELS] = Object.freeze([...known, label].sort());
}

/** The labels recorded for this request's response by {@link varyEntityTag}, sorted; empty when none. */
export function entityTagLabels(ctx: Context): readonly string[] {
  return ((ctx.state as Keyed)[LABELS] as readonly string[] | undefined) ?? NONE;
}
