/**
 * Hostile requests: paths spelled another way, encoded slashes, odd ids,
 * bodies that are huge, deep, of the wrong type or shape. Each gets a 4xx
 * problem (or the answer its normal spelling gets), never a 500, and never
 * reaches an endpoint it does not name.
 */
import type { RequestListener } from 'node:http';
import express from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../../../../src/adapters/express/index.js';
import { webhookAdmin } from '../../../../src/webhooks/delivery/admin.js';
import { type Listening, listen, rawRequest } from '../../../helpers/raw.js';
import { engine } from '../engine/helpers.js';
import { ADMIN, adapters, adminApp, BASE, principalFrom, recordingLogger } from './helpers.js';

describe.each(adapters)('hostile requests to the admin API on $name', (adapter) => {
  let server: Listening;
  let s: ReturnType<typeof adminApp>;
  let id: string;
  let secret: string;

  beforeAll(async () => {
    s = adminApp(adapter);
    server = await listen(s.app);
    const created = await call('POST', BASE, { url: 'http://127.0.0.1:9/hooks' });
    expect(created.status).toBe(201);
    id = created.json.id as string;
    secret = created.json.secret as string;
  });
  afterAll(async () => {
    await server.close();
    await s.delivery.stop();
  });
  afterEach(() => {
    // Whatever a test sent, no answer and no log line carried the secret after creation.
    expect(s.lines.join('\n')).not.toContain(secret);
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = ADMIN,
  ) {
    const text =
      body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const res = await rawRequest(server.port, {
      method,
      path,
      headers: {
        ...headers,
        ...(text === undefined
          ? {}
          : {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(text)),
            }),
      },
      ...(text === undefined ? {} : { body: text }),
    });
    const raw = res.body.toString('utf8');
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(raw) as Record<string, unknown>;
    } catch {}
    if (res.status >= 400) {
      expect(res.status).toBeLessThan(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    if (s.lines.length > 0 && secret !== undefined) expect(raw).not.toContain(secret);
    return { status: res.status, headers: res.headers, json, raw };
  }

  it('answers every spelling of the base path the routers route, and guards each', async () => {
    for (const path of [
      '/v1/Webhook-Endpoints/',
      '/V1/WEBHOOK-ENDPOINTS',
      '//v1//webhook-endpoints//',
      '/v1/%77ebhook-endpoints',
      '/v1/webhook-endpoints?limit=5',
    ]) {
      const listed = await call('GET', path);
      expect(listed.status, path).toBe(200);
      expect((listed.json.data as unknown[]).length, path).toBe(1);
      const anonymous = await call('GET', path, undefined, {});
      expect(anonymous.status, path).toBe(401);
      expect(anonymous.json.code).toBe('authentication-required');
    }
    const stats = await call('GET', `${BASE}/${id}/STATS/`);
    expect(stats.status).toBe(200);
    expect(stats.json.endpointId).toBe(id);
  });

  it('keeps an encoded slash inside its segment: no action is reached through it', async () => {
    const disable = await call('POST', `${BASE}/${id}%2Fdisable`, { reason: 'x' });
    expect(disable.status).toBe(405);
    expect(disable.headers.allow).toBe('GET, HEAD, DELETE, OPTIONS, PATCH');
    const stats = await call('GET', `${BASE}/${id}%2Fstats`);
    expect(stats.status).toBe(404);
    expect(stats.json.code).toBe('webhook-endpoint-not-found');
    const lower = await call('GET', `${BASE}/${id}%2fstats`);
    expect(lower.status).toBe(404);
    const deleted = await call('DELETE', `${BASE}/${id}%2F..%2F${id}`);
    expect(deleted.status).toBe(404);
    const still = await call('GET', `${BASE}/${id}`);
    expect(still.status).toBe(200);
    expect(still.json).not.toHaveProperty('disabled');
  });

  it('answers odd ids 404, never 500, and ids are case-sensitive', async () => {
    for (const odd of [
      '%00',
      '..',
      '%2e%2e',
      '%C3%A9',
      '%E0%A4%A',
      '%',
      "ep_1'--",
      'ep%20space',
      'x'.repeat(3000),
      '%252F',
      id.toUpperCase(),
    ]) {
      const res = await call('GET', `${BASE}/${odd}`);
      expect(res.status, odd).toBe(404);
      expect(res.json.code, odd).toBe('webhook-endpoint-not-found');
      expect(String(res.json.endpointId ?? '').length).toBeLessThanOrEqual(101);
    }
    const resend = await call('POST', `${BASE}/${id}/events/%00%2F..%2Fevt/resend`);
    expect(resend.status).toBe(404);
    expect(resend.json.code).toBe('webhook-event-not-found');
    const delivery = await call('GET', `${BASE}/${id}/deliveries/${'a%2F'.repeat(200)}`);
    expect(delivery.status).toBe(404);
    expect(delivery.json.code).toBe('webhook-delivery-not-found');
  });

  it('unknown paths under the base: 404 problem; wrong methods: 405 with Allow; OPTIONS: 204', async () => {
    for (const path of [`${BASE}/${id}/nothing`, `${BASE}/${id}/a/b/c/d`, `${BASE}/${id}/events`]) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.json.code).toBe('not-found');
    }
    const put = await call('PUT', BASE, {});
    expect(put.status).toBe(405);
    expect(put.json.code).toBe('method-not-allowed');
    expect(put.headers.allow).toBe('GET, HEAD, POST, OPTIONS');
    const del = await call('DELETE', `${BASE}/${id}/stats`);
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe('GET, HEAD, OPTIONS');
    const options = await call('OPTIONS', `${BASE}/${id}/replay`);
    expect(options.status).toBe(204);
    expect(options.headers.allow).toBe('POST, OPTIONS');
    const head = await call('HEAD', `${BASE}/${id}`);
    expect(head.status).toBe(200);
    expect(head.raw).toBe('');
    // Outside the base path, requests pass on to the application.
    expect((await call('GET', '/health', undefined, {})).status).toBe(200);
    const near = await call('GET', '/v1/webhook-endpointsX', undefined, {});
    expect(near.status).toBe(404);
    expect(near.json.code).toBe('not-found');
  });

  it('refuses bodies that are huge, deep, not JSON or not an object', async () => {
    const huge = await call('POST', BASE, {
      url: 'http://127.0.0.1:9/a',
      description: 'x'.repeat(70_000),
    });
    expect(huge.status).toBe(413);
    const deep = await call('POST', BASE, `${'{"a":'.repeat(50)}1${'}'.repeat(50)}`);
    expect(deep.status).toBe(400);
    expect(deep.json.code).toBe('json-too-deep');
    const malformed = await call('POST', BASE, '{"url": ');
    expect(malformed.status).toBe(400);
    expect(malformed.json.code).toBe('malformed-json');
    const text = await rawRequest(server.port, {
      method: 'POST',
      path: BASE,
      headers: { ...ADMIN, 'content-type': 'text/plain', 'content-length': '3' },
      body: 'url',
    });
    expect(text.status).toBe(415);
    for (const body of ['"a string"', '[1,2]', 'null', '42', 'true']) {
      const res = await call('POST', BASE, body);
      expect(res.status, body).toBe(400);
      expect(res.json.code).toBe('validation-failed');
    }
    const empty = await call('POST', BASE);
    expect(empty.status).toBe(400);
    expect(empty.json.code).toBe('validation-failed');
  });

  it('lists every wrong type and unknown field at once, __proto__ included', async () => {
    const res = await call(
      'POST',
      BASE,
      '{"url":["http://127.0.0.1:9/a"],"eventTypes":"a.b","concurrency":"3","rateLimitPerSecond":1e9,"metadata":{"a":1},"payload":"medium","__proto__":{"admin":true},"constructor":{}}',
    );
    expect(res.status).toBe(400);
    const pointers = (res.json.errors as { pointer: string }[]).map((e) => e.pointer).sort();
    expect(pointers).toEqual([
      '/__proto__',
      '/concurrency',
      '/constructor',
      '/eventTypes',
      '/metadata',
      '/payload',
      '/rateLimitPerSecond',
      '/url',
    ]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    const patch = await call('PATCH', `${BASE}/${id}`, { concurrency: 'many', 'a/b~c': 1 });
    expect(patch.status).toBe(400);
    expect((patch.json.errors as { pointer: string }[]).map((e) => e.pointer)).toContain(
      '/a~1b~0c',
    );
    const replay = await call('POST', `${BASE}/${id}/replay`, { types: {}, eventIds: [1, null] });
    expect(replay.status).toBe(400);
    expect((replay.json.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
      '/eventIds/0',
      '/eventIds/1',
      '/types',
    ]);
  });

  it('forged cursors on every list are 400 invalid-cursor', async () => {
    for (const path of [
      BASE,
      `${BASE}/${id}/deliveries`,
      `${BASE}/${id}/attempts`,
      `${BASE}/${id}/dead-letters`,
    ]) {
      for (const cursor of ['AQAAAAAAAAD0uQpzbh9CsY7F9RgeS_SM', '..%2F..', 'x'.repeat(5000)]) {
        const res = await call('GET', `${path}?cursor=${cursor}`);
        expect(res.status, `${path} ${cursor.slice(0, 10)}`).toBe(400);
        expect(['invalid-cursor', 'validation-failed']).toContain(res.json.code);
      }
    }
  });
});

describe('a body a framework parser read first', () => {
  let server: Listening;
  let app: RequestListener;
  const e = engine({ logger: recordingLogger().logger });

  beforeAll(async () => {
    const rw = expressAdapter({
      logger: recordingLogger().logger,
      principal: (req) => principalFrom(req.headers),
    });
    const x = express();
    x.use(express.json({ limit: '10mb' }));
    x.use(rw(webhookAdmin(e.delivery)));
    x.use(rw.notFound());
    x.use(rw.errorHandler());
    app = x as unknown as RequestListener;
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await e.delivery.stop();
  });

  it('is still bounded in depth, and a merge patch it skipped is read', async () => {
    const deep = await request(app)
      .post(BASE)
      .set(ADMIN)
      .set('Content-Type', 'application/json')
      .send(`${'['.repeat(40)}${']'.repeat(40)}`)
      .expect(400);
    expect(deep.body.code).toBe('json-too-deep');
    const created = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const patched = await request(app)
      .patch(`${BASE}/${created.body.id}`)
      .set(ADMIN)
      .set('Content-Type', 'application/merge-patch+json')
      .send(JSON.stringify({ description: 'Patched' }))
      .expect(200);
    expect(patched.body.description).toBe('Patched');
  });
});
