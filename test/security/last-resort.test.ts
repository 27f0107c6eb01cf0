/**
 * The security headers on the last-resort 500, the answer an adapter writes
 * through Node's own methods when the response it was given cannot be sent:
 * nosniff, frame denial, HSTS and the CORS fields still hold for it, while
 * what the failed answer set for itself (a cookie, a Link) goes.
 */
import type { RequestListener } from 'node:http';
import type Koa3 from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Middleware } from '../../src/core/context.js';
import { cors } from '../../src/security/cors.js';
import { securityHeaders } from '../../src/security/headers.js';
import { hsts } from '../../src/security/hsts.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

const ORIGIN = 'https://app.example.com';

/**
 * A response the adapter cannot send as it is. On Express, a module that put
 * a number where a body goes: Node refuses it when the adapter writes it. On
 * Koa, a body Koa cannot serialise (a BigInt): Koa's own respond step throws,
 * after every middleware has returned.
 */
function unsendable(adapter: AdapterCase): RequestListener {
  const numberBody: Middleware = async (ctx, next) => {
    await next();
    if (ctx.request.path === '/v1/broken') ctx.response.body = 42 as never;
  };
  const bigint: Koa3.Middleware = async (ctx, next) => {
    if (ctx.path !== '/v1/broken') return next();
    ctx.set('Set-Cookie', 'sid=secret');
    ctx.set('Link', '</v1/next>; rel="next"');
    ctx.body = { n: 1n };
  };
  return adapter.build({
    use: [
      hsts(),
      securityHeaders(),
      cors({ origins: [ORIGIN], credentials: true }),
      ...(adapter.framework === 'express' ? [numberBody] : []),
    ],
    options: { trustProxy: 'loopback' },
    framework: { koa: [bigint] },
    routes: [
      {
        method: 'get',
        path: '/v1/broken',
        handler: () => ({
          headers: { 'Set-Cookie': 'sid=secret', Link: '</v1/next>; rel="next"' },
          body: { ok: true },
        }),
      },
    ],
  });
}

describe.each(adapters)('the last-resort 500 on $name', (adapter) => {
  const listener = unsendable(adapter);

  it('keeps nosniff, frame denial, the CSP, HSTS and the CORS fields', async () => {
    const res = await request(listener)
      .get('/v1/broken')
      .set('X-Forwarded-Proto', 'https')
      .set('Origin', ORIGIN);
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('internal-error');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(String(res.headers.vary).toLowerCase()).toContain('origin');
  });

  it('drops the cookie and the links the failed answer set', async () => {
    const res = await request(listener).get('/v1/broken').set('X-Forwarded-Proto', 'https');
    expect(res.status).toBe(500);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers.link).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('sends no HSTS over plain HTTP, and no CORS field to another origin', async () => {
    const res = await request(listener).get('/v1/broken').set('Origin', 'https://evil.example');
    expect(res.status).toBe(500);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe.each(adapters)('a failed problem rendering on $name', (adapter) => {
  it('answers the core last-resort 500 with the security headers and without the handler cookie', async () => {
    const listener = adapter.build({
      use: [securityHeaders()],
      options: {
        problems: {
          map: () => {
            throw new Error('map failed');
          },
        },
      },
      routes: [
        {
          method: 'get',
          path: '/v1/boom',
          handler: (req) => {
            req.context.response.headers.set('Set-Cookie', 'sid=secret');
            throw new Error('handler failed');
          },
        },
      ],
    });
    const res = await request(listener).get('/v1/boom');
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('internal-error');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['set-cookie']).toBeUndefined();
  });
});
