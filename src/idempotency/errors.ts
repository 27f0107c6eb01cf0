import { RestwellError } from '../core/errors.js';

/** 400: the route requires an `Idempotency-Key` and the request has none. */
export class IdempotencyKeyMissingError extends RestwellError {
  override readonly name = 'IdempotencyKeyMissingError';
  constructor(detail: string) {
    super('idempotency-key-missing', 400, 'Idempotency-Key required', { detail });
  }
}

/** 400: the `Idempotency-Key` is malformed or too long. */
export class IdempotencyKeyInvalidError extends RestwellError {
  override readonly name = 'IdempotencyKeyInvalidError';
  constructor(detail: string) {
    super('idempotency-key-invalid', 400, 'Idempotency-Key invalid', { detail });
  }
}

/**
 * 422: the key was used before with a different request. The draft
 * (§2.7) answers 422 so that a client bug is not mistaken for a replay.
 */
export class IdempotencyKeyReusedError extends RestwellError {
  override readonly name = 'IdempotencyKeyReusedError';
  constructor() {
    super('idempotency-key-reused', 422, 'Idempotency-Key reused', {
      detail:
        'This Idempotency-Key was already used with a different request. Use a new key for a new request.',
    });
  }
}

/** 409: a request with the same key is still being processed (draft §2.7). */
export class IdempotencyKeyInFlightError extends RestwellError {
  override readonly name = 'IdempotencyKeyInFlightError';
  constructor(retryAfterSeconds: number) {
    super('idempotency-key-in-flight', 409, 'Idempotency-Key in flight', {
      detail:
        'A request with this Idempotency-Key is still being processed. Retry later to get its result.',
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}
