/**
 * The typed failures of restwell/webhooks. Every one a client (a webhook
 * sender) can cause is a {@link RestwellError} rendered as a problem: 401 for a
 * delivery whose signature does not verify, 403 for a sender or a transport the
 * receiver refuses, 400 for a verified delivery the receiver cannot use, 409
 * for a duplicate still being processed. A duplicate that was processed is
 * never an error: it is answered 200 (a sender retries every other answer).
 */
import { RestwellError, type RestwellErrorCode } from '../core/errors.js';

/**
 * Why a delivery's signature was refused:
 * - `signature-missing`: no signature header, or none in a version this verifier checks;
 * - `signature-malformed`: the signature header cannot be read (too long, too many
 *   elements, a timestamp given twice);
 * - `signature-mismatch`: no signature verifies under any configured secret;
 * - `timestamp-missing`: the scheme signs a timestamp and none was sent;
 * - `timestamp-invalid`: the timestamp is not a plain decimal number of seconds
 *   (signs, spaces, leading zeros, fractions and exponents are refused);
 * - `timestamp-outside-tolerance`: the timestamp is further from the receiver's
 *   clock than the tolerance, in either direction (an old delivery replayed, or a
 *   sender whose clock is wrong);
 * - `webhook-id-missing`, `webhook-id-invalid`: Standard Webhooks signs the
 *   `webhook-id`, which is absent or not a printable id of at most 256 characters.
 */
export type WebhookVerificationCode = Extract<
  RestwellErrorCode,
  | 'signature-missing'
  | 'signature-malformed'
  | 'signature-mismatch'
  | 'timestamp-missing'
  | 'timestamp-invalid'
  | 'timestamp-outside-tolerance'
  | 'webhook-id-missing'
  | 'webhook-id-invalid'
>;

const DETAILS: Readonly<Record<WebhookVerificationCode, string>> = {
  'signature-missing': 'The request carries no webhook signature this endpoint can check.',
  'signature-malformed': 'The webhook signature header cannot be read.',
  'signature-mismatch':
    'No webhook signature matches the request body. Sign the exact bytes sent, with a current secret.',
  'timestamp-missing': 'The webhook signature has no timestamp.',
  'timestamp-invalid': 'The webhook timestamp is not a whole number of seconds since the epoch.',
  'timestamp-outside-tolerance':
    "The webhook timestamp is too far from the receiver's clock. Sign each attempt afresh, with a correct clock.",
  'webhook-id-missing': 'The webhook-id header is missing.',
  'webhook-id-invalid': 'The webhook-id header is not a printable id of at most 256 characters.',
};

/**
 * 401: a delivery's signature does not verify. Thrown by every verifier's
 * `verify()` (pure functions, usable without HTTP) and answered as a problem by
 * `webhookReceiver()`. `code` narrows in a `switch`; `scheme` names the
 * verifier that refused it. RFC 9110 §15.5.2 asks a 401 to carry a
 * `WWW-Authenticate` challenge: it names the scheme (`Webhook-Signature
 * scheme="standard-webhooks"`), which tells a sender's developer what the
 * endpoint expects and reveals nothing else.
 */
export class WebhookVerificationError extends RestwellError {
  override readonly name = 'WebhookVerificationError';
  declare readonly code: WebhookVerificationCode;
  /** The verifier's scheme: `hmac-sha256`, `standard-webhooks`, `github`, or a custom one. */
  readonly scheme: string;
  constructor(code: WebhookVerificationCode, scheme: string, options: { detail?: string } = {}) {
    super(code, 401, `Webhook verification failed (${code})`, {
      detail: options.detail ?? DETAILS[code],
      headers: { 'WWW-Authenticate': `Webhook-Signature scheme="${scheme}"` },
      extensions: { scheme },
    });
    this.scheme = scheme;
  }
}

/**
 * 403 `https-required`: a delivery over plain HTTP to a receiver with
 * `requireHttps`. The same error as `restwell/security`'s HTTPS-only
 * middleware answers (one class, one code, so that `instanceof` and a
 * `switch` on `code` hold whichever module refused the request); re-exported
 * here so that `restwell/webhooks` keeps exporting it.
 */
export { HttpsRequiredError } from '../security/errors.js';

/** 403: the sender's address is not in the receiver's `allowedSenderIps`. */
export class WebhookSenderForbiddenError extends RestwellError {
  override readonly name = 'WebhookSenderForbiddenError';
  constructor() {
    super('webhook-sender-forbidden', 403, 'Webhook sender not allowed', {
      detail: 'Webhook deliveries are not accepted from this address.',
    });
  }
}

/**
 * 400: the delivery verified, but carries no event id to deduplicate it by
 * (no `webhook-id` or delivery id header, no `id` in the payload). A sender
 * that sends such events has a bug a retry will not fix.
 */
export class WebhookEventIdMissingError extends RestwellError {
  override readonly name = 'WebhookEventIdMissingError';
  constructor() {
    super('webhook-event-id-missing', 400, 'Webhook event id missing', {
      detail:
        'The webhook has no event id (a webhook-id header, or an "id" member in the payload), so it cannot be processed exactly once.',
    });
  }
}

/**
 * 409: another delivery of the same event is being processed right now, and
 * did not finish within the receiver's wait. Nothing was processed for this
 * one; `Retry-After` says when to try again, and the retry is answered 200
 * once the first has finished (or is processed, if the first failed).
 */
export class WebhookInFlightError extends RestwellError {
  override readonly name = 'WebhookInFlightError';
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super('webhook-in-flight', 409, 'Webhook in flight', {
      detail:
        'Another delivery of this event is being processed. It was not processed twice; retry later.',
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * 500, a wiring error: a body parser (`express.json()`, `koa-bodyparser`)
 * read the request body before the receiver and kept no raw bytes, and a
 * signature is computed over the exact bytes sent, never over a re-serialised
 * value. The client sees a generic 500 (the sender retries, and succeeds once
 * the wiring is fixed); the message, logged server-side, names the fixes.
 */
export class WebhookBodyConsumedError extends RestwellError {
  override readonly name = 'WebhookBodyConsumedError';
  constructor() {
    super(
      'webhook-body-consumed',
      500,
      'restwell/webhooks: the request body was already read by a body parser that kept no raw bytes, and a signature can only be checked against the exact bytes sent. Fix one of: mount the webhook route before the body parser (app.post(path, rw(webhookReceiver(...)), handler) above app.use(express.json())); or keep the bytes: express.json({ verify: (req, _res, buf) => { req.rawBody = buf } }), express.raw({ type: "application/json" }) on the route, or koa-bodyparser (which keeps ctx.request.rawBody).',
    );
  }
}

/**
 * 503: the in-process queue holds `maxPending` events (or was closed), so
 * this one was not accepted; nothing was recorded, and the sender's retry is
 * processed once there is room. `Retry-After` is sent.
 */
export class WebhookQueueFullError extends RestwellError {
  override readonly name = 'WebhookQueueFullError';
  constructor(retryAfterSeconds = 1) {
    super('webhook-queue-full', 503, 'Webhook queue full', {
      detail: 'The webhook was not accepted: the receiver is busy. Retry later.',
      exposeDetail: true,
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}
