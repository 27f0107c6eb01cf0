/**
 * A hostile client and a careless configuration against versioning(),
 * through every adapter where HTTP is involved: long lists and deep bodies
 * meeting the migrations, a change declared twice, a default version that
 * retires while the process runs, pins to retired versions, and the sunset
 * boundary at the resolution the headers have.
 */
import type { IncomingMessage } from 'node:http';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { conditional } from '../../src/conditional/index.js';
import { JsonTooDeepError } from '../../src/core/body.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  defineVersions,
  deprecated,
  objectsAt,
  renameField,
  versionChange,
  versioning,
} from '../../src/versioning/index.js';
import { adapters } from '../helpers/apps.js';
import { buildUsersApp, usersVersioning } from './app.js';
import { fullName } from './fixtures.js';

const principal = (headers: Record<string, string | string[] | undefined>) =>
  headers['x-principal'] as string | undefined;

/** `{"a":{"a":...}}`, `depth` objects deep. */
function nested(depth: number): unknown {
  let value: unknown = { name: 'deep' };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

describe('the field helpers on long lists', () => {
  it('find every element of a list too long to spread into one call', () => {
    const body = { data: Array.from({ length: 300_000 }, (_, i) => ({ fullName: `n${i}` })) };
    const users = objectsAt(body, '/data/*');
    expect(users).toHaveLength(300_000);
    for (const user of users) renameField(user, 'fullName', 'name');
    expect(body.data[299_999]).toEqual({ name: 'n299999' });
  });
});

describe('a change declared twice', () => {
  it('is a configuration error naming both places: its migrations would run twice', () => {
    const once = versionChange({
      description: 'Counts the runs.',
      response: { migrate: () => {} },
    });
    expect(() =>
      defineVersions({
        versions: [
          { version: 'v1' },
          { version: 'v2', changes: [once] },
          { version: 'v3', changes: [once] },
        ],
        maxActive: 3,
      }),
    ).toThrow(
      /"Counts the runs\." is declared twice.*versions\[1\]\.changes\[0\].*versions\[2\]\.changes\[0\]/,
    );
    expect(() =>
      defineVersions({ versions: [{ version: 'v1' }, { version: 'v2', changes: [once, once] }] }),
    ).toThrow(/declared twice/);
  });
});

describe('request bodies a framework parsed without a depth bound', () => {
  // A migration without a schema: nothing but the depth bound stands before its walk.
  let walked = 0;
  const walk = versionChange({
    description: 'Walks the body.',
    request: {
      paths: ['POST /things'],
      migrate: (req) => {
        walked++;
        renameField(req.body, 'name', 'title');
      },
    },
  });
  const api = () =>
    defineVersions({
      versions: [{ version: 'v1' }, { version: 'v2', changes: [walk] }],
      maxDepth: 32,
    });

  it('are refused past maxDepth before any migration runs, schema or none', () => {
    const message = {
      method: 'POST',
      path: '/things',
      body: nested(40),
      query: new URLSearchParams(),
      headers: { get: () => undefined, set: () => {}, delete: () => {} },
    };
    const versions = api();
    walked = 0;
    expect(() => versions.migrateRequest(versions.versions[0]!, message)).toThrow(JsonTooDeepError);
    expect(walked).toBe(0);
    versions.migrateRequest(versions.versions[0]!, { ...message, body: nested(32) });
    expect(walked).toBe(1);
  });

  it.each(adapters)('answer 400 json-too-deep through $name', async (adapter) => {
    const parse = async (req: IncomingMessage): Promise<unknown> => {
      let text = '';
      for await (const chunk of req) text += String(chunk);
      return JSON.parse(text);
    };
    const server = adapter.build({
      framework: {
        express: [express.json({ limit: '1mb' })],
        koa: [
          async (ctx, next) => {
            (ctx.request as unknown as { body: unknown }).body = await parse(ctx.req);
            await next();
          },
        ],
      },
      routes: ['v1', 'v2'].map((v) => ({
        method: 'post' as const,
        path: `/${v}/things`,
        use: [versioning(api())],
        handler: (req) => ({ status: 201, body: req.body as object }),
      })),
    });
    const deep = await request(server)
      .post('/v1/things')
      .send(nested(1000) as object);
    expect(deep.status).toBe(400);
    expect(deep.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(deep.body.code).toBe('json-too-deep');
    const fine = await request(server).post('/v1/things').send({ name: 'x' }).expect(201);
    expect(fine.body).toEqual({ title: 'x' });
  });
});

const MARCH = Date.UTC(2025, 2, 1);
const SUNSET = Date.UTC(2025, 6, 1);

/** v1 is the default, retired at SUNSET with a 410; v2 is served. */
function retiringDefault(now: () => number, options = {}) {
  return usersVersioning(
    { strategy: 'header', ...options },
    {
      now,
      default: 'v1',
      maxActive: 2,
      versions: [
        { version: 'v1', deprecation: '2025-01-01', sunset: '2025-07-01', afterSunset: 'gone' },
        { version: 'v2', changes: [fullName] },
      ],
    },
  );
}

describe.each(adapters)(
  'a default version that retires while serving, through $name',
  (adapter) => {
    it('gives requests that name no version its successor once it is gone, not a 410', async () => {
      let now = MARCH;
      const server = buildUsersApp(adapter, { versions: retiringDefault(() => now) });
      const before = await request(server).get('/users/u1').expect(200);
      expect(before.headers['api-version']).toBe('v1');
      now = SUNSET;
      const after = await request(server).get('/users/u1').expect(200);
      expect(after.headers['api-version']).toBe('v2');
      expect(after.body.fullName).toBe('Ada Lovelace');
      // A client that names the retired version is still told it is gone.
      await request(server).get('/users/u1').set('Api-Version', 'v1').expect(410);
    });

    it('never pins a new principal to it; an existing pin still says it is gone', async () => {
      let now = MARCH;
      const pins = new MemoryStore({ evict: false });
      const versions = retiringDefault(() => now, { pins });
      const server = buildUsersApp(adapter, { versions, principal });
      await request(server).get('/users/u1').set('X-Principal', 'early').expect(200);
      expect(await versions.pinOf('early')).toBe('v1');
      now = SUNSET;
      const late = await request(server).get('/users/u1').set('X-Principal', 'late').expect(200);
      expect(late.headers['api-version']).toBe('v2');
      expect(await versions.pinOf('late')).toBe('v2');
      const early = await request(server).get('/users/u1').set('X-Principal', 'early').expect(410);
      expect(early.body).toMatchObject({ code: 'version-sunset', successor: 'v2' });
    });

    it('refuses to pin a principal to a version past its sunset', async () => {
      let now = MARCH;
      const versions = retiringDefault(() => now, { pins: new MemoryStore({ evict: false }) });
      await versions.pin('acct', 'v1');
      now = SUNSET;
      await expect(versions.pin('acct', 'v1')).rejects.toThrow(
        /"version" must be a version still served \(v2\); v1 is past its sunset/,
      );
      expect(await versions.pinOf('acct')).toBe('v1');
    });
  },
);

describe.each(adapters)('the sunset boundary, through $name', (adapter) => {
  // Configured to the millisecond; the Sunset header can only say the second.
  const SUNSET_MS = '2025-07-01T00:00:00.750Z';

  it('retires a version at the second its Sunset header names, and the 410 says when', async () => {
    let now = SUNSET - 1;
    const versions = usersVersioning(
      {},
      {
        now: () => now,
        maxActive: 2,
        versions: [
          { version: 'v1', deprecation: '2025-01-01', sunset: SUNSET_MS, afterSunset: 'gone' },
          { version: 'v2', changes: [fullName] },
        ],
      },
    );
    const server = buildUsersApp(adapter, { versions });
    const last = await request(server).get('/v1/users/u1').expect(200);
    expect(last.headers.sunset).toBe('Tue, 01 Jul 2025 00:00:00 GMT');
    expect(last.headers.deprecation).toBe(`@${Date.UTC(2025, 0, 1) / 1000}`);
    now = SUNSET;
    const gone = await request(server).get('/v1/users/u1').expect(410);
    expect(gone.body.sunset).toBe('2025-07-01T00:00:00.000Z');
    expect(gone.headers.sunset).toBe('Tue, 01 Jul 2025 00:00:00 GMT');
    expect(gone.headers.deprecation).toBe(`@${Date.UTC(2025, 0, 1) / 1000}`);
    expect(gone.headers.deprecation).not.toBe('true');
  });

  it('retires a deprecated route at the same second, and its 410 carries the headers', async () => {
    let now = SUNSET - 1;
    const server = adapter.build({
      routes: [
        {
          method: 'get',
          path: '/old',
          use: [
            deprecated({
              deprecation: '2025-01-01',
              sunset: SUNSET_MS,
              afterSunset: 'gone',
              now: () => now,
            }),
          ],
          handler: () => ({ body: { ok: true } }),
        },
      ],
    });
    await request(server).get('/old').expect(200);
    now = SUNSET;
    const gone = await request(server).get('/old').expect(410);
    expect(gone.body.code).toBe('resource-sunset');
    expect(gone.headers.sunset).toBe('Tue, 01 Jul 2025 00:00:00 GMT');
    expect(gone.headers.deprecation).toMatch(/^@[0-9]+$/);
  });
});

describe.each(adapters)(
  'a version in the path and another in a header, through $name',
  (adapter) => {
    it('under the URI strategy the path decides, and the echo says which', async () => {
      const server = buildUsersApp(adapter, { versions: usersVersioning() });
      const res = await request(server).get('/v1/users/u1').set('Api-Version', 'v3').expect(200);
      expect(res.headers['api-version']).toBe('v1');
      expect(res.body.name).toBe('Ada Lovelace');
      expect(String(res.headers.vary ?? '')).not.toMatch(/api-version/i);
    });
  },
);

describe.each(adapters)('entity tags of a body no migration changes, through $name', (adapter) => {
  it('differ per version with conditional() inside versioning(), and revalidate only their own', async () => {
    const server = buildUsersApp(adapter, {
      versions: usersVersioning({ strategy: 'media-type', vendor: 'acme' }),
      after: [conditional()],
    });
    const v1 = await request(server).get('/text').set('Accept', 'application/vnd.acme.v1+json');
    const v3 = await request(server).get('/text').set('Accept', 'application/vnd.acme.v3+json');
    expect(v1.text).toBe(v3.text);
    expect(v1.headers.etag).toMatch(/^"v1~/);
    expect(v3.headers.etag).not.toBe(v1.headers.etag);
    const same = await request(server)
      .get('/text')
      .set('Accept', 'application/vnd.acme.v1+json')
      .set('If-None-Match', v1.headers.etag as string)
      .expect(304);
    expect(same.headers.etag).toBe(v1.headers.etag);
    expect(String(same.headers.vary)).toMatch(/accept/i);
    await request(server)
      .get('/text')
      .set('Accept', 'application/vnd.acme.v3+json')
      .set('If-None-Match', v1.headers.etag as string)
      .expect(200);
  });
});
