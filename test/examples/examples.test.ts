import type { RequestListener } from 'node:http';
import { brotliDecompressSync } from 'node:zlib';
import request from 'supertest';
import { parseLinkHeader } from 'restwell';
import { audit, callbackSink, type ChainedRecord, verifyAuditLog } from 'restwell/audit';
import { generateWebhookSecret, hmacSigner } from 'restwell/webhooks';
import { parseApiKey } from 'restwell/auth';
import { SignJWT } from 'jose';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../examples/shared/auth.js';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { Repository, SEED_USERS } from '../../examples/shared/domain.js';
import type { ExampleLimits } from '../../examples/shared/rate-limits.js';
import { raw } from '../helpers/raw.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ADMIN_KEY,
  asClient,
  EXAMPLE_CREDENTIALS,
  JWT_SECRET,
  MEMBER_KEY,
} from '../helpers/example-client.js';

const PROBLEM = /^application\/problem\+json/;

const options = (limits?: ExampleLimits) => ({
  counters: new MemoryStore(),
  records: new MemoryStore({ evict: false }),
  logger: silentLogger,
  credentials: EXAMPLE_CREDENTIALS,
  ...(limits ? { limits } : {}),
});

/** `bare` is the app as anyone calls it; `make` as a client holding the member key does. */
const apps: Array<{
  name: string;
  bare(): RequestListener;
  make(limits?: ExampleLimits): RequestListener;
}> = [
  {
    name: 'express',
    bare: () => createExpressApp(options()) as unknown as RequestListener,
    make: (limits) => asClient(createExpressApp(options(limits)) as unknown as RequestListener),
  },
  {
    name: 'koa',
    bare: () => createKoaApp(options()).callback() as RequestListener,
    make: (limits) => asClient(createKoaApp(options(limits)).callback() as RequestListener),
  },
];

describe.each(apps)('example payments API on $name', ({ make, bare }) => {
  it('answers GET /health', async () => {
    const res = await request(make()).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['trace-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('needs an API key or a JWT on /v1, the admin role to delete a user, and fails closed', async () => {
    const app = make();
    const anonymous = await request(bare()).get('/v1/users').expect(401);
    expect(anonymous.headers['content-type']).toMatch(PROBLEM);
    expect(anonymous.body.code).toBe('authentication-required');
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="example", ApiKey /);
    const forged = await request(app)
      .get('/v1/users')
      .set('X-API-Key', `${MEMBER_KEY.slice(0, -1)}x`)
      .expect(401);
    expect(forged.body.code).toBe('invalid-api-key');
    expect(JSON.stringify(forged.body)).not.toContain(MEMBER_KEY.slice(0, -1));
    // A key in the URL is refused before it can be logged or cached anywhere.
    const inQuery = await request(app).get(`/v1/users?api_key=${MEMBER_KEY}`).expect(400);
    expect(inQuery.body.code).toBe('credentials-in-query');

    const denied = await request(app).delete('/v1/users/usr_ada').expect(403);
    expect(denied.body.code).toBe('access-denied');
    await request(app).get('/v1/users/usr_ada').expect(200);
    await request(app).delete('/v1/users/usr_ada').set('X-API-Key', ADMIN_KEY).expect(204);

    // A JWT signed with JWT_SECRET for this API's issuer and audience works as well as a key.
    const token = (claims: Record<string, unknown>) =>
      new SignJWT({ roles: ['admin'], ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('usr_grace')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(JWT_SECRET));
    const good = await token({ iss: JWT_ISSUER, aud: JWT_AUDIENCE });
    await request(app).get('/v1/users/usr_alan').set('Authorization', `Bearer ${good}`).expect(200);
    await request(app)
      .delete('/v1/users/usr_alan')
      .set('Authorization', `Bearer ${good}`)
      .expect(204);
    const otherApi = await token({ iss: JWT_ISSUER, aud: 'another-api' });
    const wrong = await request(app)
      .get('/v1/users')
      .set('Authorization', `Bearer ${otherApi}`)
      .expect(401);
    expect(wrong.headers['www-authenticate']).toMatch(/error="invalid_token"/);

    // Open: the probe, and the webhook receiver (its signature authenticates it).
    await request(bare()).get('/health').expect(200);
    const unsigned = await request(bare())
      .post('/webhooks/restwell')
      .send({ id: 'evt_1' })
      .expect(401);
    expect(unsigned.body.code).toBe('signature-missing');
    // No rule covers it: refused before any handler runs, whoever asks.
    const uncovered = await request(app).get('/admin').expect(403);
    expect(uncovered.headers['content-type']).toMatch(PROBLEM);
  });

  it('lists users in cursor pages, and reads one', async () => {
    const app = make();
    const ids: string[] = [];
    let url: string | undefined = '/v1/users';
    while (url !== undefined) {
      const page: request.Response = await request(app).get(url).expect(200);
      ids.push(...page.body.data.map((u: { id: string }) => u.id));
      url = parseLinkHeader(page.headers.link).find((l) => l.rel.includes('next'))?.href;
      expect(page.body.links.next).toBe(url);
    }
    // Fifty deterministic users, in pages of 20, oldest first: the seed's order.
    expect(SEED_USERS.length).toBeGreaterThanOrEqual(50);
    expect(ids).toEqual(new Repository().listUsers().map((u) => u.id));
    expect(ids.slice(0, 3)).toEqual(['usr_ada', 'usr_alan', 'usr_grace']);
    const one = await request(app).get('/v1/users/usr_ada').expect(200);
    expect(one.body).toMatchObject({ id: 'usr_ada', email: 'ada@example.com', version: 1 });
  });

  it('sorts users on an allowlist, counts them when asked, and refuses bad parameters in one problem', async () => {
    const app = make();
    const res = await request(app)
      .get('/v1/users?sort=-createdAt,name&limit=3&total=true')
      .expect(200);
    expect(res.body.data.map((u: { id: string }) => u.id)).toEqual([
      'usr_annie',
      'usr_mary',
      'usr_evelyn',
    ]);
    expect(res.body.pagination).toMatchObject({
      limit: 3,
      hasNext: true,
      hasPrev: false,
      total: SEED_USERS.length,
    });
    const byName = await request(app).get('/v1/users?sort=name&limit=2').expect(200);
    expect(byName.body.data.map((u: { name: string }) => u.name)).toEqual([
      'Ada Lovelace',
      'Adele Goldberg',
    ]);
    const bad = await request(app).get('/v1/users?sort=password&limit=1000').expect(400);
    expect(bad.headers['content-type']).toMatch(PROBLEM);
    expect(bad.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/limit',
      '/sort',
    ]);
    const forged = await request(app).get('/v1/users?cursor=AQAB').expect(400);
    expect(forged.body).toMatchObject({ code: 'invalid-cursor' });
  });

  it('revalidates a list page with its ETag: the same page is the same bytes', async () => {
    const app = make();
    const first = await request(app).get('/v1/users?limit=5').expect(200);
    expect(first.headers.etag).toBeDefined();
    await request(app)
      .get('/v1/users?limit=5')
      .set('If-None-Match', first.headers.etag as string)
      .expect(304);
  });

  it("pages one user's payments by amount, in a time window", async () => {
    const app = make({ payments: 100 });
    for (const [i, userId] of ['usr_ada', 'usr_alan', 'usr_ada', 'usr_ada'].entries()) {
      await request(app)
        .post('/v1/payments')
        .set('idempotency-key', `page-${i}`)
        .send({ amount: 100 + i, currency: 'EUR', userId })
        .expect(201);
    }
    const ada = await request(app)
      .get('/v1/payments?userId=usr_ada&sort=-amount&limit=2')
      .expect(200);
    expect(ada.body.data.map((p: { amount: number }) => p.amount)).toEqual([103, 102]);
    const next = await request(app)
      .get(ada.body.links.next as string)
      .expect(200);
    expect(next.body.data.map((p: { amount: number }) => p.amount)).toEqual([100]);
    // The cursor is bound to the filter it was made for.
    const other = await request(app)
      .get(
        `/v1/payments?userId=usr_alan&sort=-amount&limit=2&cursor=${ada.body.pagination.nextCursor}`,
      )
      .expect(400);
    expect(other.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
    const future = await request(app).get('/v1/payments?since=2999-01-01T00:00:00Z').expect(200);
    expect(future.body.data).toEqual([]);
    const all = await request(app).get('/v1/payments?until=2999-01-01T00:00:00Z').expect(200);
    expect(all.body.data).toHaveLength(4);
    await request(app).get('/v1/payments?since=last-week').expect(400);
    // A filter given twice is refused, never read as no filter at all.
    const twice = await request(app).get('/v1/payments?userId=usr_ada&userId=usr_alan').expect(400);
    expect(twice.body.errors[0]).toMatchObject({ in: 'query', pointer: '/userId' });
  });

  it('patches a user with a merge patch or a JSON Patch, and refuses other formats with Accept-Patch', async () => {
    const app = make();
    const options = await request(app).options('/v1/users/usr_ada');
    expect(options.headers['accept-patch']).toBe(
      'application/merge-patch+json, application/json-patch+json',
    );
    const jsonPatch = await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/json-patch+json')
      .send([
        { op: 'test', path: '/name', value: 'Alan Turing' },
        { op: 'replace', path: '/name', value: 'Alan M. Turing' },
      ])
      .expect(200);
    expect(jsonPatch.body).toMatchObject({ id: 'usr_alan', name: 'Alan M. Turing', version: 2 });
    expect(jsonPatch.body._links.self).toEqual({ href: '/v1/users/usr_alan' });
    const conflict = await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/json-patch+json')
      .send([{ op: 'test', path: '/name', value: 'Alan Turing' }])
      .expect(409);
    expect(conflict.body.code).toBe('json-patch-conflict');
    // Server-owned members cannot be patched.
    await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/merge-patch+json')
      .send({ version: 99 })
      .expect(422);
    // A merge patch built from what GET gave (links included) applies.
    const read = (await request(app).get('/v1/users/usr_alan')).body;
    await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/merge-patch+json')
      .send({ ...read, name: 'Alan Mathison Turing' })
      .expect(200);
    // Removing a server-owned member with another change refuses the whole patch.
    await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/json-patch+json')
      .send([
        { op: 'remove', path: '/id' },
        { op: 'replace', path: '/name', value: 'X' },
      ])
      .expect(422);
    const plain = await request(app).patch('/v1/users/usr_alan').send({ name: 'X' }).expect(415);
    expect(plain.headers['accept-patch']).toContain('application/merge-patch+json');
    const invalid = await request(app)
      .patch('/v1/users/usr_alan')
      .set('content-type', 'application/merge-patch+json')
      .send({ email: null })
      .expect(422);
    expect(invalid.headers['content-type']).toMatch(PROBLEM);
    expect((await request(app).get('/v1/users/usr_alan')).body).toMatchObject({
      version: 3,
      name: 'Alan Mathison Turing',
    });
  });

  it('replaces a user with PUT, sending back what GET gave, and refuses unknown members', async () => {
    const app = make();
    const read = await request(app).get('/v1/users/usr_grace').expect(200);
    const put = await request(app)
      .put('/v1/users/usr_grace')
      .send({ ...read.body, name: 'Grace B. M. Hopper' })
      .expect(200);
    expect(put.body).toMatchObject({
      name: 'Grace B. M. Hopper',
      email: 'grace@example.com',
      version: 2,
    });
    const unknown = await request(app)
      .put('/v1/users/usr_grace')
      .send({ email: 'grace@example.com', name: 'G', nickname: 'Amazing Grace' })
      .expect(400);
    expect(JSON.stringify(unknown.body.errors)).toContain('nickname');
  });

  it('links payments to themselves, the list and their user', async () => {
    const app = make({ payments: 100 });
    const created = await request(app)
      .post('/v1/payments')
      .set('idempotency-key', 'links-1')
      .send({ amount: 100, currency: 'EUR', userId: 'usr_ada' })
      .expect(201);
    expect(created.body._links).toEqual({
      self: { href: `/v1/payments/${created.body.id}` },
      collection: { href: '/v1/payments' },
      user: { href: '/v1/users/usr_ada' },
    });
    const orphan = await request(app)
      .post('/v1/payments')
      .set('idempotency-key', 'links-2')
      .send({ amount: 100, currency: 'EUR', userId: '../admin' })
      .expect(201);
    expect(orphan.body._links.user).toBeUndefined();
  });

  it('answers an unknown user with a 404 problem', async () => {
    const res = await request(make()).get('/v1/users/usr_nobody').expect(404);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({
      status: 404,
      code: 'not-found',
      detail: 'No user usr_nobody.',
    });
  });

  it('creates a user with 201 and Location, then updates it', async () => {
    const app = make();
    const created = await request(app)
      .post('/v1/users')
      .send({ email: 'k@example.com', name: 'Katherine' })
      .expect(201);
    expect(created.headers.location).toBe(`/v1/users/${created.body.id}`);
    const location = String(created.headers.location);
    const patched = await request(app)
      .patch(location)
      .set('content-type', 'application/merge-patch+json')
      .send({ name: 'Katherine Johnson' })
      .expect(200);
    expect(patched.body).toMatchObject({ name: 'Katherine Johnson', version: 2 });
    await request(app).delete(location).set('X-API-Key', ADMIN_KEY).expect(204);
    await request(app).get(location).expect(404);
  });

  it('lists every invalid field of a payment at once', async () => {
    const res = await request(make())
      .post('/v1/payments')
      .set('Idempotency-Key', 'k-invalid')
      .send({ amount: -5, currency: 'euro' })
      .expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.code).toBe('validation-failed');
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/amount',
      '/currency',
      '/userId',
    ]);
  });

  it('creates and reads a payment', async () => {
    const app = make();
    const created = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', 'k-create')
      .send({ amount: 1000, currency: 'EUR', userId: 'usr_ada' })
      .expect(201);
    expect(created.body).toMatchObject({ amount: 1000, currency: 'EUR', status: 'succeeded' });
    const read = await request(app).get(`/v1/payments/${created.body.id}`).expect(200);
    expect(read.body).toEqual(created.body);
  });

  it.each([
    ['malformed JSON', '{"amount":', 'application/json', 400, 'malformed-json'],
    [
      'a non-JSON media type',
      'amount=1',
      'application/x-www-form-urlencoded',
      415,
      'unsupported-media-type',
    ],
    [
      'a body over the limit',
      JSON.stringify({ description: 'x'.repeat(70_000) }),
      'application/json',
      413,
      'payload-too-large',
    ],
  ])('answers %s with a problem', async (_name, body, type, status, code) => {
    const res = await request(make())
      .post('/v1/payments')
      .set('content-type', type)
      .send(body)
      .expect(status);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({ status, code });
  });

  it('requires an Idempotency-Key on POST /v1/payments and replays a retry', async () => {
    const app = make();
    const missing = await request(app)
      .post('/v1/payments')
      .send({ amount: 1, currency: 'EUR', userId: 'usr_ada' })
      .expect(400);
    expect(missing.body.code).toBe('idempotency-key-missing');
    const body = { amount: 2500, currency: 'EUR', userId: 'usr_ada' };
    const first = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', 'order-7')
      .send(body)
      .expect(201);
    const retry = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', 'order-7')
      .send(body)
      .expect(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect((await request(app).get('/v1/payments').expect(200)).body.data).toHaveLength(1);
    const reused = await request(app)
      .post('/v1/payments')
      .set('Idempotency-Key', 'order-7')
      .send({ ...body, amount: 1 })
      .expect(422);
    expect(reused.body.code).toBe('idempotency-key-reused');
  });

  it('states its rate limits and limits payments more strictly than reads', async () => {
    const app = make({ perIp: 5, payments: 2 });
    const read = await request(app).get('/v1/users').expect(200);
    expect(read.headers['ratelimit-policy']).toBe('"per-ip";q=5;w=60, "per-client";q=5000;w=3600');
    expect(read.headers.ratelimit).toBe('"per-ip";r=4;t=12');
    const pay = (key: string) =>
      request(app)
        .post('/v1/payments')
        .set('idempotency-key', key)
        .send({ amount: 100, currency: 'EUR', userId: 'usr_ada' });
    await pay('rl-1').expect(201);
    await pay('rl-2').expect(201);
    const refused = await pay('rl-3').expect(429);
    expect(refused.headers['content-type']).toMatch(PROBLEM);
    expect(refused.body).toMatchObject({ code: 'rate-limited', policy: 'payments' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Health probes are never limited.
    for (let i = 0; i < 6; i++) await request(app).get('/health').expect(200);
  });

  it('versions users: ETag and 304 on reads, 412 on a stale If-Match before anything is written', async () => {
    const app = make();
    const first = await request(app).get('/v1/users/usr_ada').expect(200);
    expect(first.headers.etag).toBe('"v1"');
    expect(first.headers['last-modified']).toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(first.headers['cache-control']).toBe('private, no-cache');
    const cached = await request(app)
      .get('/v1/users/usr_ada')
      .set('If-None-Match', '"v1"')
      .expect(304);
    expect(cached.text).toBe('');
    expect(cached.headers.etag).toBe('"v1"');

    const patched = await request(app)
      .patch('/v1/users/usr_ada')
      .set('If-Match', '"v1"')
      .set('content-type', 'application/merge-patch+json')
      .send({ name: 'Ada King' })
      .expect(200);
    expect(patched.headers.etag).toBe('"v2"');
    // Another client still holds v1: its write is refused and changes nothing.
    const stale = await request(app)
      .put('/v1/users/usr_ada')
      .set('If-Match', '"v1"')
      .send({ email: 'ada@example.org', name: 'Lost Update' })
      .expect(412);
    expect(stale.headers['content-type']).toMatch(PROBLEM);
    expect(stale.body.code).toBe('precondition-failed');
    const now = await request(app).get('/v1/users/usr_ada').expect(200);
    expect(now.body).toMatchObject({ name: 'Ada King', version: 2 });
    await request(app).get('/v1/users/usr_ada').set('If-None-Match', '"v1"').expect(200);
    await request(app)
      .delete('/v1/users/usr_ada')
      .set('X-API-Key', ADMIN_KEY)
      .set('If-Match', '"v1"')
      .expect(412);
    await request(app)
      .delete('/v1/users/usr_ada')
      .set('X-API-Key', ADMIN_KEY)
      .set('If-Match', '"v2"')
      .expect(204);
  });

  it('compresses list responses the client accepts, and gets the same body back', async () => {
    const app = make({ payments: 100 });
    for (let i = 0; i < 12; i++) {
      await request(app)
        .post('/v1/payments')
        .set('idempotency-key', `list-${i}`)
        .send({ amount: 100 + i, currency: 'EUR', userId: 'usr_ada', description: 'a list entry' })
        .expect(201);
    }
    const plain = await request(app)
      .get('/v1/payments')
      .set('Accept-Encoding', 'identity')
      .expect(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toMatch(/accept-encoding/i);
    // Bytes as sent: supertest would decode them.
    const br = await raw(app, {
      path: '/v1/payments',
      headers: { 'accept-encoding': 'gzip;q=0.5, br' },
    });
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.body.length).toBeLessThan(Buffer.byteLength(plain.text) / 2);
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(plain.body);
    // The compressed representation has its own strong ETag, and revalidates with it.
    expect(br.headers.etag).not.toBe(plain.headers.etag);
    await request(app)
      .get('/v1/payments')
      .set('Accept-Encoding', 'br')
      .set('If-None-Match', br.headers.etag as string)
      .expect(304);
  });

  it('answers an unsupported method with 405 and Allow', async () => {
    const res = await request(make()).delete('/v1/payments').expect(405);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(String(res.headers.allow).split(/\s*,\s*/)).toEqual(
      expect.arrayContaining(['GET', 'POST']),
    );
  });

  it('answers an unknown route with a 404 problem', async () => {
    const res = await request(make()).get('/v2/anything').expect(404);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.code).toBe('not-found');
  });
});

describe.each([
  { name: 'express', create: createExpressApp as unknown as typeof createKoaApp },
  { name: 'koa', create: createKoaApp },
])('the example audit log on $name', ({ name, create }) => {
  it('records every write, chained, and no GET', async () => {
    const records: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: 'example-audit-key-'.repeat(2),
      log: 'example-api',
      logger: silentLogger,
    });
    const built = create({
      counters: new MemoryStore(),
      records: new MemoryStore({ evict: false }),
      logger: silentLogger,
      credentials: EXAMPLE_CREDENTIALS,
      auditLog,
    });
    const app = asClient(
      (name === 'koa'
        ? (built as { callback(): RequestListener }).callback()
        : built) as RequestListener,
      ADMIN_KEY,
    );
    await request(app)
      .post('/v1/payments')
      .set('idempotency-key', 'audit-1')
      .send({ amount: 100, currency: 'EUR', userId: 'usr_ada' })
      .expect(201);
    await request(app).get('/v1/users').expect(200);
    await request(app).delete('/v1/users/usr_ada').expect(204);
    await auditLog.flush();
    expect(records.map((r) => [r.method, r.status, r.seq])).toEqual([
      ['POST', 201, 1],
      ['DELETE', 204, 2],
    ]);
    // The principal the API key names (its public id) is on every record; its secret is on none.
    const adminId = `key:${parseApiKey(ADMIN_KEY)!.id}`;
    expect(records.map((r) => (r.principal as { id?: string } | undefined)?.id)).toEqual([
      adminId,
      adminId,
    ]);
    expect(JSON.stringify(records)).not.toContain(ADMIN_KEY);
    expect(verifyAuditLog(records, { key: 'example-audit-key-'.repeat(2) }).ok).toBe(true);
  });
});

describe.each([
  { name: 'express', create: createExpressApp as unknown as typeof createKoaApp },
  { name: 'koa', create: createKoaApp },
])('the example webhook receiver on $name', ({ name, create }) => {
  it('verifies, dedupes and applies payment events in order', async () => {
    const secret = generateWebhookSecret();
    const built = create({
      counters: new MemoryStore(),
      records: new MemoryStore({ evict: false }),
      logger: silentLogger,
      credentials: EXAMPLE_CREDENTIALS,
      webhookSecret: secret,
    });
    const app = (
      name === 'koa' ? (built as { callback(): RequestListener }).callback() : built
    ) as RequestListener;
    const signer = hmacSigner({ secrets: [secret] });
    const send = (event: object) => {
      const body = JSON.stringify(event);
      return request(app)
        .post('/webhooks/restwell')
        .set('content-type', 'application/json')
        .set(signer.sign(body))
        .send(body);
    };
    const succeeded = {
      id: 'evt_2',
      type: 'payment.succeeded',
      sequence: 2,
      data: { paymentId: 'pay_1', status: 'succeeded' },
    };
    const created = {
      id: 'evt_1',
      type: 'payment.created',
      sequence: 1,
      data: { paymentId: 'pay_1', status: 'pending' },
    };
    expect((await send(succeeded).expect(200)).body).toEqual({
      paymentId: 'pay_1',
      applied: true,
      status: 'succeeded',
    });
    // The seed's late payment.created never overwrites payment.succeeded.
    expect((await send(created).expect(200)).body).toEqual({
      paymentId: 'pay_1',
      applied: false,
      status: 'succeeded',
    });
    expect((await send(created).expect(200)).body).toMatchObject({ duplicate: true });
    const forged = await request(app)
      .post('/webhooks/restwell')
      .set('content-type', 'application/json')
      .set(signer.sign('{"id":"evt_3"}'))
      .send('{"id":"evt_4"}')
      .expect(401);
    expect(forged.body.code).toBe('signature-mismatch');
    await request(app).post('/webhooks/restwell').send({ id: 'evt_5' }).expect(401);
  });
});

describe.each(apps)('the example versions on $name', ({ make }) => {
  it('answers payments in the dated version asked, newest by default, and names it', async () => {
    const app = make({ payments: 100 });
    const created = await request(app)
      .post('/v1/payments')
      .set('idempotency-key', 'versions-1')
      .send({ amount: 100, currency: 'EUR', userId: 'usr_ada' })
      .expect(201);
    expect(created.headers['api-version']).toBe('2025-06-01');
    expect(typeof created.body.created).toBe('number');
    expect(created.body.createdAt).toBeUndefined();
    const old = await request(app)
      .get(`/v1/payments/${created.body.id}`)
      .set('Api-Version', '2024-11-20')
      .expect(200);
    expect(old.headers['api-version']).toBe('2024-11-20');
    expect(old.headers.vary).toMatch(/api-version/i);
    expect(old.body.createdAt).toBe(new Date(created.body.created * 1000).toISOString());
    expect(old.body.created).toBeUndefined();
    const list = await request(app)
      .get('/v1/payments')
      .set('Api-Version', '2024-11-20')
      .expect(200);
    expect(list.body.data[0].createdAt).toBeDefined();
    const unknown = await request(app)
      .get('/v1/payments')
      .set('Api-Version', '2023-01-01')
      .expect(400);
    expect(unknown.body.code).toBe('version-unsupported');
  });

  it('marks the deprecated status route with RFC 9745 Deprecation, RFC 8594 Sunset and links', async () => {
    const app = make({ payments: 100 });
    const created = await request(app)
      .post('/v1/payments')
      .set('idempotency-key', 'versions-2')
      .send({ amount: 100, currency: 'EUR', userId: 'usr_ada' })
      .expect(201);
    const res = await request(app).get(`/v1/payments/${created.body.id}/status`).expect(200);
    expect(res.body).toEqual({ status: 'succeeded' });
    expect(res.headers.deprecation).toBe(`@${Date.UTC(2026, 0, 1) / 1000}`);
    expect(res.headers.sunset).toBe('Wed, 30 Jun 2027 00:00:00 GMT');
    const rels = parseLinkHeader(res.headers.link).flatMap((l) => l.rel);
    expect(rels).toEqual(expect.arrayContaining(['deprecation', 'sunset', 'successor-version']));
  });
});
