import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Middleware } from '../../src/core/context.js';
import { NotFoundError } from '../../src/core/errors.js';
import { apiKeyVerifier, issueApiKey } from '../../src/auth/api-keys.js';
import { authenticate } from '../../src/auth/authenticate.js';
import {
  allowAnonymous,
  authenticated,
  authorization,
  authorize,
  requireRole,
  requireScope,
} from '../../src/auth/authorize.js';
import { jwtVerifier } from '../../src/auth/jwt.js';
import { MemoryApiKeyStore } from '../../src/auth/key-stores/memory.js';
import { type AdapterCase, adapters, type RouteSpec } from '../helpers/apps.js';
import { listen, rawRequest } from '../helpers/raw.js';
import {
  AUDIENCE,
  ISSUER,
  parseChallenges,
  recordingLogger,
  SECRET,
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
const login = authenticate({ jwt, apiKeys, optional: true, realm: 'api' });

let admin: string;
let member: string;
let writer: string;
let keyWithScopes: string;

beforeAll(async () => {
  admin = await sign(secretBytes(), { alg: 'HS256' }, { sub: 'usr_admin', roles: ['admin'] });
  member = await sign(
    secretBytes(),
    { alg: 'HS256' },
    { sub: 'usr_ada', roles: ['member'], scope: 'users:read' },
  );
  writer = await sign(
    secretBytes(),
    { alg: 'HS256' },
    { sub: 'usr_w', scope: 'users:read users:write' },
  );
  keyWithScopes = (await issueApiKey(store, { subject: 'svc_ro', scopes: ['users:read'] })).key;
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Users and documents; every handler counts its runs, to prove a refusal came before it. */
function build(
  adapter: AdapterCase,
  use: Middleware[],
  routeUse: Partial<Record<string, Middleware[]>> = {},
  logger?: ReturnType<typeof recordingLogger>,
) {
  const runs: Record<string, number> = {};
  const route = (method: RouteSpec['method'], path: string, status = 200): RouteSpec => ({
    method,
    path,
    use: routeUse[`${method.toUpperCase()} ${path}`] ?? [],
    handler: ({ params, state }) => {
      const name = `${method.toUpperCase()} ${path}`;
      runs[name] = (runs[name] ?? 0) + 1;
      return {
        status,
        body: status === 204 ? undefined : { params, resource: state.resource ?? null },
      };
    },
  });
  const app = adapter.build({
    use,
    ...(logger ? { options: { logger } } : {}),
    routes: [
      route('get', '/health'),
      route('get', '/v1/users'),
      route('get', '/v1/users/:id'),
      route('delete', '/v1/users/:id', 204),
      route('get', '/v1/documents/:id'),
      route('get', '/internal/stats'),
    ],
  });
  return { app, runs };
}

const documents = new Map([
  ['doc_1', { id: 'doc_1', owner: 'usr_ada', tenant: 'acme' }],
  ['doc_2', { id: 'doc_2', owner: 'usr_grace', tenant: 'acme' }],
]);
const ownsDocument = () =>
  authorize<{ owner: string }>((principal, _request, doc) => doc.owner === principal.id, {
    load: ({ params }) => {
      const doc = documents.get(params.id ?? '');
      if (doc === undefined) throw new NotFoundError('No such document.');
      return doc;
    },
    description: 'owns the document',
  });

describe.each(adapters)('$name: route guards', (adapter) => {
  it('requireRole: 401 anonymous, 403 without the role, the handler runs with it', async () => {
    const { app, runs } = build(adapter, [login], {
      'DELETE /v1/users/:id': [requireRole('admin')],
    });
    const anonymous = await request(app).delete('/v1/users/usr_x').expect(401);
    expect(parseChallenges(anonymous.headers['www-authenticate'])[0]).toEqual({
      scheme: 'Bearer',
      params: { realm: 'api' },
    });
    const denied = await request(app).delete('/v1/users/usr_x').set(bearer(member)).expect(403);
    expect(denied.body).toMatchObject({
      code: 'access-denied',
      detail: 'You are not allowed to perform this request.',
    });
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
    await request(app).delete('/v1/users/usr_x').set(bearer(admin)).expect(204);
    expect(runs['DELETE /v1/users/:id']).toBe(1);
  });

  it('requireRole takes any one of several roles', async () => {
    const { app } = build(adapter, [login], {
      'GET /v1/users': [requireRole('support', 'member')],
    });
    await request(app).get('/v1/users').set(bearer(member)).expect(200);
    await request(app).get('/v1/users').set(bearer(admin)).expect(403);
  });

  it('requireScope: every scope; the 403 names them all in a Bearer insufficient_scope challenge', async () => {
    const { app } = build(adapter, [login], {
      'DELETE /v1/users/:id': [requireScope('users:read', 'users:write')],
    });
    const res = await request(app).delete('/v1/users/x').set(bearer(member)).expect(403);
    expect(res.body).toMatchObject({
      code: 'insufficient-scope',
      requiredScopes: ['users:read', 'users:write'],
    });
    expect(parseChallenges(res.headers['www-authenticate'])).toEqual([
      {
        scheme: 'Bearer',
        params: { realm: 'api', error: 'insufficient_scope', scope: 'users:read users:write' },
      },
    ]);
    await request(app).delete('/v1/users/x').set(bearer(writer)).expect(204);
  });

  it('requireScope for a key in X-API-Key: 403 without a Bearer challenge', async () => {
    const { app } = build(adapter, [login], {
      'DELETE /v1/users/:id': [requireScope('users:write')],
    });
    const res = await request(app)
      .delete('/v1/users/x')
      .set('X-API-Key', keyWithScopes)
      .expect(403);
    expect(res.body.code).toBe('insufficient-scope');
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('authorize (ABAC): the loaded resource decides, and the handler gets it on state.resource', async () => {
    const { app, runs } = build(adapter, [login], { 'GET /v1/documents/:id': [ownsDocument()] });
    const own = await request(app).get('/v1/documents/doc_1').set(bearer(member)).expect(200);
    expect(own.body.resource).toEqual(documents.get('doc_1'));
    await request(app).get('/v1/documents/doc_2').set(bearer(member)).expect(403);
    const missing = await request(app).get('/v1/documents/doc_9').set(bearer(member)).expect(404);
    expect(missing.body.code).toBe('not-found');
    await request(app).get('/v1/documents/doc_1').expect(401);
    expect(runs['GET /v1/documents/:id']).toBe(1);
  });

  it('an ABAC predicate that throws denies (403) and is logged; a problem it throws is its answer', async () => {
    const logger = recordingLogger();
    const throwing = authorize(
      (principal) => {
        if (principal.id === 'usr_admin') throw new NotFoundError('No such document.');
        return (principal.claims.missing as { owner: string }).owner === principal.id;
      },
      { description: 'owner check' },
    );
    const { app, runs } = build(adapter, [login], { 'GET /v1/documents/:id': [throwing] }, logger);
    const res = await request(app).get('/v1/documents/doc_1').set(bearer(member)).expect(403);
    expect(res.body.code).toBe('access-denied');
    expect(JSON.stringify(res.body)).not.toMatch(/owner|TypeError|undefined/);
    expect(
      logger.lines.some(
        (l) => l.includes('authorize() predicate threw') && l.includes('owner check'),
      ),
    ).toBe(true);
    await request(app).get('/v1/documents/doc_1').set(bearer(admin)).expect(404);
    expect(runs['GET /v1/documents/:id']).toBeUndefined();
    // In the table too, before routing.
    const table = build(adapter, [
      login,
      authorization({ rules: [{ route: '/v1/documents/:id', require: throwing }] }),
    ]);
    await request(table.app).get('/v1/documents/doc_1').set(bearer(member)).expect(403);
    expect(table.runs['GET /v1/documents/:id']).toBeUndefined();
  });

  it('claims of a token that does not verify grant nothing: unsigned, tampered or expired, admin or not', async () => {
    const { app, runs } = build(adapter, [login], {
      'DELETE /v1/users/:id': [requireRole('admin')],
    });
    const [h, p] = admin.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'usr_ada' })).toString(
      'base64url',
    );
    const expired = await sign(
      secretBytes(),
      { alg: 'HS256' },
      { sub: 'usr_admin', roles: ['admin'], exp: Math.floor(Date.now() / 1000) - 3600 },
    );
    for (const token of [
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`,
      `${h}.${forged}.${admin.split('.')[2]}`,
      expired,
    ]) {
      await request(app).delete('/v1/users/x').set(bearer(token)).expect(401);
    }
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
  });

  it('only verified claims count: a role header or query parameter grants nothing', async () => {
    const { app } = build(adapter, [login], { 'DELETE /v1/users/:id': [requireRole('admin')] });
    await request(app)
      .delete('/v1/users/x?role=admin')
      .set(bearer(member))
      .set('X-Role', 'admin')
      .expect(403);
  });

  it('roles of a principal from the framework’s own auth count only when they are strings', async () => {
    const withRoles = adapter.build({
      use: [requireRole('admin')],
      before: (state, headers) => {
        state.principal = {
          id: 'usr_p',
          // Untyped code (a JavaScript framework's own auth) can put anything here.
          roles: (headers['x-test-roles'] === 'array'
            ? ['admin']
            : 'admin,root') as unknown as readonly string[],
        };
      },
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: {} }) }],
    });
    await request(withRoles).get('/x').set('x-test-roles', 'array').expect(200);
    await request(withRoles).get('/x').set('x-test-roles', 'string').expect(403);
  });
});

describe.each(adapters)('$name: the authorization table', (adapter) => {
  const table = () =>
    authorization({
      rules: [
        { route: ['/health', '/'], methods: ['GET'], require: allowAnonymous() },
        { route: '/v1/*', require: authenticated() },
        { route: '/v1/users/:id', methods: ['DELETE'], require: requireRole('admin') },
        {
          route: '/v1/users/:id',
          methods: ['GET'],
          require: authorize(
            (principal, { params }) =>
              params.id === principal.id || principal.roles.includes('admin'),
          ),
        },
      ],
    });

  it('a public route, anonymous', async () => {
    const { app } = build(adapter, [login, table()]);
    await request(app).get('/health').expect(200);
    await request(app).head('/health').expect(200);
  });

  it('a route no rule covers is refused before its handler, signed in or not', async () => {
    const { app, runs } = build(adapter, [login, table()]);
    const res = await request(app).get('/internal/stats').set(bearer(admin)).expect(403);
    expect(res.body.code).toBe('access-denied');
    await request(app).get('/internal/stats').expect(403);
    await request(app).post('/health').expect(403);
    expect(runs['GET /internal/stats']).toBeUndefined();
  });

  it('every matching rule must pass: /v1/* and the DELETE rule', async () => {
    const { app, runs } = build(adapter, [login, table()]);
    await request(app).delete('/v1/users/usr_x').expect(401);
    await request(app).delete('/v1/users/usr_x').set(bearer(member)).expect(403);
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
    await request(app).delete('/v1/users/usr_x').set(bearer(admin)).expect(204);
  });

  it('a rule’s predicate gets the pattern’s parameters, decoded', async () => {
    const { app } = build(adapter, [login, table()]);
    await request(app).get('/v1/users/usr_ada').set(bearer(member)).expect(200);
    await request(app).get('/v1/users/usr_%61da').set(bearer(member)).expect(200);
    await request(app).get('/v1/users/usr_grace').set(bearer(member)).expect(403);
    await request(app).get('/v1/users/usr_grace').set(bearer(admin)).expect(200);
  });

  it('every spelling the router routes is matched: case, trailing slash, double slashes, absolute form', async () => {
    const { app, runs } = build(adapter, [login, table()]);
    for (const path of [
      '/V1/USERS/usr_x',
      '/v1/users/usr_x/',
      '/v1//users/usr_x',
      '/v1/%75sers/usr_x',
    ]) {
      const res = await request(app).delete(path).set(bearer(member));
      expect([403, 404], path).toContain(res.status);
    }
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
    const server = await listen(app);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: server.port,
            method: 'DELETE',
            path: `http://127.0.0.1:${server.port}/v1/users/usr_x`,
            headers: bearer(member),
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(403);
    } finally {
      await server.close();
    }
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
  });

  it('dot segments, encoded dots and encoded slashes never reach a guarded handler unguarded', async () => {
    const { app, runs } = build(adapter, [login, table()]);
    const server = await listen(app);
    try {
      for (const path of [
        '/v1/%2e%2e/v1/users/usr_x',
        '/v1/%2E%2E/v1/users/usr_x',
        '/v1/users%2Fusr_x',
        '/v1/users%2fusr_x',
        '/v1/x/../users/usr_x',
        '/v1/./users/usr_x',
        '/v1/users/./usr_x',
        '/./v1/users/usr_x',
        '//v1/users/usr_x',
        '/v1/users//usr_x',
        '/health/../v1/users/usr_x',
        '/health/%2e%2e/v1/users/usr_x',
        '/V1/Users/usr_x',
      ]) {
        const res = await rawRequest(server.port, {
          method: 'DELETE',
          path,
          headers: bearer(member),
        });
        expect([400, 403, 404], path).toContain(res.status);
      }
    } finally {
      await server.close();
    }
    expect(runs['DELETE /v1/users/:id']).toBeUndefined();
  });

  it('default: allow lets uncovered routes through', async () => {
    const { app } = build(adapter, [
      login,
      authorization({ default: 'allow', rules: [{ route: '/v1/*', require: authenticated() }] }),
    ]);
    await request(app).get('/internal/stats').expect(200);
    await request(app).get('/v1/users').expect(401);
  });

  it('route guards add to the table', async () => {
    const { app } = build(adapter, [login, table()], {
      'GET /v1/users': [requireScope('users:read')],
    });
    await request(app).get('/v1/users').set(bearer(admin)).expect(403);
    await request(app).get('/v1/users').set(bearer(member)).expect(200);
  });
});

describe.each(adapters)('$name: coverage by route guards', (adapter) => {
  it('a guarded route is covered; an unguarded one has its response withheld and is logged', async () => {
    const logger = recordingLogger();
    const { app, runs } = build(
      adapter,
      [
        login,
        authorization({
          coverage: 'guards',
          rules: [{ route: '/health', require: allowAnonymous() }],
        }),
      ],
      { 'GET /v1/users': [authenticated()] },
      logger,
    );
    await request(app).get('/health').expect(200);
    await request(app).get('/v1/users').set(bearer(member)).expect(200);
    const res = await request(app).get('/v1/users/usr_ada').set(bearer(member)).expect(403);
    expect(res.body.code).toBe('access-denied');
    expect(JSON.stringify(res.body)).not.toContain('usr_ada');
    // The handler did run: for a write this mode is a tripwire, not a wall.
    expect(runs['GET /v1/users/:id']).toBe(1);
    expect(
      logger.lines.some((l) => l.includes('no authorization rule or guard covers this route')),
    ).toBe(true);
    // An error answer is left as it is.
    await request(app).get('/nowhere').expect(404);
  });
});

describe('configuration', () => {
  it('patterns, methods, guards and modes are checked', () => {
    expect(() => authorization({ rules: [{ route: 'v1', require: authenticated() }] })).toThrow(
      /starting with/,
    );
    expect(() =>
      authorization({ rules: [{ route: '/v1/*/x', require: authenticated() }] }),
    ).toThrow(/final/);
    expect(() =>
      authorization({ rules: [{ route: '/v1/(.*)', require: authenticated() }] }),
    ).toThrow(/final/);
    expect(() =>
      authorization({ rules: [{ route: '/v1', methods: [], require: authenticated() }] }),
    ).toThrow(/methods/);
    expect(() =>
      authorization({ rules: [{ route: '/v1', require: (() => {}) as never }] }),
    ).toThrow(/guard/);
    expect(() => authorization({ rules: [{ route: '/v1', require: [] }] })).toThrow(/guard/);
    expect(() =>
      authorization({ rules: [{ route: '/v1', requires: authenticated() } as never] }),
    ).toThrow(/Did you mean "require"/);
    expect(() => authorization({ default: 'allow', coverage: 'guards' })).toThrow(/coverage/);
    expect(() => authorization({ default: 'no' as never })).toThrow(/default/);
    expect(() => requireRole()).toThrow(/at least one/);
    expect(() => requireScope('has space')).toThrow(/scopes/);
    expect(() => authorize('x' as never)).toThrow(/predicate/);
  });
});
