/**
 * The admin API as the example apps mount it, under /v1/webhook-endpoints for
 * the admin role: a member's key, an admin JWT for another audience, and every
 * other spelling of the path (case, trailing and doubled `/`, encoded
 * letters, absolute-form, HEAD, OPTIONS) are refused before anything of the
 * API answers. The example's route table is checked on its own too, with the
 * admin API's own guard opened, so that each of the two guards holds alone.
 */
import type { RequestListener } from 'node:http';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../../../examples/express/app.js';
import { createApp as createKoaApp } from '../../../../examples/koa/app.js';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../../../examples/shared/auth.js';
import {
  deliveryOf,
  type ExampleDelivery,
  localDelivery,
} from '../../../../examples/shared/delivery.js';
import { allowAnonymous } from '../../../../src/auth/authorize.js';
import { silentLogger } from '../../../../src/core/logger.js';
import { MemoryStore } from '../../../../src/stores/memory/index.js';
import { webhookAdmin } from '../../../../src/webhooks/delivery/admin.js';
import {
  ADMIN_KEY,
  EXAMPLE_CREDENTIALS,
  JWT_SECRET,
  MEMBER_KEY,
} from '../../../helpers/example-client.js';
import { type Listening, listen, rawRequest } from '../../../helpers/raw.js';

const apps = [
  {
    name: 'express',
    build: (outgoing: ExampleDelivery) =>
      createExpressApp(options(outgoing)) as unknown as RequestListener,
  },
  {
    name: 'koa',
    build: (outgoing: ExampleDelivery) =>
      createKoaApp(options(outgoing)).callback() as RequestListener,
  },
];

function options(outgoing: ExampleDelivery) {
  return {
    counters: new MemoryStore(),
    records: new MemoryStore({ evict: false }),
    logger: silentLogger,
    credentials: EXAMPLE_CREDENTIALS,
    outgoing,
  };
}

/** The base path and an endpoint's route, spelled as a router would still route them. */
const SPELLINGS = [
  '/v1/webhook-endpoints',
  '/V1/Webhook-Endpoints',
  '/v1/webhook-endpoints/',
  '//v1/webhook-endpoints',
  '/v1//webhook-endpoints//',
  '/v1/%77ebhook-endpoints',
  'http://localhost/v1/webhook-endpoints',
  '/v1/webhook-endpoints?limit=1',
  '/v1/webhook-endpoints/ep_a',
  '/V1/WEBHOOK-ENDPOINTS/ep_a/STATS/',
  '/v1/webhook-endpoints/ep_a/deliveries',
];

/** Spellings the example refuses outright (400), before authentication is even asked. */
const REFUSED = [
  '/v1/webhook-endpoints%2F',
  '/v1/./webhook-endpoints',
  '/v1/x/../webhook-endpoints',
  '/v1/webhook-endpoints%2Fep_a',
];

async function token(claims: { audience: string; roles: string[] }) {
  return new SignJWT({ roles: claims.roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(JWT_ISSUER)
    .setAudience(claims.audience)
    .setSubject('usr_mallory')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe.each(apps)('the example $name app mounts the admin API for admins only', ({ build }) => {
  let server: Listening;
  let outgoing: ExampleDelivery;
  let secret: string;

  async function call(method: string, path: string, headers: Record<string, string>) {
    const res = await rawRequest(server.port, { method, path, headers });
    const text = res.body.toString('utf8');
    expect(text, `${method} ${path}`).not.toContain('whsec_');
    if (secret !== undefined) expect(text).not.toContain(secret);
    return { status: res.status, headers: res.headers, text };
  }

  beforeAll(async () => {
    outgoing = deliveryOf(localDelivery());
    server = await listen(build(outgoing));
    const body = JSON.stringify({ id: 'ep_a', url: 'http://127.0.0.1:9/hooks' });
    const created = await rawRequest(server.port, {
      method: 'POST',
      path: '/v1/webhook-endpoints',
      headers: {
        'x-api-key': ADMIN_KEY,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    expect(created.status).toBe(201);
    secret = JSON.parse(created.body.toString('utf8')).secret as string;
  });
  afterAll(async () => {
    await server.close();
    await outgoing.delivery.stop();
  });

  it('answers an admin key on every spelling, a member key 403 and no key 401', async () => {
    const wrongAudience = await token({ audience: 'another-api', roles: ['admin'] });
    const memberToken = await token({ audience: JWT_AUDIENCE, roles: ['member'] });
    for (const path of SPELLINGS) {
      expect((await call('GET', path, { 'x-api-key': ADMIN_KEY })).status, path).toBe(200);
      for (const method of ['GET', 'HEAD', 'OPTIONS', 'POST', 'DELETE']) {
        const member = await call(method, path, { 'x-api-key': MEMBER_KEY });
        expect(member.status, `${method} ${path}`).toBe(403);
        expect(member.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(member.headers.allow, `${method} ${path}`).toBeUndefined();
        const anonymous = await call(method, path, {});
        expect(anonymous.status, `${method} ${path}`).toBe(401);
      }
      const audience = await call('GET', path, { authorization: `Bearer ${wrongAudience}` });
      expect(audience.status, path).toBe(401);
      const role = await call('GET', path, { authorization: `Bearer ${memberToken}` });
      expect(role.status, path).toBe(403);
    }
    for (const path of REFUSED) {
      const res = await call('GET', path, { 'x-api-key': MEMBER_KEY });
      expect(res.status, path).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    // Nothing a refused caller sent reached the endpoint.
    const endpoint = await outgoing.delivery.endpoints.get('ep_a');
    expect(endpoint.disabled).toBeUndefined();
  });

  it("the example's route table alone refuses members, with the admin API's guard opened", async () => {
    const open: ExampleDelivery = {
      ...outgoing,
      admin: webhookAdmin(outgoing.delivery, { authorize: allowAnonymous() }),
    };
    const tableOnly = await listen(build(open));
    try {
      for (const path of SPELLINGS) {
        for (const method of ['GET', 'HEAD', 'OPTIONS', 'POST']) {
          const res = await rawRequest(tableOnly.port, {
            method,
            path,
            headers: { 'x-api-key': MEMBER_KEY },
          });
          expect(res.status, `${method} ${path}`).toBe(403);
        }
        const admin = await rawRequest(tableOnly.port, {
          method: 'GET',
          path,
          headers: { 'x-api-key': ADMIN_KEY },
        });
        expect(admin.status, path).toBe(200);
      }
    } finally {
      await tableOnly.close();
    }
  });
});
