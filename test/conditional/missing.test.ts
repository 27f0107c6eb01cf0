/**
 * RFC 9110 §13.2.1 through every adapter: preconditions are evaluated only
 * when the answer without them would be 2xx. With `load` saying the resource
 * does not exist, a method that does not create it (GET, HEAD, PATCH, DELETE,
 * POST) gets its handler's 404 whatever the preconditions; a PUT, which
 * creates, is evaluated against "no representation" (§13.1.1: `If-Match` is
 * false; §13.1.2: `If-None-Match: *` is true; §13.1.4: `If-Unmodified-Since`
 * without a modification date is ignored). The whole matrix of methods ×
 * fields × present/missing.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { conditional, type Validators } from '../../src/conditional/index.js';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';

const MODIFIED = new Date('2024-05-01T12:00:00.000Z');
const BEFORE = new Date(MODIFIED.getTime() - 60_000).toUTCString();
const AFTER = new Date(MODIFIED.getTime() + 60_000).toUTCString();

type Method = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';
const METHODS: Method[] = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'POST'];
/** What each handler answers when the precondition lets it run. */
const ANSWER: Record<Method, { present: number; missing: number }> = {
  GET: { present: 200, missing: 404 },
  HEAD: { present: 200, missing: 404 },
  PUT: { present: 200, missing: 201 },
  PATCH: { present: 200, missing: 404 },
  DELETE: { present: 204, missing: 404 },
  POST: { present: 200, missing: 404 },
};
const safe = (m: Method) => m === 'GET' || m === 'HEAD';

interface Case {
  field: string;
  value: string;
  /** The status when the resource exists, per method ('run' = the handler's answer). */
  present: (m: Method) => number | 'run';
  /** The status when it does not. */
  missing: (m: Method) => number | 'run';
}

const CASES: Case[] = [
  {
    field: 'If-Match',
    value: '"v1"',
    present: () => 'run',
    missing: (m) => (m === 'PUT' ? 412 : 'run'),
  },
  {
    field: 'If-Match',
    value: '"v0"',
    present: () => 412,
    missing: (m) => (m === 'PUT' ? 412 : 'run'),
  },
  {
    field: 'If-Match',
    value: '*',
    present: () => 'run',
    missing: (m) => (m === 'PUT' ? 412 : 'run'),
  },
  {
    field: 'If-None-Match',
    value: '"v1"',
    present: (m) => (safe(m) ? 304 : 412),
    missing: () => 'run',
  },
  {
    field: 'If-None-Match',
    value: '*',
    present: (m) => (safe(m) ? 304 : 412),
    missing: () => 'run',
  },
  { field: 'If-None-Match', value: '"v0"', present: () => 'run', missing: () => 'run' },
  { field: 'If-Unmodified-Since', value: BEFORE, present: () => 412, missing: () => 'run' },
  { field: 'If-Unmodified-Since', value: AFTER, present: () => 'run', missing: () => 'run' },
];

function quietLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m), error() {}, info() {} };
}

describe.each(adapters)(
  'preconditions on a present or missing resource through $name',
  (adapter) => {
    const docs = new Map<string, number>();
    let runs = 0;
    const load = (ctx: { request: { params: Readonly<Record<string, string>> } }) => {
      const version = docs.get(ctx.request.params.id ?? '');
      return version === undefined
        ? undefined
        : ({ etag: `"v${version}"`, lastModified: MODIFIED } satisfies Validators);
    };
    const guard = conditional({ load });
    const route = (
      method: RouteSpec['method'],
      answer: (exists: boolean) => number,
    ): RouteSpec => ({
      method,
      path: '/r/:id',
      use: [guard],
      handler: (req) => {
        runs++;
        const exists = docs.has(req.params.id ?? '');
        const status = answer(exists);
        if (method === 'put') docs.set(req.params.id!, (docs.get(req.params.id!) ?? 0) + 1);
        if (method === 'delete' && exists) docs.delete(req.params.id!);
        return status === 204 ? { status } : { status, body: { exists } };
      },
    });
    const logger = quietLogger();
    const app = adapter.build({
      options: { logger },
      use: [jsonBody()],
      routes: [
        route('get', (e) => (e ? 200 : 404)),
        route('put', (e) => (e ? 200 : 201)),
        route('patch', (e) => (e ? 200 : 404)),
        route('delete', (e) => (e ? 204 : 404)),
        route('post', (e) => (e ? 200 : 404)),
      ],
    });

    const send = (method: Method, id: string, field: string, value: string) => {
      const agent = request(app);
      const r =
        method === 'GET'
          ? agent.get(`/r/${id}`)
          : method === 'HEAD'
            ? agent.head(`/r/${id}`)
            : method === 'PUT'
              ? agent.put(`/r/${id}`).send({})
              : method === 'PATCH'
                ? agent.patch(`/r/${id}`).send({})
                : method === 'DELETE'
                  ? agent.delete(`/r/${id}`)
                  : agent.post(`/r/${id}`).send({});
      return r.set(field, value);
    };

    for (const c of CASES) {
      for (const method of METHODS) {
        for (const where of ['present', 'missing'] as const) {
          const expected = c[where](method);
          const status = expected === 'run' ? ANSWER[method][where] : expected;
          it(`${method} ${c.field}: ${c.value.slice(0, 16)} on a ${where} resource → ${status}`, async () => {
            docs.clear();
            if (where === 'present') docs.set('1', 1);
            runs = 0;
            const res = await send(method, '1', c.field, c.value);
            expect(res.status).toBe(status);
            // A 412 or 304 is answered before the handler: the method is never performed.
            expect(runs).toBe(expected === 'run' ? 1 : 0);
          });
        }
      }
    }

    it('warns once when a method load found missing is answered 2xx by its handler', async () => {
      const warned = quietLogger();
      const idempotentDelete = adapter.build({
        options: { logger: warned },
        routes: [
          {
            method: 'delete',
            path: '/x',
            use: [conditional({ load: () => undefined })],
            handler: () => ({ status: 204 }),
          },
        ],
      });
      await request(idempotentDelete).delete('/x').set('If-Match', '"v1"').expect(204);
      await request(idempotentDelete).delete('/x').set('If-Match', '"v1"').expect(204);
      expect(warned.warnings.filter((w) => w.includes('`creates`'))).toHaveLength(1);
    });

    it('creates: a PATCH listed there is evaluated on a missing resource', async () => {
      let patched = 0;
      const upsert = adapter.build({
        options: { logger: quietLogger() },
        use: [jsonBody()],
        routes: [
          {
            method: 'patch',
            path: '/x',
            use: [conditional({ load: () => null, creates: ['PUT', 'PATCH'] })],
            handler: () => {
              patched++;
              return { status: 201, body: {} };
            },
          },
        ],
      });
      await request(upsert).patch('/x').set('If-Match', '"v1"').send({}).expect(412);
      await request(upsert).patch('/x').set('If-None-Match', '*').send({}).expect(201);
      expect(patched).toBe(1);
    });
  },
);
