/**
 * The example's wiring (test/versioning/wiring/, proposed for examples/), on
 * Express and Koa with the example's own domain: `/v1` and `/v2` of users
 * from one set of handlers and one migration, dated header versions on
 * payments, and a deprecated route with a sunset. Each API's versioning is
 * mounted on its own routes, so the two never meet on one request.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/core/link.js';
import { silentLogger } from '../../src/core/logger.js';
import { createApp as createExpressApp } from './wiring/express.js';
import { createApp as createKoaApp } from './wiring/koa.js';

const apps: Array<{ name: string; make(): RequestListener }> = [
  {
    name: 'express',
    make: () => createExpressApp({ logger: silentLogger }) as unknown as RequestListener,
  },
  { name: 'koa', make: () => createKoaApp({ logger: silentLogger }).callback() as RequestListener },
];

describe.each(apps)('the example’s versions on $name', ({ make }) => {
  describe('users: /v1 and /v2 from one handler', () => {
    it('serves v2 as written and v1 through the migration', async () => {
      const server = make();
      const v2 = await request(server).get('/v2/users/usr_ada').expect(200);
      expect(v2.body).toMatchObject({ id: 'usr_ada', fullName: 'Ada Lovelace' });
      expect(v2.body).not.toHaveProperty('name');
      expect(v2.headers['api-version']).toBe('v2');
      const v1 = await request(server).get('/v1/users/usr_ada').expect(200);
      expect(v1.body).toMatchObject({ id: 'usr_ada', name: 'Ada Lovelace' });
      expect(v1.body).not.toHaveProperty('fullName');
      const list = await request(server).get('/v1/users').expect(200);
      expect(list.body.data[0]).toHaveProperty('name');
      expect(list.body.data[0]).not.toHaveProperty('fullName');
    });

    it('creates from a v1 body, and names v1’s fields in its errors', async () => {
      const server = make();
      const created = await request(server)
        .post('/v1/users')
        .send({ name: 'Grace Hopper', email: 'grace@example.com' })
        .expect(201);
      expect(created.body).toMatchObject({ name: 'Grace Hopper', email: 'grace@example.com' });
      expect(created.headers.location).toMatch(/^\/v1\/users\/usr_/);
      const v2 = await request(server).get(`/v2/users/${created.body.id}`).expect(200);
      expect(v2.body.fullName).toBe('Grace Hopper');
      const invalid = await request(server)
        .post('/v1/users')
        .send({ email: 'grace@example.com' })
        .expect(400);
      expect(invalid.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/name']);
    });

    it('keeps the conditional requests of the example: each version’s URI has its validators', async () => {
      const server = make();
      const v1 = await request(server).get('/v1/users/usr_alan').expect(200);
      expect(v1.headers.etag).toBe('"v1"');
      await request(server).get('/v1/users/usr_alan').set('If-None-Match', '"v1"').expect(304);
      await request(server).get('/v2/users/usr_alan').set('If-None-Match', '"v1"').expect(304);
      const patched = await request(server)
        .patch('/v1/users/usr_alan')
        .set('If-Match', '"v1"')
        .send({ name: 'Alan M. Turing' })
        .expect(200);
      expect(patched.body.name).toBe('Alan M. Turing');
      expect(Object.keys(patched.body).slice(0, 3)).toEqual(['id', 'email', 'name']);
      expect(patched.headers.etag).toBe('"v2"');
      await request(server)
        .patch('/v2/users/usr_alan')
        .set('If-Match', '"v1"')
        .send({ fullName: 'Stale' })
        .expect(412);
    });

    it('marks v1 deprecated, with a sunset and the v2 path as its successor', async () => {
      const res = await request(make()).get('/v1/users/usr_ada').expect(200);
      expect(res.headers.deprecation).toBe(`@${Date.parse('2026-01-01T00:00:00Z') / 1000}`);
      expect(res.headers.sunset).toBe('Wed, 01 Jul 2026 00:00:00 GMT');
      const links = parseLinkHeader(res.headers.link);
      expect(links.map((l) => [l.rel[0], l.href])).toEqual([
        ['deprecation', 'https://api.example.com/docs/users-v2'],
        ['successor-version', '/v2/users/usr_ada'],
      ]);
      const v2 = await request(make()).get('/v2/users/usr_ada').expect(200);
      expect(v2.headers.deprecation).toBeUndefined();
    });

    it('answers 404 to a version it does not serve, and leaves other routes alone', async () => {
      const res = await request(make()).get('/v3/users').expect(404);
      expect(res.body.code).toBe('not-found');
      const payments = await request(make()).get('/v1/payments').expect(200);
      expect(payments.headers['api-version']).toBe('2025-06-01');
    });
  });

  describe('payments: dated versions in a header', () => {
    it('serves the newest by default, and 2024-11-20 to a client that asks', async () => {
      const server = make();
      const created = await request(server)
        .post('/v1/payments')
        .send({ amount: 1200, currency: 'EUR', userId: 'usr_ada' })
        .expect(201);
      expect(created.headers['api-version']).toBe('2025-06-01');
      expect(typeof created.body.created).toBe('number');
      const id = created.body.id as string;
      const old = await request(server)
        .get(`/v1/payments/${id}`)
        .set('Api-Version', '2024-11-20')
        .expect(200);
      expect(old.headers['api-version']).toBe('2024-11-20');
      expect(old.headers.vary).toMatch(/api-version/i);
      expect(old.body.createdAt).toBe(new Date(created.body.created * 1000).toISOString());
      expect(old.body).not.toHaveProperty('created');
      const list = await request(server).get('/v1/payments').set('Api-Version', '2024-11-20');
      expect(list.body.data[0]).toHaveProperty('createdAt');
    });

    it('answers 400 listing the dated versions to one it does not serve', async () => {
      const res = await request(make())
        .get('/v1/payments')
        .set('Api-Version', '2023-01-01')
        .expect(400);
      expect(res.body.supported).toEqual(['2025-06-01', '2024-11-20']);
    });
  });

  describe('a deprecated route', () => {
    it('answers with Deprecation, Sunset and a link to its successor', async () => {
      const server = make();
      const created = await request(server)
        .post('/v1/payments')
        .send({ amount: 500, currency: 'EUR', userId: 'usr_ada' })
        .expect(201);
      const res = await request(server).get(`/v1/payments/${created.body.id}/status`).expect(200);
      expect(res.body).toEqual({ status: 'succeeded' });
      expect(res.headers.deprecation).toBe(`@${Date.parse('2026-01-01T00:00:00Z') / 1000}`);
      expect(res.headers.sunset).toBe('Thu, 31 Dec 2026 00:00:00 GMT');
      expect(
        parseLinkHeader(res.headers.link).find((l) => l.rel.includes('successor-version'))?.href,
      ).toBe(`/v1/payments/${created.body.id}`);
      const missing = await request(server).get('/v1/payments/pay_none/status').expect(404);
      expect(missing.headers.sunset).toBe('Thu, 31 Dec 2026 00:00:00 GMT');
    });
  });
});
