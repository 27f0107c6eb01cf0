/**
 * `acceptPatch()` and `applyPatch()` through the real Express and Koa adapters:
 * Accept-Patch on the route's responses, 415 for another patch format (RFC 5789
 * §2.2, §3.1), and one handler line that applies a merge patch or a JSON Patch.
 */
import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { contextOf as expressContextOf, expressAdapter } from '../../src/adapters/express/index.js';
import { koaAdapter, contextOf as koaContextOf } from '../../src/adapters/koa/index.js';
import { jsonBody } from '../../src/core/body.js';
import type { Context, Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  acceptPatch,
  applyPatch,
  InvalidJsonPatchError,
  JSON_PATCH_MEDIA_TYPE,
  MERGE_PATCH_MEDIA_TYPE,
  PATCH_MEDIA_TYPES,
  PatchDocumentMissingError,
  UnsupportedPatchMediaTypeError,
} from '../../src/representation/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';

const BOTH = `${MERGE_PATCH_MEDIA_TYPE}, ${JSON_PATCH_MEDIA_TYPE}`;

interface User {
  id: string;
  email: string;
  name: string;
  nickname: string | null;
  tags: string[];
}

function seed(): Map<string, User> {
  return new Map([
    [
      'usr_ada',
      { id: 'usr_ada', email: 'ada@example.com', name: 'Ada', nickname: 'A', tags: ['math'] },
    ],
  ]);
}

/** GET and PATCH of /v1/users/:id, each with `route` mounted before the handler. */
function userRoutes(users: Map<string, User>, route: Middleware[]): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/v1/users/:id',
      use: route,
      handler: (req) => ({ body: users.get(req.params.id!) }),
    },
    {
      method: 'patch',
      path: '/v1/users/:id',
      use: route,
      handler: (req) => {
        const current = users.get(req.params.id!);
        if (current === undefined) return { status: 404, body: { missing: true } };
        const updated = applyPatch<User>(req.context, current);
        // A merge patch that is not an object replaces the whole document (RFC 7396 §2):
        // the handler checks the result as it checks a PUT body.
        if (updated === null || typeof updated !== 'object' || Array.isArray(updated)) {
          return { status: 422, body: { invalid: true } };
        }
        users.set(updated.id, updated);
        return { body: updated };
      },
    },
  ];
}

describe.each(adapters)('acceptPatch() and applyPatch() on $name', (adapter) => {
  const build = (
    route: Middleware[],
    global: Middleware[] = [jsonBody()],
    users: Map<string, User> = seed(),
  ) => adapter.build({ use: global, routes: userRoutes(users, route) });
  const both = () => [acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE] })];

  it('advertises Accept-Patch on GET, in the configured order', async () => {
    const res = await request(build(both())).get('/v1/users/usr_ada');
    expect(res.status).toBe(200);
    expect(res.headers['accept-patch']).toBe(BOTH);
    const merge = await request(build([acceptPatch()])).get('/v1/users/usr_ada');
    expect(merge.headers['accept-patch']).toBe(MERGE_PATCH_MEDIA_TYPE);
  });

  it('applies a merge patch: named members change, null removes, the rest stays', async () => {
    const users = seed();
    const res = await request(build(both(), [jsonBody()], users))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
      .send(JSON.stringify({ name: 'Ada Lovelace', nickname: null }));
    expect(res.status).toBe(200);
    expect(res.headers['accept-patch']).toBe(BOTH);
    expect(res.body).toEqual({
      id: 'usr_ada',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      tags: ['math'],
    });
    expect(users.get('usr_ada')?.name).toBe('Ada Lovelace');
  });

  it('applies a JSON Patch, which can set null and append to an array', async () => {
    const res = await request(build(both()))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', `${JSON_PATCH_MEDIA_TYPE}; charset=utf-8`)
      .send(
        JSON.stringify([
          { op: 'test', path: '/email', value: 'ada@example.com' },
          { op: 'replace', path: '/nickname', value: null },
          { op: 'add', path: '/tags/-', value: 'computing' },
        ]),
      );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ nickname: null, tags: ['math', 'computing'] });
  });

  it('reads the media type case-insensitively, with parameters', async () => {
    const res = await request(build(both()))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'Application/Merge-Patch+JSON; charset="UTF-8"')
      .send(JSON.stringify({ name: 'A' }));
    expect(res.status).toBe(200);
  });

  it('answers a JSON Patch that fails its test with a 409 naming the operation, nothing applied', async () => {
    const users = seed();
    const res = await request(build(both(), [jsonBody()], users))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send(
        JSON.stringify([
          { op: 'replace', path: '/name', value: 'Grace' },
          { op: 'test', path: '/email', value: 'someone@else.example' },
        ]),
      );
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['accept-patch']).toBe(BOTH);
    expect(res.body).toMatchObject({
      code: 'json-patch-conflict',
      operation: 1,
      pointer: '/1/value',
      reason: 'test-failed',
    });
    expect(users.get('usr_ada')?.name).toBe('Ada');
  });

  it('answers a malformed JSON Patch with a 400 listing every fault', async () => {
    const res = await request(build(both()))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send(JSON.stringify([{ op: 'add', path: 'name' }, { op: 'jump' }]));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid-json-patch');
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual([
      '/0/path',
      '/0/value',
      '/1/op',
    ]);
  });

  it('answers another media type with 415, Accept-Patch and the accepted list', async () => {
    for (const type of ['application/json', 'application/x-www-form-urlencoded', 'nonsense']) {
      const res = await request(build(both(), []))
        .patch('/v1/users/usr_ada')
        .set('Content-Type', type)
        .send('{"name":"x"}');
      expect(res.status, type).toBe(415);
      expect(res.headers['accept-patch']).toBe(BOTH);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        code: 'unsupported-media-type',
        accept: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE],
      });
    }
  });

  it('refuses JSON Patch by default: only merge patch is accepted until it is listed', async () => {
    const res = await request(build([acceptPatch()]))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send('[]');
    expect(res.status).toBe(415);
    expect(res.headers['accept-patch']).toBe(MERGE_PATCH_MEDIA_TYPE);
  });

  it('answers a PATCH without a body with 400 patch-document-missing', async () => {
    const res = await request(build(both())).patch('/v1/users/usr_ada');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('patch-document-missing');
    const typed = await request(build(both()))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE);
    expect(typed.status).toBe(400);
    expect(typed.body.code).toBe('patch-document-missing');
  });

  it('with jsonBody() after the gate, a body no parser reads gets the 415 with Accept-Patch', async () => {
    const app = build([...both(), jsonBody()], []);
    const plain = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'text/plain')
      .send('name=x');
    expect(plain.status).toBe(415);
    expect(plain.headers['accept-patch']).toBe(BOTH);
    // A body with no Content-Type at all.
    const bare = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Length', '2')
      .send(Buffer.from('{}'))
      .unset('Content-Type');
    expect(bare.status).toBe(415);
    expect(bare.headers['accept-patch']).toBe(BOTH);
    expect(bare.body.detail).toContain('no Content-Type');
  });

  it('with jsonBody() mounted first, a body it cannot parse gets its 415 (without Accept-Patch), never a 5xx', async () => {
    const res = await request(build(both(), [jsonBody()]))
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'text/plain')
      .send('name=x');
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('unsupported-media-type');
  });

  it("with advertise: 'options', GET has no Accept-Patch and the 415 still has it", async () => {
    const app = build([acceptPatch({ advertise: 'options' })]);
    const get = await request(app).get('/v1/users/usr_ada');
    expect(get.headers['accept-patch']).toBeUndefined();
    const refused = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'application/json')
      .send('{}');
    expect(refused.status).toBe(415);
    expect(refused.headers['accept-patch']).toBe(MERGE_PATCH_MEDIA_TYPE);
  });

  it('without the gate, applyPatch() applies both formats and its 415 lists both', async () => {
    const app = build([]);
    const json = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send(JSON.stringify([{ op: 'replace', path: '/name', value: 'B' }]));
    expect(json.status).toBe(200);
    expect(json.body.name).toBe('B');
    const refused = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'application/json')
      .send('{"name":"x"}');
    expect(refused.status).toBe(415);
    expect(refused.headers['accept-patch']).toBe(BOTH);
  });

  it('never lets a hostile patch pollute a prototype or answer 5xx', async () => {
    const app = build(both());
    const bodies: Array<[string, string]> = [
      [MERGE_PATCH_MEDIA_TYPE, '{"__proto__":{"polluted":"yes"}}'],
      [MERGE_PATCH_MEDIA_TYPE, '{"constructor":{"prototype":{"polluted":"yes"}}}'],
      [JSON_PATCH_MEDIA_TYPE, '[{"op":"add","path":"/__proto__/polluted","value":"yes"}]'],
      [
        JSON_PATCH_MEDIA_TYPE,
        '[{"op":"add","path":"/constructor/prototype/polluted","value":"yes"}]',
      ],
      [JSON_PATCH_MEDIA_TYPE, '[{"op":"add","path":"/tags/99999999999999999999","value":1}]'],
      [JSON_PATCH_MEDIA_TYPE, '[{"op":"remove","path":""}]'],
      [JSON_PATCH_MEDIA_TYPE, '{"op":"add"}'],
      [JSON_PATCH_MEDIA_TYPE, '"add"'],
      [JSON_PATCH_MEDIA_TYPE, 'null'],
      [MERGE_PATCH_MEDIA_TYPE, 'null'],
      [MERGE_PATCH_MEDIA_TYPE, `${'['.repeat(100)}${']'.repeat(100)}`],
    ];
    for (const [type, body] of bodies) {
      const res = await request(app)
        .patch('/v1/users/usr_ada')
        .set('Content-Type', type)
        .send(body);
      expect(res.status, `${body} ${JSON.stringify(res.body)}`).toBeLessThan(500);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});

describe('applyPatch() without a context', () => {
  it('dispatches on the Content-Type it is given', () => {
    expect(applyPatch({ a: 1, b: 2 }, { a: null }, MERGE_PATCH_MEDIA_TYPE)).toEqual({ b: 2 });
    expect(
      applyPatch({ a: 1 }, [{ op: 'add', path: '/a', value: null }], 'application/json-patch+json'),
    ).toEqual({ a: null });
  });

  it('refuses another type, or none, with the 415 and the list it applies', () => {
    for (const type of ['application/json', undefined, 'text/plain; charset=utf-8']) {
      let err: unknown;
      try {
        applyPatch({}, {}, type);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedPatchMediaTypeError);
      expect((err as UnsupportedPatchMediaTypeError).headers['Accept-Patch']).toBe(BOTH);
    }
    expect(() =>
      applyPatch({}, [], JSON_PATCH_MEDIA_TYPE, { types: [MERGE_PATCH_MEDIA_TYPE] }),
    ).toThrow(UnsupportedPatchMediaTypeError);
  });

  it('refuses a missing patch document with 400', () => {
    expect(() => applyPatch({}, undefined, MERGE_PATCH_MEDIA_TYPE)).toThrow(
      PatchDocumentMissingError,
    );
  });

  it('passes JSON Patch limits through', () => {
    expect(() =>
      applyPatch(
        {},
        [
          { op: 'test', path: '', value: {} },
          { op: 'test', path: '', value: {} },
        ],
        JSON_PATCH_MEDIA_TYPE,
        { jsonPatch: { maxOperations: 1 } },
      ),
    ).toThrow(InvalidJsonPatchError);
  });

  it('checks its options', () => {
    expect(() => applyPatch({}, {}, MERGE_PATCH_MEDIA_TYPE, { type: [] } as never)).toThrow(
      /unknown option "type"\. Did you mean "types"\?/,
    );
    expect(() => applyPatch({}, {}, MERGE_PATCH_MEDIA_TYPE, { types: [] })).toThrow(TypeError);
    expect(() =>
      applyPatch({}, {}, MERGE_PATCH_MEDIA_TYPE, { jsonPatch: { maxDepth: -1 } }),
    ).toThrow(/maxDepth/);
    expect(() => applyPatch({}, {}, 42 as never)).toThrow(/Content-Type/);
    expect(() =>
      applyPatch({}, {}, MERGE_PATCH_MEDIA_TYPE, { types: ['application/vnd.custom+json'] }),
    ).toThrow(/application\/merge-patch\+json and application\/json-patch\+json/);
  });

  it("refuses the framework's own request or context, naming contextOf()", () => {
    const koaLike = {
      get: () => undefined,
      req: {},
      res: {},
      request: { header: {} },
      response: {},
    };
    const expressLike = { get: () => undefined, res: {}, body: {} };
    for (const given of [koaLike, expressLike]) {
      expect(() => applyPatch(given as never, { a: 1 })).toThrow(/contextOf/);
    }
  });

  it('lists the formats it applies', () => {
    expect(PATCH_MEDIA_TYPES).toEqual([MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE]);
  });
});

describe('acceptPatch() options', () => {
  it('refuses unknown names, with a hint for habits from elsewhere', () => {
    expect(() => acceptPatch({ accept: [] } as never)).toThrow(/Use types/);
    expect(() => acceptPatch({ advertize: 'always' } as never)).toThrow(/Did you mean "advertise"/);
  });

  it('refuses bad values at construction', () => {
    expect(() => acceptPatch({ types: [] })).toThrow(/non-empty array/);
    expect(() => acceptPatch({ types: ['merge'] })).toThrow(/media types/);
    expect(() => acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, 5 as never] })).toThrow(TypeError);
    expect(() => acceptPatch({ advertise: 'never' as never })).toThrow(/advertise/);
  });
});

describe('Accept-Patch on OPTIONS (RFC 5789 §3.1), mounted as docs/representation.md shows', () => {
  const gate = () => acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE] });
  const users = seed();

  function expressApp(): RequestListener {
    const app = express();
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw(jsonBody()));
    app
      .route('/v1/users/:id')
      .all(rw(gate()))
      .get((req, res) => {
        res.json(users.get(req.params.id));
      })
      .patch((req, res) => {
        res.json(applyPatch(expressContextOf(req), users.get(req.params.id)));
      })
      .all(rw.methodNotAllowed());
    app.use(rw.notFound());
    app.use(rw.errorHandler());
    return app as unknown as RequestListener;
  }

  function koaApp(): RequestListener {
    const app = new Koa();
    const rw = koaAdapter({ logger: silentLogger });
    const router = new Router();
    const patchable = rw(gate());
    router.use('/v1/users/:id', patchable);
    router.options('/v1/users/:id', patchable);
    router.get('/v1/users/:id', (ctx) => {
      ctx.body = users.get(ctx.params.id!);
    });
    router.patch('/v1/users/:id', (ctx) => {
      ctx.body = applyPatch(koaContextOf(ctx), users.get(ctx.params.id!));
    });
    app.use(rw(jsonBody()));
    app.use(router.routes());
    app.use(router.allowedMethods());
    return app.callback() as RequestListener;
  }

  it.each([
    ['express', expressApp],
    ['koa', koaApp],
  ] as const)('%s: OPTIONS answers Allow and Accept-Patch; PATCH and GET work', async (_, make) => {
    const app = make();
    const options = await request(app).options('/v1/users/usr_ada');
    expect(options.status).toBe(200);
    expect(options.headers['accept-patch']).toBe(BOTH);
    expect(options.headers.allow).toContain('PATCH');
    expect(options.headers.allow).toContain('GET');
    const get = await request(app).get('/v1/users/usr_ada');
    expect(get.status).toBe(200);
    expect(get.headers['accept-patch']).toBe(BOTH);
    const patched = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send('[{"op":"replace","path":"/name","value":"Countess"}]');
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Countess');
    const refused = await request(app)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', 'application/json')
      .send('{}');
    expect(refused.status).toBe(415);
    expect(refused.headers['accept-patch']).toBe(BOTH);
  });
});

describe('applyPatch() and a parser that did not read the body', () => {
  it("is a loud server error naming the fix, not a 200 that changed nothing (express.json()'s default type)", async () => {
    const errors: unknown[] = [];
    const app = express();
    const rw = expressAdapter({
      logger: { ...silentLogger, error: (_msg: string, fields?: unknown) => errors.push(fields) },
    });
    app.use(rw());
    app.use(express.json());
    app.patch('/doc', (req, res) => {
      res.json(applyPatch(expressContextOf(req) as Context, { a: 1 }));
    });
    app.use(rw.errorHandler());
    const res = await request(app as unknown as RequestListener)
      .patch('/doc')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
      .send('{"a":2}');
    expect(res.status).toBe(500);
    expect(JSON.stringify(errors)).not.toBe('[]');
  });

  it("works with the framework's parser when it reads the +json types", async () => {
    const app = express();
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw());
    app.use(express.json({ type: ['application/json', 'application/*+json'] }));
    app.patch('/doc', (req, res) => {
      res.json(applyPatch(expressContextOf(req), { a: 1, b: 1 }));
    });
    app.use(rw.errorHandler());
    const res = await request(app as unknown as RequestListener)
      .patch('/doc')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
      .send('{"a":2,"b":null}');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ a: 2 });
  });
});
