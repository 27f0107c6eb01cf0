/**
 * The security middlewares together, as an application mounts them, and in
 * other orders: what each promise needs from its position, streamed
 * responses whose head leaves before the chain unwinds, and the other
 * modules (compression, conditional requests, rate limits) around them.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import { cors } from '../../src/security/cors.js';
import { securityHeaders } from '../../src/security/headers.js';
import { hsts } from '../../src/security/hsts.js';
import { httpsOnly } from '../../src/security/https-only.js';
import { requestHygiene } from '../../src/security/hygiene.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';
import { rawExchange, requestText } from './socket.js';

const ORIGIN = 'https://app.example.com';

function recommended(): Middleware[] {
  return [
    httpsOnly({ redirect: { host: 'api.example.com' } }),
    hsts(),
    securityHeaders(),
    cors({ origins: [ORIGIN], credentials: true }),
    requestHygiene(),
    compression(),
    jsonBody(),
    conditional(),
  ];
}

function app(adapter: AdapterCase, use: Middleware[], calls: string[] = []): RequestListener {
  return adapter.build({
    use,
    options: { trustProxy: 'loopback' },
    expressOptions: { maxBufferedBytes: 1024 },
    routes: [
      {
        method: 'get',
        path: '/v1/things',
        handler: () => {
          calls.push('GET');
          return { body: { items: Array.from({ length: 200 }, (_, i) => ({ id: i })) } };
        },
      },
      {
        method: 'post',
        path: '/v1/things',
        handler: (req) => {
          calls.push('POST');
          return { status: 201, body: req.body };
        },
      },
      {
        method: 'get',
        path: '/v1/stream',
        handler: () => ({ chunks: Array.from({ length: 8 }, () => 'x'.repeat(1024)) }),
      },
      {
        method: 'get',
        path: '/v1/stream-late-headers',
        handler: () => ({
          headers: { 'X-Powered-By': 'PHP/5.4', Vary: 'Accept' },
          chunks: Array.from({ length: 8 }, () => 'y'.repeat(1024)),
        }),
      },
    ],
  });
}

describe.each(adapters)('the recommended chain on $name', (adapter) => {
  const calls: string[] = [];
  const listener = app(adapter, recommended(), calls);
  const https = (req: request.Test) => req.set('X-Forwarded-Proto', 'https');

  it('serves an allowed cross-origin read with every header, compressed, with an ETag', async () => {
    const res = await https(request(listener).get('/v1/things'))
      .set('Origin', ORIGIN)
      .set('Accept-Encoding', 'gzip');
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers.etag).toBeDefined();
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    const vary = String(res.headers.vary).toLowerCase();
    expect(vary).toContain('origin');
    expect(vary).toContain('accept-encoding');
    const again = await https(request(listener).get('/v1/things'))
      .set('Origin', ORIGIN)
      .set('Accept-Encoding', 'gzip')
      .set('If-None-Match', res.headers.etag as string);
    expect(again.status).toBe(304);
  });

  // A script that revalidates by hand (fetch with If-None-Match) gets the 304
  // itself, and Fetch fails it without Access-Control-Allow-Origin (and
  // -Allow-Credentials, for a credentialed request).
  it('keeps the CORS headers on a 304, which a script reads when it revalidates by hand', async () => {
    const first = await https(request(listener).get('/v1/things')).set('Origin', ORIGIN);
    const res = await https(request(listener).get('/v1/things'))
      .set('Origin', ORIGIN)
      .set('If-None-Match', first.headers.etag as string);
    expect(res.status).toBe(304);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['access-control-expose-headers']).toContain('ETag');
    expect(String(res.headers.vary).toLowerCase()).toContain('origin');
    expect(res.headers.etag).toBe(first.headers.etag);
    // What the 304 may not carry still goes (RFC 9110 §15.4.5).
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.headers['content-length']).toBeUndefined();
  });

  it('answers a preflight before the body parser and the handler, with the security headers', async () => {
    const before = calls.length;
    const res = await https(request(listener).options('/v1/things'))
      .set('Origin', ORIGIN)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(calls.length).toBe(before);
  });

  it('gives a hygiene problem the CORS headers, so that the browser script can read why', async () => {
    const res = await rawExchange(
      listener,
      requestText('/v1/things/..%2f..%2fadmin', [
        'Host: api.example.com',
        'X-Forwarded-Proto: https',
        `Origin: ${ORIGIN}`,
      ]),
    );
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).code).toBe('path-traversal');
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
  });

  it('refuses plain HTTP first: no CORS, no HSTS, nothing parsed', async () => {
    const before = calls.length;
    const res = await request(listener)
      .post('/v1/things')
      .set('Origin', ORIGIN)
      .send({ card: '4242' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('https-required');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(calls.length).toBe(before);
  });

  it('streams a response larger than the buffer, with its headers, and no error once its head is out', async () => {
    const res = await raw(listener, {
      path: '/v1/stream',
      headers: { 'X-Forwarded-Proto': 'https', Origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('x'.repeat(8 * 1024));
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('fixes the head of a streamed response too, and leaves its body whole', async () => {
    const res = await raw(listener, {
      path: '/v1/stream-late-headers',
      headers: { 'X-Forwarded-Proto': 'https', Origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('y'.repeat(8 * 1024));
    // Both adapters write the head once the chain has unwound, streams included.
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(String(res.headers.vary).toLowerCase()).toBe('accept, origin');
  });
});

describe.each(adapters)('other orders on $name', (adapter) => {
  it('cors() outside securityHeaders(): the same headers', async () => {
    const listener = app(adapter, [cors({ origins: [ORIGIN] }), securityHeaders()]);
    const res = await request(listener)
      .options('/v1/things')
      .set('Origin', ORIGIN)
      .set('Access-Control-Request-Method', 'PUT');
    // The preflight is answered inside cors(), before securityHeaders() runs.
    expect(res.status).toBe(204);
    expect(res.headers['x-content-type-options']).toBeUndefined();
    const get = await request(listener).get('/v1/things').set('Origin', ORIGIN);
    expect(get.headers['x-content-type-options']).toBe('nosniff');
    expect(get.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('requestHygiene() outside cors(): its problems cannot be read by a browser script', async () => {
    const listener = app(adapter, [requestHygiene(), cors({ origins: [ORIGIN] })]);
    const res = await rawExchange(
      listener,
      requestText('/v1/things/%2e%2e', ['Host: api.example.com', `Origin: ${ORIGIN}`]),
    );
    expect(res.status).toBe(400);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('hsts() and securityHeaders() inside compression() and conditional()', async () => {
    const listener = app(adapter, [
      compression(),
      conditional(),
      hsts(),
      securityHeaders(),
      cors({ origins: [ORIGIN] }),
    ]);
    const res = await request(listener)
      .get('/v1/things')
      .set('X-Forwarded-Proto', 'https')
      .set('Origin', ORIGIN)
      .set('Accept-Encoding', 'gzip');
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(String(res.headers.vary).toLowerCase()).toContain('origin');
  });
});
