import { afterEach, describe, expect, it } from 'vitest';
import type { BreakerState } from '../../../../src/webhooks/delivery/breaker.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { engine, receiver, START, until } from './helpers.js';

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

describe('the circuit breaker in the worker', () => {
  it('opens, makes events wait without spending attempts, probes half-open, and closes', async () => {
    const changes: BreakerState[] = [];
    const { clock, delivery } = await setup({
      schedule: retrySchedule({ delaysMs: [1000], backoffFactor: 1, random: () => 0 }),
      breaker: { minimumRequests: 2, failureRatio: 0.5, windowMs: 60_000, openMs: 30_000 },
      onBreakerStateChange: (_, state) => void changes.push(state),
    });
    const r = await hooks(() => 500);
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker({ concurrency: 1 });
    const a = await delivery.dispatch({ type: 'a.b', data: {} });
    const b = await delivery.dispatch({ type: 'a.b', data: {} });
    const ids = [a.deliveries[0]!.id, b.deliveries[0]!.id];
    await until(() => changes.includes('open'));
    expect((await delivery.stats(endpoint.id)).breaker).toBe('open');

    // The retries fall due while the circuit is open: they wait, no attempt is made or counted.
    await clock.advance(1000);
    await clock.advance(10_000);
    expect(r.requests).toHaveLength(2);
    for (const id of ids) expect((await delivery.log.getDelivery(id))?.attempts).toBe(1);

    r.answer(() => 200);
    await clock.set(START + 30_000);
    await until(() => r.requests.length >= 1 + 2);
    await until(() => changes.includes('closed'));
    expect(changes).toEqual(['open', 'half-open', 'closed']);
    await clock.advance(1000);
    await until(() => r.requests.length === 4);
    for (const id of ids) {
      await until(async () => (await delivery.log.getDelivery(id))?.status === 'delivered');
      expect((await delivery.log.getDelivery(id))?.attempts).toBe(2);
    }
  });

  it('a failed probe opens the circuit again', async () => {
    const changes: BreakerState[] = [];
    const { clock, delivery } = await setup({
      schedule: retrySchedule({ delaysMs: [1000], backoffFactor: 1, random: () => 0 }),
      breaker: { minimumRequests: 1, openMs: 30_000 },
      onBreakerStateChange: (_, state) => void changes.push(state),
    });
    const r = await hooks(() => 500);
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => changes.length === 1);
    await clock.advance(30_000);
    await until(() => r.requests.length === 2);
    await until(() => changes.length === 3);
    expect(changes).toEqual(['open', 'half-open', 'open']);
  });
});

describe('isolation', () => {
  it("a hanging endpoint holds only its own slots: the healthy one's deliveries complete meanwhile", async () => {
    const { delivery } = await setup();
    const hanging = await hooks(() => 'hang');
    const healthy = await hooks(() => 200);
    const { endpoint: h } = await delivery.endpoints.create({ url: hanging.url, concurrency: 2 });
    const { endpoint: g } = await delivery.endpoints.create({ url: healthy.url });
    // Four slots in all: two may hang, the rest serve everyone else.
    delivery.startWorker({ concurrency: 4 });
    const events = [];
    for (let i = 0; i < 20; i++) events.push(await delivery.dispatch({ type: 'a.b', data: { i } }));
    await until(async () => (await delivery.stats(g.id)).succeeded === 20);
    expect(healthy.requests).toHaveLength(20);
    // Meanwhile the hanging endpoint has exactly its two attempts out, and the rest wait, queued.
    expect(hanging.requests).toHaveLength(2);
    const pending = await delivery.log.queryDeliveries({ endpointId: h.id, status: 'pending' });
    expect(pending.items).toHaveLength(20);
    hanging.release(200);
  });

  it('a rate limit spaces one endpoint out without holding a slot', async () => {
    const { clock, delivery } = await setup();
    const limited = await hooks();
    const other = await hooks();
    await delivery.endpoints.create({ url: limited.url, rateLimitPerSecond: 2 });
    const { endpoint: o } = await delivery.endpoints.create({ url: other.url });
    delivery.startWorker({ concurrency: 1 });
    for (let i = 0; i < 5; i++) await delivery.dispatch({ type: 'a.b', data: { i } });
    await until(async () => (await delivery.stats(o.id)).succeeded === 5);
    expect(limited.requests).toHaveLength(2);
    await clock.advance(1200);
    await until(() => limited.requests.length === 4);
    await clock.advance(1200);
    await until(() => limited.requests.length === 5);
  });
});
