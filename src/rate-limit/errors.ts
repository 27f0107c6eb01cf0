import { RestwellError } from '../core/errors.js';

/**
 * 429 Too Many Requests (RFC 6585 §4), code `rate-limited`, with `Retry-After`
 * in whole seconds, rounded up and never 0, since a client told to wait 0
 * seconds retries at once and is refused again.
 */
export class RateLimitedError extends RestwellError {
  override readonly name = 'RateLimitedError';
  /** The policy that refused the request. */
  readonly policy: string;
  /** Seconds until a retry of the same cost would be admitted. */
  readonly retryAfterSeconds: number;

  constructor(policy: string, retryAfterMs: number, headers: Record<string, string> = {}) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super('rate-limited', 429, 'Too Many Requests', {
      detail: `The "${policy}" rate limit is exhausted. Retry in ${seconds} s.`,
      headers: { ...headers, 'Retry-After': String(seconds) },
      extensions: { policy, retryAfter: seconds },
    });
    this.policy = policy;
    this.retryAfterSeconds = seconds;
  }
}

/**
 * 400 Bad Request, code `rate-limit-cost-exceeds-capacity`: the request
 * costs more than the policy can ever hold (its bucket's capacity, its
 * window's limit), so no wait would admit it and no `Retry-After` is sent.
 * 429 would be wrong: it tells the client to retry later (RFC 6585 §4), and
 * the retry is refused for ever. 413 is about the size of the content (RFC
 * 9110 §15.5.14), which a cost need not be. The client must split the
 * request; `capacity` says into what.
 */
export class CostExceedsCapacityError extends RestwellError {
  override readonly name = 'CostExceedsCapacityError';
  /** The policy that can never admit the request. */
  readonly policy: string;
  readonly cost: number;
  readonly capacity: number;

  constructor(policy: string, cost: number, capacity: number) {
    super('rate-limit-cost-exceeds-capacity', 400, 'Bad Request', {
      detail: `This request costs ${cost} units; the "${policy}" rate limit never admits more than ${capacity} at once. Split the request.`,
      extensions: { policy, cost, capacity },
    });
    this.policy = policy;
    this.cost = cost;
    this.capacity = capacity;
  }
}
