/**
 * Representations (`restwell/representation`): how a resource is changed
 * without losing what a client did not mean to change, and how it tells the
 * client what it may do next. See docs/representation.md.
 *
 * - `mergePatch()`: JSON Merge Patch (RFC 7396).
 * - `applyJsonPatch()`: JSON Patch (RFC 6902), atomic and bounded.
 * - `acceptPatch()` and `applyPatch()`: `Accept-Patch`, 415 for another patch
 *   format (RFC 5789), and one call that applies the request's patch.
 * - `replacementShape()` and `replaceRepresentation()`: PUT as a stated full
 *   replace, with defaults for what the body leaves out and server-owned
 *   members kept; `patchedRepresentation()`: the same shape for the result of
 *   a PATCH, with a 422 for a patch that changes or removes what the server
 *   owns.
 * - `links()` and `href`: a HAL-style `_links` object, with actions present
 *   only when the caller may take them, and safely encoded URLs.
 *
 * Exported from `restwell/representation`.
 *
 * @example
 * ```ts
 * import { acceptPatch, applyPatch, href, links } from 'restwell/representation';
 *
 * app.route('/v1/users/:id')
 *   .all(rw(acceptPatch()))
 *   .patch((req, res) => {
 *     const user = repo.save(applyPatch(contextOf(req), repo.get(req.params.id)));
 *     res.json({ ...user, _links: links({ self: href`/v1/users/${user.id}` }) });
 *   });
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
  PatchedRepresentationError,
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
export {
  encodePathSegment,
  type HrefValue,
  href,
  type Link,
  type LinkInput,
  type LinkSpec,
  type LinksOf,
  type LinksOptions,
  links,
} from './links.js';
export { MERGE_PATCH_MEDIA_TYPE, MergePatchTooDeepError, mergePatch } from './merge-patch.js';
export {
  patchedRepresentation,
  type ReplacementShape,
  type ReplacementShapeOptions,
  replaceRepresentation,
  replacementShape,
} from './replace.js';
