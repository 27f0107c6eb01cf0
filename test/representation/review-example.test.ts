/**
 * The example's users and payments, attacked through the real apps: a PATCH
 * that reaches for what the server owns, probes what it hides, races another
 * client or leaves the user invalid must be a 4xx problem that writes nothing;
 * a PUT sends back what GET gave; links name the resource they claim to.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { asClient, EXAMPLE_CREDENTIALS } from '../helpers/example-client.js';

const PROBLEM = /^application\/problem\+json/;
const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';

const apps: Array<{ name: string; make(): RequestListener }> = [
  {
    name: 'express',
    make: () =>
      asClient(
        createExpressApp({
          counters: new MemoryStore(),
          records: new MemoryStore({ evict: false }),
          logger: silentLogger,
          credentials: EXAMPLE_CREDENTIALS,
        }) as unknown as RequestListener,
      ),
  },
  {
    name: 'koa',
    make: () =>
      asClient(
        createKoaApp({
          counters: new MemoryStore(),
          records: new MemoryStore({ evict: false }),
          logger: silentLogger,
          credentials: EXAMPLE_CREDENTIALS,
        }).callback() as RequestListener,
      ),
  },
];

describe.each(apps)('the example on $name under attack: PATCH /v1/users/:id', ({ make }) => {
  const unchanged = async (app: RequestListener, before: Record<string, unknown>) => {
    const now = await request(app).get('/v1/users/usr_ada').expect(200);
    expect(now.body).toEqual(before);
  };

  it('cannot change id, version, createdAt or updatedAt, in either format', async () => {
    const app = make();
    const before = (await request(app).get('/v1/users/usr_ada').expect(200)).body;
    const attempts: Array<[string, string | object]> = [
      [MERGE, { id: 'usr_admin' }],
      [MERGE, { version: 99 }],
      [MERGE, { createdAt: '2000-01-01T00:00:00.000Z', name: 'Ada' }],
      [JSON_PATCH, [{ op: 'replace', path: '/id', value: 'usr_admin' }]],
      [JSON_PATCH, [{ op: 'add', path: '/version', value: 0 }]],
      [JSON_PATCH, [{ op: 'copy', from: '/name', path: '/updatedAt' }]],
      [JSON_PATCH, [{ op: 'move', from: '/email', path: '/id' }]],
      [
        JSON_PATCH,
        [
          { op: 'replace', path: '/name', value: 'Ada King' },
          { op: 'replace', path: '/createdAt', value: 'x' },
        ],
      ],
    ];
    for (const [type, body] of attempts) {
      const res = await request(app)
        .patch('/v1/users/usr_ada')
        .set('Content-Type', type)
        .send(body);
      expect(res.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(res.status, JSON.stringify(body)).toBeLessThan(500);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    }
    await unchanged(app, before);
  });

  it('cannot probe or add members the user does not show, nor reach a prototype', async () => {
    const app = make();
    const before = (await request(app).get('/v1/users/usr_ada').expect(200)).body;
    for (const path of ['/passwordHash', '/constructor', '/__proto__', '/toString']) {
      const res = await request(app)
        .patch('/v1/users/usr_ada')
        .set('Content-Type', JSON_PATCH)
        .send([{ op: 'test', path, value: null }]);
      expect(res.status, path).toBe(409);
      expect(res.body.reason, path).toBe('path-not-found');
    }
    for (const body of [
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{"admin":true}}}',
      '{"admin":true}',
    ]) {
      const res = await request(app)
        .patch('/v1/users/usr_ada')
        .set('Content-Type', MERGE)
        .send(body);
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(res.status, body).toBeLessThan(500);
    }
    const added = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH)
      .send('[{"op":"add","path":"/constructor/prototype/admin","value":true}]');
    expect(added.status).toBe(409);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    await unchanged(app, before);
  });

  it('answers a patch that leaves the user invalid with 422, writing nothing', async () => {
    const app = make();
    const before = (await request(app).get('/v1/users/usr_ada').expect(200)).body;
    const attempts: Array<[string, string | object]> = [
      [MERGE, { email: null }],
      [MERGE, { email: 'not an address' }],
      [MERGE, { name: 'x'.repeat(201) }],
      [MERGE, '{"name":1e400}'],
      [JSON_PATCH, [{ op: 'remove', path: '/name' }]],
      [JSON_PATCH, [{ op: 'move', from: '/email', path: '/name' }]],
      [
        JSON_PATCH,
        [
          { op: 'replace', path: '/name', value: 'Ada King' },
          { op: 'replace', path: '/email', value: 42 },
        ],
      ],
    ];
    for (const [type, body] of attempts) {
      const res = await request(app)
        .patch('/v1/users/usr_ada')
        .set('Content-Type', type)
        .send(body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    }
    await unchanged(app, before);
  });

  it('applies nothing from a JSON Patch whose last operation fails', async () => {
    const app = make();
    const before = (await request(app).get('/v1/users/usr_ada').expect(200)).body;
    const res = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH)
      .send([
        { op: 'replace', path: '/name', value: 'Ada King' },
        { op: 'replace', path: '/email', value: 'ada@king.example' },
        { op: 'test', path: '/version', value: 7 },
      ]);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ operation: 2, pointer: '/2/value', reason: 'test-failed' });
    await unchanged(app, before);
  });

  it('takes If-Match on a PATCH: a stale one is a 412 that writes nothing, the current one applies', async () => {
    const app = make();
    const before = await request(app).get('/v1/users/usr_ada').expect(200);
    const stale = await request(app)
      .patch('/v1/users/usr_ada')
      .set('If-Match', '"v0"')
      .set('Content-Type', JSON_PATCH)
      .send([{ op: 'replace', path: '/name', value: 'Lost Update' }]);
    expect(stale.status).toBe(412);
    expect(stale.headers['content-type']).toMatch(PROBLEM);
    await unchanged(app, before.body);
    const ok = await request(app)
      .patch('/v1/users/usr_ada')
      .set('If-Match', String(before.headers.etag))
      .set('Content-Type', MERGE)
      .send({ name: 'Ada King' });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"v2"');
    expect(ok.body).toMatchObject({ name: 'Ada King', version: 2 });
  });

  it('refuses bounds-breaking JSON Patches with a 4xx, never a 5xx', async () => {
    const app = make();
    const many = Array.from({ length: 1001 }, () => ({ op: 'test', path: '/id', value: 'x' }));
    const tooMany = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH)
      .send(many);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.reason).toBe('too-many-operations');
    const copies = [{ op: 'add', path: '/s', value: 'x'.repeat(30_000) }].concat(
      Array.from({ length: 800 }, (_, i) => ({ op: 'copy', from: '/s', path: `/c${i}` })) as never,
    );
    const amplified = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH)
      .send(copies);
    expect(amplified.status).toBe(422);
    expect(amplified.body.reason).toBe('copy-too-large');
    const longPointer = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH)
      .send([{ op: 'test', path: `/${'a'.repeat(2000)}`, value: 1 }]);
    expect(longPointer.status).toBe(400);
    expect(longPointer.body.reason).toBe('invalid-pointer');
  });

  it('advertises both formats on GET, HEAD, OPTIONS and the 415', async () => {
    const app = make();
    const both = `${MERGE}, ${JSON_PATCH}`;
    for (const method of ['get', 'head', 'options'] as const) {
      const res = await request(app)[method]('/v1/users/usr_ada');
      expect(res.status, method).toBeLessThan(300);
      expect(res.headers['accept-patch'], method).toBe(both);
    }
    const refused = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'application/json')
      .send({ name: 'X' });
    expect(refused.status).toBe(415);
    expect(refused.headers['accept-patch']).toBe(both);
  });
});

describe.each(apps)('the example on $name under attack: PUT /v1/users/:id', ({ make }) => {
  it('takes back what GET gave, _links included, and resets what a partial PUT leaves out', async () => {
    const app = make();
    const read = await request(app).get('/v1/users/usr_grace').expect(200);
    const same = await request(app).put('/v1/users/usr_grace').send(read.body).expect(200);
    expect(same.body).toMatchObject({ ...read.body, version: 2, updatedAt: expect.any(String) });
    // email left out: its default is null, which a user cannot have. A 4xx, never the old email kept.
    const partial = await request(app).put('/v1/users/usr_grace').send({ name: 'Grace' });
    expect(partial.status).toBe(400);
    expect((await request(app).get('/v1/users/usr_grace')).body.email).toBe('grace@example.com');
  });

  it('refuses a changed read-only member and an unknown one, naming each', async () => {
    const app = make();
    const read = await request(app).get('/v1/users/usr_grace').expect(200);
    const res = await request(app)
      .put('/v1/users/usr_grace')
      .send({ ...read.body, id: 'usr_admin', admin: true });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/admin',
      '/id',
    ]);
    expect((await request(app).get('/v1/users/usr_grace')).body.version).toBe(1);
  });
});

describe.each(apps)('the example on $name: links', ({ make }) => {
  it('links a payment to its user only while the user exists, whatever the userId text', async () => {
    const app = make();
    for (const [i, userId] of [
      'usr_ada',
      '..',
      '.',
      'usr_ada/../admin',
      'a b?c#d',
      '😀',
    ].entries()) {
      const res = await request(app)
        .post('/v1/payments')
        .set('Idempotency-Key', `review-links-${i}`)
        .send({ amount: 100, currency: 'EUR', userId });
      expect(res.status, userId).toBe(201);
      expect(res.body._links.self.href).toBe(`/v1/payments/${res.body.id}`);
      if (userId === 'usr_ada') expect(res.body._links.user).toEqual({ href: '/v1/users/usr_ada' });
      else expect(res.body._links.user, userId).toBeUndefined();
      const read = await request(app).get(res.body._links.self.href);
      expect(read.status).toBe(200);
      expect(read.body.id).toBe(res.body.id);
    }
  });

  it('each user of a list links to itself, by a path that reads the same user back', async () => {
    const app = make();
    const page = await request(app).get('/v1/users?limit=5').expect(200);
    for (const user of page.body.data) {
      expect(user._links.self.href).toBe(`/v1/users/${encodeURIComponent(user.id)}`);
      const read = await request(app).get(user._links.self.href).expect(200);
      expect(read.body.id).toBe(user.id);
    }
  });
});
