/**
 * The example's outgoing webhooks, end to end on a real server: a payment emits payment.created
 * and payment.succeeded, the engine delivers them, signed, to the example's own receiver (which
 * verifies, dedupes and applies them in order), and the admin API shows the deliveries to admins
 * only.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { randomUUID } from 'node:crypto';
import {
  createDelivery,
  deliveryOf,
  type ExampleDelivery,
  localDelivery,
  registerSelf,
} from '../../examples/shared/delivery.js';
import { createStores } from '../../examples/shared/stores.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { ADMIN_KEY, EXAMPLE_CREDENTIALS, MEMBER_KEY } from '../helpers/example-client.js';
import { services } from '../helpers/services.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

type Listener = (o: Parameters<typeof createKoaApp>[0]) => RequestListener;
const express: Listener = (o) => createExpressApp(o) as unknown as RequestListener;
const koa: Listener = (o) => createKoaApp(o).callback() as RequestListener;

/** The memory engine, or what `npm start` builds on REDIS_URL: BullMQ and the shared limiter. */
async function memoryEngine(): Promise<ExampleDelivery> {
  return deliveryOf(localDelivery());
}
async function redisEngine(): Promise<ExampleDelivery> {
  const env = { REDIS_URL: services.redisUrl, REDIS_PREFIX: `restwell-hooks-${randomUUID()}:` };
  const stores = await createStores(env);
  cleanups.push(async () => {
    const keys = await stores.redis!.keys(`*${env.REDIS_PREFIX}*`);
    if (keys.length > 0) await stores.redis!.del(...keys);
    await stores.close();
  });
  return createDelivery({ redis: stores.redis!, env, quiet: true });
}

describe.each([
  { name: 'express, memory queue', listener: express, engine: memoryEngine, enabled: true },
  { name: 'koa, memory queue', listener: koa, engine: memoryEngine, enabled: true },
  {
    name: 'express, BullMQ on Redis',
    listener: express,
    engine: redisEngine,
    enabled: services.redis,
  },
])('the example outgoing webhooks on $name', ({ listener, engine, enabled }) => {
  it.runIf(enabled)(
    'delivers payment events to its own receiver, in order, and shows them to admins',
    async () => {
      const webhookSecret = generateWebhookSecret();
      const outgoing = await engine();
      cleanups.push(() => outgoing.delivery.stop());
      const server: Server = createServer(
        listener({
          counters: new MemoryStore(),
          records: new MemoryStore({ evict: false }),
          logger: silentLogger,
          credentials: EXAMPLE_CREDENTIALS,
          webhookSecret,
          outgoing,
        }),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      const { port } = server.address() as AddressInfo;
      await registerSelf(outgoing.delivery, port, webhookSecret);
      outgoing.delivery.startWorker();

      const created = await request(server)
        .post('/v1/payments')
        .set('X-API-Key', MEMBER_KEY)
        .set('Idempotency-Key', 'hooks-1')
        .send({ amount: 500, currency: 'EUR', userId: 'usr_ada' })
        .expect(201);
      const paymentId = created.body.id as string;

      const deliveries = () =>
        request(server).get('/v1/webhook-endpoints/ep_self/deliveries').set('X-API-Key', ADMIN_KEY);
      await until(async () => {
        const res = await deliveries();
        return (
          res.status === 200 &&
          res.body.data.filter((d: { status: string }) => d.status === 'delivered').length === 2
        );
      });
      const listed = (await deliveries().expect(200)).body.data as Array<{ eventType: string }>;
      expect(listed.map((d) => d.eventType).sort()).toEqual([
        'payment.created',
        'payment.succeeded',
      ]);

      // The receiver applied both, the newer status winning whatever the arrival order: a second
      // delivery of the older event changes nothing.
      const attempts = await request(server)
        .get('/v1/webhook-endpoints/ep_self/attempts')
        .set('X-API-Key', ADMIN_KEY)
        .expect(200);
      const byType = new Map<string, { status: number; responseExcerpt?: string }>(
        attempts.body.data.map((a: { eventType: string }) => [a.eventType, a]),
      );
      expect(byType.get('payment.succeeded')).toMatchObject({ status: 200 });
      expect(JSON.parse(byType.get('payment.succeeded')!.responseExcerpt!)).toEqual({
        paymentId,
        applied: true,
        status: 'succeeded',
      });
      // payment.created was applied only if it came first; either way the status it left is right.
      const first = JSON.parse(byType.get('payment.created')!.responseExcerpt!);
      expect(first.paymentId).toBe(paymentId);
      expect(first.status).toBe(first.applied ? 'pending' : 'succeeded');
      expect(JSON.stringify(attempts.body)).not.toContain(webhookSecret);

      // Operators only: a member's key is refused, before and inside the admin API.
      await request(server).get('/v1/webhook-endpoints').set('X-API-Key', MEMBER_KEY).expect(403);
      await request(server).get('/v1/webhook-endpoints').expect(401);
      const listing = await request(server)
        .get('/v1/webhook-endpoints')
        .set('X-API-Key', ADMIN_KEY)
        .expect(200);
      expect(JSON.stringify(listing.body)).not.toContain(webhookSecret);
    },
  );
});
