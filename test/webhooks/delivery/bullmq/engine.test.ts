/**
 * The whole engine on BullMQ, in one process: dispatch() queues into Redis,
 * the worker delivers to a real node:http receiver, retries go through
 * moveToDelayed, a dispatch repeated queues nothing twice, and stop() waits
 * for the attempt in flight.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { receiver } from '../engine/helpers.js';
import { queues, until } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(label: string) {
  const q = queues(label);
  cleanups.push(() => q.cleanup());
  const queue = q.open({ logger: silentLogger });
  const delivery = webhookDelivery({
    queue,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    schedule: retrySchedule({ delaysMs: [100], jitter: 0, maxAttempts: 5 }),
    logger: silentLogger,
  });
  cleanups.push(() => delivery.stop());
  const hooks = await receiver();
  cleanups.push(() => hooks.close());
  return { delivery, queue, hooks, q };
}

describe.runIf(services.redis)('the delivery engine on BullMQ', () => {
  it('delivers every event dispatched to a real receiver, once', async () => {
    const { delivery, hooks, queue } = await setup('engine');
    const { endpoint } = await delivery.endpoints.create({ url: hooks.url, concurrency: 10 });
    delivery.startWorker({ concurrency: 8 });
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const { event } = await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
      ids.push(event.id);
    }
    await until(async () => (await delivery.stats(endpoint.id)).pending === 0);
    expect(hooks.requests.map((r) => r.json.id).sort()).toEqual([...ids].sort());
    for (const r of hooks.requests) expect(r.headers['x-signature']).toMatch(/^t=\d+,v1=/);
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0 });
  });

  it('retries a failed attempt through the delayed set, with the attempt counted in the job', async () => {
    const { delivery, hooks } = await setup('retry');
    hooks.answer((_req, n) => (n <= 2 ? 500 : 200));
    const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'delivered',
    );
    const attempts = await delivery.log.queryAttempts({ endpointId: endpoint.id });
    expect(attempts.items.map((a) => [a.attempt, a.status])).toEqual([
      [3, 200],
      [2, 500],
      [1, 500],
    ]);
    // Each retry waited its delay (100 ms) after the attempt before it.
    const [third, second, first] = attempts.items;
    expect(second!.at - (first!.at + first!.durationMs)).toBeGreaterThanOrEqual(100);
    expect(third!.at - (second!.at + second!.durationMs)).toBeGreaterThanOrEqual(100);
  });

  it('queues nothing twice when the same event is dispatched again', async () => {
    const { delivery, hooks, queue } = await setup('dedupe');
    await delivery.endpoints.create({ url: hooks.url });
    const event = { id: 'evt_same', type: 'payment.succeeded', data: {} };
    await delivery.dispatch(event);
    await delivery.dispatch(event);
    expect(await queue.counts()).toMatchObject({ waiting: 1 });
    delivery.startWorker();
    await until(() => hooks.requests.length === 1);
    await until(async () => (await queue.counts()).active === 0);
    expect(hooks.requests).toHaveLength(1);
  });

  it('stop() waits for the attempt in flight, which is recorded', async () => {
    const { delivery, hooks } = await setup('stop');
    hooks.answer(() => 'hang');
    await delivery.endpoints.create({ url: hooks.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await until(() => hooks.requests.length === 1);
    let stopped = false;
    const stopping = delivery.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(stopped).toBe(false);
    hooks.release(200);
    await stopping;
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.status).toBe('delivered');
  });
});
