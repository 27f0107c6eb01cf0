/**
 * Representations (`restwell/representation`): how a resource is changed
 * without losing what a client did not mean to change. JSON Merge Patch
 * (RFC 7396) and JSON Patch (RFC 6902), with `Accept-Patch`
 * and 415 for another format (RFC 5789), and PUT as a stated full replace. See docs/representation.md.
 *
 * Exported from `restwell/representation`.
 *
 * @example
 * ```ts
 * import { applyJsonPatch, mergePatch } from 'restwell/representation';
 *
 * const updated = mergePatch(user, ctx.request.body); // null removes, untouched members stay
 * const patched = applyJsonPatch(user, [{ op: 'add', path: '/tags/-', value: 'new' }]);
 * ```
 */
export {
  type AcceptPatchOptions,
  type ApplyPatchOptions,
  acceptPatch,
  applyPatch,
  PATCH_MEDIA_TYPES,
} from './accept-patch.js';
export {
  InvalidJsonPatchError,
  type InvalidJsonPatchReason,
  JsonPatchConflictError,
  type JsonPatchConflictReason,
  type JsonPatchIssue,
  JsonPatchUnprocessableError,
  type JsonPatchUnprocessableReason,
  PatchDocumentMissingError,
  UnsupportedPatchMediaTypeError,
} from './errors.js';
export {
  applyJsonPatch,
  JSON_PATCH_MEDIA_TYPE,
  type JsonPatch,
  type JsonPatchOperation,
  type JsonPatchOptions,
} from './json-patch.js';
export { arrayIndex, formatJsonPointer, parseJsonPointer } from './json-pointer.js';
export type { JsonValue } from './json-value.js';
export { MERGE_PATCH_MEDIA_TYPE, MergePatchTooDeepError, mergePatch } from './merge-patch.js';
export {
  type ReplacementShape,
  type ReplacementShapeOptions,
  replaceRepresentation,
  replacementShape,
} from './replace.js';
