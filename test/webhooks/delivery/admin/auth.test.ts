/**
 * Who may use the admin API: operators with the `admin` role by default,
 * whatever guards the `authorize` option gives otherwise; 401 anonymous and
 * 403 another role, on every route and on paths that are no route (nothing
 * about the API is told before the guards pass). The principal comes from
 * the framework's own authentication (the adapters' `principal` option) or
 * from restwell/auth with an API key.
 */
import request from 'supertest';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyVerifier, issueApiKey } from '../../../../src/auth/api-keys.js';
import { authenticate } from '../../../../src/auth/authenticate.js';
import {
  allowAnonymous,
  authorization,
  requireRole,
  requireScope,
} from '../../../../src/auth/authorize.js';
import { MemoryApiKeyStore } from '../../../../src/auth/key-stores/memory.js';
import { webhookAdmin } from '../../../../src/webhooks/delivery/admin.js';
import { engine } from '../engine/helpers.js';
import {
  ADMIN,
  adapters,
  adminApp,
  BASE,
  MEMBER,
  principalFrom,
  recordingLogger,
} from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ROUTES: Array<[method: 'get' | 'post' | 'patch' | 'delete' | 'put', path: string]> = [
  ['get', BASE],
  ['post', BASE],
  ['get', `${BASE}/ep_1`],
  ['patch', `${BASE}/ep_1`],
  ['delete', `${BASE}/ep_1`],
  ['post', `${BASE}/ep_1/rotate-secret`],
  ['post', `${BASE}/ep_1/disable`],
  ['post', `${BASE}/ep_1/enable`],
  ['get', `${BASE}/ep_1/stats`],
  ['get', `${BASE}/ep_1/deliveries`],
  ['get', `${BASE}/ep_1/attempts`],
  ['get', `${BASE}/ep_1/dead-letters`],
  ['post', `${BASE}/ep_1/replay`],
  ['post', `${BASE}/ep_1/deliveries/evt_1%2Fep_1/resend`],
  ['post', `${BASE}/ep_1/events/evt_1/resend`],
  ['post', `${BASE}/ep_1/test-events`],
  ['get', `${BASE}/ep_1/no-such-route`],
  ['put', BASE],
];

describe.each(adapters)('admin API authorization on $name', (adapter) => {
  function setup(options: Parameters<typeof adminApp>[1] = {}) {
    const s = adminApp(adapter, options);
    cleanups.push(() => s.delivery.stop());
    return s;
  }

  it('answers 401 to anonymous and 403 to another role on every route, before routing', async () => {
    const { app, delivery } = setup();
    await delivery.endpoints.create({ id: 'ep_1', url: 'http://127.0.0.1:9/a' });
    for (const [method, path] of ROUTES) {
      const anonymous = await request(app)[method](path).send({ url: 'http://127.0.0.1:9/b' });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
      expect(anonymous.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(anonymous.body.code).toBe('authentication-required');
      const member = await request(app)[method](path).set(MEMBER).send({});
      expect(member.status, `${method} ${path}`).toBe(403);
      expect(member.body.code).toBe('access-denied');
    }
    // Nothing was changed by the refused requests.
    expect(await delivery.endpoints.list()).toHaveLength(1);
    expect((await delivery.endpoints.get('ep_1')).disabled).toBeUndefined();
  });

  it('takes other guards: a scope, or several guards that must all pass', async () => {
    const scoped = setup({ admin: { authorize: requireScope('webhooks:admin') } });
    const withScope = { 'x-test-principal': 'svc_1;' };
    // The adapters' principal option has no scopes here: refused.
    await request(scoped.app).get(BASE).set(withScope).expect(403);
    await request(scoped.app).get(BASE).set(ADMIN).expect(403);

    const both = setup({ admin: { authorize: [requireRole('admin'), requireRole('ops')] } });
    await request(both.app).get(BASE).set(ADMIN).expect(403);
    await request(both.app).get(BASE).set({ 'x-test-principal': 'ops_1;admin,ops' }).expect(200);

    const open = setup({ admin: { authorize: allowAnonymous() } });
    await request(open.app).get(BASE).expect(200);
  });

  it('refuses a bad configuration at construction', () => {
    const { delivery } = engine({ logger: recordingLogger().logger });
    cleanups.push(() => delivery.stop());
    expect(() => webhookAdmin(delivery, { authorize: [] })).toThrow(/authorize/);
    expect(() =>
      webhookAdmin(delivery, { authorize: 'admin' as unknown as ReturnType<typeof requireRole> }),
    ).toThrow(/authorize/);
    expect(() =>
      webhookAdmin(delivery, { authorise: requireRole('admin') } as unknown as Parameters<
        typeof webhookAdmin
      >[1]),
    ).toThrow(/authorise/);
    expect(() => webhookAdmin(delivery, { basePath: 'v1/hooks' })).toThrow(/basePath/);
    expect(() => webhookAdmin(delivery, { basePath: '/v1/:tenant/hooks' })).toThrow(/basePath/);
    expect(() => webhookAdmin(delivery, { bodyLimit: 0 })).toThrow(/bodyLimit/);
    expect(() => webhookAdmin({} as typeof delivery)).toThrow(/delivery/);
  });

  it('serves another base path and leaves the default one to the application', async () => {
    const { app } = setup({ admin: { basePath: '/ops/hooks' } });
    const created = await request(app)
      .post('/ops/hooks')
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    expect(created.headers.location).toBe(`/ops/hooks/${created.body.id}`);
    const elsewhere = await request(app).get(BASE).set(ADMIN).expect(404);
    expect(elsewhere.body.code).toBe('not-found');
  });

  it('writes absolute Location and links under baseUrl', async () => {
    const { app } = setup({ admin: { baseUrl: 'https://api.example.com' } });
    const created = await request(app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    expect(created.headers.location).toBe(`https://api.example.com${BASE}/${created.body.id}`);
    const list = await request(app).get(`${BASE}/${created.body.id}/deliveries`).set(ADMIN);
    expect(list.body.links.first).toBe(
      `https://api.example.com${BASE}/${created.body.id}/deliveries`,
    );
  });
});

describe.each(adapters)('the admin API behind restwell/auth with API keys on $name', (adapter) => {
  const store = new MemoryApiKeyStore();
  let operatorKey: string;
  let memberKey: string;

  beforeAll(async () => {
    operatorKey = (await issueApiKey(store, { subject: 'ops_ada', roles: ['admin'] })).key;
    memberKey = (await issueApiKey(store, { subject: 'usr_bob', roles: ['member'] })).key;
  });

  function build(withRules: boolean) {
    const { logger, lines } = recordingLogger();
    const e = engine({ logger });
    cleanups.push(() => e.delivery.stop());
    const app = adapter.build({
      use: [
        authenticate({ apiKeys: apiKeyVerifier({ store }), optional: true }),
        // Deny whatever no rule or passing guard covers: the admin API's own check covers its answers.
        ...(withRules ? [authorization({ default: 'deny', coverage: 'guards' })] : []),
        webhookAdmin(e.delivery),
      ],
      routes: [],
      options: { logger },
    });
    return { app, lines, ...e };
  }

  it('lets an operator key in, and refuses a member key (403) and no key (401)', async () => {
    const { app, lines } = build(false);
    const created = await request(app)
      .post(BASE)
      .set('X-API-Key', operatorKey)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    await request(app).get(BASE).set('X-API-Key', memberKey).expect(403);
    const anonymous = await request(app).get(BASE).expect(401);
    expect(anonymous.headers['www-authenticate']).toBeDefined();
    const log = lines.join('\n');
    expect(log).toContain('ops_ada');
    expect(log).not.toContain(created.body.secret);
    expect(log).not.toContain(operatorKey);
  });

  it("counts as covered for authorization({ coverage: 'guards' }): answers are not withheld", async () => {
    const { app } = build(true);
    await request(app)
      .post(BASE)
      .set('X-API-Key', operatorKey)
      .send({ url: 'http://127.0.0.1:9/a' })
      .expect(201);
    const list = await request(app).get(BASE).set('X-API-Key', operatorKey).expect(200);
    expect(list.body.data).toHaveLength(1);
    await request(app).get(BASE).set('X-API-Key', memberKey).expect(403);
  });
});

it('principalFrom reads the test header only', () => {
  expect(principalFrom({})).toBeUndefined();
  expect(principalFrom({ 'x-test-principal': 'a;b,c' })).toEqual({ id: 'a', roles: ['b', 'c'] });
});
