/**
 * A hashing conditional() mounted outside versioning() (globally, as the
 * example apps mount it), under the header and media-type strategies: one URI
 * has a representation per version, and they differ in their headers
 * (`Api-Version`, a versioned `Content-Type`, `Deprecation`) even where no
 * migration changes the body. Each version's representation must then still
 * get its own strong tag (RFC 9110 §8.8.1), so that a 304 never revalidates one
 * version's stored response for a client of another: versioning() records the
 * version with varyEntityTag(), and the tag conditional() hashes after it
 * returned mixes it in.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional, encodingETag, parseEntityTag } from '../../src/conditional/index.js';
import type { VersioningOptions } from '../../src/versioning/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';
import { buildUsersApp, usersVersioning } from './app.js';

const SHAPE = /^"[0-9a-f]+-[A-Za-z0-9+/]{27}"$/;

/** Routes no migration changes, and one whose validators a load supplies. */
const extraRoutes: RouteSpec[] = [
  { method: 'get', path: '/status', handler: () => ({ body: { ok: true, region: 'eu' } }) },
  {
    method: 'get',
    path: '/long',
    handler: () => ({ body: { lines: Array.from({ length: 80 }, (_, i) => `line ${i}`) } }),
  },
  {
    method: 'get',
    path: '/rows/:id',
    use: [conditional({ load: () => ({ etag: '"rev3"' }) })],
    handler: () => ({ body: { id: 'r1' } }),
  },
];

interface StrategyCase {
  name: string;
  options: VersioningOptions;
  /** Request headers that ask for `version`. */
  ask: (version: string) => Record<string, string>;
  /** The field the version is negotiated on, which Vary names. */
  varies: string;
}

const strategies: StrategyCase[] = [
  {
    name: 'header',
    options: { strategy: 'header' },
    ask: (version) => ({ 'Api-Version': version }),
    varies: 'api-version',
  },
  {
    name: 'media type',
    options: { strategy: 'media-type', vendor: 'acme' },
    ask: (version) => ({ Accept: `application/vnd.acme.${version}+json` }),
    varies: 'accept',
  },
];

function varyOf(res: request.Response): string[] {
  return String(res.headers.vary ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v !== '');
}

describe.each(adapters)('conditional() outside versioning() on $name', (adapter) => {
  describe.each(strategies)('by $name', ({ options, ask, varies }) => {
    const app = (before = [conditional()]) =>
      buildUsersApp(adapter, { versions: usersVersioning(options), before, extraRoutes });
    const get = (server: ReturnType<typeof app>, path: string, version: string) =>
      request(server).get(path).set(ask(version));

    it('gives each version of a body no migration changes its own strong tag', async () => {
      const server = app();
      const [v1, v2, v3] = await Promise.all(
        ['v1', 'v2', 'v3'].map((v) => get(server, '/status', v).expect(200)),
      );
      // The same bytes for every version: only the headers tell them apart.
      expect(v1!.text).toBe(v3!.text);
      expect(v1!.headers['api-version']).toBe('v1');
      expect(v3!.headers['api-version']).toBe('v3');
      const tags = [v1, v2, v3].map((res) => String(res!.headers.etag));
      for (const tag of tags) {
        expect(tag).toMatch(SHAPE);
        expect(parseEntityTag(tag)?.weak).toBe(false);
      }
      expect(new Set(tags).size).toBe(3);
      // Stable: asked again, each version gets the tag it got.
      const again = await get(server, '/status', 'v1').expect(200);
      expect(again.headers.etag).toBe(v1!.headers.etag);
    });

    it('answers a v2 request revalidating with v1’s tag with v2’s 200, not a 304', async () => {
      const server = app();
      const v1 = await get(server, '/status', 'v1').expect(200);
      const v2 = await get(server, '/status', 'v2')
        .set('If-None-Match', String(v1.headers.etag))
        .expect(200);
      expect(v2.headers['api-version']).toBe('v2');
      expect(v2.headers.etag).not.toBe(v1.headers.etag);
      expect(JSON.parse(v2.text)).toEqual({ ok: true, region: 'eu' });
      // Nor does the newest version's tag revalidate an older one's.
      await get(server, '/status', 'v1').set('If-None-Match', String(v2.headers.etag)).expect(200);
      const v3 = await get(server, '/status', 'v3').expect(200);
      await get(server, '/status', 'v1').set('If-None-Match', String(v3.headers.etag)).expect(200);
      await get(server, '/status', 'v3').set('If-None-Match', String(v1.headers.etag)).expect(200);
    });

    it('answers 304 to a version revalidating with its own tag, with that tag and Vary', async () => {
      const server = app();
      for (const version of ['v1', 'v2', 'v3']) {
        const first = await get(server, '/status', version).expect(200);
        const revalidated = await get(server, '/status', version)
          .set('If-None-Match', String(first.headers.etag))
          .expect(304);
        expect(revalidated.headers.etag, version).toBe(first.headers.etag);
        expect(varyOf(revalidated), version).toContain(varies);
        expect(revalidated.text, version).toBe('');
      }
    });

    it('keeps identity and coded tags apart per version, and revalidates both', async () => {
      const server = app([compression({ threshold: 0 }), conditional()]);
      const identity = await get(server, '/long', 'v1').set('Accept-Encoding', 'identity');
      const gzip = await get(server, '/long', 'v1').set('Accept-Encoding', 'gzip');
      const gzipV2 = await get(server, '/long', 'v2').set('Accept-Encoding', 'gzip');
      expect([identity.status, gzip.status, gzipV2.status]).toEqual([200, 200, 200]);
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(identity.headers['content-encoding']).toBeUndefined();
      const tag = String(identity.headers.etag);
      expect(tag).toMatch(SHAPE);
      expect(gzip.headers.etag).toBe(encodingETag(tag, 'gzip'));
      expect(gzipV2.headers.etag).not.toBe(gzip.headers.etag);
      const gzip304 = await get(server, '/long', 'v1')
        .set('Accept-Encoding', 'gzip')
        .set('If-None-Match', String(gzip.headers.etag))
        .expect(304);
      expect(gzip304.headers.etag).toBe(gzip.headers.etag);
      const identity304 = await get(server, '/long', 'v1')
        .set('Accept-Encoding', 'identity')
        .set('If-None-Match', tag)
        .expect(304);
      expect(identity304.headers.etag).toBe(tag);
      // v1's coded tag does not revalidate v2's coded representation.
      await get(server, '/long', 'v2')
        .set('Accept-Encoding', 'gzip')
        .set('If-None-Match', String(gzip.headers.etag))
        .expect(200);
    });

    it('leaves validators a load supplied to the application, labelled as versioning() labels them', async () => {
      const server = app();
      const v1 = await get(server, '/rows/r1', 'v1').expect(200);
      const v3 = await get(server, '/rows/r1', 'v3').expect(200);
      expect(v1.headers.etag).toBe('"v1~rev3"');
      expect(v3.headers.etag).toBe('"rev3"');
      await get(server, '/rows/r1', 'v1').set('If-None-Match', '"v1~rev3"').expect(304);
      await get(server, '/rows/r1', 'v3').set('If-None-Match', '"rev3"').expect(304);
      await get(server, '/rows/r1', 'v3').set('If-None-Match', '"v1~rev3"').expect(200);
      // A handler's own tag too.
      const user = await get(server, '/users/u1', 'v1').expect(200);
      expect(user.headers.etag).toBe('"v1~r12"');
    });

    it('matches the tags of conditional() mounted inside in what they tell apart', async () => {
      const inside = buildUsersApp(adapter, {
        versions: usersVersioning(options),
        after: [conditional()],
        extraRoutes,
      });
      const v1 = await get(inside, '/status', 'v1').expect(200);
      const v3 = await get(inside, '/status', 'v3').expect(200);
      expect(v1.headers.etag).toMatch(/^"v1~/);
      expect(v1.headers.etag).not.toBe(v3.headers.etag);
    });
  });

  it('under the URI strategy leaves the tag of each version’s URI unlabelled', async () => {
    const server = buildUsersApp(adapter, {
      versions: usersVersioning(),
      before: [conditional()],
      extraRoutes: ['/v1', '/v3'].map(
        (prefix): RouteSpec => ({
          method: 'get',
          path: `${prefix}/status`,
          handler: () => ({ body: { ok: true, region: 'eu' } }),
        }),
      ),
    });
    const v1 = await request(server).get('/v1/status').expect(200);
    const v3 = await request(server).get('/v3/status').expect(200);
    // Two URIs, two resources: a cache never confuses them, so no label is needed.
    expect(v1.headers.etag).toBe(v3.headers.etag);
    await request(server)
      .get('/v1/status')
      .set('If-None-Match', String(v1.headers.etag))
      .expect(304);
  });
});

describe.each(adapters)('conditional() outside versioning() by media type on $name', (adapter) => {
  it('gives one version answered in two types two tags, each revalidating only itself', async () => {
    const server = buildUsersApp(adapter, {
      versions: usersVersioning({ strategy: 'media-type', vendor: 'acme' }),
      before: [conditional()],
      extraRoutes,
    });
    const vendor = await request(server)
      .get('/status')
      .set('Accept', 'application/vnd.acme.v3+json')
      .expect(200);
    const plain = await request(server)
      .get('/status')
      .set('Accept', 'application/json')
      .expect(200);
    expect(vendor.headers['content-type']).toMatch(/^application\/vnd\.acme\.v3\+json/);
    expect(plain.headers['content-type']).toMatch(/^application\/json/);
    expect(vendor.headers.etag).toMatch(SHAPE);
    expect(plain.headers.etag).toMatch(SHAPE);
    expect(vendor.headers.etag).not.toBe(plain.headers.etag);
    await request(server)
      .get('/status')
      .set('Accept', 'application/json')
      .set('If-None-Match', String(vendor.headers.etag))
      .expect(200);
    await request(server)
      .get('/status')
      .set('Accept', 'application/json')
      .set('If-None-Match', String(plain.headers.etag))
      .expect(304);
  });
});
