/**
 * What one admin request may set in motion, and to whom: a replay re-queues a
 * bounded batch of the dead-letter queue, a resend by event id goes only to an
 * endpoint that had the event, and two creates of one id leave one endpoint
 * (its secret untouched) and answer the other 409.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { webhookAdmin } from '../../../../src/webhooks/delivery/admin.js';
import { engine } from '../engine/helpers.js';
import { ADMIN, adapters, adminApp, BASE, receiver, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Answer = Parameters<typeof receiver>[0];

describe.each(adapters)('bounds of the admin API on $name', (adapter) => {
  async function setup(answer: Answer = () => 200, admin: Parameters<typeof adminApp>[1] = {}) {
    const hooks = await receiver(answer);
    cleanups.push(() => hooks.close());
    const s = adminApp(adapter, admin);
    cleanups.push(() => s.delivery.stop());
    const created = await request(s.app).post(BASE).set(ADMIN).send({ url: hooks.url });
    expect(created.status).toBe(201);
    s.delivery.startWorker();
    return { ...s, hooks, id: created.body.id as string };
  }

  async function deadLetters(s: Awaited<ReturnType<typeof setup>>, n: number) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { deliveries } = await s.delivery.dispatch({ type: 'a.b', data: { i } });
      ids.push(deliveries[0]!.id);
    }
    await until(async () => (await s.delivery.stats(s.id)).dlq === n);
    return ids;
  }

  it('replays at most maxReplay events per request and says hasMore until the queue is empty', async () => {
    let failing = true;
    const s = await setup(() => (failing ? 400 : 200), { admin: { maxReplay: 1 } });
    const dead = await deadLetters(s, 3);
    failing = false;
    const replayed: string[] = [];
    const answers: boolean[] = [];
    for (let round = 0; round < 5; round++) {
      // A body naming nothing selects the whole queue: each request takes one batch of it.
      const res = await request(s.app).post(`${BASE}/${s.id}/replay`).set(ADMIN).expect(202);
      expect(res.body.replayed).toBe(1);
      replayed.push(...(res.body.deliveryIds as string[]));
      answers.push(res.body.hasMore as boolean);
      await until(async () => (await s.delivery.stats(s.id)).pending === 0);
      if (res.body.hasMore === false) break;
    }
    expect(answers).toEqual([true, true, false]);
    expect(replayed.sort()).toEqual([...dead].sort());
    expect((await s.delivery.stats(s.id)).dlq).toBe(0);
    const empty = await request(s.app).post(`${BASE}/${s.id}/replay`).set(ADMIN).expect(202);
    expect(empty.body).toEqual({ replayed: 0, deliveryIds: [], hasMore: false });
  });

  it('bounds a replay by event ids and a wide range too, and says so in the log', async () => {
    let failing = true;
    const s = await setup(() => (failing ? 400 : 200), { admin: { maxReplay: 2 } });
    await deadLetters(s, 3);
    failing = false;
    const events = (
      await s.delivery.log.queryDeliveries({ endpointId: s.id, limit: 10 })
    ).items.map((d) => d.eventId);
    const res = await request(s.app)
      .post(`${BASE}/${s.id}/replay`)
      .set(ADMIN)
      .send({ eventIds: events, from: '0001-01-01T00:00:00Z', to: '9999-12-31T23:59:59Z' })
      .expect(202);
    expect(res.body.replayed).toBe(2);
    expect(res.body.hasMore).toBe(true);
    expect(s.lines.join('\n')).toMatch(/admin replayed dead letters .*"hasMore":true/);
  });

  it('refuses a bad maxReplay at construction', () => {
    const { delivery } = engine();
    cleanups.push(() => delivery.stop());
    for (const maxReplay of [0, -1, 1.5, 1e9, Number.NaN]) {
      expect(() => webhookAdmin(delivery, { maxReplay }), String(maxReplay)).toThrow(/maxReplay/);
    }
    expect(() => webhookAdmin(delivery, { maxReplay: 10_000 })).not.toThrow();
  });

  it('resends an event by id only to an endpoint that had a delivery of it: 404 elsewhere', async () => {
    const s = await setup();
    const other = await receiver();
    cleanups.push(() => other.close());
    // Subscribed to another type: the event was never meant for it.
    const created = await request(s.app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: other.url, eventTypes: ['user.*'] })
      .expect(201);
    const otherId = created.body.id as string;
    const { deliveries, event } = await s.delivery.dispatch({
      type: 'payment.succeeded',
      data: { amount: 500 },
    });
    await until(
      async () => (await s.delivery.log.getDelivery(deliveries[0]!.id))?.status === 'delivered',
    );
    expect(deliveries).toHaveLength(1);

    const refused = await request(s.app)
      .post(`${BASE}/${otherId}/events/${event.id}/resend`)
      .set(ADMIN)
      .expect(404);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body.code).toBe('webhook-event-not-found');
    expect(refused.body.eventId).toBe(event.id);
    const none = await s.delivery.log.queryDeliveries({ endpointId: otherId, limit: 10 });
    expect(none.items).toEqual([]);
    await s.clock.advance(60_000);
    expect(other.requests).toHaveLength(0);

    // The endpoint that had it gets it again.
    await request(s.app).post(`${BASE}/${s.id}/events/${event.id}/resend`).set(ADMIN).expect(202);
    await until(() => s.hooks.requests.length === 2);
    // An unknown endpoint still says so first.
    const unknown = await request(s.app)
      .post(`${BASE}/ep_nobody/events/${event.id}/resend`)
      .set(ADMIN)
      .expect(404);
    expect(unknown.body.code).toBe('webhook-endpoint-not-found');
  });

  it('two creates of one id at once: one 201, the others 409, the first secret kept', async () => {
    const s = adminApp(adapter);
    cleanups.push(() => s.delivery.stop());
    const answers = await Promise.all(
      [1, 2, 3].map((n) =>
        request(s.app)
          .post(BASE)
          .set(ADMIN)
          .send({ id: 'ep_same', url: `http://127.0.0.1:9/${n}` }),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 409, 409]);
    const winner = answers.find((a) => a.status === 201)!;
    for (const loser of answers.filter((a) => a.status === 409)) {
      expect(loser.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(loser.body).toMatchObject({ status: 409, code: 'conflict', endpointId: 'ep_same' });
      expect(loser.text).not.toContain('whsec_');
      expect(loser.text).not.toContain(winner.body.url);
      expect(loser.headers.location).toBeUndefined();
    }
    const record = await s.delivery.endpoints.record('ep_same');
    expect(record.secrets).toHaveLength(1);
    expect(record.secrets[0]!.secret).toBe(winner.body.secret);
    expect(record.url).toBe(winner.body.url);
    // Taken later, sequentially: 409 as well; a bad id stays a 400.
    const again = await request(s.app)
      .post(BASE)
      .set(ADMIN)
      .send({ id: 'ep_same', url: 'http://127.0.0.1:9/x' })
      .expect(409);
    expect(again.body.code).toBe('conflict');
    const bad = await request(s.app)
      .post(BASE)
      .set(ADMIN)
      .send({ id: 'ep same', url: 'http://127.0.0.1:9/x' })
      .expect(400);
    expect(bad.body.errors[0].pointer).toBe('/id');
    // A taken id with other bad fields lists those fields first.
    const both = await request(s.app)
      .post(BASE)
      .set(ADMIN)
      .send({ id: 'ep_same', url: 'ftp://x' })
      .expect(400);
    expect(both.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/url']);
  });
});
