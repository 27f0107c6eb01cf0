import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { parseLinkHeader } from '../../src/core/link.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { asClient, EXAMPLE_CREDENTIALS } from '../helpers/example-client.js';
import { raw } from '../helpers/raw.js';

const PROBLEM = /^application\/problem\+json/;

const PAGE_RELS = ['first', 'prev', 'next', 'last'];
const isPageLink = (link: { rel: readonly string[] }) =>
  link.rel.some((rel) => PAGE_RELS.includes(rel));

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

describe.each(apps)('the example lists under attack, on $name', ({ make }) => {
  it('refuses a users cursor on the payments list, whichever sort and size', async () => {
    const app = make();
    const users = await request(app).get('/v1/users?sort=createdAt&limit=1').expect(200);
    const cursor = users.body.pagination.nextCursor as string;
    const res = await request(app)
      .get(`/v1/payments?sort=createdAt&limit=1&cursor=${cursor}`)
      .expect(400)
      .expect('content-type', PROBLEM);
    expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
  });

  it('writes links relative to the path whatever Host and X-Forwarded-Host say', async () => {
    const app = make();
    const res = await request(app)
      .get('/v1/users?limit=2')
      .set('host', 'evil.example')
      .set('x-forwarded-host', 'evil.example')
      .set('x-forwarded-proto', 'http')
      .expect(200);
    for (const link of parseLinkHeader(res.headers.link).filter(isPageLink))
      expect(link.href).toMatch(/^\/v1\/users\?/);
    // v1 is deprecated: its successor is named by path too.
    const successor = parseLinkHeader(res.headers.link).find((l) =>
      l.rel.includes('successor-version'),
    );
    expect(successor?.href).toBe('/v2/users');
    expect(res.headers.link).not.toContain('evil');
    expect(JSON.stringify(res.body.links)).not.toContain('evil');
    // The absolute form names a host too: links stay relative to the path.
    const absolute = await raw(app, { path: 'http://evil.example/v1/users?limit=2' });
    expect(absolute.status).toBe(200);
    const links = parseLinkHeader(absolute.headers.link as string).filter(isPageLink);
    expect(links.map((l) => l.href.slice(0, 10))).toEqual(Array(3).fill('/v1/users?'));
  });

  it('answers HEAD with the Link header GET has', async () => {
    const app = make();
    const get = await request(app).get('/v1/users?limit=3').expect(200);
    const head = await request(app).head('/v1/users?limit=3').expect(200);
    expect(head.headers.link).toBe(get.headers.link);
  });

  it.each([
    '/v1/payments?since=0000-01-01T00:00:00Z',
    '/v1/payments?until=9999-12-31T23:59:59-00:01',
    '/v1/payments?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z',
    '/v1/users?sort=-',
    '/v1/users?sort=--name',
    '/v1/users?sort=constructor',
    '/v1/users?limit=007&limit=7',
    '/v1/users?limit=9007199254740993',
    '/v1/users?total=TRUE',
    '/v1/users?cursor=',
    '/v1/users?cursor=%00',
  ])('refuses %s with a 400 problem', async (path) => {
    const res = await request(make()).get(path).expect(400).expect('content-type', PROBLEM);
    // A NUL byte is refused by the example's requestHygiene() before the paginator reads it.
    expect(['validation-failed', 'invalid-cursor', 'null-byte']).toContain(res.body.code);
  });
});
