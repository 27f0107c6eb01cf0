/**
 * acceptPatch() and applyPatch() against a hostile client, on every adapter:
 * the gate mounted before or after jsonBody(), bodies that are absent in each
 * way HTTP can say so, framings and media types spelled unusually, and the
 * framework's own JSON parser in place of jsonBody().
 */
import type { RequestListener } from 'node:http';
import express4 from 'express4';
import express5 from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { contextOf, expressAdapter } from '../../src/adapters/express/index.js';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  acceptPatch,
  applyPatch,
  JSON_PATCH_MEDIA_TYPE,
  MERGE_PATCH_MEDIA_TYPE,
} from '../../src/representation/index.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

const BOTH = `${MERGE_PATCH_MEDIA_TYPE}, ${JSON_PATCH_MEDIA_TYPE}`;
const PROBLEM = /^application\/problem\+json/;
const gate = () => acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE] });

const mountOrders: Array<{ order: string; use: () => Middleware[] }> = [
  { order: 'gate before jsonBody()', use: () => [gate(), jsonBody()] },
  { order: 'gate after jsonBody()', use: () => [jsonBody(), gate()] },
];

describe.each(adapters)('acceptPatch() and applyPatch() on $name', (adapter) => {
  const build = (use: Middleware[]): RequestListener => {
    let doc: Record<string, unknown> = { name: 'Ada', tags: ['math'] };
    return adapter.build({
      use,
      routes: [
        { method: 'get', path: '/doc', handler: () => ({ body: doc }) },
        {
          method: 'patch',
          path: '/doc',
          handler: (req) => {
            doc = applyPatch(req.context, doc);
            return { body: doc };
          },
        },
      ],
    });
  };

  describe.each(mountOrders)('$order, mounted globally', ({ use }) => {
    it('applies both formats, with parameters and in upper case', async () => {
      const app = build(use());
      const merged = await request(app)
        .patch('/doc')
        .set('Content-Type', 'Application/Merge-Patch+JSON; charset=utf-8')
        .send('{"name":"Countess"}');
      expect(merged.status).toBe(200);
      expect(merged.body).toEqual({ name: 'Countess', tags: ['math'] });
      expect(merged.headers['accept-patch']).toBe(BOTH);
      const listed = await request(app)
        .patch('/doc')
        .set('Content-Type', 'application/json-patch+json;q=0.5')
        .send('[{"op":"add","path":"/tags/-","value":"poetry"}]');
      expect(listed.status).toBe(200);
      expect(listed.body.tags).toEqual(['math', 'poetry']);
    });

    it('answers application/json with the 415 and Accept-Patch, applying nothing', async () => {
      const app = build(use());
      const res = await request(app)
        .patch('/doc')
        .set('Content-Type', 'application/json')
        .send('{"name":"X"}');
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['accept-patch']).toBe(BOTH);
      expect(res.body.accept).toEqual([MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE]);
      expect((await request(app).get('/doc')).body.name).toBe('Ada');
    });

    it('answers a body that is not JSON with a 415 problem, never a 5xx', async () => {
      const res = await request(build(use()))
        .patch('/doc')
        .set('Content-Type', 'text/plain')
        .send('name=X');
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    });

    it('answers a patch body that is not valid JSON, or too deep, with a 400 problem', async () => {
      const app = build(use());
      const malformed = await request(app)
        .patch('/doc')
        .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
        .send('{"name":');
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('malformed-json');
      const deep = await request(app)
        .patch('/doc')
        .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
        .send(`[{"op":"add","path":"/a","value":${'['.repeat(100)}${']'.repeat(100)}}]`);
      expect(deep.status).toBe(400);
      expect(deep.headers['content-type']).toMatch(PROBLEM);
    });

    it('answers every way of sending no body with 400 patch-document-missing', async () => {
      const app = build(use());
      const framings: Array<Record<string, string>> = [
        {},
        { 'content-type': MERGE_PATCH_MEDIA_TYPE },
        { 'content-type': MERGE_PATCH_MEDIA_TYPE, 'content-length': '0' },
        { 'content-type': MERGE_PATCH_MEDIA_TYPE, 'content-length': '00' },
        { 'content-type': JSON_PATCH_MEDIA_TYPE, 'transfer-encoding': 'chunked' },
      ];
      for (const headers of framings) {
        const res = await raw(app, { method: 'PATCH', path: '/doc', headers, body: '' });
        expect(res.status, JSON.stringify(headers)).toBe(400);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(JSON.parse(res.body.toString()).code).toBe('patch-document-missing');
      }
    });

    it('answers a body without Content-Type with a 415 problem', async () => {
      const res = await raw(build(use()), {
        method: 'PATCH',
        path: '/doc',
        headers: { 'content-length': '2' },
        body: '{}',
      });
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(PROBLEM);
    });

    it('advertises Accept-Patch on GET, HEAD and OPTIONS', async () => {
      const app = build(use());
      for (const method of ['get', 'head', 'options'] as const) {
        const res = await request(app)[method]('/doc');
        expect(res.status, method).toBeLessThan(300);
        expect(res.headers['accept-patch'], method).toBe(BOTH);
      }
    });
  });
});

describe.each([
  { name: 'express5', factory: express5 },
  { name: 'express4', factory: express4 as unknown as typeof express5 },
])("applyPatch() with the framework's own parser on $name", ({ factory }) => {
  const build = () => {
    let doc: Record<string, unknown> = { name: 'Ada' };
    const app = factory();
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw());
    app.use(express5.json({ type: ['application/json', 'application/*+json'] }));
    app
      .route('/doc')
      .all(rw(gate()))
      .patch((req, res) => {
        doc = applyPatch(contextOf(req), doc);
        res.json(doc);
      })
      .get((_req, res) => {
        res.json(doc);
      });
    app.use(rw.errorHandler());
    return app as unknown as RequestListener;
  };

  it('applies both formats and refuses application/json with the 415 and Accept-Patch', async () => {
    const app = build();
    const merged = await request(app)
      .patch('/doc')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
      .send('{"name":"Countess","born":1815}');
    expect(merged.status).toBe(200);
    expect(merged.body).toEqual({ name: 'Countess', born: 1815 });
    const listed = await request(app)
      .patch('/doc')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send('[{"op":"remove","path":"/born"}]');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({ name: 'Countess' });
    const plain = await request(app)
      .patch('/doc')
      .set('Content-Type', 'application/json')
      .send('{"name":"X"}');
    expect(plain.status).toBe(415);
    expect(plain.headers['accept-patch']).toBe(BOTH);
  });

  it('answers a PATCH with Content-Length: 0 with 400 patch-document-missing, not a 200 of {}', async () => {
    const res = await raw(build(), {
      method: 'PATCH',
      path: '/doc',
      headers: { 'content-type': JSON_PATCH_MEDIA_TYPE, 'content-length': '0' },
      body: '',
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).code).toBe('patch-document-missing');
  });

  it('answers a JSON Patch that fails with its 409 problem, applying nothing', async () => {
    const app = build();
    const res = await request(app)
      .patch('/doc')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send([
        { op: 'replace', path: '/name', value: 'X' },
        { op: 'test', path: '/name', value: 'Ada Lovelace' },
      ]);
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect((await request(app).get('/doc')).body).toEqual({ name: 'Ada' });
  });
});
