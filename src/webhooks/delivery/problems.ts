/**
 * The problems the delivery engine raises: what an admin API answers when an
 * endpoint or event is unknown, or the engine is shut down. Bad input
 * (an endpoint's URL, filters, limits; an event's fields) is a 400
 * `validation-failed` listing every field; a URL the SSRF guard refuses is the
 * guard's own `WebhookUrlRefusedError`.
 */
import { RestwellError } from '../../core/errors.js';

/** 404: no endpoint has this id. */
export class WebhookEndpointNotFoundError extends RestwellError {
  override readonly name = 'WebhookEndpointNotFoundError';
  readonly endpointId: string;
  constructor(endpointId: string) {
    super('webhook-endpoint-not-found', 404, 'Webhook endpoint not found', {
      detail: 'No webhook endpoint has this id.',
      extensions: { endpointId },
    });
    this.endpointId = endpointId;
  }
}

/** 404: no event of this id is kept (never dispatched, or past its retention). */
export class WebhookEventNotFoundError extends RestwellError {
  override readonly name = 'WebhookEventNotFoundError';
  readonly eventId: string;
  constructor(eventId: string) {
    super('webhook-event-not-found', 404, 'Webhook event not found', {
      detail: 'No event of this id is kept: it was never dispatched, or is past its retention.',
      extensions: { eventId },
    });
    this.eventId = eventId;
  }
}

/** 503: the engine was stopped with `close()`; nothing more is accepted. */
export class WebhookDeliveryClosedError extends RestwellError {
  override readonly name = 'WebhookDeliveryClosedError';
  constructor() {
    super('webhook-delivery-closed', 503, 'Webhook delivery closed', {
      detail: 'Webhook delivery is shutting down; the event was not accepted.',
      exposeDetail: true,
    });
  }
}
