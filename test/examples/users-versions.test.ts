/**
 * The example's users under /v1 and /v2: one router written for v2 (`fullName`), one declared
 * change serving v1 (`name`) on requests (bodies, merge patches, JSON Patch pointers) and on
 * responses (lists, single users, validation errors), with v1 deprecated.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { parseLinkHeader } from '../../src/core/link.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { ADMIN_KEY, asClient, EXAMPLE_CREDENTIALS } from '../helpers/example-client.js';

const options = () => ({
  counters: new MemoryStore(),
  records: new MemoryStore({ evict: false }),
  logger: silentLogger,
  credentials: EXAMPLE_CREDENTIALS,
});

const apps: Array<{ name: string; make(): RequestListener }> = [
  {
    name: 'express',
    make: () => asClient(createExpressApp(options()) as unknown as RequestListener, ADMIN_KEY),
  },
  {
    name: 'koa',
    make: () => asClient(createKoaApp(options()).callback() as RequestListener, ADMIN_KEY),
  },
];

describe.each(apps)('the example users, v1 and v2, on $name', ({ make }) => {
  it('writes fullName in v2 and name in v1, for one user and in lists, with links of the version', async () => {
    const app = make();
    const v2 = await request(app).get('/v2/users/usr_ada').expect(200);
    expect(v2.body).toMatchObject({ id: 'usr_ada', fullName: 'Ada Lovelace' });
    expect(v2.body).not.toHaveProperty('name');
    expect(v2.body._links.self.href).toBe('/v2/users/usr_ada');
    expect(v2.headers['api-version']).toBe('v2');
    expect(v2.headers.deprecation).toBeUndefined();

    const v1 = await request(app).get('/v1/users/usr_ada').expect(200);
    expect(Object.keys(v1.body).slice(0, 3)).toEqual(['id', 'email', 'name']);
    expect(v1.body).not.toHaveProperty('fullName');
    expect(v1.body._links.self.href).toBe('/v1/users/usr_ada');
    expect(v1.headers['api-version']).toBe('v1');

    const list1 = await request(app).get('/v1/users?limit=2').expect(200);
    expect(list1.body.data.map((u: { name: string }) => u.name)).toEqual([
      'Ada Lovelace',
      'Alan Turing',
    ]);
    const list2 = await request(app).get('/v2/users?limit=2').expect(200);
    expect(list2.body.data.map((u: { fullName: string }) => u.fullName)).toEqual([
      'Ada Lovelace',
      'Alan Turing',
    ]);
    const next = parseLinkHeader(list2.headers.link).find((l) => l.rel.includes('next'));
    expect(next?.href).toMatch(/^\/v2\/users\?/);
  });

  it('marks v1 deprecated (RFC 9745 Deprecation, RFC 8594 Sunset) and names its successor', async () => {
    const res = await request(make()).get('/v1/users/usr_ada').expect(200);
    // 2026-11-01T00:00:00Z as an RFC 9651 Date: never `true`.
    expect(res.headers.deprecation).toBe('@1793491200');
    expect(res.headers.sunset).toBe('Wed, 30 Jun 2027 00:00:00 GMT');
    const links = parseLinkHeader(res.headers.link);
    expect(links).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          href: 'https://api.example.com/docs/users-v2',
          rel: ['deprecation'],
        }),
        expect.objectContaining({ href: '/v2/users/usr_ada', rel: ['successor-version'] }),
      ]),
    );
  });

  it('takes a v1 body with name and a v2 body with fullName, creating the same user', async () => {
    const app = make();
    const v1 = await request(app)
      .post('/v1/users')
      .send({ email: 'kj@example.com', name: 'Katherine Johnson' })
      .expect(201);
    expect(v1.headers.location).toMatch(/^\/v1\/users\/usr_/);
    expect(v1.body).toMatchObject({ name: 'Katherine Johnson' });
    const same = await request(app)
      .get(String(v1.headers.location).replace('/v1/', '/v2/'))
      .expect(200);
    expect(same.body).toMatchObject({ fullName: 'Katherine Johnson', email: 'kj@example.com' });

    const v2 = await request(app)
      .post('/v2/users')
      .send({ email: 'dv@example.com', fullName: 'Dorothy Vaughan' })
      .expect(201);
    expect(v2.headers.location).toMatch(/^\/v2\/users\/usr_/);
    expect(v2.body).toMatchObject({ fullName: 'Dorothy Vaughan' });
  });

  it('names the member each client sent in its validation errors', async () => {
    const app = make();
    const v1 = await request(app)
      .post('/v1/users')
      .send({ email: 'x@example.com', name: '' })
      .expect(400);
    expect(v1.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/name']);
    const v2 = await request(app)
      .post('/v2/users')
      .send({ email: 'x@example.com', fullName: '' })
      .expect(400);
    expect(v2.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/fullName']);
    // A v2 client that sends the old name is told which members v2 has.
    const old = await request(app)
      .post('/v2/users')
      .send({ email: 'x@example.com', name: 'Old Name' })
      .expect(400);
    expect(old.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/fullName']);
  });

  it('migrates v1 merge patches and JSON Patch pointers, and PUT replaces in either shape', async () => {
    const app = make();
    await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/merge-patch+json')
      .send({ name: 'Alan M. Turing' })
      .expect(200);
    const jsonPatch = await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/json-patch+json')
      .send([
        { op: 'test', path: '/name', value: 'Alan M. Turing' },
        { op: 'replace', path: '/name', value: 'A. M. Turing' },
      ])
      .expect(200);
    expect(jsonPatch.body.name).toBe('A. M. Turing');
    const read = await request(app).get('/v2/users/usr_alan').expect(200);
    expect(read.body.fullName).toBe('A. M. Turing');

    const { _links, ...v2Body } = read.body;
    const replaced = await request(app)
      .put('/v2/users/usr_alan')
      .send({ ...v2Body, fullName: 'Alan Turing' })
      .expect(200);
    expect(replaced.body.fullName).toBe('Alan Turing');
    const v1Read = await request(app).get('/v1/users/usr_alan').expect(200);
    const { _links: _l, ...v1Body } = v1Read.body;
    const v1Put = await request(app)
      .put('/v1/users/usr_alan')
      .send({ ...v1Body, name: 'Alan Mathison Turing' })
      .expect(200);
    expect(v1Put.body.name).toBe('Alan Mathison Turing');
  });

  it('refuses a version it does not serve before any handler runs: no rule covers it', async () => {
    const res = await request(make()).get('/v3/users').expect(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
