import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../../../src/core/link.js';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
import { ADMIN, adapters, adminApp, BASE, receiver, START, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.each(adapters)('the admin API for endpoints on $name', (adapter) => {
  function setup(options: Parameters<typeof adminApp>[1] = {}) {
    const s = adminApp(adapter, options);
    cleanups.push(() => s.delivery.stop());
    return s;
  }

  it('creates an endpoint: 201, Location, the secret in this answer only, no-store', async () => {
    const { app, delivery, lines } = setup();
    const res = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({
        url: 'http://127.0.0.1:9/hooks',
        eventTypes: ['payment.*'],
        description: 'Shop',
        concurrency: 2,
        rateLimitPerSecond: 5,
        metadata: { team: 'payments' },
      })
      .expect(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const id = res.body.id as string;
    expect(res.headers.location).toBe(`${BASE}/${id}`);
    expect(res.body).toMatchObject({
      url: 'http://127.0.0.1:9/hooks',
      eventTypes: ['payment.*'],
      description: 'Shop',
      concurrency: 2,
      rateLimitPerSecond: 5,
      metadata: { team: 'payments' },
      payload: 'fat',
      createdAt: new Date(START).toISOString(),
    });
    const secret = res.body.secret as string;
    expect(secret).toMatch(/^whsec_/);
    // The secret is the one deliveries are signed with.
    const record = await delivery.endpoints.record(id);
    expect(record.secrets[0]!.secret).toBe(secret);

    const read = await request(app).get(`${BASE}/${id}`).set(ADMIN).expect(200);
    expect(read.body.url).toBe('http://127.0.0.1:9/hooks');
    expect(JSON.stringify(read.body)).not.toContain(secret);
    expect(read.body).not.toHaveProperty('secret');
    expect(read.body).not.toHaveProperty('secrets');
    expect(read.headers['accept-patch']).toBe('application/merge-patch+json');
    const list = await request(app).get(BASE).set(ADMIN).expect(200);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(lines.join('\n')).not.toContain(secret);
    expect(lines.join('\n')).toContain('admin created an endpoint');
  });

  it('answers 400 listing every bad field with its pointer', async () => {
    const { app } = setup();
    const res = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 42, eventTypes: ['Not A Type'], concurrency: 0, colour: 'red' })
      .expect(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('validation-failed');
    const pointers = (res.body.errors as { pointer: string }[]).map((e) => e.pointer).sort();
    expect(pointers).toEqual(['/colour', '/concurrency', '/eventTypes/0', '/url']);
  });

  it('refuses a URL the SSRF guard refuses: 422 webhook-url-refused, on create and on change', async () => {
    const { app, delivery } = setup();
    const refused = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://169.254.169.254/latest/meta-data' })
      .expect(422);
    expect(refused.body.code).toBe('webhook-url-refused');
    expect(await delivery.endpoints.list()).toHaveLength(0);

    const created = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const patched = await request(app)
      .patch(`${BASE}/${created.body.id}`)
      .set(ADMIN)
      .set('Content-Type', 'application/merge-patch+json')
      .send(JSON.stringify({ url: 'http://10.0.0.7/hooks' }))
      .expect(422);
    expect(patched.body.code).toBe('webhook-url-refused');
    expect((await delivery.endpoints.get(created.body.id)).url).toBe('http://127.0.0.1:9/a');
  });

  it('PATCH is a merge patch: fields replaced, metadata merged member by member', async () => {
    const { app } = setup();
    const created = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({
        url: 'http://127.0.0.1:9/a',
        eventTypes: ['a.b'],
        metadata: { team: 'payments', owner: 'ada' },
      })
      .expect(201);
    const id = created.body.id as string;
    const res = await request(app)
      .patch(`${BASE}/${id}`)
      .set(ADMIN)
      .set('Content-Type', 'application/merge-patch+json')
      .send(
        JSON.stringify({
          url: 'http://127.0.0.1:9/b',
          eventTypes: ['c.d', 'e.*'],
          concurrency: 7,
          metadata: { owner: null, region: 'eu' },
        }),
      )
      .expect(200);
    expect(res.body).toMatchObject({
      id,
      url: 'http://127.0.0.1:9/b',
      eventTypes: ['c.d', 'e.*'],
      concurrency: 7,
      metadata: { team: 'payments', region: 'eu' },
    });
    expect(res.body.metadata).not.toHaveProperty('owner');
    expect(res.body).not.toHaveProperty('secret');
  });

  it('PATCH refuses what it cannot do: another patch format 415, nulls and immutable fields 400', async () => {
    const { app } = setup();
    const { body } = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const jsonPatch = await request(app)
      .patch(`${BASE}/${body.id}`)
      .set(ADMIN)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/url', value: 'x' }]))
      .expect(415);
    expect(jsonPatch.headers['accept-patch']).toBe('application/merge-patch+json');
    const nulls = await request(app)
      .patch(`${BASE}/${body.id}`)
      .set(ADMIN)
      .set('Content-Type', 'application/merge-patch+json')
      .send(JSON.stringify({ url: null, description: null }))
      .expect(400);
    expect((nulls.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/description',
      '/url',
    ]);
    const immutable = await request(app)
      .patch(`${BASE}/${body.id}`)
      .set(ADMIN)
      .send({ id: 'ep_other', secret: 'whsec_mine', createdAt: 0 })
      .expect(400);
    expect((immutable.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/createdAt',
      '/id',
      '/secret',
    ]);
    const array = await request(app).patch(`${BASE}/${body.id}`).set(ADMIN).send([1]).expect(400);
    expect(array.body.code).toBe('validation-failed');
  });

  it('GET, PATCH, DELETE of an unknown id: 404 webhook-endpoint-not-found', async () => {
    const { app } = setup();
    for (const r of [
      request(app).get(`${BASE}/ep_nope`),
      request(app).patch(`${BASE}/ep_nope`).send({ description: 'x' }),
      request(app).delete(`${BASE}/ep_nope`),
      request(app).post(`${BASE}/ep_nope/disable`),
      request(app).post(`${BASE}/ep_nope/rotate-secret`),
      request(app).get(`${BASE}/ep_nope/stats`),
      request(app).get(`${BASE}/ep_nope/deliveries`),
      request(app).get(`${BASE}/ep_nope/attempts`),
      request(app).get(`${BASE}/ep_nope/dead-letters`),
      request(app).post(`${BASE}/ep_nope/replay`),
      request(app).post(`${BASE}/ep_nope/test-events`),
      request(app).post(`${BASE}/ep_nope/events/evt_1/resend`),
      request(app).post(`${BASE}/ep_nope/deliveries/evt_1%2Fep_nope/resend`),
    ]) {
      const res = await r.set(ADMIN).expect(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('webhook-endpoint-not-found');
    }
  });

  it('DELETE answers 204 and the endpoint is gone', async () => {
    const { app } = setup();
    const { body } = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    await request(app).delete(`${BASE}/${body.id}`).set(ADMIN).expect(204);
    await request(app).get(`${BASE}/${body.id}`).set(ADMIN).expect(404);
  });

  it('lists endpoints newest first in pages, with Link and a cursor', async () => {
    const { app, clock } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(app)
        .post(BASE)
        .set(ADMIN)
        .send({ url: `http://127.0.0.1:9/${i}` })
        .expect(201);
      ids.push(res.body.id);
      await clock.advance(1000);
    }
    const first = await request(app).get(`${BASE}?limit=2`).set(ADMIN).expect(200);
    expect(first.body.data.map((e: { id: string }) => e.id)).toEqual([ids[4], ids[3]]);
    expect(first.body.pagination).toMatchObject({ limit: 2, hasNext: true });
    const next = parseLinkHeader(first.headers.link).find((l) => l.rel.includes('next'));
    expect(next).toBeDefined();
    const second = await request(app).get(next!.href).set(ADMIN).expect(200);
    expect(second.body.data.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    const last = await request(app)
      .get(`${BASE}?limit=2&cursor=${encodeURIComponent(second.body.pagination.nextCursor)}`)
      .set(ADMIN)
      .expect(200);
    expect(last.body.data.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(last.body.pagination.hasNext).toBe(false);
    for (const page of [first, second, last])
      for (const e of page.body.data) expect(e).not.toHaveProperty('secret');
  });

  it('filters the list by disabled, and a cursor of one filter is refused for another', async () => {
    const { app } = setup();
    const a = await request(app).post(BASE).set(ADMIN).send({ url: 'http://127.0.0.1:9/a' });
    await request(app).post(BASE).set(ADMIN).send({ url: 'http://127.0.0.1:9/b' });
    await request(app).post(BASE).set(ADMIN).send({ url: 'http://127.0.0.1:9/c' });
    await request(app).post(`${BASE}/${a.body.id}/disable`).set(ADMIN).expect(200);
    const disabled = await request(app).get(`${BASE}?disabled=true`).set(ADMIN).expect(200);
    expect(disabled.body.data.map((e: { id: string }) => e.id)).toEqual([a.body.id]);
    const enabled = await request(app).get(`${BASE}?disabled=false&limit=1`).set(ADMIN);
    expect(enabled.body.data).toHaveLength(1);
    const cursor = enabled.body.pagination.nextCursor as string;
    const other = await request(app)
      .get(`${BASE}?disabled=true&limit=1&cursor=${encodeURIComponent(cursor)}`)
      .set(ADMIN)
      .expect(400);
    expect(other.body.code).toBe('invalid-cursor');
    const bad = await request(app).get(`${BASE}?disabled=maybe&colour=red`).set(ADMIN).expect(400);
    expect((bad.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/colour',
      '/disabled',
    ]);
  });

  it('rotates the secret: the new one shown once, both sign during the overlap', async () => {
    const hooks = await receiver();
    cleanups.push(() => hooks.close());
    const { app, delivery, clock, lines } = setup();
    const created = await request(app).post(BASE).set(ADMIN).send({ url: hooks.url }).expect(201);
    const id = created.body.id as string;
    const old = created.body.secret as string;
    const rotated = await request(app)
      .post(`${BASE}/${id}/rotate-secret`)
      .set(ADMIN)
      .send({ overlapMs: 60_000 })
      .expect(200);
    expect(rotated.headers['cache-control']).toBe('no-store');
    const fresh = rotated.body.secret as string;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(old);
    expect(rotated.body.previousExpiresAt).toBe(new Date(clock.now() + 60_000).toISOString());
    expect(rotated.body.endpoint).toMatchObject({
      id,
      rotationEndsAt: new Date(clock.now() + 60_000).toISOString(),
    });
    expect(rotated.body.endpoint).not.toHaveProperty('secret');
    const read = await request(app).get(`${BASE}/${id}`).set(ADMIN).expect(200);
    expect(JSON.stringify(read.body)).not.toContain(fresh);
    expect(lines.join('\n')).not.toContain(fresh);

    delivery.startWorker();
    await request(app).post(`${BASE}/${id}/test-events`).set(ADMIN).send({}).expect(202);
    await until(() => hooks.requests.length === 1);
    const req = hooks.requests[0]!;
    for (const secret of [old, fresh]) {
      const verifier = hmacVerifier({ secrets: [secret], now: clock.now });
      expect(() => verifier.verify(req.body, req.headers)).not.toThrow();
    }
  });

  it('rotate-secret defaults the overlap from the engine and refuses a bad one', async () => {
    const { app, clock } = setup();
    const { body } = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const res = await request(app).post(`${BASE}/${body.id}/rotate-secret`).set(ADMIN).expect(200);
    expect(res.body.previousExpiresAt).toBe(
      new Date(clock.now() + 24 * 60 * 60 * 1000).toISOString(),
    );
    for (const overlapMs of [-1, 1.5, '60000', 31 * 24 * 60 * 60 * 1000]) {
      const bad = await request(app)
        .post(`${BASE}/${body.id}/rotate-secret`)
        .set(ADMIN)
        .send({ overlapMs })
        .expect(400);
      expect(bad.body.errors[0].pointer).toBe('/overlapMs');
      expect(JSON.stringify(bad.body)).not.toContain('whsec_');
    }
  });

  it('disable keeps events held; enable queues them again and they are delivered', async () => {
    const hooks = await receiver();
    cleanups.push(() => hooks.close());
    const { app, delivery } = setup();
    const created = await request(app).post(BASE).set(ADMIN).send({ url: hooks.url }).expect(201);
    const id = created.body.id as string;
    const disabled = await request(app)
      .post(`${BASE}/${id}/disable`)
      .set(ADMIN)
      .send({ reason: 'Receiver migration' })
      .expect(200);
    expect(disabled.body.disabled).toMatchObject({ by: 'user', reason: 'Receiver migration' });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    expect(deliveries[0]!.status).toBe('held');
    const stats = await request(app).get(`${BASE}/${id}/stats`).set(ADMIN).expect(200);
    expect(stats.body.held).toBe(1);
    expect(hooks.requests).toHaveLength(0);

    const enabled = await request(app).post(`${BASE}/${id}/enable`).set(ADMIN).expect(200);
    expect(enabled.body).not.toHaveProperty('disabled');
    await until(() => hooks.requests.length === 1);
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'delivered',
    );
  });

  it('disable refuses a bad reason and unknown fields; its reason defaults', async () => {
    const { app } = setup();
    const { body } = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const bad = await request(app)
      .post(`${BASE}/${body.id}/disable`)
      .set(ADMIN)
      .send({ reason: 7, until: 'tomorrow' })
      .expect(400);
    expect((bad.body.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/reason',
      '/until',
    ]);
    const ok = await request(app).post(`${BASE}/${body.id}/disable`).set(ADMIN).expect(200);
    expect(ok.body.disabled.reason).toBe('Disabled by an operator.');
    await request(app)
      .post(`${BASE}/${body.id}/enable`)
      .set(ADMIN)
      .send({ force: true })
      .expect(400);
  });
});
