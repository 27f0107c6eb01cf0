/**
 * JSON Merge Patch (RFC 7396): the PATCH format where the patch looks like
 * the document. A member set to `null` is removed, an object is merged member
 * by member, anything else (an array, a string, a number) replaces the target
 * whole. Members the patch does not name stay as they are: the safe way to
 * update part of a resource, where a PUT of a partial document would erase
 * what it leaves out.
 */
import { valueNestsDeeperThan } from '../core/body.js';
import { RestwellError } from '../core/errors.js';
import { isPlainObject, put } from './json-value.js';

/** The media type of a merge patch (RFC 7396 §4), to advertise in `Accept-Patch` (RFC 5789 §3.1). */
export const MERGE_PATCH_MEDIA_TYPE = 'application/merge-patch+json';

/** Deepest patch or document `mergePatch` walks; a JSON body that `jsonBody()` accepts is never deeper. */
const MAX_DEPTH = 64;

/** 400: a merge patch nests deeper than a document may (the patch is refused, the target untouched). */
export class MergePatchTooDeepError extends RestwellError {
  override readonly name = 'MergePatchTooDeepError';
  constructor() {
    super('json-too-deep', 400, 'JSON Too Deep', {
      detail: `The merge patch nests objects deeper than ${MAX_DEPTH} levels.`,
      extensions: { maxDepth: MAX_DEPTH },
    });
  }
}

/**
 * A copy of a JSON value, so that the result never shares objects with the
 * patch. Objects that are not plain (a `Date`) are leaves, kept as they are.
 */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copy);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(value)) put(out, name, copy(value[name]));
  return out;
}

function merge(target: unknown, patch: unknown): unknown {
  // RFC 7396 §2: a patch that is not an object replaces the target.
  if (!isPlainObject(patch)) return copy(patch);
  const out: Record<string, unknown> = {};
  // A target that is not a plain object is a leaf, as JSON writes it (a `Date` is a
  // string): merged into {}, so that its fields never appear in the result.
  if (isPlainObject(target)) for (const name of Object.keys(target)) put(out, name, target[name]);
  for (const name of Object.keys(patch)) {
    const value = patch[name];
    if (value === null) delete out[name];
    else put(out, name, merge(Object.hasOwn(out, name) ? out[name] : undefined, value));
  }
  return out;
}

/**
 * Applies a JSON Merge Patch (RFC 7396 §2) to `target` and returns the new
 * document; neither argument is changed. A patch nested deeper than 64 levels
 * throws `MergePatchTooDeepError` (400), so no body can exhaust the stack.
 *
 * @example
 * ```ts
 * mergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } });
 * // → { a: 'z', c: { d: 'e' } }
 * ```
 */
export function mergePatch<T = unknown>(target: unknown, patch: unknown): T {
  if (valueNestsDeeperThan(patch, MAX_DEPTH)) throw new MergePatchTooDeepError();
  return merge(target, patch) as T;
}
