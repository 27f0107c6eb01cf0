import { RestwellError, type RestwellErrorCode } from '../core/errors.js';

/**
 * Why a cursor was refused:
 * - `malformed`: not a cursor at all (empty, too long, not base64url, truncated);
 * - `signature`: its tag does not verify under any configured secret (tampered,
 *   or made by another deployment, or with a secret since removed);
 * - `expired`: older than `maxAgeMs`, or dated further in the future than the
 *   clock skew allowed between servers;
 * - `mismatch`: authentic, but made for another sort, filter or page size;
 * - `version`: made by a format version this release does not read.
 */
export type InvalidCursorReason = 'malformed' | 'signature' | 'expired' | 'mismatch' | 'version';

const DETAILS: Readonly<Record<InvalidCursorReason, string>> = {
  malformed: 'The cursor is not one this API issued. Start again from the first page.',
  signature: 'The cursor is not one this API issued. Start again from the first page.',
  expired: 'The cursor has expired. Start again from the first page.',
  mismatch:
    'The cursor was issued for another sort, filter or page size. Repeat the request with the parameters of the page it came from, or start again from the first page.',
  version: 'The cursor was issued by another version of this API. Start again from the first page.',
};

/** The problem code, a key of the core's ProblemCodes registry. */
const INVALID_CURSOR: RestwellErrorCode = 'invalid-cursor';

/**
 * 400: a client sent a cursor that cannot be used. Every failure of
 * `codec.decode` is this error, whatever the input, so a hostile cursor is a
 * 4xx problem and never a 500. `reason` says which check refused it; it is
 * also sent to the client as the `reason` extension member (it reveals
 * nothing a client could not learn by trying).
 */
export class InvalidCursorError extends RestwellError {
  override readonly name = 'InvalidCursorError';
  /** Which check refused the cursor. */
  readonly reason: InvalidCursorReason;
  constructor(reason: InvalidCursorReason, options: { cause?: unknown } = {}) {
    super(INVALID_CURSOR, 400, `Invalid cursor (${reason})`, {
      detail: DETAILS[reason],
      extensions: { reason },
      cause: options.cause,
    });
    this.reason = reason;
  }
}
