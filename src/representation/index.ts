/**
 * Representations (`restwell/representation`): how a resource is changed
 * without losing what a client did not mean to change. Today: JSON Merge Patch
 * (RFC 7396). See docs/representation.md.
 *
 * Exported from `restwell/representation`.
 *
 * @example
 * ```ts
 * import { MERGE_PATCH_MEDIA_TYPE, mergePatch } from 'restwell/representation';
 *
 * const updated = mergePatch(user, ctx.request.body); // null removes, untouched members stay
 * ```
 */
export { MERGE_PATCH_MEDIA_TYPE, MergePatchTooDeepError, mergePatch } from './merge-patch.js';
