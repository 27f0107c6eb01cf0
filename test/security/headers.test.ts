/**
 * securityHeaders() through real Express 4/5 and Koa 2/3 apps: every
 * response carries the headers (success, 4xx and 5xx problems, 404, a
 * preflight), X-Powered-By goes (also the one a mounted sub-app sets), and a
 * route may override one.
 */
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { expressAdapter } from '../../src/adapters/express/index.js';
import { ValidationError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { cors } from '../../src/security/cors.js';
import {
  API_CONTENT_SECURITY_POLICY,
  securityHeaders,
  securityHeaderValues,
} from '../../src/security/headers.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

const EXPECTED: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};

function expectSecurityHeaders(headers: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(EXPECTED)) expect(headers[name], name).toBe(value);
  expect(headers['x-powered-by']).toBeUndefined();
}

function app(adapter: AdapterCase) {
  return adapter.build({
    use: [securityHeaders(), cors({ origins: ['https://app.example.com'] })],
    routes: [
      { method: 'get', path: '/v1/things', handler: () => ({ body: { ok: true } }) },
      {
        method: 'post',
        path: '/v1/things',
        handler: () => {
          throw new ValidationError([{ pointer: '/name', detail: 'required', in: 'body' }]);
        },
      },
      {
        method: 'get',
        path: '/v1/broken',
        handler: () => {
          throw new Error('database password is hunter2');
        },
      },
      {
        method: 'get',
        path: '/v1/powered',
        handler: () => ({ body: { ok: true }, headers: { 'X-Powered-By': 'PHP/5.4' } }),
      },
      {
        method: 'get',
        path: '/v1/embeddable',
        handler: () => ({
          body: 'image bytes',
          headers: { 'Cross-Origin-Resource-Policy': 'cross-origin' },
        }),
      },
      {
        method: 'get',
        path: '/v1/stream',
        handler: () => ({ chunks: ['a'.repeat(1024), 'b'.repeat(1024)] }),
      },
    ],
  });
}

describe.each(adapters)('securityHeaders on $name', (adapter) => {
  const listener = app(adapter);

  it('sends them on a success', async () => {
    const res = await request(listener).get('/v1/things');
    expect(res.status).toBe(200);
    expectSecurityHeaders(res.headers);
  });

  it('sends them on a 4xx problem, a 5xx problem and a 404', async () => {
    const invalid = await request(listener).post('/v1/things').send({});
    expect(invalid.status).toBe(400);
    expect(invalid.headers['content-type']).toMatch(/^application\/problem\+json/);
    expectSecurityHeaders(invalid.headers);
    const broken = await request(listener).get('/v1/broken');
    expect(broken.status).toBe(500);
    expect(broken.text).not.toContain('hunter2');
    expectSecurityHeaders(broken.headers);
    const missing = await request(listener).get('/nowhere');
    expect(missing.status).toBe(404);
    expectSecurityHeaders(missing.headers);
  });

  it('sends them on a preflight answered by cors() inside it', async () => {
    const res = await request(listener)
      .options('/v1/things')
      .set('Origin', 'https://app.example.com')
      .set('Access-Control-Request-Method', 'PUT');
    expect(res.status).toBe(204);
    expectSecurityHeaders(res.headers);
  });

  it('removes an X-Powered-By the handler set', async () => {
    const res = await request(listener).get('/v1/powered');
    expect(res.status).toBe(200);
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('lets a route override one', async () => {
    const res = await request(listener).get('/v1/embeddable');
    expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('sends them on a response written in chunks', async () => {
    const res = await request(listener).get('/v1/stream');
    expect(res.status).toBe(200);
    expectSecurityHeaders(res.headers);
  });
});

describe.each([
  ['express5', express5],
  ['express4', express4 as unknown as typeof express5],
] as const)('X-Powered-By on %s with its default left on', (_name, expressFactory) => {
  it('is removed, also when a mounted sub-app sets it again', async () => {
    const app = expressFactory();
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw(securityHeaders()));
    app.get('/v1/things', (_req, res) => {
      res.json({ ok: true });
    });
    const sub = expressFactory();
    sub.get('/things', (_req, res) => {
      res.json({ sub: true });
    });
    app.use('/v2', sub);
    app.use(rw.notFound());
    app.use(rw.errorHandler());
    for (const path of ['/v1/things', '/v2/things', '/nowhere']) {
      const res = await request(app).get(path);
      expect(res.headers['x-powered-by'], path).toBeUndefined();
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
    }
  });

  it('is kept with removePoweredBy: false, which shows Express sets it', async () => {
    const app = expressFactory();
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw(securityHeaders({ removePoweredBy: false })));
    app.get('/v1/things', (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app).get('/v1/things');
    expect(res.headers['x-powered-by']).toBe('Express');
  });
});

describe('securityHeaders options', () => {
  it('computes the headers once, in a fixed order', () => {
    expect(securityHeaderValues()).toEqual([
      ['X-Content-Type-Options', 'nosniff'],
      ['X-Frame-Options', 'DENY'],
      ['Content-Security-Policy', API_CONTENT_SECURITY_POLICY],
      ['Referrer-Policy', 'no-referrer'],
      ['Cross-Origin-Resource-Policy', 'same-origin'],
      ['Cross-Origin-Opener-Policy', 'same-origin'],
    ]);
  });

  it('turns each header off with false, and changes it with a value', () => {
    expect(
      securityHeaderValues({
        contentSecurityPolicy: false,
        crossOriginOpenerPolicy: false,
        crossOriginResourcePolicy: 'same-site',
        referrerPolicy: 'strict-origin-when-cross-origin',
        xFrameOptions: false,
        xContentTypeOptions: false,
      }),
    ).toEqual([
      ['Referrer-Policy', 'strict-origin-when-cross-origin'],
      ['Cross-Origin-Resource-Policy', 'same-site'],
    ]);
    expect(
      securityHeaderValues({ contentSecurityPolicy: "default-src 'none'; sandbox" })[2],
    ).toEqual(['Content-Security-Policy', "default-src 'none'; sandbox"]);
  });

  it('refuses bad values and unknown names at construction', () => {
    expect(() => securityHeaders({ xFrameOptions: 'ALLOW-FROM x' as never })).toThrow(
      /xFrameOptions.*"DENY", "SAMEORIGIN" or false/,
    );
    expect(() => securityHeaders({ referrerPolicy: 'never' as never })).toThrow(/referrerPolicy/);
    expect(() => securityHeaders({ crossOriginResourcePolicy: true as never })).toThrow(
      /crossOriginResourcePolicy/,
    );
    expect(() => securityHeaders({ contentSecurityPolicy: "default-src 'none'\r\nX: y" })).toThrow(
      /contentSecurityPolicy/,
    );
    expect(() => securityHeaders({ contentSecurityPolicy: '' })).toThrow(/contentSecurityPolicy/);
    expect(() => securityHeaders({ contentSecurityPolicy: "'none'" })).toThrow(
      /contentSecurityPolicy/,
    );
    expect(() => securityHeaders({ removePoweredBy: 'yes' as never })).toThrow(/removePoweredBy/);
    expect(() => securityHeaders({ frameguard: false } as never)).toThrow(/xFrameOptions/);
    expect(() => securityHeaders({ hsts: false } as never)).toThrow(/hsts\(/);
    expect(() => securityHeaders({ referrerPolcy: 'no-referrer' } as never)).toThrow(
      /Did you mean "referrerPolicy"/,
    );
  });
});
