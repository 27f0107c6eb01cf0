import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
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

describe('dispatch: fan-out and filters', () => {
  it('queues one delivery per subscribed endpoint and sends nothing itself', async () => {
    const { delivery } = await setup();
    const payments = await hooks();
    const all = await hooks();
    const refunds = await hooks();
    const p = await delivery.endpoints.create({ url: payments.url, eventTypes: ['payment.*'] });
    const a = await delivery.endpoints.create({ url: all.url });
    await delivery.endpoints.create({ url: refunds.url, eventTypes: ['refund.created'] });

    const result = await delivery.dispatch({ type: 'payment.succeeded', data: { id: 'pay_1' } });
    expect(result.deliveries.map((d) => d.endpointId).sort()).toEqual(
      [p.endpoint.id, a.endpoint.id].sort(),
    );
    expect(result.deliveries.every((d) => d.status === 'pending')).toBe(true);
    // No worker yet: queued, not sent.
    expect(await delivery.queue.counts()).toMatchObject({ waiting: 2 });
    await new Promise((r) => setTimeout(r, 20));
    expect(payments.requests).toHaveLength(0);

    delivery.startWorker();
    await until(() => payments.requests.length === 1 && all.requests.length === 1);
    expect(refunds.requests).toHaveLength(0);
    const body = payments.requests[0]!.json;
    expect(body).toEqual({
      id: result.event.id,
      type: 'payment.succeeded',
      created_at: new Date(START).toISOString(),
      data: { id: 'pay_1' },
    });
    await until(
      async () =>
        (await delivery.log.getDelivery(result.deliveries[0]!.id))?.status === 'delivered',
    );
  });

  it('matches a prefix filter on whole segments only', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    await delivery.endpoints.create({ url: r.url, eventTypes: ['payment.*'] });
    expect((await delivery.dispatch({ type: 'payment', data: {} })).deliveries).toHaveLength(0);
    expect(
      (await delivery.dispatch({ type: 'payments.created', data: {} })).deliveries,
    ).toHaveLength(0);
    expect(
      (await delivery.dispatch({ type: 'payment.refund.created', data: {} })).deliveries,
    ).toHaveLength(1);
  });

  it('dispatching the same event id twice queues each delivery once', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    await delivery.endpoints.create({ url: r.url });
    await delivery.dispatch({ id: 'evt_same', type: 'a.b', data: { n: 1 } });
    await delivery.dispatch({ id: 'evt_same', type: 'a.b', data: { n: 1 } });
    expect(await delivery.queue.counts()).toMatchObject({ waiting: 1 });
    delivery.startWorker();
    await until(() => r.requests.length === 1);
    await delivery.stop();
    expect(r.requests).toHaveLength(1);
  });

  it('signs every delivery in the t=,v1= scheme with the secret create() returned', async () => {
    const { clock, delivery } = await setup();
    const r = await hooks();
    const { endpoint, secret } = await delivery.endpoints.create({ url: r.url });
    expect(JSON.stringify(endpoint)).not.toContain(secret);
    expect(JSON.stringify(await delivery.endpoints.get(endpoint.id))).not.toContain(secret);
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 1);
    const verifier = hmacVerifier({ secrets: [secret], now: clock.now });
    const req = r.requests[0]!;
    expect(verifier.verify(req.body, req.headers).timestamp).toBe(START / 1000);
  });

  it('carries thin payloads without data, with the resource and sequence', async () => {
    const { delivery } = await setup();
    const r = await hooks();
    await delivery.endpoints.create({ url: r.url, payload: 'thin' });
    delivery.startWorker();
    await delivery.dispatch({
      type: 'payment.succeeded',
      resource: { type: 'payment', id: 'pay_9' },
      sequence: 3,
      data: { id: 'pay_9', amount: 100 },
    });
    await until(() => r.requests.length === 1);
    const body = r.requests[0]!.json;
    expect(body).toMatchObject({ resource: { type: 'payment', id: 'pay_9' }, sequence: 3 });
    expect(body).not.toHaveProperty('data');
  });

  it('refuses a malformed event with every problem listed', async () => {
    const { delivery } = await setup();
    const err = await delivery
      .dispatch({ id: 'has space', type: 'Bad Type', sequence: 0, data: undefined })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).status).toBe(400);
    expect((err as ValidationError).errors.map((i) => i.pointer).sort()).toEqual([
      '/data',
      '/id',
      '/sequence',
      '/type',
    ]);
  });

  it('refuses a bad endpoint with every field listed', async () => {
    const { delivery } = await setup({ allowHttp: false });
    const err = await delivery.endpoints
      .create({ url: 'http://user:pw@example.com/', eventTypes: ['pay*'], concurrency: 0 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).errors.map((i) => i.pointer).sort()).toEqual([
      '/concurrency',
      '/eventTypes/0',
      '/url',
    ]);
  });

  it('sends a synthetic test event, marked as a test, to the one endpoint', async () => {
    const { delivery } = await setup();
    const one = await hooks();
    const other = await hooks();
    const { endpoint } = await delivery.endpoints.create({
      url: one.url,
      eventTypes: ['payment.*'],
    });
    await delivery.endpoints.create({ url: other.url });
    delivery.startWorker();
    const { event } = await delivery.sendTestEvent(endpoint.id, 'payment.succeeded');
    await until(() => one.requests.length === 1);
    expect(one.requests[0]!.json).toMatchObject({
      id: event.id,
      type: 'payment.succeeded',
      test: true,
    });
    expect(event.id.startsWith('evt_test_')).toBe(true);
    expect(other.requests).toHaveLength(0);
  });
});

describe('the worker: retries, 410, fast failures, Retry-After', () => {
  it('applies the schedule: attempt 2 after 30 s, attempt 3 after 5 min more', async () => {
    const { clock, delivery } = await setup();
    const r = await hooks(() => 500);
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    const id = deliveries[0]!.id;
    await until(async () => (await delivery.log.getDelivery(id))?.status === 'retrying');
    expect((await delivery.log.getDelivery(id))?.nextAttemptAt).toBe(START + 30_000);
    await clock.advance(29_999);
    expect(r.requests).toHaveLength(1);
    await clock.advance(1);
    await until(() => r.requests.length === 2);
    await until(async () => (await delivery.log.getDelivery(id))?.attempts === 2);
    expect((await delivery.log.getDelivery(id))?.nextAttemptAt).toBe(START + 30_000 + 300_000);
    const attempts = await delivery.log.queryAttempts({ deliveryId: id });
    expect(attempts.items.map((a) => [a.attempt, a.status, a.failure])).toEqual([
      [2, 500, 'http-status'],
      [1, 500, 'http-status'],
    ]);
  });

  it('410 Gone disables the endpoint and holds the event', async () => {
    const disabled: string[] = [];
    const { delivery } = await setup({
      onDisable: (n) => void disabled.push(`${n.by}:${n.endpoint.id}`),
    });
    const r = await hooks(() => 410);
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => disabled.length === 1);
    expect(disabled).toEqual([`gone:${endpoint.id}`]);
    expect((await delivery.endpoints.get(endpoint.id)).disabled).toMatchObject({ by: 'gone' });
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.status).toBe('held');
  });

  it.each([400, 401, 403])('%i stops the retries, dead-letters and notifies', async (status) => {
    const notices: string[] = [];
    const { clock, delivery } = await setup({
      onFastFailure: (n) => void notices.push(`${n.endpoint.id}:${n.lastAttempt.status}`),
    });
    const r = await hooks(() => ({ status, body: '{"error":"bad signature"}' }));
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => notices.length === 1);
    expect(notices).toEqual([`${endpoint.id}:${status}`]);
    const dead = await delivery.log.getDelivery(deliveries[0]!.id);
    expect(dead).toMatchObject({ status: 'dead', deadReason: 'fast-failure', attempts: 1 });
    await clock.advance(3 * 24 * 3_600_000);
    expect(r.requests).toHaveLength(1);
    const [attempt] = (await delivery.log.queryAttempts({ endpointId: endpoint.id })).items;
    expect(attempt?.responseExcerpt).toBe('{"error":"bad signature"}');
  });

  it("honours a 429's Retry-After as a floor over the schedule", async () => {
    const { delivery } = await setup();
    const r = await hooks((_, n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '120' } } : 200,
    );
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'retrying',
    );
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.nextAttemptAt).toBe(
      START + 120_000,
    );
  });

  it('a Retry-After shorter than the schedule does not shorten it', async () => {
    const { delivery } = await setup();
    const r = await hooks(() => ({ status: 503, headers: { 'retry-after': '1' } }));
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'retrying',
    );
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.nextAttemptAt).toBe(START + 30_000);
  });
});
