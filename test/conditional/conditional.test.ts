/**
 * restwell/conditional through every adapter (Express 5 and 4, Koa 3 and 2):
 * automatic and application-supplied validators, every precondition rule of
 * RFC 9110 §13, the 304 header set, and optimistic concurrency for writes.
 */
import { PassThrough } from 'node:stream';
import etag from 'etag';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import {
  type ConditionalOptions,
  cacheControl,
  conditional,
  PreconditionFailedError,
  PreconditionRequiredError,
  type Validators,
} from '../../src/conditional/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';

const PROBLEM = /^application\/problem\+json/;
const LIST = { items: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `item ${i}` })) };
const LIST_JSON = JSON.stringify(LIST);
const MODIFIED = new Date('2024-05-01T12:00:00.000Z');
const MODIFIED_HTTP = MODIFIED.toUTCString(); // Wed, 01 May 2024 12:00:00 GMT
const BEFORE_HTTP = new Date(MODIFIED.getTime() - 60_000).toUTCString();
const AFTER_HTTP = new Date(MODIFIED.getTime() + 60_000).toUTCString();

function quietLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m), error() {}, info() {} };
}

/** Routes that answer the same on every framework; `calls` counts handler runs per route. */
function readRoutes(calls: Record<string, number>): RouteSpec[] {
  const count = (name: string) => {
    calls[name] = (calls[name] ?? 0) + 1;
  };
  return [
    {
      method: 'get',
      path: '/list',
      handler: () => {
        count('list');
        return { body: LIST };
      },
    },
    {
      method: 'get',
      path: '/versioned',
      handler: () => {
        count('versioned');
        return {
          headers: { etag: '"v3"', 'last-modified': MODIFIED_HTTP },
          body: LIST,
        };
      },
    },
    {
      method: 'get',
      path: '/dated',
      handler: () => {
        count('dated');
        return { headers: { 'last-modified': MODIFIED_HTTP }, body: LIST };
      },
    },
    {
      method: 'get',
      path: '/cached',
      handler: () => ({
        headers: {
          'cache-control': 'public, max-age=60',
          'content-location': '/cached.json',
          expires: 'Thu, 01 Jan 2037 00:00:00 GMT',
          vary: 'Accept-Language',
          'last-modified': MODIFIED_HTTP,
          'content-language': 'en',
          'x-app': 'kept',
        },
        body: LIST,
      }),
    },
    {
      method: 'get',
      path: '/stream',
      handler: () => {
        const body = new PassThrough();
        body.end('streamed body');
        return { headers: { 'content-type': 'text/plain' }, body };
      },
    },
    {
      method: 'get',
      path: '/missing',
      handler: () => {
        count('missing');
        return { status: 404, body: { error: 'no such thing' } };
      },
    },
    {
      method: 'post',
      path: '/list',
      handler: () => {
        count('post');
        return { status: 201, body: { created: true } };
      },
    },
  ];
}

describe.each(adapters)('conditional() through $name', (adapter) => {
  function app(options: ConditionalOptions = {}) {
    const calls: Record<string, number> = {};
    const logger = quietLogger();
    const listener = adapter.build({
      options: { logger },
      use: [conditional(options)],
      routes: readRoutes(calls),
    });
    return { listener, calls, logger };
  }

  describe('automatic ETags (RFC 9110 §8.8.3)', () => {
    it('labels a GET 2xx with a strong ETag hashed from the final body, body untouched', async () => {
      const { listener } = app();
      const res = await request(listener).get('/list').expect(200);
      expect(res.text).toBe(LIST_JSON);
      expect(res.headers.etag).toBe(etag(LIST_JSON));
      expect(res.headers.etag).toMatch(/^"[^"]+"$/);
    });

    it("makes weak ETags with etag: 'weak', and none with etag: false", async () => {
      const weak = await request(app({ etag: 'weak' }).listener)
        .get('/list')
        .expect(200);
      expect(weak.headers.etag).toBe(etag(LIST_JSON, { weak: true }));
      expect(weak.headers.etag).toMatch(/^W\/"/);
      const none = await request(app({ etag: false }).listener)
        .get('/list')
        .expect(200);
      expect(none.headers.etag).toBeUndefined();
    });

    it('never hashes when the application supplied its own ETag', async () => {
      const res = await request(app().listener).get('/versioned').expect(200);
      expect(res.headers.etag).toBe('"v3"');
      expect(res.headers['last-modified']).toBe(MODIFIED_HTTP);
    });

    it('does not hash a streaming body', async () => {
      const res = await request(app().listener).get('/stream').expect(200);
      expect(res.text).toBe('streamed body');
      expect(res.headers.etag).toBeUndefined();
    });

    it('labels nothing but GET/HEAD 2xx', async () => {
      const { listener } = app();
      const missing = await request(listener).get('/missing').expect(404);
      expect(missing.headers.etag).toBeUndefined();
      const created = await request(listener).post('/list').send({}).expect(201);
      expect(created.headers.etag).toBeUndefined();
    });
  });

  describe('If-None-Match (§13.1.2): weak comparison, lists, *', () => {
    it('answers 304 to the current ETag, and the full body to another', async () => {
      const { listener, calls } = app();
      const tag = etag(LIST_JSON);
      const hit = await request(listener).get('/list').set('If-None-Match', tag).expect(304);
      expect(hit.text).toBe('');
      expect(hit.headers.etag).toBe(tag);
      const miss = await request(listener).get('/list').set('If-None-Match', '"other"').expect(200);
      expect(miss.text).toBe(LIST_JSON);
      // Without `load` the handler runs to produce the body that is hashed.
      expect(calls.list).toBe(2);
    });

    it('compares weakly: W/"x" matches "x" and "x" matches W/"x"', async () => {
      await request(app().listener).get('/versioned').set('If-None-Match', 'W/"v3"').expect(304);
      const weakApp = app({ etag: 'weak' }).listener;
      const strongTag = etag(LIST_JSON); // same opaque-tag, without W/
      await request(weakApp).get('/list').set('If-None-Match', strongTag).expect(304);
    });

    it('matches any member of a list, with OWS, empty members and commas inside tags', async () => {
      const { listener } = app();
      await request(listener)
        .get('/versioned')
        .set('If-None-Match', ' "a,b" ,, W/"x" ,"v3"')
        .expect(304);
      await request(listener).get('/versioned').set('If-None-Match', '"a,b", "v3,"').expect(200);
    });

    it('treats * as "any current representation"', async () => {
      await request(app().listener).get('/list').set('If-None-Match', '*').expect(304);
    });

    it('never fails on a malformed value: it just never matches', async () => {
      const { listener } = app();
      for (const bad of ['v3', '"v3', 'w/"v3"', '*, "v3"', '"v3" "v4"', '"v 3"', '\u00ff\u00fe']) {
        const res = await request(listener).get('/versioned').set('If-None-Match', bad);
        expect(res.status, bad).toBe(200);
        expect(res.text).toBe(LIST_JSON);
      }
    });

    it('is ignored when the response would not be 2xx (§13.2.1)', async () => {
      await request(app().listener).get('/missing').set('If-None-Match', '*').expect(404);
    });

    it('answers 304 to HEAD like GET, with no body', async () => {
      const { listener } = app();
      const head = await request(listener).head('/versioned').expect(200);
      expect(head.headers.etag).toBe('"v3"');
      const hit = await request(listener)
        .head('/versioned')
        .set('If-None-Match', '"v3"')
        .expect(304);
      expect(hit.headers.etag).toBe('"v3"');
      expect(hit.text ?? '').toBe('');
    });

    it('labels HEAD with the GET ETag (RFC 9110 §9.3.2)', async () => {
      const head = await request(app().listener).head('/list').expect(200);
      expect(head.headers.etag).toBe(etag(LIST_JSON));
    });

    it('drops a streaming body when answering 304', async () => {
      const res = await request(app().listener)
        .get('/stream')
        .set('If-None-Match', '*')
        .expect(304);
      expect(res.text).toBe('');
    });
  });

  describe('the 304 response (§15.4.5)', () => {
    it('keeps ETag, Cache-Control, Content-Location, Date, Expires, Vary, Last-Modified; drops content metadata', async () => {
      const { listener } = app();
      const full = await request(listener).get('/cached').expect(200);
      const res = await request(listener)
        .get('/cached')
        .set('If-None-Match', full.headers.etag as string)
        .expect(304);
      expect(res.headers.etag).toBe(full.headers.etag);
      expect(res.headers['cache-control']).toBe('public, max-age=60');
      expect(res.headers['content-location']).toBe('/cached.json');
      expect(res.headers.expires).toBe('Thu, 01 Jan 2037 00:00:00 GMT');
      expect(res.headers.vary).toBe('Accept-Language');
      expect(res.headers['last-modified']).toBe(MODIFIED_HTTP);
      expect(res.headers.date).toBeDefined();
      // An application field is not on the §15.4.5 allowlist.
      expect(res.headers['x-app']).toBeUndefined();
      expect(res.headers['content-type']).toBeUndefined();
      expect(res.headers['content-length']).toBeUndefined();
      expect(res.headers['content-language']).toBeUndefined();
      expect(res.headers['transfer-encoding']).toBeUndefined();
      expect(res.text).toBe('');
    });
  });

  describe('If-Modified-Since (§13.1.3)', () => {
    it('answers 304 when not modified since, 200 when modified after', async () => {
      const { listener } = app();
      await request(listener).get('/dated').set('If-Modified-Since', MODIFIED_HTTP).expect(304);
      await request(listener).get('/dated').set('If-Modified-Since', AFTER_HTTP).expect(304);
      const changed = await request(listener)
        .get('/dated')
        .set('If-Modified-Since', BEFORE_HTTP)
        .expect(200);
      expect(changed.text).toBe(LIST_JSON);
    });

    it('accepts the obsolete rfc850 and asctime formats', async () => {
      const { listener } = app();
      await request(listener)
        .get('/dated')
        .set('If-Modified-Since', 'Wednesday, 01-May-24 12:00:00 GMT')
        .expect(304);
      await request(listener)
        .get('/dated')
        .set('If-Modified-Since', 'Wed May  1 12:00:00 2024')
        .expect(304);
    });

    it('ignores an invalid date', async () => {
      const { listener } = app();
      for (const bad of ['2024-05-01T12:00:00Z', 'yesterday', '1714564800', 'Wed, 01 May 2024']) {
        const res = await request(listener).get('/dated').set('If-Modified-Since', bad);
        expect(res.status, bad).toBe(200);
      }
    });

    it('is ignored when If-None-Match is present', async () => {
      await request(app().listener)
        .get('/versioned')
        .set('If-None-Match', '"v2"')
        .set('If-Modified-Since', AFTER_HTTP)
        .expect(200);
    });

    it('is ignored for methods other than GET and HEAD', async () => {
      const { listener, calls } = app();
      await request(listener)
        .post('/list')
        .set('If-Modified-Since', AFTER_HTTP)
        .send({})
        .expect(201);
      expect(calls.post).toBe(1);
    });
  });

  describe('If-Match (§13.1.1) and If-Unmodified-Since (§13.1.4) on reads', () => {
    it('answers 412 to a stale If-Match, with a problem document', async () => {
      const res = await request(app().listener)
        .get('/versioned')
        .set('If-Match', '"v2"')
        .expect(412);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ status: 412, code: 'precondition-failed' });
      expect(res.body.precondition).toBe('If-Match');
      expect(res.headers.etag).toBeUndefined();
    });

    it('compares strongly: W/"v3" does not match "v3"', async () => {
      const { listener } = app();
      await request(listener).get('/versioned').set('If-Match', 'W/"v3"').expect(412);
      await request(listener).get('/versioned').set('If-Match', '"v1", "v3"').expect(200);
      await request(listener).get('/versioned').set('If-Match', '*').expect(200);
    });

    it('fails a malformed If-Match rather than erroring', async () => {
      const res = await request(app().listener).get('/versioned').set('If-Match', 'v3');
      expect(res.status).toBe(412);
    });

    it('If-Match is evaluated before If-None-Match: stale If-Match wins over a 304', async () => {
      await request(app().listener)
        .get('/versioned')
        .set('If-Match', '"v2"')
        .set('If-None-Match', '"v3"')
        .expect(412);
    });

    it('If-Unmodified-Since: 412 when modified since, ignored when If-Match is present or the date is invalid', async () => {
      const { listener } = app();
      const res = await request(listener)
        .get('/versioned')
        .set('If-Unmodified-Since', BEFORE_HTTP)
        .expect(412);
      expect(res.body.precondition).toBe('If-Unmodified-Since');
      await request(listener)
        .get('/versioned')
        .set('If-Unmodified-Since', MODIFIED_HTTP)
        .expect(200);
      await request(listener)
        .get('/versioned')
        .set('If-Match', '"v3"')
        .set('If-Unmodified-Since', BEFORE_HTTP)
        .expect(200);
      await request(listener).get('/versioned').set('If-Unmodified-Since', 'soon').expect(200);
    });

    it('If-Unmodified-Since is evaluated before If-None-Match', async () => {
      await request(app().listener)
        .get('/versioned')
        .set('If-Unmodified-Since', BEFORE_HTTP)
        .set('If-None-Match', '"v3"')
        .expect(412);
    });

    it('is ignored when the response would not be 2xx', async () => {
      await request(app().listener).get('/missing').set('If-Match', '"v1"').expect(404);
    });
  });

  describe('Cache-Control option', () => {
    it('sets the preset on 2xx and 304 responses that have none', async () => {
      const { listener } = app({ cacheControl: 'private' });
      const full = await request(listener).get('/versioned').expect(200);
      expect(full.headers['cache-control']).toBe('private, no-cache');
      const hit = await request(listener)
        .get('/versioned')
        .set('If-None-Match', '"v3"')
        .expect(304);
      expect(hit.headers['cache-control']).toBe('private, no-cache');
      const own = await request(listener).get('/cached').expect(200);
      expect(own.headers['cache-control']).toBe('public, max-age=60');
    });
  });
});

/** A tiny versioned document store, as an application's database would be. */
interface Doc {
  version: number;
  updatedAt: Date;
  text: string;
}

describe.each(adapters)('optimistic concurrency with load() through $name', (adapter) => {
  function app() {
    const docs = new Map<string, Doc>([['1', { version: 1, updatedAt: MODIFIED, text: 'first' }]]);
    const calls = { reads: 0, writes: 0, loads: 0 };
    const load = (ctx: { request: { params: Readonly<Record<string, string>> } }) => {
      calls.loads++;
      const doc = docs.get(ctx.request.params.id ?? '');
      return doc === undefined
        ? undefined
        : ({ etag: `v${doc.version}`, lastModified: doc.updatedAt } satisfies Validators);
    };
    const guarded = conditional({ load, requirePrecondition: true });
    const open = conditional({ load: async (ctx) => load(ctx) });
    const write = (id: string, text: string) => {
      calls.writes++;
      const prev = docs.get(id);
      const doc = {
        version: (prev?.version ?? 0) + 1,
        updatedAt: new Date(MODIFIED.getTime() + 3_600_000),
        text,
      };
      docs.set(id, doc);
      return doc;
    };
    const listener = adapter.build({
      options: { logger: quietLogger() },
      use: [jsonBody()],
      routes: [
        {
          method: 'get',
          path: '/docs/:id',
          use: [guarded],
          handler: (req) => {
            calls.reads++;
            const doc = docs.get(req.params.id ?? '');
            return doc ? { body: doc } : { status: 404, body: { error: 'not found' } };
          },
        },
        {
          method: 'put',
          path: '/docs/:id',
          use: [guarded],
          handler: (req) => {
            const doc = write(req.params.id!, (req.body as { text: string }).text);
            return { headers: { etag: `"v${doc.version}"` }, body: doc };
          },
        },
        {
          method: 'patch',
          path: '/docs/:id',
          use: [guarded],
          handler: (req) => {
            const doc = write(req.params.id!, (req.body as { text: string }).text);
            return { headers: { etag: `"v${doc.version}"` }, body: doc };
          },
        },
        {
          method: 'delete',
          path: '/docs/:id',
          use: [guarded],
          handler: (req) => {
            calls.writes++;
            docs.delete(req.params.id!);
            return { status: 204 };
          },
        },
        {
          method: 'put',
          path: '/notes/:id',
          use: [open],
          handler: (req) => {
            const doc = write(req.params.id!, (req.body as { text: string }).text);
            return { status: 201, headers: { etag: `"v${doc.version}"` }, body: doc };
          },
        },
      ],
    });
    return { listener, calls, docs };
  }

  it('labels a GET with the loaded validators, hashing nothing', async () => {
    const res = await request(app().listener).get('/docs/1').expect(200);
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers['last-modified']).toBe(MODIFIED_HTTP);
  });

  it('answers 304 to a matching If-None-Match without running the handler', async () => {
    const { listener, calls } = app();
    const res = await request(listener).get('/docs/1').set('If-None-Match', '"v1"').expect(304);
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers['last-modified']).toBe(MODIFIED_HTTP);
    expect(calls.reads).toBe(0);
    await request(listener).get('/docs/1').set('If-Modified-Since', MODIFIED_HTTP).expect(304);
    expect(calls.reads).toBe(0);
    await request(listener).head('/docs/1').set('If-None-Match', '"v1"').expect(304);
    expect(calls.reads).toBe(0);
    await request(listener).get('/docs/1').set('If-None-Match', '"v0"').expect(200);
    expect(calls.reads).toBe(1);
  });

  it('lets the handler answer 404 for a missing resource, whatever the preconditions', async () => {
    const { listener } = app();
    await request(listener).get('/docs/9').set('If-None-Match', '*').expect(404);
  });

  it('runs a write whose If-Match is current, once', async () => {
    const { listener, calls, docs } = app();
    const res = await request(listener)
      .put('/docs/1')
      .set('If-Match', '"v1"')
      .send({ text: 'second' })
      .expect(200);
    expect(res.headers.etag).toBe('"v2"');
    expect(calls.writes).toBe(1);
    expect(docs.get('1')?.text).toBe('second');
  });

  it('answers 412 to a stale If-Match and never runs the write', async () => {
    const { listener, calls, docs } = app();
    await request(listener).put('/docs/1').set('If-Match', '"v1"').send({ text: 'A' }).expect(200);
    // A second client still holds v1: its update would be lost.
    const res = await request(listener)
      .put('/docs/1')
      .set('If-Match', '"v1"')
      .send({ text: 'B' })
      .expect(412);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({ code: 'precondition-failed', precondition: 'If-Match' });
    expect(calls.writes).toBe(1);
    expect(docs.get('1')?.text).toBe('A');
    await request(listener)
      .patch('/docs/1')
      .set('If-Match', '"v1"')
      .send({ text: 'C' })
      .expect(412);
    await request(listener).delete('/docs/1').set('If-Match', '"v1"').expect(412);
    expect(calls.writes).toBe(1);
    expect(docs.has('1')).toBe(true);
  });

  it('compares If-Match strongly: a weak tag never authorises a write', async () => {
    const { listener, calls } = app();
    await request(listener)
      .put('/docs/1')
      .set('If-Match', 'W/"v1"')
      .send({ text: 'x' })
      .expect(412);
    expect(calls.writes).toBe(0);
  });

  it('accepts any member of an If-Match list', async () => {
    const { listener, calls } = app();
    await request(listener)
      .patch('/docs/1')
      .set('If-Match', '"v0", "v1"')
      .send({ text: 'x' })
      .expect(200);
    expect(calls.writes).toBe(1);
  });

  it('answers 412, never 500, to a malformed If-Match', async () => {
    const { listener, calls } = app();
    for (const bad of ['v1', '"v1', '"v1" "v2"', '*, "v1"', ',', '""x']) {
      const res = await request(listener).put('/docs/1').set('If-Match', bad).send({ text: 'x' });
      expect(res.status, bad).toBe(412);
    }
    expect(calls.writes).toBe(0);
  });

  it('If-Match: * passes when the resource exists and fails when it does not', async () => {
    const { listener, calls } = app();
    await request(listener).put('/docs/1').set('If-Match', '*').send({ text: 'x' }).expect(200);
    expect(calls.writes).toBe(1);
    await request(listener).put('/docs/2').set('If-Match', '*').send({ text: 'x' }).expect(412);
    await request(listener).put('/docs/2').set('If-Match', '"v1"').send({ text: 'x' }).expect(412);
    expect(calls.writes).toBe(1);
  });

  it('If-Unmodified-Since guards a write by date', async () => {
    const { listener, calls } = app();
    await request(listener)
      .put('/docs/1')
      .set('If-Unmodified-Since', BEFORE_HTTP)
      .send({ text: 'x' })
      .expect(412);
    expect(calls.writes).toBe(0);
    await request(listener)
      .put('/docs/1')
      .set('If-Unmodified-Since', MODIFIED_HTTP)
      .send({ text: 'x' })
      .expect(200);
    expect(calls.writes).toBe(1);
  });

  it('answers 428 to a write without If-Match or If-Unmodified-Since, when required', async () => {
    const { listener, calls } = app();
    const res = await request(listener).put('/docs/1').send({ text: 'x' }).expect(428);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({ status: 428, code: 'precondition-required' });
    await request(listener).delete('/docs/1').expect(428);
    await request(listener)
      .put('/docs/1')
      .set('If-None-Match', '*')
      .send({ text: 'x' })
      .expect(428);
    expect(calls.writes).toBe(0);
    // Reads are never required to be conditional.
    await request(listener).get('/docs/1').expect(200);
  });

  it('If-None-Match: * makes a PUT create-only', async () => {
    const { listener, calls } = app();
    const created = await request(listener)
      .put('/notes/7')
      .set('If-None-Match', '*')
      .send({ text: 'new' })
      .expect(201);
    expect(created.headers.etag).toBe('"v1"');
    const res = await request(listener)
      .put('/notes/7')
      .set('If-None-Match', '*')
      .send({ text: 'again' })
      .expect(412);
    expect(res.body.precondition).toBe('If-None-Match');
    expect(calls.writes).toBe(1);
  });

  it('skips load for a write without preconditions when none is required', async () => {
    const { listener, calls } = app();
    await request(listener).put('/notes/8').send({ text: 'x' }).expect(201);
    expect(calls.loads).toBe(0);
    expect(calls.writes).toBe(1);
  });
});

describe.each(adapters)('load() edge cases through $name', (adapter) => {
  it('a load that throws is the answer: the write never runs', async () => {
    let writes = 0;
    const listener = adapter.build({
      options: { logger: quietLogger() },
      use: [jsonBody()],
      routes: [
        {
          method: 'put',
          path: '/x',
          use: [
            conditional({
              load: async () => {
                throw new Error('database down');
              },
            }),
          ],
          handler: () => {
            writes++;
            return { body: { ok: true } };
          },
        },
      ],
    });
    const res = await request(listener).put('/x').set('If-Match', '"v1"').send({}).expect(500);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(JSON.stringify(res.body)).not.toContain('database down');
    expect(writes).toBe(0);
  });

  it('a route load that supplies only lastModified stops a global conditional() from hashing', async () => {
    let reads = 0;
    const listener = adapter.build({
      options: { logger: quietLogger() },
      use: [conditional()],
      routes: [
        {
          method: 'get',
          path: '/dated',
          use: [conditional({ load: () => ({ lastModified: MODIFIED }) })],
          handler: () => {
            reads++;
            return { body: LIST };
          },
        },
      ],
    });
    const full = await request(listener).get('/dated').expect(200);
    expect(full.text).toBe(LIST_JSON);
    expect(full.headers['last-modified']).toBe(MODIFIED_HTTP);
    expect(full.headers.etag).toBeUndefined();
    await request(listener).get('/dated').set('If-Modified-Since', MODIFIED_HTTP).expect(304);
    const changed = await request(listener)
      .get('/dated')
      .set('If-Modified-Since', BEFORE_HTTP)
      .expect(200);
    expect(changed.headers.etag).toBeUndefined();
    expect(reads).toBe(2);
  });

  it('a 304 answered from load carries the configured Cache-Control and Last-Modified', async () => {
    let reads = 0;
    const listener = adapter.build({
      options: { logger: quietLogger() },
      routes: [
        {
          method: 'get',
          path: '/x',
          use: [
            conditional({
              load: () => ({ etag: 'v7', lastModified: MODIFIED }),
              cacheControl: { private: true, maxAge: 0, mustRevalidate: true },
            }),
          ],
          handler: () => {
            reads++;
            return { body: { ok: true } };
          },
        },
      ],
    });
    const full = await request(listener).get('/x').expect(200);
    expect(full.headers.etag).toBe('"v7"');
    expect(full.headers['cache-control']).toBe('private, max-age=0, must-revalidate');
    const res = await request(listener).get('/x').set('If-None-Match', '"v7"').expect(304);
    expect(res.headers['cache-control']).toBe('private, max-age=0, must-revalidate');
    expect(res.headers['last-modified']).toBe(MODIFIED_HTTP);
    expect(res.headers.etag).toBe('"v7"');
    expect(reads).toBe(1);
  });
});

describe.each(adapters)('conditional writes without load through $name', (adapter) => {
  it('passes the write through and warns once that its preconditions were not checked', async () => {
    const logger = quietLogger();
    let writes = 0;
    const listener = adapter.build({
      options: { logger },
      use: [conditional()],
      routes: [
        {
          method: 'put',
          path: '/x',
          handler: () => {
            writes++;
            return { body: { ok: true } };
          },
        },
      ],
    });
    await request(listener).put('/x').set('If-Match', '"v1"').send({}).expect(200);
    await request(listener).put('/x').set('If-Match', '"v1"').send({}).expect(200);
    expect(writes).toBe(2);
    expect(logger.warnings.filter((w) => w.includes('no `load`'))).toHaveLength(1);
  });
});

describe('conditional() options', () => {
  it('validates options when created', () => {
    expect(() => conditional({ etag: 'medium' as never })).toThrow(/option "etag"/);
    expect(() => conditional({ load: 'x' as never })).toThrow(/option "load"/);
    expect(() => conditional({ requirePrecondition: 1 as never })).toThrow(/requirePrecondition/);
    expect(() => conditional({ writeMethods: 'PUT' as never })).toThrow(/writeMethods/);
    expect(() => conditional({ cacheControl: 'public, max-age=60' })).not.toThrow();
    expect(() => conditional({ cacheControl: 'private="set-cookie", no-cache' })).not.toThrow();
    expect(() => conditional({ cacheControl: { public: true, private: true } })).toThrow(
      /cacheControl/,
    );
    expect(() => conditional({ cacheControl: ' ' })).toThrow(/cacheControl/);
  });

  it('refuses unknown options, naming the nearest', () => {
    expect(() => conditional({ cachecontrol: 'private' } as never)).toThrow(
      /^restwell\/conditional: unknown option "cachecontrol"\. Did you mean "cacheControl"\?$/,
    );
    expect(() => conditional({ required: true } as never)).toThrow(/requirePrecondition/);
    expect(() => conditional({ creates: 'PUT' as never })).toThrow(/option "creates"/);
  });

  it('refuses a misspelt Cache-Control preset or directive, naming the nearest', () => {
    expect(() => conditional({ cacheControl: 'privat' as never })).toThrow(
      /^restwell\/conditional: option "cacheControl" has an unknown directive "privat"\. Did you mean "private"\?$/,
    );
    expect(() => conditional({ cacheControl: 'public, max-age' })).toThrow(/max-age=<seconds>/);
    expect(() => conditional({ cacheControl: 'public, maxage=60' })).toThrow(/"max-age"/);
    expect(() => conditional({ cacheControl: 'immutible' as never })).toThrow(/"immutable"/);
    expect(() => conditional({ cacheControl: 'forever' as never })).toThrow(/unknown directive/);
    expect(() => cacheControl('privat' as never)).toThrow(/"private"/);
  });

  it('refuses requirePrecondition without load: it would look safe and check nothing', () => {
    expect(() => conditional({ requirePrecondition: true })).toThrow(
      /^restwell\/conditional: option "requirePrecondition" needs "load"/,
    );
    expect(() => conditional({ requirePrecondition: true, load: () => undefined })).not.toThrow();
  });

  it('exports typed errors with stable codes', () => {
    const failed = new PreconditionFailedError('If-Match');
    expect(failed).toMatchObject({ status: 412, code: 'precondition-failed', field: 'If-Match' });
    expect(new PreconditionRequiredError()).toMatchObject({
      status: 428,
      code: 'precondition-required',
    });
  });
});

describe("Express's own freshness check", () => {
  it('stands down only for requests conditional() claims; the handler still sees every header', async () => {
    const { default: express } = await import('express');
    const { expressAdapter } = await import('../../src/adapters/express/index.js');
    const { silentLogger } = await import('../../src/core/logger.js');
    const app = express(); // Express's weak ETags left on
    const rw = expressAdapter({ logger: silentLogger });
    const seen: Array<string | undefined> = [];
    const body = { hello: 'world' };
    app.get('/plain', (_req, res) => {
      res.json(body);
    });
    app.get('/claimed', rw(conditional()), (req, res) => {
      seen.push(req.headers['if-none-match']);
      res.json(body);
    });
    app.use(rw.errorHandler());

    // Unclaimed: Express answers its own 304, as it always has.
    const plain = await request(app).get('/plain').expect(200);
    await request(app)
      .get('/plain')
      .set('If-None-Match', plain.headers.etag as string)
      .expect(304);

    // Claimed: restwell decides, by RFC 9110 rules. If-Match fails first (§13.2.2), where
    // Express alone would have answered 304 from If-None-Match.
    const claimed = await request(app).get('/claimed').expect(200);
    const tag = claimed.headers.etag as string;
    await request(app)
      .get('/claimed')
      .set('If-Match', '"something-else"')
      .set('If-None-Match', tag)
      .expect(412);
    await request(app).get('/claimed').set('If-None-Match', tag).expect(304);
    expect(seen.slice(-2)).toEqual([tag, tag]);
  });
});
