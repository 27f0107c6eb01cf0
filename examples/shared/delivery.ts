/**
 * The example's outgoing webhooks, shared by the Express and Koa apps: payments emit
 * `payment.created` and `payment.succeeded`, delivered by restwell's engine (signed with the seed's
 * `X-Signature`, retried on the seed's schedule, dead-lettered with their attempts), to every
 * endpoint registered through the admin API at `/v1/webhook-endpoints` (admin role).
 *
 * - The queue is the embedded memory queue, or BullMQ on the example's Redis when REDIS_URL is
 *   set; the worker runs in the API process. The delivery log and endpoints are kept in memory
 *   (PostgreSQL in production: `PostgresDeliveryLog`, `PostgresEndpointStore`).
 * - Loopback and plain-HTTP endpoint URLs are allowed, so that a receiver on this machine can be
 *   registered (a development setting, printed at start; never in production: it opens the server
 *   to requests for its own internal addresses).
 * - At start the example registers its own receiver, `POST /webhooks/restwell`, with the secret it
 *   verifies (WEBHOOK_SECRET): the events it emits come back to it, deduplicated and applied in
 *   order. Set WEBHOOK_SELF_DELIVERY=0 to leave it out.
 */
import type { Redis } from 'ioredis';
import type { Middleware } from 'restwell';
import { requireRole } from 'restwell/auth';
import {
  type WebhookDeliveryOptions,
  ssrfGuard,
  type WebhookDelivery,
  webhookAdmin,
  webhookDelivery,
} from 'restwell/webhooks';
import type { Payment } from './domain.js';

export interface ExampleDelivery {
  delivery: WebhookDelivery;
  /** The admin API, under /v1/webhook-endpoints. */
  admin: Middleware;
  /** Emits the events of a new payment: created, then succeeded. */
  paymentMade(payment: Payment): Promise<void>;
}

export async function createDelivery(
  options: { redis?: Redis; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): Promise<ExampleDelivery> {
  const env = options.env ?? process.env;
  let shared: SharedState | undefined;
  if (options.redis !== undefined) {
    // bullmq is an optional peer dependency: loaded only when the example runs on Redis.
    const {
      BullMqDeliveryQueue,
      redisEndpointBreakers,
      redisEndpointHealth,
      redisEndpointLimiter,
    } = await import('restwell/webhooks/bullmq');
    const client = options.redis;
    const prefix = env.REDIS_PREFIX ?? 'restwell-example:';
    // Every worker on this Redis shares one queue, and one view of each endpoint: its
    // concurrency and rate limits, its circuit breaker and its health.
    shared = {
      queue: new BullMqDeliveryQueue({ connection: client, prefix: `{${prefix}webhooks}` }),
      limiter: redisEndpointLimiter({ client, prefix: `${prefix}endpoint-limits` }),
      breakers: redisEndpointBreakers({ client, prefix: `${prefix}endpoint-breakers` }),
      healthStore: redisEndpointHealth({ client, prefix: `${prefix}endpoint-health` }),
    };
  }
  if (options.quiet !== true) {
    console.error(
      'restwell example: webhook endpoints may be on loopback and plain HTTP (a development setting)',
    );
  }
  return deliveryOf(localDelivery(shared));
}

/** What several workers on one Redis share (see createDelivery). */
type SharedState = Pick<WebhookDeliveryOptions, 'queue' | 'limiter' | 'breakers' | 'healthStore'>;

/** An engine that may deliver to this machine (loopback, plain HTTP): for development only. */
export function localDelivery(shared: SharedState = {}): WebhookDelivery {
  return webhookDelivery({
    ...shared,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
  });
}

/**
 * The engine's admin API and the payment events, over any engine: `createApp` makes a memory one
 * when given none (its worker not started), the tests build their own.
 */
export function deliveryOf(delivery: WebhookDelivery): ExampleDelivery {
  return {
    delivery,
    admin: webhookAdmin(delivery, {
      basePath: '/v1/webhook-endpoints',
      authorize: requireRole('admin'),
    }),
    async paymentMade(payment) {
      const resource = { type: 'payment', id: payment.id };
      // Thin enough to leak nothing, fat enough to apply: the receiver orders them by sequence.
      await delivery.dispatch({
        type: 'payment.created',
        sequence: 1,
        resource,
        data: { paymentId: payment.id, status: 'pending', amount: payment.amount },
      });
      await delivery.dispatch({
        type: 'payment.succeeded',
        sequence: 2,
        resource,
        data: { paymentId: payment.id, status: payment.status, amount: payment.amount },
      });
    },
  };
}

/** Registers the example's own receiver, so that the events it emits come back to it. */
export async function registerSelf(
  delivery: WebhookDelivery,
  port: number,
  secret: string,
): Promise<void> {
  await delivery.endpoints.create({
    id: 'ep_self',
    url: `http://127.0.0.1:${port}/webhooks/restwell`,
    eventTypes: ['payment.*'],
    description: "the example's own receiver",
    secret,
  });
}
