/**
 * Webhooks, part 1: signing, verification and idempotent receivers.
 *
 * Exported from `restwell/webhooks`.
 *
 * - Signers (sender side), pure functions of the body and the clock:
 *   {@link hmacSigner} (`X-Signature: t=,v1=`, Stripe-compatible) and
 *   {@link standardWebhooksSigner} (`webhook-id`, `webhook-timestamp`,
 *   `webhook-signature`, `v1` HMAC and `v1a` ed25519).
 * - Verifiers (receiver side), pure too, with an injectable clock:
 *   {@link hmacVerifier}, {@link standardWebhooksVerifier},
 *   {@link githubVerifier}. Constant-time comparison, every signature tried
 *   against every secret (rotation), a tolerance in both directions, typed
 *   failures ({@link WebhookVerificationError}). Interoperable both ways with
 *   `stripe` and `standardwebhooks`.
 * - {@link webhookReceiver}: the middleware that captures the exact body bytes
 *   on Express and Koa, verifies, deduplicates by event id on a ledger
 *   ({@link WebhookEventLedger}: exactly one of any number of concurrent
 *   duplicates is processed, the others answered 200), and hands the event on
 *   to the route's handler or to a queue ({@link InProcessQueue}).
 * - Ordering: {@link EventOrder} (apply only if newer, atomically),
 *   {@link upsertIfNewer} and {@link withWebhookEvent} on PostgreSQL, and
 *   {@link refetcher} (the re-fetch pattern).
 *
 * Cryptography is `node:crypto` (HMAC-SHA256, ed25519), synchronous.
 *
 * @example
 * ```ts
 * import { contextOf, expressAdapter } from 'restwell/express';
 * import { MemoryStore } from 'restwell/memory';
 * import { hmacVerifier, WebhookEventLedger, webhookOf, webhookReceiver } from 'restwell/webhooks';
 *
 * const rw = expressAdapter();
 * const receiver = webhookReceiver({
 *   verify: hmacVerifier({ secrets: [process.env.WEBHOOK_SECRET!] }),
 *   dedupe: new WebhookEventLedger({ store: new MemoryStore({ evict: false }) }),
 * });
 * app.post('/webhooks/restwell', rw(receiver), (req, res) => {
 *   const { payload } = webhookOf(contextOf(req));
 *   res.sendStatus(204);
 * });
 * ```
 */
export {
  HttpsRequiredError,
  WebhookBodyConsumedError,
  WebhookEventIdMissingError,
  WebhookInFlightError,
  WebhookQueueFullError,
  WebhookSenderForbiddenError,
  type WebhookVerificationCode,
  WebhookVerificationError,
} from './errors.js';
export {
  type GithubVerifierOptions,
  GITHUB_SCHEME,
  githubVerifier,
} from './github.js';
export {
  HMAC_SCHEME,
  type HmacSigner,
  type HmacSignerOptions,
  type HmacVerifierOptions,
  hmacSigner,
  hmacVerifier,
  type SignOptions,
} from './hmac.js';
export {
  type ClaimedEvent,
  type EventClaim,
  type EventState,
  WebhookEventLedger,
  type WebhookEventLedgerOptions,
} from './ledger.js';
export {
  type ApplyOutcome,
  type EventOrderOptions,
  EventOrder,
  type EventPosition,
  type OrderedState,
  type Refetcher,
  type RefetcherOptions,
  refetcher,
} from './ordering.js';
export {
  migrateWebhookEvents,
  sweepWebhookEvents,
  type UpsertIfNewerOptions,
  upsertIfNewer,
  type WebhookEventKey,
  type WebhookEventOutcome,
  webhookEventsTableSql,
  withWebhookEvent,
  type WithWebhookEventOptions,
} from './postgres.js';
export {
  backoffDelayMs,
  InProcessQueue,
  type InProcessQueueOptions,
  type WebhookQueue,
} from './queue.js';
export {
  type ReceivedWebhook,
  type WebhookReceiverOptions,
  webhookOf,
  webhookReceiver,
} from './receiver.js';
export {
  type GenerateSecretOptions,
  generateWebhookKeyPair,
  generateWebhookSecret,
  MAX_SECRET_BYTES,
  MIN_SECRET_BYTES,
  type WebhookKeyPair,
} from './secrets.js';
export {
  STANDARD_WEBHOOKS_SCHEME,
  type StandardSignOptions,
  type StandardWebhookHeaders,
  type StandardWebhooksSigner,
  type StandardWebhooksSignerOptions,
  type StandardWebhooksVerifierOptions,
  standardWebhooksSigner,
  standardWebhooksVerifier,
} from './standard.js';
export type {
  VerifiedSignature,
  WebhookHeaders,
  WebhookPayload,
  WebhookVerifier,
} from './verify.js';
// Part 2: reliable delivery (docs/webhook-delivery.md).
export * from './delivery/exports.js';
