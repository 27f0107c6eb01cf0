import { afterEach, describe, expect, it } from 'vitest';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { engine, receiver, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Parameters<typeof engine>[0] = {}) {
  const e = engine(options);
  cleanups.push(() => e.delivery.stop());
  return e;
}
async function hooks(answer: Parameters<typeof receiver>[0] = () => 200) {
  const r = await receiver(answer);
  cleanups.push(() => r.close());
  return r;
}

/** Three attempts, 1 s apart, then the dead-letter queue. */
const short = retrySchedule({
  delaysMs: [1000],
  backoffFactor: 1,
  maxAttempts: 3,
  random: () => 0,
});

describe('the dead-letter queue and replay', () => {
  it('dead-letters after the last attempt, keeping the payload and every attempt', async () => {
    const dead: string[] = [];
    const { clock, delivery } = await setup({
      schedule: short,
      onDeadLetter: (n) => void dead.push(`${n.reason}:${n.delivery.id}`),
    });
    const r = await hooks(() => ({ status: 500, body: 'oops' }));
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { event, deliveries } = await delivery.dispatch({ type: 'a.b', data: { amount: 7 } });
    const id = deliveries[0]!.id;
    for (let n = 2; n <= 3; n++) {
      await until(async () => (await delivery.log.getDelivery(id))?.attempts === n - 1);
      await clock.advance(1000);
    }
    await until(() => dead.length === 1);
    expect(dead).toEqual([`exhausted:${id}`]);
    expect(await delivery.log.getDelivery(id)).toMatchObject({
      status: 'dead',
      deadReason: 'exhausted',
      attempts: 3,
    });
    expect((await delivery.log.getEvent(event.id))?.data).toEqual({ amount: 7 });
    const attempts = (await delivery.log.queryAttempts({ deliveryId: id })).items;
    expect(attempts.map((a) => a.attempt)).toEqual([3, 2, 1]);
    expect(attempts.every((a) => a.status === 500 && a.responseExcerpt === 'oops')).toBe(true);
    expect((await delivery.stats(deliveries[0]!.endpointId)).dlq).toBe(1);
  });

  it('replays only what the filter selects, each with a fresh retry budget', async () => {
    const { clock, delivery } = await setup({ schedule: short });
    const r = await hooks(() => 400);
    const other = await hooks(() => 400);
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    const { endpoint: second } = await delivery.endpoints.create({ url: other.url });
    delivery.startWorker();
    const a = await delivery.dispatch({ type: 'payment.created', data: {} });
    await clock.advance(60_000);
    const b = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await clock.advance(60_000);
    const c = await delivery.dispatch({ type: 'refund.created', data: {} });
    await until(async () => (await delivery.stats(endpoint.id)).dlq === 3);
    await until(async () => (await delivery.stats(second.id)).dlq === 3);

    r.answer(() => 200);
    const byType = await delivery.replay({ endpointId: endpoint.id, types: ['payment.succeeded'] });
    expect(byType.deliveryIds).toEqual([`${b.event.id}/${endpoint.id}`]);
    const byTime = await delivery.replay({
      endpointId: endpoint.id,
      from: Date.parse(a.event.createdAt),
      to: Date.parse(b.event.createdAt),
    });
    expect(byTime.deliveryIds).toEqual([`${a.event.id}/${endpoint.id}`]);
    await until(async () => (await delivery.stats(endpoint.id)).dlq === 1);
    await until(
      async () =>
        (await delivery.log.getDelivery(`${a.event.id}/${endpoint.id}`))?.status === 'delivered',
    );
    const replayed = await delivery.log.getDelivery(`${b.event.id}/${endpoint.id}`);
    expect(replayed).toMatchObject({
      status: 'delivered',
      generation: 1,
      attempts: 1,
      totalAttempts: 2,
    });
    expect(await delivery.log.getDelivery(`${c.event.id}/${endpoint.id}`)).toMatchObject({
      status: 'dead',
    });
    // The other endpoint's dead letters were not selected.
    expect((await delivery.stats(second.id)).dlq).toBe(3);
    expect(other.requests).toHaveLength(3);

    const byId = await delivery.replay({ eventIds: [c.event.id] });
    expect([...byId.deliveryIds].sort()).toEqual(
      [`${c.event.id}/${endpoint.id}`, `${c.event.id}/${second.id}`].sort(),
    );
  });

  it('resends any single event, delivered or not', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { event } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 1);
    await until(
      async () =>
        (await delivery.log.getDelivery(`${event.id}/${endpoint.id}`))?.status === 'delivered',
    );
    const [again] = await delivery.resend(event.id, endpoint.id);
    expect(again).toMatchObject({ status: 'pending', generation: 1 });
    await until(() => r.requests.length === 2);
    expect(r.requests[1]!.json.id).toBe(event.id);
    await expect(delivery.resend('evt_nope', endpoint.id)).rejects.toMatchObject({ status: 404 });
    await expect(delivery.resend(event.id, 'ep_nope')).rejects.toMatchObject({ status: 404 });
  });
  it('an attempt of an earlier budget, finishing after a resend, does not settle the new one', async () => {
    const { delivery } = await setup();
    const r = await hooks((_, n) => (n === 1 ? 'hang' : 500));
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { event, deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    const id = deliveries[0]!.id;
    await until(() => r.requests.length === 1);
    await delivery.resend(event.id, endpoint.id);
    await until(async () => (await delivery.log.getDelivery(id))?.status === 'retrying');
    r.release(200);
    await until(async () => (await delivery.log.getDelivery(id))?.totalAttempts === 2);
    expect(await delivery.log.getDelivery(id)).toMatchObject({
      status: 'retrying',
      generation: 1,
      attempts: 1,
      lastStatus: 500,
    });
  });
});

describe('a disabled endpoint', () => {
  it('keeps the events that arrive for it, and delivers them when enabled', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    await delivery.endpoints.disable(endpoint.id, 'maintenance');
    const first = await delivery.dispatch({ type: 'a.b', data: { n: 1 } });
    const second = await delivery.dispatch({ type: 'a.b', data: { n: 2 } });
    expect(first.deliveries[0]!.status).toBe('held');
    expect((await delivery.stats(endpoint.id)).held).toBe(2);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.requests).toHaveLength(0);

    await delivery.endpoints.enable(endpoint.id);
    await until(() => r.requests.length === 2);
    expect(r.requests.map((q) => q.json.id).sort()).toEqual(
      [first.event.id, second.event.id].sort(),
    );
    await until(async () => (await delivery.stats(endpoint.id)).held === 0);
  });

  it('holds a delivery already queued when the endpoint is disabled before it runs', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await delivery.endpoints.disable(endpoint.id, 'paused');
    delivery.startWorker();
    await until(async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'held');
    expect(r.requests).toHaveLength(0);
    await delivery.endpoints.enable(endpoint.id);
    await until(() => r.requests.length === 1);
  });
});
