/**
 * Where versioning() meets conditional(), compression() and the body parser,
 * through every adapter. Each version's representation has its own entity tag
 * (the newest's unlabelled, an older one's labelled `"v1~..."`), so a cache
 * never revalidates one version's body with another's tag; conditional
 * requests work with conditional() on either side of versioning(), and with
 * conditional({ load }) inside it; compression() belongs outside, and a body
 * that was not parsed is refused loudly rather than reaching the handler in
 * the old shape.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import { idempotency } from '../../src/idempotency/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';
import { buildUsersApp, usersVersioning } from './app.js';

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (message: string) => {
    lines.push(message);
  };
  return { lines, error: push, warn: push, info: push, debug: push };
}

/** Documents with a row version, validated before the handler by conditional({ load }). */
function docRoutes(prefixes: readonly string[]): RouteSpec[] {
  const docs = new Map([['d1', { id: 'd1', fullName: 'Doc', emails: ['d@example.com'], rev: 3 }]]);
  const load = conditional({
    load: (ctx) => {
      const doc = docs.get(ctx.request.params.id ?? '');
      return doc && { etag: `"rev${doc.rev}"` };
    },
  });
  return prefixes.flatMap((prefix): RouteSpec[] => [
    {
      method: 'get',
      path: `${prefix}/docs/:id`,
      use: [load],
      handler: (req) => ({ body: docs.get(req.params.id ?? '') }),
    },
    {
      method: 'patch',
      path: `${prefix}/docs/:id`,
      use: [load],
      handler: (req) => {
        const doc = docs.get(req.params.id ?? '')!;
        doc.rev++;
        return { body: doc, headers: { etag: `"rev${doc.rev}"` } };
      },
    },
  ]);
}

/** Under the header strategy one URI has a representation per version: their tags are labelled. */
const HEADER = { strategy: 'header' } as const;

describe.each(adapters)('mount order on $name', (adapter) => {
  it('under the URI strategy leaves tags alone: each version’s resource has its own URI', async () => {
    const server = buildUsersApp(adapter, {
      versions: usersVersioning(),
      after: [conditional()],
      extraRoutes: docRoutes(['/v1', '/v2', '/v3']),
    });
    const v1 = await request(server).get('/v1/users/u1').expect(200);
    expect(v1.headers.etag).toBe('"r12"');
    await request(server).get('/v1/docs/d1').set('If-None-Match', '"rev3"').expect(304);
    await request(server).patch('/v1/docs/d1').set('If-Match', '"rev3"').send({}).expect(200);
    await request(server).patch('/v1/docs/d1').set('If-Match', '"rev3"').send({}).expect(412);
  });

  it('labels an older version’s entity tag, and leaves the newest’s', async () => {
    const server = buildUsersApp(adapter, { versions: usersVersioning(HEADER) });
    const v1 = await request(server).get('/users/u1').set('Api-Version', 'v1').expect(200);
    expect(v1.headers.etag).toBe('"v1~r12"');
    const v3 = await request(server).get('/users/u1').set('Api-Version', 'v3').expect(200);
    expect(v3.headers.etag).toBe('"r12"');
  });

  describe('conditional() inside versioning()', () => {
    const app = () =>
      buildUsersApp(adapter, {
        versions: usersVersioning(HEADER),
        after: [conditional()],
        extraRoutes: docRoutes(['']),
      });

    it('revalidates each version with its own tag: 304 with that tag', async () => {
      const server = app();
      const v1 = await request(server).get('/users').set('Api-Version', 'v1').expect(200);
      expect(v1.headers.etag).toMatch(/^"v1~[0-9a-f]+-[A-Za-z0-9+/]{27}"$/);
      const again = await request(server)
        .get('/users')
        .set('Api-Version', 'v1')
        .set('If-None-Match', String(v1.headers.etag))
        .expect(304);
      expect(again.headers.etag).toBe(v1.headers.etag);
      const v3 = await request(server).get('/users').set('Api-Version', 'v3').expect(200);
      expect(v3.headers.etag).toMatch(/^"[0-9a-f]+-[A-Za-z0-9+/]{27}"$/);
      // A tag of another version's representation never validates this one.
      await request(server)
        .get('/users')
        .set('Api-Version', 'v1')
        .set('If-None-Match', String(v3.headers.etag))
        .expect(200);
      await request(server)
        .get('/users')
        .set('Api-Version', 'v3')
        .set('If-None-Match', String(v1.headers.etag))
        .expect(200);
      await request(server)
        .get('/users')
        .set('Api-Version', 'v2')
        .set('If-None-Match', String(v1.headers.etag))
        .expect(200);
    });

    it('compares loaded validators with the tag the client holds, for reads and writes', async () => {
      const server = app();
      const read = await request(server).get('/docs/d1').set('Api-Version', 'v1').expect(200);
      expect(read.headers.etag).toBe('"v1~rev3"');
      await request(server)
        .get('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-None-Match', '"v1~rev3"')
        .expect(304);
      const write = await request(server)
        .patch('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-Match', '"v1~rev3"')
        .send({})
        .expect(200);
      expect(write.headers.etag).toBe('"v1~rev4"');
      await request(server)
        .patch('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-Match', '"v1~rev3"')
        .send({})
        .expect(412);
      // If-Match guards the resource's state, whichever version's tag carried it.
      await request(server)
        .patch('/docs/d1')
        .set('Api-Version', 'v3')
        .set('If-Match', '"v1~rev4"')
        .send({})
        .expect(200);
    });
  });

  describe('conditional() outside versioning()', () => {
    it('hashes the body each version gets: 304 for a matching tag, distinct tags per version', async () => {
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(HEADER),
        before: [conditional()],
      });
      const v1 = await request(server).get('/users').set('Api-Version', 'v1').expect(200);
      const v3 = await request(server).get('/users').set('Api-Version', 'v3').expect(200);
      expect(v1.headers.etag).not.toBe(v3.headers.etag);
      await request(server)
        .get('/users')
        .set('Api-Version', 'v1')
        .set('If-None-Match', String(v1.headers.etag))
        .expect(304);
      await request(server)
        .get('/users')
        .set('Api-Version', 'v1')
        .set('If-None-Match', String(v3.headers.etag))
        .expect(200);
      // A handler's own tag is labelled inside, and compared labelled outside.
      const user = await request(server).get('/users/u1').set('Api-Version', 'v1').expect(200);
      expect(user.headers.etag).toBe('"v1~r12"');
      await request(server)
        .get('/users/u1')
        .set('Api-Version', 'v1')
        .set('If-None-Match', '"v1~r12"')
        .expect(304);
    });

    it('and conditional({ load }) inside: the loaded validators meet the tags the client holds', async () => {
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(HEADER),
        before: [conditional()],
        extraRoutes: docRoutes(['']),
      });
      const read = await request(server).get('/docs/d1').set('Api-Version', 'v1').expect(200);
      expect(read.headers.etag).toBe('"v1~rev3"');
      await request(server)
        .get('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-None-Match', '"v1~rev3"')
        .expect(304);
      await request(server)
        .get('/docs/d1')
        .set('Api-Version', 'v3')
        .set('If-None-Match', '"v1~rev3"')
        .expect(200);
      await request(server)
        .patch('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-Match', '"v1~rev3"')
        .send({})
        .expect(200);
      await request(server)
        .patch('/docs/d1')
        .set('Api-Version', 'v1')
        .set('If-Match', '"v1~rev3"')
        .send({})
        .expect(412);
    });

    it('warns once when conditional({ load }) runs outside it', async () => {
      const logger = recordingLogger();
      const outer = conditional({ load: () => ({ etag: '"x"' }) });
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(HEADER),
        before: [outer],
        logger,
      });
      await request(server).get('/users').set('Api-Version', 'v1').expect(200);
      await request(server).get('/users').set('Api-Version', 'v1').expect(200);
      expect(
        logger.lines.filter((l) => /conditional\(\{ load \}\) ran outside/.test(l)),
      ).toHaveLength(1);
    });
  });

  describe('compression()', () => {
    it('outside versioning(): the migrated body is compressed and its tag carries both labels', async () => {
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(HEADER),
        before: [compression({ threshold: 0 })],
        after: [conditional()],
        extraRoutes: docRoutes(['']),
      });
      const res = await request(server)
        .get('/users/u1')
        .set('Api-Version', 'v1')
        .set('Accept-Encoding', 'gzip')
        .expect(200);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.body.name).toBe('Ada Lovelace');
      expect(res.headers.etag).toBe('"v1~r12-gzip"');
      const doc = await request(server)
        .get('/docs/d1')
        .set('Api-Version', 'v1')
        .set('Accept-Encoding', 'gzip')
        .expect(200);
      expect(doc.headers.etag).toBe('"v1~rev3-gzip"');
      const revalidated = await request(server)
        .get('/docs/d1')
        .set('Api-Version', 'v1')
        .set('Accept-Encoding', 'gzip')
        .set('If-None-Match', String(doc.headers.etag))
        .expect(304);
      expect(revalidated.headers.etag).toBe('"v1~rev3-gzip"');
    });

    it('inside versioning(): the coded body passes unmigrated, and a warning names the fix', async () => {
      const logger = recordingLogger();
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(),
        after: [compression({ threshold: 0 })],
        logger,
      });
      const res = await request(server)
        .get('/v1/users/u1')
        .set('Accept-Encoding', 'gzip')
        .expect(200);
      expect(res.body.fullName).toBe('Ada Lovelace');
      expect(
        logger.lines.filter((l) => /mount versioning\(\) inside compression\(\)/.test(l)),
      ).toHaveLength(1);
    });
  });

  describe('idempotency() inside versioning()', () => {
    it('records the newest answer and replays it migrated for the retry’s version', async () => {
      const records = new MemoryStore({ evict: false });
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(),
        after: [idempotency({ store: records, anonymous: 'ip' })],
      });
      const first = await request(server)
        .post('/v1/users')
        .set('Idempotency-Key', 'key-1')
        .send({ name: 'Grace Hopper', email: 'grace@example.com' })
        .expect(200);
      const retry = await request(server)
        .post('/v1/users')
        .set('Idempotency-Key', 'key-1')
        .send({ name: 'Grace Hopper', email: 'grace@example.com' })
        .expect(200);
      expect(retry.body).toEqual(first.body);
      expect(retry.body).toEqual({ id: 'u2', name: 'Grace Hopper', email: 'grace@example.com' });
      const list = await request(server).get('/v3/users').expect(200);
      expect(list.body.data).toHaveLength(2);
    });
  });

  describe('versioning() mounted twice', () => {
    it('runs once when the same middleware meets a request twice (global and route)', async () => {
      const versions = usersVersioning();
      let seen: unknown;
      const server = adapter.build({
        use: [jsonBody(), versions],
        routes: [
          {
            method: 'post',
            path: '/v2/users',
            use: [versions],
            handler: (req) => {
              seen = req.body;
              return { status: 201, body: { id: 'u9', ...(req.body as object) } };
            },
          },
        ],
      });
      const res = await request(server)
        .post('/v2/users')
        .send({ fullName: 'Ada K', email: 'k@example.com' })
        .expect(200);
      // Migrated twice, the address would be nested in two lists.
      expect(seen).toEqual({ fullName: 'Ada K', emails: ['k@example.com'] });
      expect(res.body).toEqual({ id: 'u9', fullName: 'Ada K', email: 'k@example.com' });
    });

    it('refuses two APIs’ versioning() on one request: a configuration error, loud', async () => {
      const logger = recordingLogger();
      const server = buildUsersApp(adapter, {
        versions: usersVersioning(),
        after: [usersVersioning({ strategy: 'header' })],
        logger,
      });
      await request(server).get('/v1/users').expect(500);
      expect(logger.lines.some((l) => /request failed/.test(l))).toBe(true);
    });
  });

  describe('the body parser', () => {
    it('after versioning(): a body the migrations would change is refused as a server error, logged', async () => {
      const logger = recordingLogger();
      const server = adapter.build({
        use: [usersVersioning(), jsonBody()],
        options: { logger },
        routes: [
          {
            method: 'post',
            path: '/v1/users',
            handler: (req) => ({ status: 201, body: req.body as object }),
          },
          {
            method: 'post',
            path: '/v3/users',
            handler: (req) => ({ status: 201, body: req.body as object }),
          },
        ],
      });
      const res = await request(server)
        .post('/v1/users')
        .send({ name: 'Ada', email: 'a@example.com' });
      expect(res.status).toBe(500);
      expect(res.text).not.toMatch(/jsonBody/);
      expect(logger.lines.some((l) => /request failed/.test(l))).toBe(true);
      // The newest version has nothing to migrate, and is served.
      await request(server).post('/v3/users').send({ fullName: 'Ada', emails: [] }).expect(201);
    });
  });
});
