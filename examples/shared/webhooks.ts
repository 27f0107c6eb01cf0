/**
 * The example's webhook receiver, shared by the Express and Koa apps: `POST /webhooks/restwell`
 * verifies the seed's `X-Signature: t=,v1=` scheme and Standard Webhooks with one secret,
 * deduplicates by event id in the records ledger, and applies payment events in order, so that a
 * late `payment.created` never sets a succeeded payment back to pending.
 */
import { type Store, ValidationError } from 'restwell';
import {
  EventOrder,
  generateWebhookSecret,
  hmacVerifier,
  type ReceivedWebhook,
  standardWebhooksVerifier,
  WebhookEventLedger,
  webhookReceiver,
} from 'restwell/webhooks';

/** WEBHOOK_SECRET, or one generated for this run and printed, so that a sender can sign with it. */
export function webhookSecretFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WEBHOOK_SECRET) return env.WEBHOOK_SECRET;
  const secret = generateWebhookSecret();
  console.error(
    `restwell example: WEBHOOK_SECRET is not set; this run accepts webhooks signed with WEBHOOK_SECRET=${secret}`,
  );
  return secret;
}

/** A payment event as the example's sender writes it. */
export interface PaymentEvent {
  id: string;
  type: string;
  /** Increases with every change of the payment: the order to apply events in. */
  sequence: number;
  data: { paymentId: string; status: string };
}

function paymentEvent(payload: unknown): PaymentEvent {
  const p = payload as Partial<PaymentEvent> | undefined;
  const issues: Array<{ pointer: string; detail: string }> = [];
  if (typeof p?.type !== 'string')
    issues.push({ pointer: '/type', detail: 'type must be a string.' });
  if (!Number.isSafeInteger(p?.sequence) || (p?.sequence as number) < 0) {
    issues.push({ pointer: '/sequence', detail: 'sequence must be a non-negative integer.' });
  }
  if (typeof p?.data?.paymentId !== 'string' || p.data.paymentId === '') {
    issues.push({ pointer: '/data/paymentId', detail: 'data.paymentId must be a string.' });
  }
  if (typeof p?.data?.status !== 'string') {
    issues.push({ pointer: '/data/status', detail: 'data.status must be a string.' });
  }
  if (issues.length > 0)
    throw new ValidationError(issues.map((i) => ({ ...i, in: 'body' as const })));
  return p as PaymentEvent;
}

/** The receiver middleware, and what the route's handler does with a verified event. */
export function createWebhooks(records: Store, secret: string) {
  const statuses = new EventOrder<{ status: string }>({
    store: records,
    namespace: 'example-payments',
  });
  return {
    receiver: webhookReceiver({
      verify: [
        hmacVerifier({ secrets: [secret] }),
        standardWebhooksVerifier({ secrets: [secret] }),
      ],
      // The records store is a ledger (never evicts): a processed event's id is kept for 72 h.
      dedupe: new WebhookEventLedger({ store: records, namespace: 'example' }),
    }),
    /** Applies the event if it is newer than what the payment's status came from. */
    async apply(
      webhook: ReceivedWebhook,
    ): Promise<{ paymentId: string; applied: boolean; status: string }> {
      const event = paymentEvent(webhook.payload);
      const { applied, current } = await statuses.apply(event.data.paymentId, event.sequence, {
        status: event.data.status,
      });
      return { paymentId: event.data.paymentId, applied, status: current.value.status };
    },
  };
}
