/**
 * The problems of `restwell/representation`: one error class per status of
 * RFC 5789 §2.2 ("Error Handling"), each carrying a `reason` a client can
 * switch on and the JSON Pointer, into the patch document, of what failed.
 */
import { RestwellError, type RestwellErrorCode, type ValidationIssue } from '../core/errors.js';

const INVALID_JSON_PATCH: RestwellErrorCode = 'invalid-json-patch';
const JSON_PATCH_CONFLICT: RestwellErrorCode = 'json-patch-conflict';
const JSON_PATCH_UNPROCESSABLE: RestwellErrorCode = 'json-patch-unprocessable';
const PATCH_DOCUMENT_MISSING: RestwellErrorCode = 'patch-document-missing';
const UNPROCESSABLE_ENTITY: RestwellErrorCode = 'unprocessable-entity';

/** Longest piece of client input (a pointer, an op name) quoted in a `detail`. */
const MAX_QUOTED = 80;

/** A client's string, quoted for a `detail`: JSON-escaped and cut to a readable length. */
export function quote(text: string): string {
  return JSON.stringify(text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text);
}

/**
 * Why a JSON Patch document was refused before any operation was applied:
 * - `not-an-array`: the patch is not a JSON array (RFC 6902 §3);
 * - `too-many-operations`: it has more operations than `maxOperations`;
 * - `not-an-object`: an operation is not a JSON object (§4);
 * - `invalid-op`: `op` is missing, not a string, or not one of the six (§4);
 * - `invalid-pointer`: `path` or `from` is missing, not a string, not a JSON
 *   Pointer (RFC 6901 §3), or longer than `maxPointerLength`;
 * - `missing-value`: `add`, `replace` or `test` has no `value` (§4.1, §4.3, §4.6);
 * - `invalid-value`: `value` holds something JSON cannot (a function, `NaN`,
 *   a `Date`, `undefined`, a cycle);
 * - `too-deep`: `value` nests arrays and objects deeper than `maxDepth`;
 * - `move-into-itself`: a `move` whose `from` is a proper prefix of its
 *   `path` (§4.4).
 */
export type InvalidJsonPatchReason =
  | 'not-an-array'
  | 'too-many-operations'
  | 'not-an-object'
  | 'invalid-op'
  | 'invalid-pointer'
  | 'missing-value'
  | 'invalid-value'
  | 'too-deep'
  | 'move-into-itself';

/** One fault of a JSON Patch document, addressed by a JSON Pointer into the patch (`/3/path`). */
export interface JsonPatchIssue {
  /** The pointer into the patch document: `/3/path` is the `path` member of the fourth operation. */
  pointer: string;
  /** What is wrong there. */
  detail: string;
  /** Which rule refused it. */
  reason: InvalidJsonPatchReason;
}

/**
 * 400 (RFC 5789 §2.2, "Malformed patch document"): the body is not a JSON
 * Patch document this server applies. Nothing was applied. Every fault found
 * is listed in `errors` (at most 20), each with its pointer into the patch, as
 * validation errors list every field at once; `operation`, `pointer` and
 * `reason` name the first.
 */
export class InvalidJsonPatchError extends RestwellError {
  override readonly name = 'InvalidJsonPatchError';
  /** Every fault found, first first. */
  readonly errors: readonly JsonPatchIssue[];
  /** Why the first fault was refused. */
  readonly reason: InvalidJsonPatchReason;
  /** The index of the first faulty operation; `undefined` when the whole patch is at fault. */
  readonly operation: number | undefined;
  /** The JSON Pointer, into the patch, of the first fault. */
  readonly pointer: string;
  constructor(
    issues: readonly [JsonPatchIssue, ...JsonPatchIssue[]],
    options: { operation?: number; truncated?: boolean } = {},
  ) {
    const first = issues[0];
    const more = issues.length - 1;
    super(INVALID_JSON_PATCH, 400, 'Invalid JSON Patch', {
      detail:
        more === 0 && !options.truncated
          ? first.detail
          : `${first.detail} (and ${more}${options.truncated ? ' or more' : ''} other fault${more === 1 && !options.truncated ? '' : 's'})`,
      extensions: {
        ...(options.operation === undefined ? {} : { operation: options.operation }),
        pointer: first.pointer,
        reason: first.reason,
        errors: issues,
        ...(options.truncated ? { errorsTruncated: true } : {}),
      },
    });
    this.errors = issues;
    this.reason = first.reason;
    this.operation = options.operation;
    this.pointer = first.pointer;
  }
}

/**
 * Why a valid JSON Patch operation cannot be applied to the document as it is
 * now:
 * - `path-not-found`: the location `path` names does not exist (§4.2 remove,
 *   §4.3 replace, §4.6 test), or `add`'s parent does not (§4.1, Appendix A.12);
 * - `from-not-found`: the location `from` names does not exist (§4.4, §4.5);
 * - `not-a-container`: a pointer goes through a string, a number, `true`,
 *   `false` or `null`, which have no members (RFC 6901 §4);
 * - `invalid-array-index`: a token that addresses an array is not an index
 *   (`01`, `1.5`, `length`; RFC 6901 §4), or is `-` where an element must
 *   exist;
 * - `index-out-of-range`: the index is past the end of the array (for `add`,
 *   greater than its length, §4.1);
 * - `test-failed`: the value at `path` is not equal to `value` (§4.6).
 */
export type JsonPatchConflictReason =
  | 'path-not-found'
  | 'from-not-found'
  | 'not-a-container'
  | 'invalid-array-index'
  | 'index-out-of-range'
  | 'test-failed';

/**
 * 409 (RFC 5789 §2.2, "Conflicting state"): the patch is well formed, but an
 * operation cannot be applied to the resource as it is now (its path does not
 * exist, an index is out of range, a `test` failed). RFC 5789 gives this case
 * its own status, 409, distinct from 422 ("Unprocessable request": the patch
 * would make the resource invalid): the client's picture of the resource's
 * state is wrong, and reading it again is the fix. Nothing was applied (RFC
 * 6902 §5: a patch is atomic). `operation` is the failing operation's index
 * and `pointer` the member of it, in the patch, that failed (`/3/path`).
 */
export class JsonPatchConflictError extends RestwellError {
  override readonly name = 'JsonPatchConflictError';
  readonly reason: JsonPatchConflictReason;
  /** The index of the operation that failed. */
  readonly operation: number;
  /** The JSON Pointer, into the patch, of the member that failed (`/3/path`, `/3/from`, `/3/value`). */
  readonly pointer: string;
  constructor(reason: JsonPatchConflictReason, operation: number, pointer: string, detail: string) {
    super(JSON_PATCH_CONFLICT, 409, 'JSON Patch Conflict', {
      detail,
      extensions: { operation, pointer, reason },
    });
    this.reason = reason;
    this.operation = operation;
    this.pointer = pointer;
  }
}

/**
 * Why a patch that could be applied was not:
 * - `result-too-deep`: the document would nest arrays and objects deeper than
 *   `maxDepth`, deeper than a request body may be, so a client could no longer
 *   send it back;
 * - `copy-too-large`: the `copy` operations would create more values, together,
 *   than `maxCopiedValues`, a string counting one per character (each copy
 *   duplicates a subtree, so a few dozen copies could otherwise double the
 *   document a few dozen times);
 * - `removes-document`: a `remove` of the whole document (path `""`) would
 *   leave no representation at all.
 */
export type JsonPatchUnprocessableReason =
  | 'result-too-deep'
  | 'copy-too-large'
  | 'removes-document';

/**
 * 422 (RFC 5789 §2.2, "Unprocessable request"): the patch is valid and its
 * locations exist, but the result is one this server does not hold (too deep,
 * too large, or no document). Nothing was applied.
 */
export class JsonPatchUnprocessableError extends RestwellError {
  override readonly name = 'JsonPatchUnprocessableError';
  readonly reason: JsonPatchUnprocessableReason;
  readonly operation: number;
  readonly pointer: string;
  constructor(
    reason: JsonPatchUnprocessableReason,
    operation: number,
    pointer: string,
    detail: string,
    limit?: number,
  ) {
    super(JSON_PATCH_UNPROCESSABLE, 422, 'JSON Patch Unprocessable', {
      detail,
      extensions: { operation, pointer, reason, ...(limit === undefined ? {} : { limit }) },
    });
    this.reason = reason;
    this.operation = operation;
    this.pointer = pointer;
  }
}

/**
 * 400 (RFC 5789 §2.2, "Malformed patch document"): a PATCH request came with
 * no patch document at all (an empty body), so there is nothing to apply.
 */
export class PatchDocumentMissingError extends RestwellError {
  override readonly name = 'PatchDocumentMissingError';
  constructor() {
    super(PATCH_DOCUMENT_MISSING, 400, 'Patch Document Missing', {
      detail: 'The PATCH request has no body; send a patch document.',
    });
  }
}

/**
 * 415 (RFC 5789 §2.2, "Unsupported patch document"): the PATCH body is in a
 * media type this resource does not apply, or has no `Content-Type`. Carries
 * `Accept-Patch` listing the types it does apply, as §2.2 says it should
 * (§3.1), and the same list as the `accept` member. The code is the core's
 * `unsupported-media-type`, the one every 415 has, so a client handles every
 * 415 alike and reads `Accept-Patch` when it is there.
 */
export class UnsupportedPatchMediaTypeError extends RestwellError {
  override readonly name = 'UnsupportedPatchMediaTypeError';
  /** The media types this resource applies, as sent in `Accept-Patch`. */
  readonly accept: readonly string[];
  constructor(mediaType: string | undefined, accept: readonly string[]) {
    super('unsupported-media-type', 415, 'Unsupported Media Type', {
      detail:
        mediaType === undefined
          ? `The PATCH request has a body but no Content-Type; send one of: ${accept.join(', ')}.`
          : `Content-Type ${quote(mediaType)} is not a patch format this resource applies; send one of: ${accept.join(', ')}.`,
      headers: { 'Accept-Patch': accept.join(', ') },
      extensions: { accept },
    });
    this.accept = accept;
  }
}

/**
 * 422 (RFC 5789 §2.2, "Unprocessable request"): the patch is well formed and
 * applies, but the representation it makes is not one the resource can have:
 * it changes or removes a member the server owns, adds an unknown member, or
 * is not an object. Nothing was applied. `errors` lists each member, by a JSON
 * Pointer into the patched representation (not into the patch), as
 * `validation-failed` lists the fields of a body.
 */
export class PatchedRepresentationError extends RestwellError {
  override readonly name = 'PatchedRepresentationError';
  /** Each member at fault, first first. */
  readonly errors: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], options: { truncated?: boolean } = {}) {
    const count = issues.length;
    super(UNPROCESSABLE_ENTITY, 422, 'Unprocessable Content', {
      detail: `${
        count === 1 && !options.truncated
          ? 'One member'
          : `${count}${options.truncated ? ' or more' : ''} members`
      } of the patched representation cannot be kept; nothing was changed.`,
      extensions: { errors: issues, ...(options.truncated ? { errorsTruncated: true } : {}) },
    });
    this.errors = issues;
  }
}
