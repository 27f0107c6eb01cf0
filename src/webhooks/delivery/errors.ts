/**
 * The typed failures of webhook delivery. Refusing an endpoint URL is the one
 * an API client can cause (by registering it), so it is a {@link RestwellError}
 * rendered as a 422 problem; an attempt that fails is never an error, it is an
 * `AttemptResult` (see `attempt.ts`).
 */
import { RestwellError } from '../../core/errors.js';

/**
 * Why an endpoint URL was refused:
 * - `invalid-url`: not an absolute URL, or longer than 2,048 characters;
 * - `scheme`: not `http:` or `https:`;
 * - `credentials`: the URL carries a user name or password (they would be sent
 *   to the receiver in the clear and kept in the delivery log);
 * - `unresolvable`: the host name does not resolve to any address;
 * - `address`: the host is, or resolves to, an address the policy refuses
 *   (loopback, private, link-local, cloud metadata, ...); `addressClass` says
 *   which kind;
 * - `denied`: the host is, or resolves to, an address in the policy's `deny` list.
 */
export type WebhookUrlRefusalReason =
  | 'invalid-url'
  | 'scheme'
  | 'credentials'
  | 'unresolvable'
  | 'address'
  | 'denied';

const DETAILS: Readonly<Record<WebhookUrlRefusalReason, string>> = {
  'invalid-url': 'The webhook endpoint URL is not an absolute URL of at most 2048 characters.',
  scheme: 'The webhook endpoint URL must use http or https.',
  credentials: 'The webhook endpoint URL must not contain a user name or password.',
  unresolvable: 'The host of the webhook endpoint URL does not resolve to any address.',
  address:
    'The host of the webhook endpoint URL is, or resolves to, an address that webhooks are not delivered to.',
  denied:
    'The host of the webhook endpoint URL is, or resolves to, an address this service does not deliver webhooks to.',
};

/**
 * 422: an endpoint URL the SSRF guard refuses, at registration (`check()`) or
 * at connect time (the guard's `lookup`, when DNS now answers with another
 * address). The problem carries `reason` and, for an address, its
 * `addressClass` (`loopback`, `private`, `metadata`, ...); never the address
 * itself, so that the answer says as little as possible about the network the
 * sender runs in.
 */
export class WebhookUrlRefusedError extends RestwellError {
  override readonly name = 'WebhookUrlRefusedError';
  declare readonly code: 'webhook-url-refused';
  readonly reason: WebhookUrlRefusalReason;
  /** The kind of address refused, for `reason: 'address'`. */
  readonly addressClass: string | undefined;
  constructor(
    reason: WebhookUrlRefusalReason,
    options: { addressClass?: string; cause?: unknown } = {},
  ) {
    const { addressClass } = options;
    super(
      'webhook-url-refused',
      422,
      `Webhook endpoint URL refused (${reason}${addressClass === undefined ? '' : `: ${addressClass}`})`,
      {
        detail:
          addressClass === undefined
            ? DETAILS[reason]
            : `${DETAILS[reason]} Address class: ${addressClass}.`,
        extensions: { reason, ...(addressClass === undefined ? {} : { addressClass }) },
        ...(options.cause === undefined ? {} : { cause: options.cause }),
      },
    );
    this.reason = reason;
    this.addressClass = addressClass;
  }
}
