/**
 * Choosing the version, through every adapter: by URI prefix, by header, by
 * media type; never by query. The effective version is echoed, `Vary` names
 * the header that decided, and an unsupported version is a 404, 400 or 406
 * problem (by strategy) listing the supported ones, newest first.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { adapters } from '../helpers/apps.js';
import { buildUsersApp, usersVersioning } from './app.js';

const SUPPORTED = ['v3', 'v2', 'v1'];

function varyOf(res: request.Response): string[] {
  return String(res.headers.vary ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

describe.each(adapters)('versioning on $name', (adapter) => {
  describe('by URI prefix', () => {
    const app = () => buildUsersApp(adapter, { versions: usersVersioning() });

    it('serves each version under its prefix, echoes it, and leaves Vary alone', async () => {
      const server = app();
      for (const [prefix, field] of [
        ['v1', 'name'],
        ['v2', 'fullName'],
        ['v3', 'fullName'],
      ] as const) {
        const res = await request(server).get(`/${prefix}/users/u1`).expect(200);
        expect(res.headers['api-version']).toBe(prefix);
        expect(res.body[field]).toBe('Ada Lovelace');
        expect(varyOf(res)).not.toContain('api-version');
      }
    });

    it('puts the version on the typed state: name and source', async () => {
      const res = await request(app()).get('/v2/users').expect(200);
      expect(res.body.seen).toMatchObject({ version: 'v2', source: 'uri' });
    });

    it('answers 404 to a version it does not serve, listing the supported ones', async () => {
      for (const path of ['/v9/users', '/v01/users', '/2025-06-01/users']) {
        const res = await request(app()).get(path).expect(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.code).toBe('version-unsupported');
        expect(res.body.supported).toEqual(SUPPORTED);
      }
    });

    it('lets a path whose first segment is no version pass untouched', async () => {
      const res = await request(app()).get('/health').expect(404);
      expect(res.body.code).toBe('not-found');
      expect(res.headers['api-version']).toBeUndefined();
    });

    it('reads the prefix the router matched: case-insensitive', async () => {
      const res = await request(app()).get('/V1/users/u1').expect(200);
      expect(res.headers['api-version']).toBe('v1');
      expect(res.body.name).toBe('Ada Lovelace');
    });

    it('never reads a version from the query string', async () => {
      const res = await request(app()).get('/v3/users/u1?version=v1&api-version=v1').expect(200);
      expect(res.headers['api-version']).toBe('v3');
      expect(res.body.fullName).toBe('Ada Lovelace');
    });
  });

  describe('under a base path', () => {
    it('takes the version right after it, and passes everything outside it', async () => {
      const versions = usersVersioning({ basePath: '/api' });
      const server = buildUsersApp(adapter, {
        versions,
        prefixes: ['/api/v1', '/api/v3', ''],
      });
      expect(versions.prefixes).toEqual(['/api/v3', '/api/v2', '/api/v1']);
      const old = await request(server).get('/api/v1/users/u1').expect(200);
      expect(old.body.name).toBe('Ada Lovelace');
      const outside = await request(server).get('/users/u1').expect(200);
      expect(outside.headers['api-version']).toBeUndefined();
      expect(outside.body.fullName).toBe('Ada Lovelace');
      await request(server).get('/api/v7/users').expect(404);
    });
  });

  describe('by header', () => {
    const app = (options = {}) =>
      buildUsersApp(adapter, { versions: usersVersioning({ strategy: 'header', ...options }) });

    it('serves the version the header names, a bare major too, and varies on the header', async () => {
      for (const [sent, version, field] of [
        ['v1', 'v1', 'name'],
        ['1', 'v1', 'name'],
        [' v2 ', 'v2', 'fullName'],
        ['V3', 'v3', 'fullName'],
      ] as const) {
        const res = await request(app()).get('/users/u1').set('Api-Version', sent).expect(200);
        expect(res.headers['api-version']).toBe(version);
        expect(res.body[field]).toBe('Ada Lovelace');
        expect(varyOf(res)).toContain('api-version');
      }
    });

    it('serves the default (the newest) without a header, still varying on it', async () => {
      const res = await request(app()).get('/users').expect(200);
      expect(res.headers['api-version']).toBe('v3');
      expect(res.body.seen.source).toBe('default');
      expect(varyOf(res)).toContain('api-version');
    });

    it('serves a configured default', async () => {
      const server = buildUsersApp(adapter, {
        versions: usersVersioning({ strategy: 'header' }, { default: 'v2' }),
      });
      const res = await request(server).get('/users/u1').expect(200);
      expect(res.headers['api-version']).toBe('v2');
      expect(res.body.fullName).toBe('Ada Lovelace');
      expect(res.body.email).toBe('ada@example.com');
    });

    it('answers 400 to an unknown or malformed version, with Vary, listing the supported ones', async () => {
      for (const sent of ['v4', 'two', 'v1, v2', '2025-06-01', 'x'.repeat(200)]) {
        const res = await request(app()).get('/users').set('Api-Version', sent).expect(400);
        expect(res.body.code).toBe('version-unsupported');
        expect(res.body.supported).toEqual(SUPPORTED);
        expect(varyOf(res)).toContain('api-version');
      }
    });

    it('reads a configured header and echoes in a configured one, or none', async () => {
      const server = app({ header: 'Acme-Version', echoHeader: 'Acme-Served-Version' });
      const res = await request(server).get('/users/u1').set('Acme-Version', 'v1').expect(200);
      expect(res.headers['acme-served-version']).toBe('v1');
      expect(res.headers['api-version']).toBeUndefined();
      expect(varyOf(res)).toContain('acme-version');
      const silent = await request(app({ echoHeader: false }))
        .get('/users')
        .expect(200);
      expect(silent.headers['api-version']).toBeUndefined();
    });

    it('keeps the Vary members the handler set', async () => {
      const server = buildUsersApp(adapter, {
        versions: usersVersioning({ strategy: 'header' }),
        extraRoutes: [
          {
            method: 'get',
            path: '/origin',
            handler: () => ({ headers: { vary: 'Origin' }, body: { ok: true } }),
          },
        ],
      });
      const res = await request(server).get('/origin').expect(200);
      expect(varyOf(res)).toEqual(expect.arrayContaining(['origin', 'api-version']));
    });
  });

  describe('by media type', () => {
    const app = () =>
      buildUsersApp(adapter, {
        versions: usersVersioning({ strategy: 'media-type', vendor: 'acme' }),
      });

    it('serves the version Accept asks for and echoes it in Content-Type, varying on Accept', async () => {
      const res = await request(app())
        .get('/users/u1')
        .set('Accept', 'application/vnd.acme.v1+json')
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/vnd\.acme\.v1\+json(;|$)/);
      expect(res.headers['api-version']).toBe('v1');
      expect(JSON.parse(res.text).name).toBe('Ada Lovelace');
      expect(varyOf(res)).toContain('accept');
    });

    it('weighs q-values, prefers the newer version on a tie, and ignores q=0', async () => {
      const cases: Array<[string, string]> = [
        ['application/vnd.acme.v1+json;q=0.5, application/vnd.acme.v2+json;q=0.9', 'v2'],
        ['application/vnd.acme.v1+json, application/vnd.acme.v2+json', 'v2'],
        ['application/vnd.acme.v2+json;q=0.2, application/vnd.acme.v1+json', 'v1'],
        ['application/vnd.acme.v3+json;q=0, application/vnd.acme.v1+json;q=0.1', 'v1'],
        ['APPLICATION/VND.ACME.V1+JSON', 'v1'],
      ];
      for (const [accept, version] of cases) {
        const res = await request(app()).get('/users/u1').set('Accept', accept).expect(200);
        expect(res.headers['api-version'], accept).toBe(version);
      }
    });

    it('serves the default to a client that names no version, in a type it accepts', async () => {
      for (const [accept, type] of [
        [undefined, /^application\/vnd\.acme\.v3\+json;/],
        ['*/*', /^application\/vnd\.acme\.v3\+json;/],
        ['application/*', /^application\/vnd\.acme\.v3\+json;/],
        // RFC 9110 §12.5.1: the versioned type is not one these ranges accept.
        ['application/json', /^application\/json;/],
        ['application/vnd.acme+json', /^application\/vnd\.acme\+json;/],
      ] as const) {
        const req = request(app()).get('/users/u1');
        const res = await (accept === undefined ? req : req.set('Accept', accept)).expect(200);
        expect(res.headers['api-version'], accept).toBe('v3');
        expect(res.headers['content-type'], accept).toMatch(type);
        expect(varyOf(res)).toContain('accept');
      }
    });

    it('serves the default when Accept names no served version but accepts another type', async () => {
      for (const accept of [
        'application/vnd.acme.v9+json, */*;q=0.1',
        'application/vnd.acme.v9+json, application/json;q=0.5',
      ]) {
        const res = await request(app()).get('/users/u1').set('Accept', accept).expect(200);
        expect(res.headers['api-version'], accept).toBe('v3');
        expect(JSON.parse(res.text).emails).toEqual(['ada@example.com']);
      }
      // What the client refused stays refused: 406.
      await request(app())
        .get('/users/u1')
        .set('Accept', 'application/vnd.acme.v9+json, */*;q=0')
        .expect(406);
    });

    it('answers 406 to a version spelt as a media-type parameter, never another version', async () => {
      for (const accept of [
        'application/vnd.acme+json; version=1',
        'application/json; version=1',
        'application/json;v=1, */*',
      ]) {
        const res = await request(app()).get('/users/u1').set('Accept', accept).expect(406);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.code).toBe('version-unsupported');
        expect(res.body.detail).toMatch(/application\/vnd\.acme\.<version>\+json/);
        expect(res.body.supported).toEqual(SUPPORTED);
        expect(varyOf(res)).toContain('accept');
      }
    });

    it('answers 406 when no version Accept asks for is served, as a problem', async () => {
      const res = await request(app())
        .get('/users/u1')
        .set('Accept', 'application/vnd.acme.v9+json')
        .expect(406);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('version-unsupported');
      expect(res.body.supported).toEqual(SUPPORTED);
    });

    it('leaves a problem document and a non-JSON body in their own types', async () => {
      const missing = await request(app())
        .get('/users/nobody')
        .set('Accept', 'application/vnd.acme.v3+json')
        .expect(404);
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
      const text = await request(app())
        .get('/text')
        .set('Accept', 'application/vnd.acme.v1+json')
        .expect(200);
      expect(text.headers['content-type']).toMatch(/^text\/plain/);
      expect(text.text).toBe('fullName emails');
    });
  });
});
