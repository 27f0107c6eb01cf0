/**
 * httpsOnly() and hsts() through real Express 4/5 and Koa 2/3 apps: plain
 * HTTP refused or redirected, HTTPS over a real TLS socket, and behind a
 * proxy that is trusted, not trusted, or spoofed by the client.
 */
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AdapterOptions } from '../../src/core/node.js';
import { hsts, hstsValue } from '../../src/security/hsts.js';
import { type HttpsOnlyOptions, httpsOnly } from '../../src/security/https-only.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { recordingLogger } from './logs.js';
import { rawExchange, requestText } from './socket.js';
import { type Certificate, overTls, selfSignedCertificate } from './tls.js';

const HSTS = 'max-age=31536000; includeSubDomains';

function app(
  adapter: AdapterCase,
  options: HttpsOnlyOptions = {},
  adapterOptions: AdapterOptions = {},
  calls: string[] = [],
) {
  return adapter.build({
    use: [httpsOnly(options), hsts()],
    options: adapterOptions,
    routes: [
      {
        method: 'get',
        path: '/v1/things',
        handler: (req) => {
          calls.push(`GET ${req.path}`);
          return { body: { ok: true } };
        },
      },
      {
        method: 'post',
        path: '/v1/things',
        handler: () => {
          calls.push('POST');
          return { status: 201, body: { ok: true } };
        },
      },
      { method: 'get', path: '/health', handler: () => ({ body: { status: 'ok' } }) },
    ],
  });
}

let certificate: Certificate;
beforeAll(() => {
  certificate = selfSignedCertificate();
});

describe.each(adapters)('httpsOnly and hsts on $name', (adapter) => {
  describe('plain HTTP, no proxy', () => {
    it('refuses every method with a 403 https-required problem, before the handler, without HSTS', async () => {
      const calls: string[] = [];
      const listener = app(adapter, {}, {}, calls);
      for (const method of ['get', 'post', 'delete'] as const) {
        const res = await request(listener)[method]('/v1/things');
        expect(res.status).toBe(403);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body).toMatchObject({ status: 403, code: 'https-required' });
        expect(res.headers['strict-transport-security']).toBeUndefined();
        expect(res.headers.location).toBeUndefined();
      }
      expect(calls).toEqual([]);
    });

    it('lets a request through when skip says so, still without HSTS', async () => {
      const listener = app(adapter, { skip: (ctx) => ctx.request.path === '/health' });
      const res = await request(listener).get('/health');
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBeUndefined();
      expect((await request(listener).get('/v1/things')).status).toBe(403);
    });
  });

  describe('over TLS', () => {
    it('passes the request and sends HSTS, on success and on problems', async () => {
      const listener = app(adapter);
      const ok = await overTls(listener, certificate, { path: '/v1/things' });
      expect(ok.status).toBe(200);
      expect(ok.headers['strict-transport-security']).toBe(HSTS);
      const missing = await overTls(listener, certificate, { path: '/nowhere' });
      expect(missing.status).toBe(404);
      expect(missing.headers['strict-transport-security']).toBe(HSTS);
    });
  });

  describe('behind a proxy', () => {
    it('believes X-Forwarded-Proto: https from a trusted proxy, and sends HSTS', async () => {
      const listener = app(adapter, {}, { trustProxy: 'loopback' });
      const res = await request(listener).get('/v1/things').set('X-Forwarded-Proto', 'https');
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBe(HSTS);
    });

    it('refuses X-Forwarded-Proto: https from a peer the adapter does not trust, and says so in the log once', async () => {
      const logger = recordingLogger();
      const listener = app(adapter, {}, { logger });
      for (let i = 0; i < 3; i++) {
        const res = await request(listener).get('/v1/things').set('X-Forwarded-Proto', 'https');
        expect(res.status).toBe(403);
        expect(res.headers['strict-transport-security']).toBeUndefined();
      }
      const warnings = logger.entries.filter((e) => e.message.startsWith('httpsOnly'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.level).toBe('warn');
      expect(warnings[0]!.message).toContain('trustProxy');
    });

    it('does not trust a proxy outside the trusted ranges', async () => {
      const listener = app(adapter, {}, { trustProxy: ['10.0.0.0/8'] });
      const res = await request(listener).get('/v1/things').set('X-Forwarded-Proto', 'https');
      expect(res.status).toBe(403);
    });

    it('takes the value the trusted proxy appended, not one the client put in front', async () => {
      // client → (plain HTTP) → trusted proxy on loopback, which appends "http"
      const listener = app(adapter, {}, { trustProxy: 'loopback' });
      const spoofed = await request(listener)
        .get('/v1/things')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('X-Forwarded-Proto', 'https, http');
      expect(spoofed.status).toBe(403);
      expect(spoofed.headers['strict-transport-security']).toBeUndefined();
      const genuine = await request(listener)
        .get('/v1/things')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('X-Forwarded-Proto', 'https');
      expect(genuine.status).toBe(200);
    });
  });

  describe('redirect', () => {
    it('sends GET and HEAD to the canonical host with a 308, path and query kept', async () => {
      const calls: string[] = [];
      const listener = app(adapter, { redirect: { host: 'api.example.com' } }, {}, calls);
      const get = await request(listener)
        .get('/v1/things?limit=10&sort=-createdAt')
        .set('Host', 'evil.example.net');
      expect(get.status).toBe(308);
      expect(get.headers.location).toBe(
        'https://api.example.com/v1/things?limit=10&sort=-createdAt',
      );
      expect(get.headers['strict-transport-security']).toBeUndefined();
      expect(get.text).toBe('');
      const head = await request(listener).head('/v1/things');
      expect(head.status).toBe(308);
      expect(head.headers.location).toBe('https://api.example.com/v1/things');
      expect(calls).toEqual([]);
    });

    it('never redirects a POST: its body already crossed in clear, and would be sent again', async () => {
      const calls: string[] = [];
      const listener = app(adapter, { redirect: { host: 'api.example.com' } }, {}, calls);
      const res = await request(listener).post('/v1/things').send({ card: '4242' });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('https-required');
      expect(res.headers.location).toBeUndefined();
      expect(calls).toEqual([]);
    });

    it('keeps the host fixed whatever the target looks like', async () => {
      const listener = app(adapter, { redirect: { host: 'api.example.com' } });
      // A path that a naive `https:${path}` would turn into another host.
      const slashes = await rawExchange(listener, requestText('//evil.example.net/x'));
      expect(slashes.status).toBe(308);
      expect(slashes.headers.location).toBe('https://api.example.com//evil.example.net/x');
      // The absolute form names another authority; the redirect still goes to the configured one.
      const absolute = await rawExchange(listener, requestText('http://evil.example.net/x?y=1'));
      expect(absolute.status).toBe(308);
      expect(absolute.headers.location).toBe('https://api.example.com/x?y=1');
    });

    it('with an allowlist, redirects to the request host only when it is listed', async () => {
      const listener = app(adapter, {
        redirect: { hosts: ['api.example.com', 'API.example.org'], port: 8443 },
      });
      const listed = await request(listener).get('/v1/things').set('Host', 'Api.Example.Org:8080');
      expect(listed.status).toBe(308);
      expect(listed.headers.location).toBe('https://api.example.org:8443/v1/things');
      const other = await request(listener).get('/v1/things').set('Host', 'evil.example.net');
      expect(other.status).toBe(403);
      expect(other.headers.location).toBeUndefined();
      const broken = await request(listener).get('/v1/things').set('Host', 'api.example.com@evil');
      expect(broken.status).toBe(403);
    });

    it('passes HTTPS requests through untouched', async () => {
      const listener = app(adapter, { redirect: { host: 'api.example.com' } }, { trustProxy: 1 });
      const res = await request(listener).get('/v1/things').set('X-Forwarded-Proto', 'https');
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBe(HSTS);
    });
  });
});

describe('httpsOnly options', () => {
  it('refuses unknown options, naming the nearest or the habit', () => {
    expect(() => httpsOnly({ redirct: false } as never)).toThrow(
      /unknown option "redirct".*"redirect"/,
    );
    expect(() => httpsOnly({ hsts: true } as never)).toThrow(/hsts\(/);
    expect(() => httpsOnly({ redirect: { host: 'a.example', hots: [] } as never })).toThrow(
      /unknown option "hots"/,
    );
  });

  it('needs exactly one of host and hosts to redirect', () => {
    expect(() => httpsOnly({ redirect: {} })).toThrow(/exactly one of host/);
    expect(() => httpsOnly({ redirect: { host: 'a.example', hosts: ['b.example'] } })).toThrow(
      /exactly one of host/,
    );
    expect(() => httpsOnly({ redirect: { hosts: [] } })).toThrow(/non-empty list/);
    expect(() => httpsOnly({ redirect: true as never })).toThrow(/"redirect"/);
  });

  it('takes a host without scheme, port or path', () => {
    for (const bad of [
      'https://api.example.com',
      'api.example.com:443',
      'api.example.com/x',
      '',
      'a b',
    ]) {
      expect(() => httpsOnly({ redirect: { host: bad } })).toThrow(/redirect\.host/);
    }
    expect(() => httpsOnly({ redirect: { hosts: ['ok.example', 'not ok'] } })).toThrow(
      /redirect\.hosts\[1\]/,
    );
    expect(() => httpsOnly({ redirect: { host: 'a.example', port: 0 } })).toThrow(/redirect\.port/);
    expect(() => httpsOnly({ redirect: { host: '[::1]' } })).not.toThrow();
    expect(() => httpsOnly({ skip: 'health' as never })).toThrow(/"skip"/);
  });
});

describe('hsts options', () => {
  it('formats max-age, includeSubDomains and preload as helmet and RFC 6797 §6.1 do', () => {
    expect(hstsValue()).toBe('max-age=31536000; includeSubDomains');
    expect(hstsValue({ maxAge: 0, includeSubDomains: false })).toBe('max-age=0');
    expect(hstsValue({ maxAge: 63072000, preload: true })).toBe(
      'max-age=63072000; includeSubDomains; preload',
    );
  });

  it('checks the preload list requirements at construction', () => {
    expect(() => hsts({ preload: true, maxAge: 86400 })).toThrow(/at least 31536000/);
    expect(() => hsts({ preload: true, includeSubDomains: false })).toThrow(/includeSubDomains/);
    expect(() => hsts({ maxAge: -1 })).toThrow(/maxAge/);
    expect(() => hsts({ maxAge: 1.5 })).toThrow(/maxAge/);
    expect(() => hsts({ preload: 'yes' as never })).toThrow(/"preload"/);
    expect(() => hsts({ 'max-age': 5 } as never)).toThrow(/maxAge/);
  });
});
