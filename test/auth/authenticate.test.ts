import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import { type ApiKeyStore, apiKeyVerifier, issueApiKey } from '../../src/auth/api-keys.js';
import {
  type AuthenticateOptions,
  type AuthenticationFailure,
  authenticate,
} from '../../src/auth/authenticate.js';
import { introspectionVerifier } from '../../src/auth/introspection.js';
import { jwtVerifier } from '../../src/auth/jwt.js';
import { MemoryApiKeyStore } from '../../src/auth/key-stores/memory.js';
import { type AppSpec, adapters } from '../helpers/apps.js';
import { listen, rawRequest } from '../helpers/raw.js';
import {
  AUDIENCE,
  ISSUER,
  json,
  type LocalServer,
  localServer,
  parseChallenges,
  recordingLogger,
  SECRET,
  seconds,
  secretBytes,
  sign,
} from './helpers.js';

const jwt = jwtVerifier({
  keys: [{ secret: SECRET, algorithms: ['HS256'] }],
  issuer: ISSUER,
  audience: AUDIENCE,
});
const store = new MemoryApiKeyStore();
const apiKeys = apiKeyVerifier({ store });
let adminKey: string;
let officeKey: string;
let expiredKey: string;
let revokedKey: string;

beforeAll(async () => {
  adminKey = (
    await issueApiKey(store, { subject: 'svc_admin', roles: ['admin'], scopes: ['users:write'] })
  ).key;
  officeKey = (
    await issueApiKey(store, {
      subject: 'svc_office',
      allowedIps: ['203.0.113.0/24', '2001:db8::/32'],
    })
  ).key;
  expiredKey = (await issueApiKey(store, { subject: 'svc_old', ttlMs: 1 })).key;
  const revoked = await issueApiKey(store, { subject: 'svc_gone' });
  revokedKey = revoked.key;
  await store.revoke(revoked.record.id, Date.now());
  await new Promise((r) => setTimeout(r, 5));
});

/** An app whose one route answers the principal it sees, through the state and through contextOf. */
function appWith(
  adapter: (typeof adapters)[number],
  use: Middleware[],
  extra: Partial<AppSpec> = {},
) {
  let ran = 0;
  const app = adapter.build({
    use,
    routes: [
      {
        method: 'get',
        path: '/v1/me',
        handler: ({ state, context }) => {
          ran++;
          return {
            body: {
              principal: state.principal ?? null,
              same: context.state.principal === state.principal,
            },
          };
        },
      },
    ],
    ...extra,
  });
  return { app, ran: () => ran };
}

const auth = (options: Partial<AuthenticateOptions> = {}) =>
  authenticate({ jwt, apiKeys, realm: 'payments', ...options });

describe.each(adapters)('$name', (adapter) => {
  describe('no credentials', () => {
    it('401 with the bare challenges: Bearer, and ApiKey naming its header (RFC 6750 §3.1)', async () => {
      const { app, ran } = appWith(adapter, [auth()]);
      const res = await request(app).get('/v1/me').expect(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 401, code: 'authentication-required' });
      expect(parseChallenges(res.headers['www-authenticate'])).toEqual([
        { scheme: 'Bearer', params: { realm: 'payments' } },
        { scheme: 'ApiKey', params: { realm: 'payments', header: 'X-API-Key' } },
      ]);
      expect(ran()).toBe(0);
    });

    it('without a realm the Bearer challenge is bare', async () => {
      const { app } = appWith(adapter, [authenticate({ jwt })]);
      const res = await request(app).get('/v1/me').expect(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
    });

    it('another scheme (Basic for a proxy) is not a credential here', async () => {
      const { app } = appWith(adapter, [auth()]);
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', 'Basic dXNlcjpwYXNz')
        .expect(401);
      expect(res.body.code).toBe('authentication-required');
    });

    it('optional: anonymous requests pass, bad credentials are still refused', async () => {
      const { app, ran } = appWith(adapter, [auth({ optional: true })]);
      const res = await request(app).get('/v1/me').expect(200);
      expect(res.body.principal).toBeNull();
      await request(app).get('/v1/me').set('Authorization', 'Bearer nope.nope.nope').expect(401);
      expect(ran()).toBe(1);
    });
  });

  describe('JWT bearer tokens', () => {
    it('a valid token: the principal is on the state, the same object through contextOf()', async () => {
      const { app } = appWith(adapter, [auth()]);
      const token = await sign(
        secretBytes(),
        { alg: 'HS256' },
        { roles: ['admin'], scope: 'users:read' },
      );
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', `Bearer ${token}`)
        .expect(200);
      expect(res.body.same).toBe(true);
      expect(res.body.principal).toMatchObject({
        id: 'usr_ada',
        type: 'user',
        roles: ['admin'],
        scopes: ['users:read'],
        authentication: 'jwt',
      });
    });

    it('the scheme is case-insensitive (RFC 9110 §11.1)', async () => {
      const { app } = appWith(adapter, [auth()]);
      const token = await sign(secretBytes(), { alg: 'HS256' });
      for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
        await request(app).get('/v1/me').set('Authorization', `${scheme} ${token}`).expect(200);
      }
    });

    it('expired: 401 invalid_token, "The access token expired"', async () => {
      const { app } = appWith(adapter, [auth()]);
      const now = Date.now();
      const token = await sign(
        secretBytes(),
        { alg: 'HS256' },
        { iat: seconds(now) - 7200, exp: seconds(now) - 3600 },
      );
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', `Bearer ${token}`)
        .expect(401);
      expect(res.body).toMatchObject({
        code: 'invalid-token',
        detail: 'The access token expired.',
      });
      expect(parseChallenges(res.headers['www-authenticate'])).toEqual([
        {
          scheme: 'Bearer',
          params: {
            realm: 'payments',
            error: 'invalid_token',
            error_description: 'The access token expired',
          },
        },
      ]);
    });

    it('tampered, wrong audience, alg none: the same description, nothing about which check failed', async () => {
      const { app } = appWith(adapter, [auth()]);
      const good = await sign(secretBytes(), { alg: 'HS256' });
      const [h, , s] = good.split('.');
      const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: 'usr_root', iss: ISSUER, aud: AUDIENCE, exp: 9e9 })).toString('base64url')}.${s}`;
      const wrongAudience = await sign(
        secretBytes(),
        { alg: 'HS256' },
        { aud: 'https://other.example' },
      );
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${good.split('.')[1]}.`;
      for (const token of [tampered, wrongAudience, none]) {
        const res = await request(app)
          .get('/v1/me')
          .set('Authorization', `Bearer ${token}`)
          .expect(401);
        const [challenge] = parseChallenges(res.headers['www-authenticate']);
        expect(challenge?.params.error_description).toBe('The access token is invalid');
        expect(JSON.stringify(res.body)).not.toMatch(/signature|audience|algorithm|jose/i);
      }
    });

    it('an unreadable Authorization: Bearer is 400 invalid_request', async () => {
      const { app } = appWith(adapter, [auth()]);
      for (const value of ['Bearer', 'Bearer   ', 'Bearer a b', 'Bearer ü', 'Bearer "x"']) {
        const res = await request(app).get('/v1/me').set('Authorization', value).expect(400);
        expect(res.body.code).toBe('malformed-credentials');
        expect(parseChallenges(res.headers['www-authenticate'])).toEqual([
          { scheme: 'Bearer', params: { realm: 'payments', error: 'invalid_request' } },
        ]);
      }
    });
  });

  describe('how the Authorization header is read', () => {
    it('Authorization twice, or the API key header twice: 400 invalid_request, the handler not run', async () => {
      const { app, ran } = appWith(adapter, [auth()]);
      const server = await listen(app);
      try {
        const ada = await sign(secretBytes(), { alg: 'HS256' }, { sub: 'usr_ada' });
        const admin = await sign(secretBytes(), { alg: 'HS256' }, { sub: 'usr_admin' });
        for (const headers of [
          // Node keeps the first line; a proxy in front may have checked the last.
          { authorization: [`Bearer ${ada}`, `Bearer ${admin}`] },
          { authorization: [`Bearer ${ada}`, `Bearer ${ada}`] },
          { authorization: ['Basic dXNlcjpwYXNz', `Bearer ${ada}`] },
          { 'x-api-key': [adminKey, officeKey] },
          { 'X-Api-Key': [adminKey, adminKey] },
        ]) {
          const res = await rawRequest(server.port, {
            path: '/v1/me',
            headers: headers as unknown as Record<string, string>,
          });
          expect(res.status, JSON.stringify(Object.keys(headers))).toBe(400);
          const body = JSON.parse(res.body.toString()) as { code: string };
          expect(body.code).toBe('malformed-credentials');
          expect(parseChallenges(res.headers['www-authenticate'] as string)).toEqual([
            { scheme: 'Bearer', params: { realm: 'payments', error: 'invalid_request' } },
          ]);
        }
        expect(ran()).toBe(0);
        // One of each is one method each time: still fine.
        const one = await rawRequest(server.port, {
          path: '/v1/me',
          headers: { authorization: `Bearer ${ada}` },
        });
        expect(one.status).toBe(200);
      } finally {
        await server.close();
      }
    });

    it('the scheme in any case, with extra spaces or a tab before the token (RFC 9110 §11.1)', async () => {
      const { app } = appWith(adapter, [auth()]);
      const token = await sign(secretBytes(), { alg: 'HS256' });
      for (const value of [
        `bearer ${token}`,
        `BEARER ${token}`,
        `bEaReR    ${token}`,
        `Bearer\t${token}`,
        `Bearer ${token}   `,
      ]) {
        const res = await request(app).get('/v1/me').set('Authorization', value);
        expect(res.status, JSON.stringify(value)).toBe(200);
        expect(res.body.principal.id).toBe('usr_ada');
      }
      // A lookalike scheme is another scheme: no credentials.
      const lookalike = await request(app).get('/v1/me').set('Authorization', `Bearerx ${token}`);
      expect(lookalike.status).toBe(401);
      expect(lookalike.headers['www-authenticate']).not.toContain('error=');
    });

    it('an oversized token is a 401 problem; a header past the server’s limit never reaches a handler', async () => {
      const { app, ran } = appWith(adapter, [auth()]);
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', `Bearer ${'a'.repeat(12_000)}`)
        .expect(401);
      expect(res.body.code).toBe('invalid-token');
      const server = await listen(app);
      try {
        const huge = await rawRequest(server.port, {
          path: '/v1/me',
          headers: { authorization: `Bearer ${'a'.repeat(1_000_000)}` },
        }).catch(() => undefined);
        // Node's parser refuses it (431) before the adapter sees it, or drops the connection.
        if (huge !== undefined) expect(huge.status).toBe(431);
      } finally {
        await server.close();
      }
      expect(ran()).toBe(0);
    });
  });

  describe('API keys', () => {
    it('in X-API-Key: the key’s principal', async () => {
      const { app } = appWith(adapter, [auth()]);
      const res = await request(app).get('/v1/me').set('X-API-Key', adminKey).expect(200);
      expect(res.body.principal).toMatchObject({
        id: 'svc_admin',
        type: 'api-key',
        roles: ['admin'],
        scopes: ['users:write'],
        authentication: 'api-key',
      });
    });

    it('as Authorization: Bearer', async () => {
      const { app } = appWith(adapter, [auth()]);
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', `Bearer ${adminKey}`)
        .expect(200);
      expect(res.body.principal.id).toBe('svc_admin');
    });

    it('unknown, revoked, expired: 401 with the ApiKey challenge; a revoked key reads as any bad one', async () => {
      const { app } = appWith(adapter, [auth()]);
      const unknown = `${adminKey.slice(0, -1)}${adminKey.endsWith('A') ? 'B' : 'A'}`;
      const details: string[] = [];
      for (const key of [unknown, revokedKey, expiredKey, 'garbage']) {
        const res = await request(app).get('/v1/me').set('X-API-Key', key).expect(401);
        expect(res.body.code).toBe('invalid-api-key');
        expect(parseChallenges(res.headers['www-authenticate'])).toEqual([
          { scheme: 'ApiKey', params: { realm: 'payments', header: 'X-API-Key' } },
        ]);
        details.push(res.body.detail);
      }
      expect(details).toEqual([
        'The API key is invalid.',
        'The API key is invalid.',
        'The API key expired.',
        'The API key is invalid.',
      ]);
    });

    it('a bad key sent as a bearer token is refused as one', async () => {
      const { app } = appWith(adapter, [auth()]);
      const res = await request(app)
        .get('/v1/me')
        .set('Authorization', `Bearer ${revokedKey}`)
        .expect(401);
      expect(parseChallenges(res.headers['www-authenticate'])[0]?.params).toEqual({
        realm: 'payments',
        error: 'invalid_token',
        error_description: 'The API key is invalid',
      });
    });

    it('both an API key header and a bearer token: 400 (RFC 6750 §2, one method per request)', async () => {
      const { app, ran } = appWith(adapter, [auth()]);
      const token = await sign(secretBytes(), { alg: 'HS256' });
      const res = await request(app)
        .get('/v1/me')
        .set('X-API-Key', adminKey)
        .set('Authorization', `Bearer ${token}`)
        .expect(400);
      expect(res.body).toMatchObject({ code: 'malformed-credentials' });
      expect(ran()).toBe(0);
    });

    it('a header of your own; apiKeyHeader: false accepts keys as bearer tokens only', async () => {
      const own = appWith(adapter, [auth({ apiKeyHeader: 'Api-Token' })]).app;
      await request(own).get('/v1/me').set('Api-Token', adminKey).expect(200);
      const res = await request(own).get('/v1/me').set('X-API-Key', adminKey).expect(401);
      expect(res.body.code).toBe('authentication-required');
      const bearerOnly = appWith(adapter, [auth({ apiKeyHeader: false })]).app;
      await request(bearerOnly)
        .get('/v1/me')
        .set('Authorization', `Bearer ${adminKey}`)
        .expect(200);
      const missing = await request(bearerOnly).get('/v1/me').expect(401);
      expect(missing.headers['www-authenticate']).toBe('Bearer realm="payments"');
    });

    describe('IP allowlists use the client address of the trustProxy setting', () => {
      it('behind a trusted proxy, X-Forwarded-For decides', async () => {
        const { app } = appWith(adapter, [auth()], {
          options: { logger: silentLogger, trustProxy: 'loopback' },
        });
        await request(app)
          .get('/v1/me')
          .set('X-API-Key', officeKey)
          .set('X-Forwarded-For', '203.0.113.9')
          .expect(200);
        await request(app)
          .get('/v1/me')
          .set('X-API-Key', officeKey)
          .set('X-Forwarded-For', '2001:db8::7')
          .expect(200);
        const res = await request(app)
          .get('/v1/me')
          .set('X-API-Key', officeKey)
          .set('X-Forwarded-For', '198.51.100.1')
          .expect(403);
        expect(res.body).toMatchObject({ code: 'ip-not-allowed' });
      });

      it('without trustProxy, a forged X-Forwarded-For changes nothing', async () => {
        const { app } = appWith(adapter, [auth()]);
        const res = await request(app)
          .get('/v1/me')
          .set('X-API-Key', officeKey)
          .set('X-Forwarded-For', '203.0.113.9')
          .expect(403);
        expect(res.body.code).toBe('ip-not-allowed');
      });
    });

    it('a key store that is down: 503, the handler not run', async () => {
      const down: ApiKeyStore = {
        kind: 'down',
        get: async () => {
          throw new Error('connection refused');
        },
        create: async () => false,
        revoke: async () => false,
        delete: async () => false,
      };
      const { app, ran } = appWith(adapter, [
        authenticate({ apiKeys: apiKeyVerifier({ store: down, logger: silentLogger }) }),
      ]);
      const res = await request(app).get('/v1/me').set('X-API-Key', adminKey).expect(503);
      expect(res.body.code).toBe('service-unavailable');
      expect(res.headers['retry-after']).toBe('1');
      expect(ran()).toBe(0);
    });
  });

  describe('credentials in the query string', () => {
    it('are refused with 400 before anything runs, whatever the parameter’s case', async () => {
      const { app, ran } = appWith(adapter, [auth({ optional: true })]);
      const token = await sign(secretBytes(), { alg: 'HS256' });
      for (const query of [
        `access_token=${token}`,
        `API_KEY=${adminKey}`,
        `token=${token}`,
        'apikey=x',
        `limit=10&cursor=abc&anything=${adminKey}`,
      ]) {
        const res = await request(app).get(`/v1/me?${query}`).expect(400);
        expect(res.body.code).toBe('credentials-in-query');
        expect(JSON.stringify(res.body)).not.toContain(token);
        expect(JSON.stringify(res.body)).not.toContain(adminKey);
      }
      expect(ran()).toBe(0);
    });

    it('are never logged, even with the adapter’s debug lines on and a header that would be valid', async () => {
      const logger = recordingLogger();
      const { app } = appWith(adapter, [auth()], { options: { logger, debug: true } });
      const token = await sign(secretBytes(), { alg: 'HS256' });
      await request(app)
        .get(`/v1/me?access_token=${token}`)
        .set('Authorization', `Bearer ${token}`)
        .expect(400);
      await request(app).get(`/v1/me?api_key=${adminKey}`).expect(400);
      expect(logger.lines.length).toBeGreaterThan(0);
      const everything = logger.lines.join('\n');
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(adminKey);
      expect(everything).not.toContain(adminKey.split('_')[2]!);
    });

    it('qs-style names (access_token[]=, api_key[0]=) are refused too', async () => {
      const { app, ran } = appWith(adapter, [auth({ optional: true })]);
      for (const query of ['access_token[]=abc', 'api_key[0]=abc', 'Access_Token[x]=abc']) {
        const res = await request(app).get(`/v1/me?${query}`).expect(400);
        expect(res.body.code).toBe('credentials-in-query');
        expect(JSON.stringify(res.body)).not.toContain('abc');
      }
      await request(app).get('/v1/me?tokens[]=1&page[size]=10').expect(200);
      expect(ran()).toBe(1);
    });

    it('the check can be configured or turned off', async () => {
      const custom = appWith(adapter, [auth({ optional: true, queryParams: ['sig'] })]).app;
      await request(custom).get('/v1/me?sig=abc').expect(400);
      await request(custom).get('/v1/me?token=abc').expect(200);
      const off = appWith(adapter, [auth({ optional: true, queryParams: false })]).app;
      await request(off).get('/v1/me?access_token=abc').expect(200);
    });
  });

  describe('the principal reaches everything after authentication', () => {
    it('the framework’s own middleware reads it', async () => {
      const token = await sign(secretBytes(), { alg: 'HS256' });
      const seen: unknown[] = [];
      const app = adapter.build({
        use: [auth()],
        framework: {
          express: [
            (_req, res, next) => {
              seen.push((res.locals as { principal?: { id: string } }).principal?.id);
              next();
            },
          ],
          koa: [
            async (ctx, next) => {
              seen.push((ctx.state as { principal?: { id: string } }).principal?.id);
              await next();
            },
          ],
        },
        routes: [{ method: 'get', path: '/v1/me', handler: () => ({ body: {} }) }],
      });
      await request(app).get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200);
      expect(seen).toEqual(['usr_ada']);
    });

    it('a principal set upstream (the adapter’s principal option) is kept when no credentials come', async () => {
      const app = adapter.build({
        use: [auth()],
        before: (state) => {
          state.principal = { id: 'usr_passport', type: 'user' };
        },
        routes: [
          {
            method: 'get',
            path: '/v1/me',
            handler: ({ state }) => ({ body: { id: state.principal?.id } }),
          },
        ],
      });
      const res = await request(app).get('/v1/me').expect(200);
      expect(res.body.id).toBe('usr_passport');
    });
  });

  it('onFailure hears the reason, never the credential', async () => {
    const failures: AuthenticationFailure[] = [];
    const { app } = appWith(adapter, [auth({ onFailure: (f) => failures.push(f) })]);
    const now = Date.now();
    const expired = await sign(
      secretBytes(),
      { alg: 'HS256' },
      { iat: seconds(now) - 7200, exp: seconds(now) - 3600 },
    );
    await request(app).get('/v1/me').set('Authorization', `Bearer ${expired}`).expect(401);
    await request(app).get('/v1/me').set('X-API-Key', revokedKey).expect(401);
    await request(app).get('/v1/me').expect(401);
    expect(failures).toEqual([
      { method: 'jwt', code: 'invalid-token', reason: 'expired', status: 401, keyId: undefined },
      {
        method: 'api-key',
        code: 'invalid-api-key',
        reason: 'revoked',
        status: 401,
        keyId: revokedKey.split('_')[1],
      },
      {
        method: 'none',
        code: 'authentication-required',
        reason: undefined,
        status: 401,
        keyId: undefined,
      },
    ]);
    expect(JSON.stringify(failures)).not.toContain(revokedKey);
  });
});

describe.each(adapters)('$name: opaque tokens through introspection', (adapter) => {
  let as: LocalServer;
  beforeAll(async () => {
    as = await localServer((_req, res, body) => {
      const token = new URLSearchParams(body).get('token');
      json(
        res,
        200,
        token === 'opaque-good'
          ? {
              active: true,
              sub: 'usr_grace',
              scope: 'payments:read',
              exp: seconds(Date.now()) + 600,
            }
          : { active: false },
      );
    });
  });
  afterAll(() => as.close());

  it('an active token authenticates; an inactive one is 401 invalid_token; a JWT-shaped one goes to the JWT verifier', async () => {
    const introspection = introspectionVerifier({ endpoint: as.url, logger: silentLogger });
    const { app } = appWith(adapter, [authenticate({ jwt, introspection })]);
    const res = await request(app)
      .get('/v1/me')
      .set('Authorization', 'Bearer opaque-good')
      .expect(200);
    expect(res.body.principal).toMatchObject({ id: 'usr_grace', authentication: 'introspection' });
    const bad = await request(app)
      .get('/v1/me')
      .set('Authorization', 'Bearer opaque-bad')
      .expect(401);
    expect(parseChallenges(bad.headers['www-authenticate'])[0]?.params.error).toBe('invalid_token');
    const before = as.requests;
    await request(app)
      .get('/v1/me')
      .set('Authorization', `Bearer ${await sign(secretBytes(), { alg: 'HS256' })}`)
      .expect(200);
    expect(as.requests).toBe(before);
  });
});

describe('configuration', () => {
  it('is checked when the middleware is made', () => {
    expect(() => authenticate({} as never)).toThrow(/at least one/);
    expect(() => authenticate({ jwt: {} as never })).toThrow(/jwtVerifier/);
    expect(() => authenticate({ jwt, realm: 'a"b' })).toThrow(/realm/);
    expect(() => authenticate({ apiKeys, apiKeyHeader: 'Authorization' })).toThrow(/Authorization/);
    expect(() => authenticate({ apiKeys, apiKeyHeader: 'bad header' })).toThrow(/apiKeyHeader/);
    expect(() => authenticate({ jwt, optinal: true } as never)).toThrow(/Did you mean "optional"/);
    expect(() => authenticate({ jwt, queryParams: [''] })).toThrow(/params/);
  });
});
