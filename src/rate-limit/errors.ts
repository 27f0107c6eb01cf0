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
