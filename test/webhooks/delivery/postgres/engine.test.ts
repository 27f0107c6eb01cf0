/**
 * The whole engine on the PostgreSQL log and endpoint store, delivering to
 * real node:http receivers: signed deliveries, retries on the schedule, a
 * fast failure dead-lettered and replayed, held events of a disabled
 * endpoint, stats, and a second engine (another process) that reads what the
 * first one wrote.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
import { PostgresEndpointStore } from '../../../../src/webhooks/delivery/postgres-endpoints.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { engine, receiver, until } from '../engine/helpers.js';
import { services, testSchema } from './pg.js';

const db = testSchema('engine');
let tables = 0;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Parameters<typeof engine>[0] = {}) {
  await db.migrate();
  const where = { schema: db.schema, prefix: `t${++tables}` };
  await migrateWebhookDelivery(db.pool, where);
  const log = new PostgresDeliveryLog({ pool: db.pool, ...where });
  const endpointStore = new PostgresEndpointStore({ pool: db.pool, ...where });
  const e = engine({ log, endpointStore, ...options });
  cleanups.push(() => e.delivery.stop());
  return { ...e, log, endpointStore, where };
}
async function hooks(answer: Parameters<typeof receiver>[0] = () => 200) {
  const r = await receiver(answer);
  cleanups.push(() => r.close());
  return r;
}

describe.runIf(services.postgres)('the engine on the PostgreSQL log and endpoint store', () => {
  it('delivers a signed event, and retries a 500 on the schedule until a 2xx', async () => {
    const r = await hooks((_, n) => (n === 1 ? 500 : 200));
    const { delivery, clock, log } = await setup();
    const { endpoint, secret } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { event } = await delivery.dispatch({ type: 'payment.succeeded', data: { amount: 1 } });
    const id = `${event.id}/${endpoint.id}`;
    await until(async () => (await log.getDelivery(id))?.status === 'retrying');
    await clock.advance(30_000);
    await until(async () => (await log.getDelivery(id))?.status === 'delivered');
    expect(r.requests).toHaveLength(2);
    const verifier = hmacVerifier({ secrets: [secret], now: clock.now });
    expect(() => verifier.verify(r.requests[1]!.body, r.requests[1]!.headers)).not.toThrow();
    expect(r.requests[1]!.json).toMatchObject({ id: event.id, data: { amount: 1 } });
    const attempts = (await log.queryAttempts({ deliveryId: id })).items;
    expect(attempts.map((a) => [a.attempt, a.status, a.ok])).toEqual([
      [2, 200, true],
      [1, 500, false],
    ]);
    expect(await log.getDelivery(id)).toMatchObject({ attempts: 2, totalAttempts: 2 });
    const stats = await delivery.stats(endpoint.id);
    expect(stats).toMatchObject({ attempts: 2, succeeded: 1, successRate: 0.5, dlq: 0 });
    expect(stats.p50Ms).toBeTypeOf('number');
  });

  it('dead-letters a 400 with its context, and a replay delivers it with a fresh budget', async () => {
    const r = await hooks(() => 400);
    const { delivery, log } = await setup();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { event } = await delivery.dispatch({ type: 'payment.created', data: {} });
    const id = `${event.id}/${endpoint.id}`;
    await until(async () => (await log.getDelivery(id))?.status === 'dead');
    expect(await log.getDelivery(id)).toMatchObject({
      deadReason: 'fast-failure',
      lastStatus: 400,
    });
    expect((await delivery.stats(endpoint.id)).dlq).toBe(1);
    r.answer(() => 204);
    expect(await delivery.replay({ endpointId: endpoint.id })).toEqual({
      replayed: 1,
      deliveryIds: [id],
    });
    await until(async () => (await log.getDelivery(id))?.status === 'delivered');
    expect(await log.getDelivery(id)).toMatchObject({
      generation: 1,
      attempts: 1,
      totalAttempts: 2,
    });
  });

  it('holds the events of a disabled endpoint and delivers them when it is enabled', async () => {
    const r = await hooks();
    const { delivery, log } = await setup();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    await delivery.endpoints.disable(endpoint.id, 'maintenance');
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'payment.created', data: {} });
    expect(deliveries.map((d) => d.status)).toEqual(['held']);
    expect((await delivery.stats(endpoint.id)).held).toBe(1);
    await delivery.endpoints.enable(endpoint.id);
    await until(async () => (await log.getDelivery(deliveries[0]!.id))?.status === 'delivered');
    expect(r.requests).toHaveLength(1);
  });

  it('a second engine on the same tables sees the endpoints and the log the first one wrote', async () => {
    const r = await hooks();
    const first = await setup();
    const { endpoint, secret } = await first.delivery.endpoints.create({ url: r.url });
    first.delivery.startWorker();
    const { event } = await first.delivery.dispatch({ type: 'payment.created', data: {} });
    await until(
      async () =>
        (await first.log.getDelivery(`${event.id}/${endpoint.id}`))?.status === 'delivered',
    );
    const otherPool = db.newPool(3);
    const second = engine({
      log: new PostgresDeliveryLog({ pool: otherPool, ...first.where }),
      endpointStore: new PostgresEndpointStore({ pool: otherPool, ...first.where }),
    });
    cleanups.push(() => second.delivery.stop());
    expect((await second.delivery.endpoints.list()).map((e) => e.id)).toEqual([endpoint.id]);
    expect(await second.delivery.endpoints.get(endpoint.id)).not.toHaveProperty('secrets');
    expect((await second.delivery.endpoints.record(endpoint.id)).secrets[0]?.secret).toBe(secret);
    expect((await second.delivery.stats(endpoint.id)).succeeded).toBe(1);
    // A cursor of the first process's log pages on in the second's.
    await first.delivery.dispatch({ type: 'payment.created', data: {} });
    const page = await first.log.queryDeliveries({ limit: 1 });
    const next = await second.delivery.log.queryDeliveries({ limit: 1, cursor: page.nextCursor! });
    expect(next.items.map((d) => d.eventId)).toEqual([event.id]);
  });
});
