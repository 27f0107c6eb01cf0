import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../../../src/core/link.js';
import { ADMIN, adapters, adminApp, BASE, receiver, START, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Answer = Parameters<typeof receiver>[0];

describe.each(adapters)('the admin API for the delivery log on $name', (adapter) => {
  async function setup(answer: Answer = () => 200) {
    const hooks = await receiver(answer);
    cleanups.push(() => hooks.close());
    const s = adminApp(adapter);
    cleanups.push(() => s.delivery.stop());
    const created = await request(s.app).post(BASE).set(ADMIN).send({ url: hooks.url });
    expect(created.status).toBe(201);
    s.delivery.startWorker();
    return { ...s, hooks, id: created.body.id as string };
  }

  async function settled(s: Awaited<ReturnType<typeof setup>>, deliveryId: string) {
    await until(async () => {
      const d = await s.delivery.log.getDelivery(deliveryId);
      return d !== undefined && d.status !== 'pending' && d.status !== 'retrying';
    });
  }

  it('lists deliveries and attempts, filtered by status, type and time, paged with Link', async () => {
    const s = await setup((req) => (req.json.type === 'refund.created' ? 400 : 200));
    const ids: string[] = [];
    for (const type of ['payment.created', 'payment.succeeded', 'refund.created']) {
      const { deliveries } = await s.delivery.dispatch({ type, data: { type } });
      ids.push(deliveries[0]!.id);
      await settled(s, deliveries[0]!.id);
      await s.clock.advance(60_000);
    }
    const all = await request(s.app).get(`${BASE}/${s.id}/deliveries`).set(ADMIN).expect(200);
    expect(all.body.data.map((d: { id: string }) => d.id)).toEqual([...ids].reverse());
    expect(all.body.data[0]).toMatchObject({
      status: 'dead',
      deadReason: 'fast-failure',
      lastStatus: 400,
      eventType: 'refund.created',
      endpointId: s.id,
    });

    const dead = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?status=dead`)
      .set(ADMIN)
      .expect(200);
    expect(dead.body.data.map((d: { id: string }) => d.id)).toEqual([ids[2]]);
    const byType = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?type=payment.created,payment.succeeded`)
      .set(ADMIN)
      .expect(200);
    expect(byType.body.data).toHaveLength(2);
    const from = new Date(START + 60_000).toISOString();
    const to = new Date(START + 120_000).toISOString();
    const window = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?from=${from}&to=${to}`)
      .set(ADMIN)
      .expect(200);
    expect(window.body.data.map((d: { id: string }) => d.id)).toEqual([ids[1]]);

    const page = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?limit=2`)
      .set(ADMIN)
      .expect(200);
    expect(page.body.data).toHaveLength(2);
    expect(page.body.pagination).toMatchObject({ limit: 2, hasNext: true });
    const next = parseLinkHeader(page.headers.link).find((l) => l.rel.includes('next'))!;
    const rest = await request(s.app).get(next.href).set(ADMIN).expect(200);
    expect(rest.body.data.map((d: { id: string }) => d.id)).toEqual([ids[0]]);
    expect(rest.body.pagination).toMatchObject({ hasNext: false, nextCursor: null });

    const attempts = await request(s.app).get(`${BASE}/${s.id}/attempts`).set(ADMIN).expect(200);
    expect(attempts.body.data).toHaveLength(3);
    expect(attempts.body.data[0]).toMatchObject({
      deliveryId: ids[2],
      ok: false,
      status: 400,
      attempt: 1,
      at: new Date(START + 120_000).toISOString(),
    });
    const failed = await request(s.app)
      .get(`${BASE}/${s.id}/attempts?outcome=failed`)
      .set(ADMIN)
      .expect(200);
    expect(failed.body.data.map((a: { deliveryId: string }) => a.deliveryId)).toEqual([ids[2]]);
    const ofDelivery = await request(s.app)
      .get(`${BASE}/${s.id}/attempts?deliveryId=${encodeURIComponent(ids[0]!)}&httpStatus=200`)
      .set(ADMIN)
      .expect(200);
    expect(ofDelivery.body.data).toHaveLength(1);
    const attemptsByType = await request(s.app)
      .get(`${BASE}/${s.id}/attempts?type=payment.created,refund.created`)
      .set(ADMIN)
      .expect(200);
    expect(
      attemptsByType.body.data.map((a: { deliveryId: string }) => a.deliveryId).sort(),
    ).toEqual([ids[0], ids[2]].sort());
  });

  it('refuses bad filters all at once and forged or foreign cursors with 400', async () => {
    const s = await setup();
    const bad = await request(s.app)
      .get(
        `${BASE}/${s.id}/deliveries?status=lost&type=Not%20A%20Type&from=yesterday&limit=1000&colour=red`,
      )
      .set(ADMIN)
      .expect(400);
    expect((bad.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/colour',
      '/from',
      '/limit',
      '/status',
      '/type',
    ]);
    const twice = await request(s.app)
      .get(`${BASE}/${s.id}/attempts?outcome=failed&outcome=succeeded&httpStatus=abc`)
      .set(ADMIN)
      .expect(400);
    expect((twice.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/httpStatus',
      '/outcome',
    ]);
    const backwards = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?from=2025-06-02T00:00:00Z&to=2025-06-01T00:00:00Z`)
      .set(ADMIN)
      .expect(400);
    expect(backwards.body.errors[0].pointer).toBe('/to');

    for (const cursor of ['AAAA', 'not a cursor', 'x'.repeat(5000), '%00']) {
      const res = await request(s.app)
        .get(`${BASE}/${s.id}/deliveries?cursor=${encodeURIComponent(cursor)}`)
        .set(ADMIN);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid-cursor');
    }
    // A cursor of another endpoint's list, or of another filter, is not one of this query.
    for (let i = 0; i < 3; i++) await s.delivery.dispatch({ type: 'a.b', data: {} });
    const other = await request(s.app).post(BASE).set(ADMIN).send({ url: s.hooks.url }).expect(201);
    for (let i = 0; i < 3; i++) await s.delivery.dispatch({ type: 'a.b', data: {} });
    const page = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?limit=1`)
      .set(ADMIN)
      .expect(200);
    const cursor = encodeURIComponent(page.body.pagination.nextCursor as string);
    const foreign = await request(s.app)
      .get(`${BASE}/${other.body.id}/deliveries?limit=1&cursor=${cursor}`)
      .set(ADMIN)
      .expect(400);
    expect(foreign.body.code).toBe('invalid-cursor');
    const refiltered = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries?limit=1&status=dead&cursor=${cursor}`)
      .set(ADMIN)
      .expect(400);
    expect(refiltered.body.code).toBe('invalid-cursor');
  });

  it('shows a dead letter with its event and attempts, and one delivery by its encoded id', async () => {
    const s = await setup(() => ({ status: 400, body: 'bad signature?' }));
    const { deliveries, event } = await s.delivery.dispatch({
      type: 'payment.succeeded',
      data: { amount: 1000 },
    });
    await settled(s, deliveries[0]!.id);
    const dlq = await request(s.app).get(`${BASE}/${s.id}/dead-letters`).set(ADMIN).expect(200);
    expect(dlq.body.data).toHaveLength(1);
    expect(dlq.body.data[0]).toMatchObject({
      id: deliveries[0]!.id,
      status: 'dead',
      event: { id: event.id, type: 'payment.succeeded', data: { amount: 1000 } },
    });
    const one = await request(s.app)
      .get(`${BASE}/${s.id}/deliveries/${encodeURIComponent(deliveries[0]!.id)}`)
      .set(ADMIN)
      .expect(200);
    expect(one.body).toMatchObject({ id: deliveries[0]!.id, event: { id: event.id } });
    expect(one.body.recentAttempts[0]).toMatchObject({
      status: 400,
      responseExcerpt: 'bad signature?',
    });
    // A delivery of another endpoint is not found under this one.
    const other = await request(s.app).post(BASE).set(ADMIN).send({ url: s.hooks.url }).expect(201);
    const foreign = await request(s.app)
      .get(`${BASE}/${other.body.id}/deliveries/${encodeURIComponent(deliveries[0]!.id)}`)
      .set(ADMIN)
      .expect(404);
    expect(foreign.body.code).toBe('webhook-delivery-not-found');
  });

  it('stats: success rate, p50/p99, breaker state and the DLQ count', async () => {
    const s = await setup((req) => (req.json.type === 'x.dead' ? 403 : 200));
    for (const type of ['x.ok', 'x.ok', 'x.ok', 'x.dead']) {
      const { deliveries } = await s.delivery.dispatch({ type, data: {} });
      await settled(s, deliveries[0]!.id);
    }
    const res = await request(s.app).get(`${BASE}/${s.id}/stats`).set(ADMIN).expect(200);
    expect(res.body).toMatchObject({
      endpointId: s.id,
      windowMs: 24 * 60 * 60 * 1000,
      attempts: 4,
      succeeded: 3,
      successRate: 0.75,
      breaker: 'closed',
      dlq: 1,
      held: 0,
      pending: 0,
    });
    expect(typeof res.body.p50Ms).toBe('number');
    expect(typeof res.body.p99Ms).toBe('number');
    const windowed = await request(s.app)
      .get(`${BASE}/${s.id}/stats?windowMs=1000`)
      .set(ADMIN)
      .expect(200);
    expect(windowed.body.windowMs).toBe(1000);
    for (const q of ['windowMs=0', 'windowMs=1e3', 'windowMs=-5', 'window=1']) {
      const bad = await request(s.app).get(`${BASE}/${s.id}/stats?${q}`).set(ADMIN).expect(400);
      expect(bad.body.code).toBe('validation-failed');
    }
  });

  it('replays dead letters selected by type, time and ids, each with a fresh budget: 202', async () => {
    let failing = true;
    const s = await setup(() => (failing ? 400 : 200));
    const sent: { id: string; eventId: string }[] = [];
    for (const type of ['a.one', 'a.two', 'b.three']) {
      const { deliveries, event } = await s.delivery.dispatch({ type, data: {} });
      await settled(s, deliveries[0]!.id);
      sent.push({ id: deliveries[0]!.id, eventId: event.id });
      await s.clock.advance(60_000);
    }
    failing = false;
    const none = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({ types: ['c.nothing'] })
      .expect(202);
    expect(none.body).toEqual({ replayed: 0, deliveryIds: [], hasMore: false });
    const byType = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({ types: ['a.one', 'a.two'], to: new Date(START + 60_000).toISOString() })
      .expect(202);
    expect(byType.body).toEqual({ replayed: 1, deliveryIds: [sent[0]!.id], hasMore: false });
    await until(
      async () => (await s.delivery.log.getDelivery(sent[0]!.id))?.status === 'delivered',
    );
    expect((await s.delivery.log.getDelivery(sent[0]!.id))?.generation).toBe(1);
    const byId = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({ eventIds: [sent[2]!.eventId] })
      .expect(202);
    expect(byId.body.deliveryIds).toEqual([sent[2]!.id]);
    const rest = await request(s.app).post(`${BASE}/${s.id}/replay`).set(ADMIN).expect(202);
    expect(rest.body.deliveryIds).toEqual([sent[1]!.id]);
    await until(async () => {
      const stats = await s.delivery.stats(s.id);
      return stats.dlq === 0 && stats.pending === 0;
    });
  });

  it('replay refuses a bad filter, listing every field', async () => {
    const s = await setup();
    const res = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({
        types: ['ok.type', 'Bad Type'],
        eventIds: 'evt_1',
        from: 1717243200000,
        to: 'soon',
        endpointId: 'ep_other',
      })
      .expect(400);
    expect((res.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/endpointId',
      '/eventIds',
      '/from',
      '/to',
      '/types/1',
    ]);
    const many = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({ eventIds: Array.from({ length: 1001 }, (_, i) => `evt_${i}`) })
      .expect(400);
    expect(many.body.errors[0].pointer).toBe('/eventIds');
  });

  it('resends a delivered event by delivery id and by event id: 202, delivered again', async () => {
    const s = await setup();
    const { deliveries, event } = await s.delivery.dispatch({ type: 'a.b', data: { n: 1 } });
    await settled(s, deliveries[0]!.id);
    expect(s.hooks.requests).toHaveLength(1);
    const byDelivery = await request(s.app)
      .post(`${BASE}/${s.id}/deliveries/${encodeURIComponent(deliveries[0]!.id)}/resend`)
      .set(ADMIN)
      .expect(202);
    expect(byDelivery.body.deliveries[0]).toMatchObject({
      id: deliveries[0]!.id,
      generation: 1,
      status: 'pending',
    });
    await until(() => s.hooks.requests.length === 2);
    expect(s.hooks.requests[1]!.json.id).toBe(event.id);
    await settled(s, deliveries[0]!.id);
    await request(s.app).post(`${BASE}/${s.id}/events/${event.id}/resend`).set(ADMIN).expect(202);
    await until(() => s.hooks.requests.length === 3);

    const unknown = await request(s.app)
      .post(`${BASE}/${s.id}/events/evt_never/resend`)
      .set(ADMIN)
      .expect(404);
    expect(unknown.body.code).toBe('webhook-event-not-found');
    const noDelivery = await request(s.app)
      .post(`${BASE}/${s.id}/deliveries/${encodeURIComponent(`evt_never/${s.id}`)}/resend`)
      .set(ADMIN)
      .expect(404);
    expect(noDelivery.body.code).toBe('webhook-delivery-not-found');
  });

  it('sends a test event to this endpoint only: 202, marked test, delivered to a real receiver', async () => {
    const s = await setup();
    const bystander = await receiver();
    cleanups.push(() => bystander.close());
    await request(s.app).post(BASE).set(ADMIN).send({ url: bystander.url }).expect(201);
    const res = await request(s.app)
      .post(`${BASE}/${s.id}/test-events`)
      .set(ADMIN)
      .send({ type: 'payment.succeeded' })
      .expect(202);
    expect(res.body.event).toMatchObject({ type: 'payment.succeeded', test: true });
    expect(res.body.event.id).toMatch(/^evt_test_/);
    expect(res.body.deliveries).toHaveLength(1);
    await until(() => s.hooks.requests.length === 1);
    expect(s.hooks.requests[0]!.json).toMatchObject({ id: res.body.event.id, test: true });
    expect(bystander.requests).toHaveLength(0);
    const bad = await request(s.app)
      .post(`${BASE}/${s.id}/test-events`)
      .set(ADMIN)
      .send({ type: 'Payment Succeeded' })
      .expect(400);
    expect(bad.body.errors[0].pointer).toBe('/type');
  });
});
