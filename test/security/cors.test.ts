/**
 * cors() through real Express 4/5 and Koa 2/3 apps: the preflight matrix
 * (origin × method × headers × credentials × Private Network Access), actual
 * requests and their Vary, problems that keep their CORS headers, and the
 * configurations that are refused at construction.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/core/errors.js';
import { type CorsOptions, cors } from '../../src/security/cors.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { type Listening, listen } from '../helpers/raw.js';
import { rawExchange, requestText } from './socket.js';

const ALLOWED = 'https://app.example.com';
const WILDCARD_MATCH = 'https://pr-7.preview.example.com';

function app(adapter: AdapterCase, options: CorsOptions, calls: string[] = []): RequestListener {
  return adapter.build({
    use: [cors(options)],
    routes: [
      {
        method: 'get',
        path: '/v1/things',
        handler: () => {
          calls.push('GET');
          return { body: { ok: true }, headers: { ETag: '"v1"' } };
        },
      },
      {
        method: 'put',
        path: '/v1/things',
        handler: () => {
          calls.push('PUT');
          return { body: { ok: true } };
        },
      },
      {
        method: 'options',
        path: '/v1/things',
        handler: () => {
          calls.push('OPTIONS');
          return { status: 200, headers: { Allow: 'GET, PUT, OPTIONS' } };
        },
      },
      {
        method: 'get',
        path: '/v1/varies',
        handler: () => ({ body: { ok: true }, headers: { Vary: 'Accept' } }),
      },
      {
        method: 'get',
        path: '/v1/missing',
        handler: () => {
          throw new NotFoundError('No such thing.');
        },
      },
    ],
  });
}

function varyOf(headers: Record<string, unknown>): string[] {
  return String(headers.vary ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v.length > 0);
}

const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
  'access-control-allow-private-network',
  'access-control-expose-headers',
];

function corsHeadersOf(headers: Record<string, unknown>): string[] {
  return CORS_HEADERS.filter((h) => headers[h] !== undefined);
}

describe.each(adapters)('cors on $name', (adapter) => {
  describe('the preflight matrix', () => {
    const origins = [
      { origin: ALLOWED, allowed: true, acao: ALLOWED },
      { origin: WILDCARD_MATCH, allowed: true, acao: WILDCARD_MATCH },
      { origin: 'https://app.example.com.evil.net', allowed: false },
      { origin: 'null', allowed: false },
    ];
    const methods = [
      { method: 'PUT', allowed: true },
      { method: 'PROPFIND', allowed: false },
    ];
    const requestHeaders = [
      { value: undefined, allowed: true },
      { value: 'content-type,idempotency-key,AUTHORIZATION', allowed: true },
      { value: 'content-type,x-debug', allowed: false },
    ];
    const pnas = [
      { enabled: false, requested: false },
      { enabled: false, requested: true },
      { enabled: true, requested: true },
    ];

    for (const credentials of [false, true]) {
      for (const pna of pnas) {
        describe(`credentials ${credentials}, private network ${pna.enabled ? 'enabled' : 'disabled'}${pna.requested ? ', requested' : ''}`, () => {
          let server: Listening;
          const calls: string[] = [];
          beforeAll(async () => {
            server = await listen(
              app(
                adapter,
                {
                  origins: [ALLOWED, 'https://*.preview.example.com'],
                  credentials,
                  privateNetwork: pna.enabled,
                  maxAge: 300,
                },
                calls,
              ),
            );
          });
          afterAll(() => server.close());

          for (const o of origins) {
            for (const m of methods) {
              for (const h of requestHeaders) {
                const allowed = o.allowed && m.allowed && h.allowed;
                it(`${o.origin} ${m.method} [${h.value ?? ''}] → ${allowed ? '204' : '403 without CORS headers'}`, async () => {
                  let req = request(`http://127.0.0.1:${server.port}`)
                    .options('/v1/things')
                    .set('Origin', o.origin)
                    .set('Access-Control-Request-Method', m.method);
                  if (h.value !== undefined)
                    req = req.set('Access-Control-Request-Headers', h.value);
                  if (pna.requested)
                    req = req.set('Access-Control-Request-Private-Network', 'true');
                  const res = await req;
                  const vary = varyOf(res.headers);
                  expect(vary).toEqual(
                    expect.arrayContaining([
                      'origin',
                      'access-control-request-method',
                      'access-control-request-headers',
                    ]),
                  );
                  if (pna.enabled) expect(vary).toContain('access-control-request-private-network');
                  if (!allowed) {
                    expect(res.status).toBe(403);
                    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
                    expect(res.body.code).toBe('cors-preflight-refused');
                    expect(res.body.reason).toBe(
                      !o.allowed ? 'origin' : !m.allowed ? 'method' : 'headers',
                    );
                    expect(corsHeadersOf(res.headers)).toEqual([]);
                    return;
                  }
                  expect(res.status).toBe(204);
                  expect(res.text).toBe('');
                  expect(res.headers['access-control-allow-origin']).toBe(o.acao);
                  expect(res.headers['access-control-allow-credentials']).toBe(
                    credentials ? 'true' : undefined,
                  );
                  expect(res.headers['access-control-allow-methods']).toBe(
                    'GET, HEAD, POST, PUT, PATCH, DELETE',
                  );
                  const allowHeaders = String(res.headers['access-control-allow-headers'])
                    .toLowerCase()
                    .split(', ');
                  for (const name of (h.value ?? '').split(',').filter(Boolean)) {
                    expect(allowHeaders).toContain(name.toLowerCase());
                  }
                  expect(res.headers['access-control-max-age']).toBe('300');
                  expect(res.headers['access-control-allow-private-network']).toBe(
                    pna.enabled && pna.requested ? 'true' : undefined,
                  );
                  // Expose-Headers belongs to the actual response, not the preflight.
                  expect(res.headers['access-control-expose-headers']).toBeUndefined();
                });
              }
            }
          }

          it('never runs the route for a preflight', () => {
            expect(calls).toEqual([]);
          });
        });
      }
    }
  });

  describe('preflights and plain OPTIONS', () => {
    it('passes an OPTIONS without Access-Control-Request-Method to the route, as an actual request', async () => {
      const calls: string[] = [];
      const res = await request(app(adapter, { origins: [ALLOWED] }, calls))
        .options('/v1/things')
        .set('Origin', ALLOWED);
      expect(res.status).toBe(200);
      expect(calls).toEqual(['OPTIONS']);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(res.headers['access-control-allow-methods']).toBeUndefined();
    });

    it('compares the requested method exactly, as Fetch does', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED] }))
        .options('/v1/things')
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'put');
      expect(res.status).toBe(403);
      expect(res.body.reason).toBe('method');
    });

    it('always allows the CORS-safelisted request headers', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED], allowHeaders: ['X-Custom'] }))
        .options('/v1/things')
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'PUT')
        .set('Access-Control-Request-Headers', 'accept,accept-language,x-custom');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-headers']).toBe('X-Custom');
    });

    it('answers a preflight for an origin that spells an allowed one differently with the allowlist spelling', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED] }))
        .options('/v1/things')
        .set('Origin', 'HTTPS://App.Example.com:443')
        .set('Access-Control-Request-Method', 'PUT');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    });
  });

  describe('actual requests', () => {
    it('adds the CORS headers for an allowed origin, and Vary: Origin', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED], credentials: true }))
        .get('/v1/things')
        .set('Origin', ALLOWED);
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers['access-control-expose-headers']).toBe(
        'Trace-Id, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, Link, ETag, Location, Deprecation, Sunset',
      );
      expect(varyOf(res.headers)).toContain('origin');
    });

    it('adds none for another origin, null, a list or a malformed Origin, yet still varies on Origin', async () => {
      const calls: string[] = [];
      const listener = app(adapter, { origins: [ALLOWED], credentials: true }, calls);
      for (const origin of [
        'https://evil.example.net',
        'null',
        `${ALLOWED}, https://evil.example.net`,
        `${ALLOWED}/`,
        'app.example.com',
      ]) {
        const res = await request(listener).get('/v1/things').set('Origin', origin);
        expect(res.status, origin).toBe(200);
        expect(corsHeadersOf(res.headers), origin).toEqual([]);
        expect(varyOf(res.headers), origin).toContain('origin');
      }
      // CORS governs reading, not sending: the request itself was served.
      expect(calls).toHaveLength(5);
    });

    it('sends Vary: Origin on responses to requests without an Origin too, so caches keep them apart', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED] })).get('/v1/things');
      expect(corsHeadersOf(res.headers)).toEqual([]);
      expect(varyOf(res.headers)).toContain('origin');
    });

    it('keeps Origin in Vary when the handler sets Vary itself', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED] }))
        .get('/v1/varies')
        .set('Origin', ALLOWED);
      expect(varyOf(res.headers)).toEqual(expect.arrayContaining(['accept', 'origin']));
    });

    it('keeps the CORS headers on problems, so that a browser script can read them', async () => {
      const listener = app(adapter, { origins: [ALLOWED] });
      for (const path of ['/v1/missing', '/nowhere']) {
        const res = await request(listener).get(path).set('Origin', ALLOWED);
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
        expect(varyOf(res.headers)).toContain('origin');
      }
    });

    it('allows null only with allowNull', async () => {
      const res = await request(app(adapter, { origins: [ALLOWED], allowNull: true }))
        .get('/v1/things')
        .set('Origin', 'null');
      expect(res.headers['access-control-allow-origin']).toBe('null');
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    });

    it.each([
      ['a suffix added to an allowed host', 'https://app.example.com.evil.com', undefined],
      ['a prefix glued to an allowed host', 'https://evilapp.example.com', undefined],
      ['a trailing dot (another origin, RFC 6454 §4)', 'https://app.example.com.', undefined],
      ['user info', 'https://user@app.example.com', undefined],
      ['a path', 'https://app.example.com/x', undefined],
      ['another scheme', 'http://app.example.com', undefined],
      ['the wildcard domain itself', 'https://preview.example.com', undefined],
      ['a wildcard lookalike', 'https://preview.example.com.evil.net', undefined],
      [
        'a suffix after the first branch of a RegExp alternation',
        'https://a.example.org.evil.net',
        undefined,
      ],
      [
        'a prefix before the last branch of a RegExp alternation',
        'xhttps://b.example.org',
        undefined,
      ],
      ['upper case, which serialises to an allowed origin', 'HTTPS://APP.EXAMPLE.COM', ALLOWED],
      ['the default port, which serialises to an allowed origin', `${ALLOWED}:443`, ALLOWED],
      ['a RegExp branch', 'https://b.example.org', 'https://b.example.org'],
    ])('spoofing with %s (%s): Access-Control-Allow-Origin %s', async (_label, origin, acao) => {
      const listener = app(adapter, {
        origins: [
          ALLOWED,
          'https://*.preview.example.com',
          /^https:\/\/a\.example\.org|https:\/\/b\.example\.org$/,
        ],
        credentials: true,
      });
      const res = await request(listener).get('/v1/things').set('Origin', origin);
      expect(res.headers['access-control-allow-origin']).toBe(acao);
      expect(res.headers['access-control-allow-credentials']).toBe(
        acao === undefined ? undefined : 'true',
      );
      const preflight = await request(listener)
        .options('/v1/things')
        .set('Origin', origin)
        .set('Access-Control-Request-Method', 'PUT');
      expect(preflight.status).toBe(acao === undefined ? 403 : 204);
      expect(preflight.headers['access-control-allow-origin']).toBe(acao);
    });

    it('refuses a request whose Origin comes in two lines (Node joins them)', async () => {
      const res = await rawExchange(
        app(adapter, { origins: [ALLOWED] }),
        requestText('/v1/things', [
          'Host: api.example.com',
          `Origin: ${ALLOWED}`,
          'Origin: https://evil.example.net',
        ]),
      );
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe("origins: '*'", () => {
    it('sends * to every request, without Vary: Origin, and never credentials', async () => {
      const listener = app(adapter, { origins: '*' });
      for (const origin of [ALLOWED, 'https://anyone.example', 'null', undefined]) {
        const req = request(listener).get('/v1/things');
        const res = origin === undefined ? await req : await req.set('Origin', origin);
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
        expect(varyOf(res.headers)).not.toContain('origin');
      }
    });

    it('answers preflights with *, varying on the requested method and headers only', async () => {
      const res = await request(app(adapter, { origins: '*' }))
        .options('/v1/things')
        .set('Origin', 'https://anyone.example')
        .set('Access-Control-Request-Method', 'PUT');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(varyOf(res.headers)).toEqual([
        'access-control-request-method',
        'access-control-request-headers',
      ]);
    });
  });
});

describe('cors options', () => {
  it('needs origins', () => {
    expect(() => cors(undefined as never)).toThrow(/"origins"/);
    expect(() => cors({} as never)).toThrow(/"origins"/);
    expect(() => cors({ origins: [] })).toThrow(/non-empty list/);
    expect(() => cors({ origins: 'https://app.example.com' as never })).toThrow(/"origins"/);
  });

  it('has no setting that reflects any origin', () => {
    expect(() => cors({ origin: true } as never)).toThrow(/no setting that reflects any origin/);
  });

  it('refuses * or null with credentials', () => {
    expect(() => cors({ origins: '*', credentials: true })).toThrow(
      /cannot be used with credentials/,
    );
    expect(() => cors({ origins: [ALLOWED], allowNull: true, credentials: true })).toThrow(
      /allowNull cannot be used with credentials/,
    );
  });

  it('refuses plain-http origins with credentials, loopback excepted', () => {
    expect(() => cors({ origins: ['http://app.example.com'], credentials: true })).toThrow(
      /plain-http origin/,
    );
    expect(() => cors({ origins: ['http://*.example.com'], credentials: true })).toThrow(
      /plain-http origin/,
    );
    expect(() =>
      cors({ origins: ['http://localhost:3000', 'http://127.0.0.1:5173'], credentials: true }),
    ).not.toThrow();
    expect(() =>
      cors({ origins: ['http://app.example.com'], credentials: true, allowInsecureOrigins: true }),
    ).not.toThrow();
    expect(() => cors({ origins: ['http://app.example.com'] })).not.toThrow();
  });

  it('checks the lists and numbers', () => {
    expect(() => cors({ origins: [ALLOWED], methods: ['*'] })).toThrow(/"\*" is not accepted/);
    expect(() => cors({ origins: [ALLOWED], allowHeaders: ['*'] })).toThrow(/"\*" is not accepted/);
    expect(() => cors({ origins: [ALLOWED], allowHeaders: ['bad header'] })).toThrow(
      /allowHeaders/,
    );
    expect(() => cors({ origins: [ALLOWED], exposeHeaders: ['Set-Cookie'] })).toThrow(/Set-Cookie/);
    expect(() => cors({ origins: [ALLOWED], maxAge: -1 })).toThrow(/maxAge/);
    expect(() => cors({ origins: [ALLOWED], maxAge: 86_401 })).toThrow(/maxAge/);
    expect(() => cors({ origins: [ALLOWED], credentials: 'yes' as never })).toThrow(/credentials/);
  });

  it('names the option a habit from another library maps to', () => {
    expect(() => cors({ origins: [ALLOWED], allowedHeaders: [] } as never)).toThrow(/allowHeaders/);
    expect(() => cors({ origins: [ALLOWED], preflightContinue: true } as never)).toThrow(
      /always answered here/,
    );
    expect(() => cors({ origins: [ALLOWED], privateNetworkAccess: true } as never)).toThrow(
      /privateNetwork/,
    );
  });
});
