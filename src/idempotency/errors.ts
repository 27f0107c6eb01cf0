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

/**
 * 422: the key's request was executed, but its answer was streamed or too large
 * to record, so it cannot be replayed; running it again could repeat its side
 * effects. 422 rather than 409, though the conflict is with the key's state:
 * the draft (§2.7) makes 409 mean "still in flight, retry later", and a client
 * that follows it would retry for as long as the record lives; 422 is the
 * draft's "do not retry this key", which is what the client must do here (read
 * the resource instead, or use a new key to run the request again).
 */
export class IdempotencyResponseNotReplayableError extends RestwellError {
  override readonly name = 'IdempotencyResponseNotReplayableError';
  /**
   * `originalStatus` is the status the first answer had; left out when the key's
   * record cannot be read (corrupted, or written by another version), in which
   * case whether the request ran is unknown and the key is treated as spent.
   */
  constructor(originalStatus?: number) {
    super('idempotency-response-not-replayable', 422, 'Idempotent response not replayable', {
      detail:
        originalStatus === undefined
          ? 'The record of this Idempotency-Key cannot be read, so whether its request was executed is unknown. Do not retry it; check the resource, or use a new key to execute a new request.'
          : 'A request with this Idempotency-Key was already executed, but its response was streamed or too large to be kept, so it cannot be replayed. Do not retry it; use a new key to execute a new request.',
      extensions: originalStatus === undefined ? {} : { originalStatus },
    });
  }
}

/**
 * 400: the request carries an idempotency key but no authenticated principal,
 * and the middleware was not told to scope anonymous keys by client address
 * (`anonymous: 'refuse'`, the default).
 */
export class IdempotencyKeyUnscopedError extends RestwellError {
  override readonly name = 'IdempotencyKeyUnscopedError';
  constructor(field: string) {
    super('idempotency-key-unscoped', 400, `${field} needs an authenticated caller`, {
      detail: `${field} is accepted only from an authenticated caller on this resource. Authenticate, or send the request without ${field}.`,
    });
  }
}
