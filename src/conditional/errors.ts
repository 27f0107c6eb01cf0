import { RestwellError } from '../core/errors.js';
import type { PreconditionField } from './preconditions.js';

/**
 * 412 (RFC 9110 §15.5.13): a precondition of the request evaluated to false, so
 * the method was not performed. The usual cause is a stale `If-Match`: someone
 * else changed the resource since the client read it. `field` says which
 * precondition failed.
 */
export class PreconditionFailedError extends RestwellError {
  override readonly name = 'PreconditionFailedError';
  readonly field: PreconditionField;
  constructor(field: PreconditionField) {
    super('precondition-failed', 412, 'Precondition Failed', {
      detail:
        field === 'If-None-Match'
          ? 'The resource already exists, or matches the If-None-Match condition; the request was not performed.'
          : `The ${field} condition is not met: the resource has changed since you read it. Fetch it again and retry.`,
      extensions: { precondition: field },
    });
    this.field = field;
  }
}

/**
 * 428 (RFC 6585 §3): this resource is only written conditionally, to prevent
 * lost updates; send `If-Match` with the ETag you read (or `If-Unmodified-Since`).
 */
export class PreconditionRequiredError extends RestwellError {
  override readonly name = 'PreconditionRequiredError';
  constructor() {
    super('precondition-required', 428, 'Precondition Required', {
      detail:
        'This request must be conditional: send If-Match with the ETag of the representation you are changing.',
    });
  }
}
