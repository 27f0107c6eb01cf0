/**
 * The migration chain over three versions (fixtures.ts), through every
 * adapter: requests forward (body, query, headers), responses back (body,
 * status), error responses back (problem documents), validation against the
 * client's own version, and what passes untouched (streams, other types).
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import {
  defineVersions,
  renameField,
  versionChange,
  versioning,
} from '../../src/versioning/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';
import { buildUsersApp, threeVersions, usersVersioning } from './app.js';

function contentLengthMatches(res: request.Response): void {
  expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
}

describe.each(adapters)('migrations on $name', (adapter) => {
  const app = () => buildUsersApp(adapter, { versions: usersVersioning() });

  describe('requests forward, responses back', () => {
    it('a v1 create is migrated through v2 to v3, and its answer back to v1 (200, name, email)', async () => {
      const server = app();
      const res = await request(server)
        .post('/v1/users')
        .send({ name: 'Grace Hopper', email: 'grace@example.com' })
        .expect(200);
      expect(res.body).toEqual({ id: 'u2', name: 'Grace Hopper', email: 'grace@example.com' });
      contentLengthMatches(res);
      // Stored in v3's shape: the newest version reads it so.
      const v3 = await request(server).get('/v3/users/u2').expect(200);
      expect(v3.body).toEqual({
        id: 'u2',
        fullName: 'Grace Hopper',
        emails: ['grace@example.com'],
      });
    });

    it('a v2 create answers as v2 did: 200 with fullName and email', async () => {
      const res = await request(app())
        .post('/v2/users')
        .send({ fullName: 'Alan Turing', email: 'alan@example.com' })
        .expect(200);
      expect(res.body).toEqual({ id: 'u2', fullName: 'Alan Turing', email: 'alan@example.com' });
    });

    it('a v3 create runs no migration: 201 with emails', async () => {
      const res = await request(app())
        .post('/v3/users')
        .send({ fullName: 'Alan Turing', emails: ['alan@example.com'] })
        .expect(201);
      expect(res.body).toEqual({ id: 'u2', fullName: 'Alan Turing', emails: ['alan@example.com'] });
    });

    it('a list is shaped item by item, in every version', async () => {
      const v1 = await request(app()).get('/v1/users').expect(200);
      expect(v1.body.data).toEqual([{ id: 'u1', name: 'Ada Lovelace', email: 'ada@example.com' }]);
      const v2 = await request(app()).get('/v2/users').expect(200);
      expect(v2.body.data).toEqual([
        { id: 'u1', fullName: 'Ada Lovelace', email: 'ada@example.com' },
      ]);
      contentLengthMatches(v2);
    });

    it('keeps the order of a renamed object’s members', async () => {
      const res = await request(app()).get('/v1/users/u1').expect(200);
      expect(Object.keys(JSON.parse(res.text))).toEqual(['id', 'name', 'email']);
      const v2 = await request(app()).get('/v2/users/u1').expect(200);
      expect(Object.keys(JSON.parse(v2.text))).toEqual(['id', 'fullName', 'email']);
    });

    it('a PATCH body is migrated forward too', async () => {
      const server = app();
      await request(server).patch('/v1/users/u1').send({ name: 'Ada King' }).expect(200);
      const v3 = await request(server).get('/v3/users/u1').expect(200);
      expect(v3.body.fullName).toBe('Ada King');
    });

    it('migrates the query the handler reads (ctx.request.query) for older versions only', async () => {
      const v2 = await request(app()).get('/v2/users?q=ada').expect(200);
      expect(v2.body.seen).toMatchObject({ search: 'ada', q: null });
      const v3 = await request(app()).get('/v3/users?q=ada').expect(200);
      expect(v3.body.seen).toMatchObject({ search: null, q: 'ada' });
    });

    it('migrates request headers, which the handler reads from the framework', async () => {
      const v1 = await request(app()).get('/v1/users').set('X-Tenant', 't1').expect(200);
      expect(v1.body.seen).toMatchObject({ tenant: 't1', xTenant: null });
      const v3 = await request(app()).get('/v3/users').set('X-Tenant', 't1').expect(200);
      expect(v3.body.seen).toMatchObject({ tenant: null, xTenant: 't1' });
    });

    it('mirrors GET for HEAD: the length of the migrated body', async () => {
      const server = app();
      const get = await request(server).get('/v1/users/u1').expect(200);
      const head = await request(server).head('/v1/users/u1').expect(200);
      expect(head.headers['content-length']).toBe(get.headers['content-length']);
    });
  });

  describe('validation and errors', () => {
    it('validates a v1 body against v1’s own schema: the 400 names v1’s fields', async () => {
      const res = await request(app()).post('/v1/users').send({ email: 'nope' }).expect(400);
      expect(res.body.code).toBe('validation-failed');
      expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
        '/email',
        '/name',
      ]);
    });

    it('a v1 body valid in v1 but not in v3 fails v3’s schema, and the error is migrated back to v1’s names', async () => {
      const res = await request(app())
        .post('/v1/users')
        .send({ name: 'A', email: 'a@example.com' })
        .expect(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.errors).toEqual([expect.objectContaining({ pointer: '/name', in: 'body' })]);
      contentLengthMatches(res);
    });

    it('an error response is migrated back through the chain: v3 says user-not-found, v2 and v1 not-found', async () => {
      const v3 = await request(app()).get('/v3/users/nobody').expect(404);
      expect(v3.body.code).toBe('user-not-found');
      for (const version of ['v2', 'v1']) {
        const res = await request(app()).get(`/${version}/users/nobody`).expect(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.code).toBe('not-found');
        expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
        expect(res.headers['api-version']).toBe(version);
      }
    });

    it('success migrations never touch an error response', async () => {
      const res = await request(app()).get('/v1/users/nobody').expect(404);
      expect(res.body).not.toHaveProperty('name');
      expect(res.body.detail).toBe('No user nobody.');
    });
  });

  describe('statuses without content', () => {
    const deleted = versionChange({
      description: 'Deleting answers 204 No Content; it answered 200 with `{ "deleted": true }`.',
      response: {
        paths: ['DELETE /things/:id', 'GET /broken'],
        migrate: (res) => {
          if (res.status === 204) {
            res.status = 200;
            res.body = { deleted: true };
          } else res.body = undefined;
        },
      },
    });
    const server = () =>
      adapter.build({
        use: [
          jsonBody(),
          versioning(
            defineVersions({
              versions: [{ version: 'v1' }, { version: 'v2', changes: [deleted] }],
            }),
          ),
        ],
        routes: ['v1', 'v2'].flatMap((v): RouteSpec[] => [
          { method: 'delete', path: `/${v}/things/:id`, handler: () => ({ status: 204 }) },
          { method: 'get', path: `/${v}/broken`, handler: () => ({ body: { ok: true } }) },
        ]),
      });

    it('gives a 204 of the newest version the body and status the old version had', async () => {
      const v1 = await request(server()).delete('/v1/things/7').expect(200);
      expect(v1.headers['content-type']).toMatch(/^application\/json/);
      expect(v1.body).toEqual({ deleted: true });
      contentLengthMatches(v1);
      const v2 = await request(server()).delete('/v2/things/7').expect(204);
      expect(v2.text).toBe('');
    });

    it('refuses a migration that drops the body of a 200 without saying 204', async () => {
      await request(server()).get('/v1/broken').expect(500);
    });
  });

  describe('what migrations cannot read passes untouched', () => {
    it('a streamed JSON body', async () => {
      const res = await request(app()).get('/v1/stream').expect(200);
      expect(JSON.parse(res.text)).toEqual({ fullName: 'streamed', emails: ['s@example.com'] });
    });

    it('a JSON body that does not parse, logged once', async () => {
      const lines: string[] = [];
      const push = (message: string) => {
        lines.push(message);
      };
      const touch = versionChange({
        description: 'x',
        response: { paths: ['/broken'], migrate: (res) => renameField(res.body, 'a', 'b') },
      });
      const server = adapter.build({
        use: [
          versioning(
            defineVersions({ versions: [{ version: 'v1' }, { version: 'v2', changes: [touch] }] }),
          ),
        ],
        options: { logger: { error: push, warn: push, info: push } },
        routes: [
          {
            method: 'get',
            path: '/v1/broken',
            handler: () => ({ headers: { 'content-type': 'application/json' }, body: '{"a":' }),
          },
        ],
      });
      for (let i = 0; i < 2; i++) {
        const res = await request(server)
          .get('/v1/broken')
          .buffer(true)
          .parse((r, cb) => {
            let text = '';
            r.on('data', (c: Buffer) => {
              text += c.toString();
            });
            r.on('end', () => cb(null, text));
          });
        expect(res.status).toBe(200);
        expect(res.body).toBe('{"a":');
      }
      expect(lines.filter((l) => /did not parse/.test(l))).toHaveLength(1);
    });

    it('a body of another media type', async () => {
      const res = await request(app()).get('/v1/text').expect(200);
      expect(res.text).toBe('fullName emails');
    });
  });
});

describe('shaping payloads outside HTTP (webhooks)', () => {
  const api = threeVersions();
  const event = {
    type: 'user.created',
    data: { id: 'u9', fullName: 'Radia Perlman', emails: ['radia@example.com', 'r@example.org'] },
  };

  it('shapes an event for each version through the same chain, newest change first', () => {
    expect(api.shapePayload(event, { version: 'v1', type: 'user.created' })).toEqual({
      type: 'user.created',
      data: { id: 'u9', name: 'Radia Perlman', email: 'radia@example.com' },
    });
    expect(api.shapePayload(event, { version: 'v2', type: 'user.created' })).toEqual({
      type: 'user.created',
      data: { id: 'u9', fullName: 'Radia Perlman', email: 'radia@example.com' },
    });
    expect(api.shapePayload(event, { version: 'v3', type: 'user.created' })).toEqual(event);
  });

  it('copies the payload: the same event can go to endpoints of several versions', () => {
    const before = structuredClone(event);
    api.shapePayload(event, { version: 'v1', type: 'user.created' });
    expect(event).toEqual(before);
    const newest = api.shapePayload(event, { version: 'v3' }) as typeof event;
    expect(newest).not.toBe(event);
  });

  it('runs typed migrations only for their types', () => {
    const other = {
      type: 'user.deleted',
      data: { id: 'u9', fullName: 'X', emails: ['x@example.com'] },
    };
    expect(api.shapePayload(other, { version: 'v1', type: 'user.deleted' })).toEqual(other);
    expect(api.shapePayload(other, { version: 'v1' })).toEqual(other);
  });

  it('refuses a version the API does not have, or unknown options', () => {
    expect(() => api.shapePayload(event, { version: 'v7' })).toThrow(/version.*v3, v2, v1/);
    expect(() =>
      api.shapePayload(event, { version: 'v1', typ: 'x' } as unknown as { version: string }),
    ).toThrow(/Did you mean "type"/);
  });
});
