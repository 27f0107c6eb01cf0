/**
 * The example payments API attacked as a hostile client, on Express and Koa, where two
 * mechanisms meet: idempotency and authentication, idempotency and outgoing webhooks,
 * idempotency and versioning, rate limits and authentication, conditional requests and
 * versioning and compression, pagination and versioning, the audit log and authentication, CORS
 * and authentication, request hygiene and routing, the webhook receiver and rate limits, the
 * admin API and versioning, the deprecated route and errors. Every refusal is a problem.
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import Koa from 'koa';
import { jsonBody, type Store } from 'restwell';
import { koaAdapter } from 'restwell/koa';
import { audit, callbackSink, type ChainedRecord } from 'restwell/audit';
import { parseApiKey } from 'restwell/auth';
import { idempotency } from 'restwell/idempotency';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../examples/shared/auth.js';
import { deliveryOf, localDelivery } from '../../examples/shared/delivery.js';
import { Repository } from '../../examples/shared/domain.js';
import type { ExampleLimits } from '../../examples/shared/rate-limits.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ADMIN_KEY,
  EXAMPLE_CREDENTIALS,
  JWT_SECRET,
  MEMBER_KEY,
} from '../helpers/example-client.js';

const PROBLEM = /^application\/problem\+json/;
const ORIGIN = 'http://localhost:5173';
/** A second member: another client with the same role as MEMBER_KEY. */
const OTHER_MEMBER_KEY = createApiKey().key;
const PAYMENT = { amount: 100, currency: 'EUR', userId: 'usr_ada' };

type Create = typeof createKoaApp;
const adapters: Array<{ name: string; listener(o: Parameters<Create>[0]): RequestListener }> = [
  { name: 'express', listener: (o) => createExpressApp(o) as unknown as RequestListener },
  { name: 'koa', listener: (o) => createKoaApp(o).callback() as RequestListener },
];

interface Built {
  app: RequestListener;
  repo: Repository;
  audits: ChainedRecord[];
  /** Event types handed to the delivery engine, in order. */
  emitted: string[];
  /** The next `n` dispatches fail, as a queue that is down would. */
  failDispatches(n: number): void;
  flush(): Promise<void>;
}

function token(subject: string, roles: string[] = ['member']): Promise<string> {
  return new SignJWT({ roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe.each(adapters)('the example API attacked on $name', ({ listener }) => {
  function build(
    options: {
      limits?: ExampleLimits;
      records?: Store;
      apiKeys?: Array<{ key: string; role: string }>;
      webhookSecret?: string;
    } = {},
  ): Built {
    const repo = new Repository();
    const audits: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => {
        audits.push(r);
      }),
      key: 'review-audit-key-'.repeat(2),
      log: 'review',
    });
    const outgoing = deliveryOf(localDelivery());
    const emitted: string[] = [];
    let failing = 0;
    const dispatch = outgoing.delivery.dispatch.bind(outgoing.delivery);
    outgoing.delivery.dispatch = (async (event: Parameters<typeof dispatch>[0]) => {
      if (failing > 0) {
        failing--;
        throw new Error('the queue is down');
      }
      emitted.push(event.type);
      return dispatch(event);
    }) as typeof dispatch;
    const app = listener({
      counters: new MemoryStore(),
      records: options.records ?? new MemoryStore({ evict: false }),
      repo,
      logger: silentLogger,
      credentials: {
        ...EXAMPLE_CREDENTIALS,
        apiKeys: options.apiKeys ?? [
          ...EXAMPLE_CREDENTIALS.apiKeys,
          { key: OTHER_MEMBER_KEY, role: 'member' },
        ],
      },
      auditLog,
      outgoing,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.webhookSecret ? { webhookSecret: options.webhookSecret } : {}),
    });
    return {
      app,
      repo,
      audits,
      emitted,
      failDispatches: (n) => {
        failing = n;
      },
      flush: () => auditLog.flush(),
    };
  }

  const pay = (app: RequestListener, key: string, idempotencyKey: string, version?: string) => {
    const req = request(app)
      .post('/v1/payments')
      .set('X-API-Key', key)
      .set('Idempotency-Key', idempotencyKey);
    return (version ? req.set('Api-Version', version) : req).send(PAYMENT);
  };

  describe('idempotency × authentication', () => {
    it('never replays one client’s payment to another client holding a key of the same role', async () => {
      const { app, repo } = build();
      const first = await pay(app, MEMBER_KEY, 'order-1').expect(201);
      const other = await pay(app, OTHER_MEMBER_KEY, 'order-1').expect(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
      expect(other.body.id).not.toBe(first.body.id);
      expect(repo.payments.size).toBe(2);
      // The owner's retry still replays its own answer.
      const retry = await pay(app, MEMBER_KEY, 'order-1').expect(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.id).toBe(first.body.id);
    });

    it('never replays a key’s payment to a token whose subject reads like that key’s principal', async () => {
      const { app, repo } = build();
      const first = await pay(app, MEMBER_KEY, 'order-2').expect(201);
      const lookalike = await token(`key:${parseApiKey(MEMBER_KEY)!.id}`);
      const res = await request(app)
        .post('/v1/payments')
        .set('Authorization', `Bearer ${lookalike}`)
        .set('Idempotency-Key', 'order-2')
        .send(PAYMENT)
        .expect(201);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      expect(res.body.id).not.toBe(first.body.id);
      expect(repo.payments.size).toBe(2);
    });

    it('answers a key removed since with 401, never with the payment it made', async () => {
      const records = new MemoryStore({ evict: false });
      const before = build({ records });
      await pay(before.app, OTHER_MEMBER_KEY, 'order-3').expect(201);
      // The same ledger, after a restart without that key (revoked, rotated away).
      const after = build({ records, apiKeys: [...EXAMPLE_CREDENTIALS.apiKeys] });
      const res = await pay(after.app, OTHER_MEMBER_KEY, 'order-3').expect(401);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body.code).toBe('invalid-api-key');
      expect(JSON.stringify(res.body)).not.toContain('pay_');
    });

    it('keeps no 401 or 403 under a key: the same key then runs once the caller authenticates', async () => {
      const { app, repo } = build();
      const anonymous = await request(app)
        .post('/v1/payments')
        .set('Idempotency-Key', 'order-4')
        .send(PAYMENT)
        .expect(401);
      expect(anonymous.headers['content-type']).toMatch(PROBLEM);
      const forged = await request(app)
        .post('/v1/payments')
        .set('X-API-Key', `${MEMBER_KEY.slice(0, -1)}x`)
        .set('Idempotency-Key', 'order-4')
        .send(PAYMENT)
        .expect(401);
      expect(forged.headers['content-type']).toMatch(PROBLEM);
      const made = await pay(app, MEMBER_KEY, 'order-4').expect(201);
      expect(made.headers['idempotent-replayed']).toBeUndefined();
      expect(repo.payments.size).toBe(1);
    });
  });

  describe('idempotency × outgoing webhooks', () => {
    it('emits a payment’s events once: never for a replay, once for concurrent duplicates', async () => {
      const { app, repo, emitted } = build();
      await pay(app, MEMBER_KEY, 'evt-1').expect(201);
      await pay(app, MEMBER_KEY, 'evt-1').expect(201);
      expect(emitted).toEqual(['payment.created', 'payment.succeeded']);
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => pay(app, MEMBER_KEY, 'evt-2')),
      );
      // One ran; the others replayed it or were told it is in flight (409, a problem).
      for (const res of answers) {
        expect([201, 409]).toContain(res.status);
        if (res.status === 409) expect(res.headers['content-type']).toMatch(PROBLEM);
      }
      expect(new Set(answers.filter((r) => r.status === 201).map((r) => r.body.id)).size).toBe(1);
      expect(emitted).toEqual([
        'payment.created',
        'payment.succeeded',
        'payment.created',
        'payment.succeeded',
      ]);
      expect(repo.payments.size).toBe(2);
    });

    it('keeps the 5xx of a payment whose events failed to queue: a retry never charges again', async () => {
      const { app, repo, failDispatches } = build();
      failDispatches(1);
      const failed = await pay(app, MEMBER_KEY, 'evt-3').expect(500);
      expect(failed.headers['content-type']).toMatch(PROBLEM);
      expect(JSON.stringify(failed.body)).not.toContain('the queue is down');
      const retry = await pay(app, MEMBER_KEY, 'evt-3').expect(500);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(repo.payments.size).toBe(1);
      // A new key is a new attempt.
      await pay(app, MEMBER_KEY, 'evt-4').expect(201);
      expect(repo.payments.size).toBe(2);
    });
  });

  describe('idempotency × versioning', () => {
    it('replays a payment in the Api-Version the retry asks for, and names it', async () => {
      const { app } = build();
      const old = await pay(app, MEMBER_KEY, 'ver-1', '2024-11-20').expect(201);
      expect(old.headers['api-version']).toBe('2024-11-20');
      expect(typeof old.body.createdAt).toBe('string');
      expect(old.body.created).toBeUndefined();
      const newer = await pay(app, MEMBER_KEY, 'ver-1', '2025-06-01').expect(201);
      expect(newer.headers['idempotent-replayed']).toBe('true');
      expect(newer.headers['api-version']).toBe('2025-06-01');
      expect(newer.body.id).toBe(old.body.id);
      expect(newer.body.created).toBe(Math.floor(Date.parse(old.body.createdAt) / 1000));
      expect(newer.body.createdAt).toBeUndefined();
      // The response varies by the version asked, and says so to caches.
      expect(String(newer.headers.vary)).toMatch(/Api-Version/i);
    });
  });

  describe('versioning × routing', () => {
    it('lists payments in the newest shape by default and the older one when asked', async () => {
      const { app } = build();
      await pay(app, MEMBER_KEY, 'list-1').expect(201);
      const newest = await request(app)
        .get('/v1/payments')
        .set('X-API-Key', MEMBER_KEY)
        .expect(200);
      expect(typeof newest.body.data[0].created).toBe('number');
      expect(newest.body.data[0].createdAt).toBeUndefined();
      const older = await request(app)
        .get('/v1/payments')
        .set('X-API-Key', MEMBER_KEY)
        .set('Api-Version', '2024-11-20')
        .expect(200);
      expect(typeof older.body.data[0].createdAt).toBe('string');
      expect(older.body.data[0].created).toBeUndefined();
    });

    it('answers a v1 client in the v1 shape at every spelling of a path the router accepts', async () => {
      const { app } = build();
      for (const path of ['/v1/users', '/V1/Users', '/v1/users/', '/V1/USERS/']) {
        const res = await request(app).get(path).set('X-API-Key', MEMBER_KEY).expect(200);
        expect(res.body.data[0], path).toHaveProperty('name', 'Ada Lovelace');
        expect(res.body.data[0], path).not.toHaveProperty('fullName');
      }
      for (const path of ['/v1/users/usr_ada', '/V1/Users/usr_ada', '/v1/users/usr_ada/']) {
        const res = await request(app).get(path).set('X-API-Key', MEMBER_KEY).expect(200);
        expect(res.body, path).toHaveProperty('name', 'Ada Lovelace');
      }
      await pay(app, MEMBER_KEY, 'list-2').expect(201);
      for (const path of ['/v1/payments', '/V1/Payments', '/v1/payments/']) {
        const res = await request(app)
          .get(path)
          .set('X-API-Key', MEMBER_KEY)
          .set('Api-Version', '2024-11-20')
          .expect(200);
        expect(typeof res.body.data[0].createdAt, path).toBe('string');
        expect(res.body.data[0].created, path).toBeUndefined();
      }
    });
  });

  describe('rate limits × authentication', () => {
    it('limits forged credentials per IP before checking them: a 401 flood meets a 429', async () => {
      const { app } = build({ limits: { unverifiedPerIp: 5 } });
      const forged = 'rwk_000000000000_00000000000000000000000000000000';
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        const res = await request(app).get('/v1/users').set('X-API-Key', forged);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
      const limited = await request(app).get('/v1/users').set('X-API-Key', MEMBER_KEY).expect(429);
      expect(limited.body.code).toBe('rate-limited');
      expect(limited.headers['retry-after']).toMatch(/^\d+$/);
      // Probes are never limited.
      await request(app).get('/health').expect(200);
    });

    it('states the same limits as before to a client within its budget', async () => {
      const { app } = build({ limits: { perIp: 5 } });
      const res = await request(app).get('/v1/users').set('X-API-Key', MEMBER_KEY).expect(200);
      expect(res.headers['ratelimit-policy']).toBe('"per-ip";q=5;w=60, "per-client";q=5000;w=3600');
      expect(res.headers.ratelimit).toBe('"per-ip";r=4;t=12');
    });

    it('keys the per-client limit on each verified principal: another key of the same role has its own', async () => {
      const { app } = build({ limits: { perClient: 2 } });
      await request(app).get('/v1/users/usr_ada').set('X-API-Key', MEMBER_KEY).expect(200);
      await request(app).get('/v1/users/usr_ada').set('X-API-Key', MEMBER_KEY).expect(200);
      const third = await request(app)
        .get('/v1/users/usr_ada')
        .set('X-API-Key', MEMBER_KEY)
        .expect(429);
      expect(third.headers['content-type']).toMatch(PROBLEM);
      await request(app).get('/v1/users/usr_ada').set('X-API-Key', OTHER_MEMBER_KEY).expect(200);
      // A token whose subject reads like the exhausted key's principal is someone else too.
      const lookalike = await token(`key:${parseApiKey(MEMBER_KEY)!.id}`);
      await request(app)
        .get('/v1/users/usr_ada')
        .set('Authorization', `Bearer ${lookalike}`)
        .expect(200);
    });
  });

  describe('conditional × versioning × compression', () => {
    it('names the row version in the ETag of both URI versions, so a v1 validator holds on v2', async () => {
      const { app } = build();
      const v1 = await request(app).get('/v1/users/usr_grace').set('X-API-Key', MEMBER_KEY);
      const v2 = await request(app).get('/v2/users/usr_grace').set('X-API-Key', MEMBER_KEY);
      expect(v1.headers.etag).toBe('"v1"');
      expect(v2.headers.etag).toBe('"v1"');
      expect(v1.body.name).toBe(v2.body.fullName);
      const notModified = await request(app)
        .get('/v2/users/usr_grace')
        .set('X-API-Key', MEMBER_KEY)
        .set('If-None-Match', v1.headers.etag!)
        .expect(304);
      expect(notModified.headers.etag).toBe('"v1"');
      const put = await request(app)
        .put('/v2/users/usr_grace')
        .set('X-API-Key', MEMBER_KEY)
        .set('If-Match', v1.headers.etag!)
        .send({ email: 'grace@example.com', fullName: 'Grace B. Hopper' })
        .expect(200);
      expect(put.headers.etag).toBe('"v2"');
      // The v1 validator is now stale on either version: 412, a problem, nothing written.
      const stale = await request(app)
        .put('/v1/users/usr_grace')
        .set('X-API-Key', MEMBER_KEY)
        .set('If-Match', v1.headers.etag!)
        .send({ email: 'grace@example.com', name: 'Grace Hopper' })
        .expect(412);
      expect(stale.headers['content-type']).toMatch(PROBLEM);
      const now = await request(app).get('/v1/users/usr_grace').set('X-API-Key', MEMBER_KEY);
      expect(now.body.name).toBe('Grace B. Hopper');
    });

    it('gives each version and each coding of a list its own ETag, and revalidates each', async () => {
      const { app } = build();
      const get = (path: string, encoding: string, etag?: string) => {
        const req = request(app)
          .get(path)
          .set('X-API-Key', MEMBER_KEY)
          .set('Accept-Encoding', encoding);
        return etag ? req.set('If-None-Match', etag) : req;
      };
      const tags = new Set<string>();
      for (const path of ['/v1/users', '/v2/users']) {
        for (const encoding of ['br', 'identity']) {
          const res = await get(path, encoding).expect(200);
          expect(String(res.headers.vary)).toMatch(/Accept-Encoding/);
          tags.add(res.headers.etag!);
          await get(path, encoding, res.headers.etag).expect(304);
        }
      }
      expect(tags.size).toBe(4);
      // A v1 list's validator is not the v2 list's.
      const v1 = await get('/v1/users', 'identity').expect(200);
      await get('/v2/users', 'identity', v1.headers.etag).expect(200);
    });
  });

  describe('pagination × versioning', () => {
    it('refuses a v1 cursor on v2 with a problem, and sorts v2 by the member v2 names', async () => {
      const { app } = build();
      const page = await request(app)
        .get('/v1/users?limit=2')
        .set('X-API-Key', MEMBER_KEY)
        .expect(200);
      const next = page.body.links.next as string;
      const cursor = new URL(next, 'http://x').searchParams.get('cursor')!;
      const crossed = await request(app)
        .get(`/v2/users?limit=2&cursor=${cursor}`)
        .set('X-API-Key', MEMBER_KEY)
        .expect(400);
      expect(crossed.headers['content-type']).toMatch(PROBLEM);
      expect(crossed.body.code).toBe('invalid-cursor');
      const byFullName = await request(app)
        .get('/v2/users?sort=fullName&limit=3')
        .set('X-API-Key', MEMBER_KEY)
        .expect(200);
      const byName = await request(app)
        .get('/v1/users?sort=name&limit=3')
        .set('X-API-Key', MEMBER_KEY)
        .expect(200);
      expect(byFullName.body.data.map((u: { id: string }) => u.id)).toEqual(
        byName.body.data.map((u: { id: string }) => u.id),
      );
      const bad = await request(app)
        .get('/v2/users?sort=password')
        .set('X-API-Key', MEMBER_KEY)
        .expect(400);
      expect(bad.headers['content-type']).toMatch(PROBLEM);
    });
  });

  describe('audit × authentication', () => {
    it('records who wrote, refused writes too, and no key, token or signature anywhere', async () => {
      const secret = 'whsec_'.concat(Buffer.alloc(32, 7).toString('base64'));
      const { app, audits, flush } = build({ webhookSecret: secret });
      const jwt = await token('usr_grace', ['admin']);
      await pay(app, MEMBER_KEY, 'audit-1').expect(201);
      await pay(app, OTHER_MEMBER_KEY, 'audit-1').expect(201);
      await request(app)
        .post('/v1/payments')
        .set('Authorization', `Bearer ${jwt}`)
        .set('Idempotency-Key', 'audit-2')
        .send(PAYMENT)
        .expect(201);
      await request(app).delete('/v1/users/usr_ada').set('X-API-Key', MEMBER_KEY).expect(403);
      await request(app)
        .post('/v1/payments')
        .set('X-API-Key', `${ADMIN_KEY.slice(0, -1)}x`)
        .set('Idempotency-Key', 'audit-3')
        .send(PAYMENT)
        .expect(401);
      await request(app)
        .post('/webhooks/restwell')
        .set('X-Signature', `t=1,v1=${'ab'.repeat(32)}`)
        .set('webhook-signature', `v1,${Buffer.alloc(32).toString('base64')}`)
        .send({ id: 'evt_1' })
        .expect(401);
      await flush();
      const who = audits.map((r) => [
        r.method,
        r.status,
        (r.principal as { id?: string } | null)?.id ?? null,
      ]);
      expect(who).toEqual([
        ['POST', 201, `key:${parseApiKey(MEMBER_KEY)!.id}`],
        ['POST', 201, `key:${parseApiKey(OTHER_MEMBER_KEY)!.id}`],
        ['POST', 201, 'usr_grace'],
        ['DELETE', 403, `key:${parseApiKey(MEMBER_KEY)!.id}`],
        ['POST', 401, null],
        ['POST', 401, null],
      ]);
      const text = JSON.stringify(audits);
      for (const key of [MEMBER_KEY, OTHER_MEMBER_KEY, ADMIN_KEY]) {
        // Neither the key nor its secret half.
        expect(text).not.toContain(key);
        expect(text).not.toContain(key.slice(key.lastIndexOf('_') + 1));
      }
      expect(text).not.toContain(ADMIN_KEY.slice(0, -1));
      expect(text).not.toContain(jwt);
      expect(text).not.toContain(jwt.split('.')[2]!);
      expect(text).not.toContain('ab'.repeat(32));
      expect(text).not.toContain(secret);
    });
  });

  describe('CORS × authentication × versioning', () => {
    it('answers a preflight without credentials, and lets the page send Api-Version and Idempotency-Key', async () => {
      const { app } = build();
      const res = await request(app)
        .options('/v1/payments')
        .set('Origin', ORIGIN)
        .set('Access-Control-Request-Method', 'POST')
        .set(
          'Access-Control-Request-Headers',
          'api-version, idempotency-key, x-api-key, content-type',
        )
        .expect(204);
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
      const allowed = String(res.headers['access-control-allow-headers']).toLowerCase();
      for (const h of ['api-version', 'idempotency-key', 'x-api-key', 'content-type', 'if-match']) {
        expect(allowed).toContain(h);
      }
    });

    it('lets the page read a 401, its challenge and the version that answered', async () => {
      const { app } = build();
      const res = await request(app).get('/v1/payments').set('Origin', ORIGIN).expect(401);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
      const exposed = String(res.headers['access-control-expose-headers']).toLowerCase();
      expect(exposed).toContain('www-authenticate');
      expect(res.headers['www-authenticate']).toBeDefined();
      const ok = await request(app)
        .get('/v1/payments')
        .set('Origin', ORIGIN)
        .set('X-API-Key', MEMBER_KEY)
        .expect(200);
      const exposedOk = String(ok.headers['access-control-expose-headers']).toLowerCase();
      for (const h of ['api-version', 'ratelimit', 'link', 'etag', 'trace-id']) {
        expect(exposedOk).toContain(h);
      }
      const forbidden = await request(app)
        .delete('/v1/users/usr_ada')
        .set('Origin', ORIGIN)
        .set('X-API-Key', MEMBER_KEY)
        .expect(403);
      expect(forbidden.headers['access-control-allow-origin']).toBe(ORIGIN);
    });
  });

  describe('hygiene × routing × authorization', () => {
    it('refuses a member’s DELETE at every spelling of the path, and a traversal before routing', async () => {
      const { app, repo } = build();
      for (const path of [
        '/v1/users/usr_alan',
        '/V1/USERS/usr_alan',
        '/v1/users/usr_alan/',
        '/v1//users/usr_alan',
        '/v2/Users/usr_alan',
        '/v1/users/usr_alan;x',
        '/v1/users/%75sr_alan',
      ]) {
        const res = await request(app).delete(path).set('X-API-Key', MEMBER_KEY);
        expect([400, 403, 404], path).toContain(res.status);
        expect(res.headers['content-type'], path).toMatch(PROBLEM);
      }
      expect(repo.users.has('usr_alan')).toBe(true);
      for (const path of [
        '/v2/users/..%2f',
        '/v2/users/..%2fusr_ada',
        '/v1/users/%2e%2e/webhook-endpoints',
        '/v1/users/..%5cwebhook-endpoints',
      ]) {
        const res = await request(app).get(path).set('X-API-Key', MEMBER_KEY).expect(400);
        expect(res.headers['content-type'], path).toMatch(PROBLEM);
      }
      const doubled = await request(app).get('/v1//users').set('X-API-Key', MEMBER_KEY);
      expect(doubled.status).toBe(404);
      expect(doubled.headers['content-type']).toMatch(PROBLEM);
    });
  });

  describe('webhook receiver × authentication × rate limits', () => {
    it('refuses unsigned bodies, bounds their size, and limits a flood of them per IP', async () => {
      const { app, audits, flush } = build({ limits: { perIp: 4 } });
      const big = JSON.stringify({ id: 'evt_flood', pad: 'x'.repeat(60_000) });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await request(app)
          .post('/webhooks/restwell')
          .set('content-type', 'application/json')
          .send(big);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
      const tooBig = await request(build().app)
        .post('/webhooks/restwell')
        .set('content-type', 'application/json')
        .send(JSON.stringify({ pad: 'x'.repeat(70_000) }))
        .expect(413);
      expect(tooBig.headers['content-type']).toMatch(PROBLEM);
      await flush();
      expect(audits.every((r) => r.principal === null)).toBe(true);
    });
  });

  describe('admin API × authorization × versioning', () => {
    it('is for admins at every spelling, and no versioning middleware touches it', async () => {
      const { app } = build();
      for (const path of [
        '/v1/webhook-endpoints',
        '/v1/webhook-endpoints/',
        '/V1/Webhook-Endpoints',
        '/v1//webhook-endpoints',
        '/v1/webhook-endpoints/ep_x/attempts',
      ]) {
        const res = await request(app).get(path).set('X-API-Key', MEMBER_KEY).expect(403);
        expect(res.headers['content-type'], path).toMatch(PROBLEM);
      }
      const created = await request(app)
        .post('/v1/webhook-endpoints')
        .set('X-API-Key', MEMBER_KEY)
        .send({ url: 'http://127.0.0.1:1/hook', eventTypes: ['payment.*'] })
        .expect(403);
      expect(created.headers['content-type']).toMatch(PROBLEM);
      const list = await request(app)
        .get('/v1/webhook-endpoints')
        .set('X-API-Key', ADMIN_KEY)
        .set('Api-Version', '1999-01-01')
        .expect(200);
      // Neither the users' URI versions nor the payments' dated header apply here.
      expect(list.headers['api-version']).toBeUndefined();
      expect(list.headers.deprecation).toBeUndefined();
      expect(Array.isArray(list.body.data)).toBe(true);
    });
  });

  describe('the deprecated route on errors', () => {
    it('says it is deprecated on a 404, a problem', async () => {
      const { app } = build();
      const missing = await request(app)
        .get('/v1/payments/pay_none/status')
        .set('X-API-Key', MEMBER_KEY)
        .expect(404);
      expect(missing.headers['content-type']).toMatch(PROBLEM);
      expect(missing.headers.deprecation).toMatch(/^@\d+$/);
      expect(missing.headers.sunset).toBeDefined();
      expect(missing.headers.link).toContain('rel="successor-version"');
    });

    // The route answers the other methods itself, after its own middleware: rw.methodNotAllowed()
    // on both adapters (on Koa, mounted with router.all() after the route's GET).
    it('says it is deprecated on a 405 too', async () => {
      const { app } = build();
      const method = await request(app)
        .post('/v1/payments/pay_none/status')
        .set('X-API-Key', MEMBER_KEY)
        .expect(405);
      expect(method.headers['content-type']).toMatch(PROBLEM);
      expect(method.headers.allow).toBeDefined();
      expect(method.headers.deprecation).toMatch(/^@\d+$/);
    });
  });
});

describe('restwell/idempotency: the default scope', () => {
  /** A Koa app whose caller is `key:abc`, verified by the method named in `X-Auth`. */
  function keyed() {
    const store = new MemoryStore({ evict: false });
    const app = new Koa();
    const rw = koaAdapter({ logger: silentLogger });
    let runs = 0;
    app.use((ctx, next) => {
      ctx.state.principal = { id: 'key:abc', authentication: ctx.get('x-auth') };
      return next();
    });
    app.use(rw(jsonBody(), idempotency({ store })));
    app.use((ctx) => {
      runs++;
      ctx.status = 201;
      ctx.body = { run: runs };
    });
    const post = (auth: string) =>
      request(app.callback())
        .post('/pay')
        .set('X-Auth', auth)
        .set('Idempotency-Key', 'k1')
        .send({ amount: 1 })
        .expect(201);
    return { post, runs: () => runs };
  }

  it('replays a retry of one principal', async () => {
    const { post, runs } = keyed();
    await post('api-key');
    const retry = await post('api-key');
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(runs()).toBe(1);
  });

  // By design, a principal is its id: the ids are the application's namespace, so an API key
  // whose subject is `usr_1` and a token whose `sub` is `usr_1` are one caller, retrying through
  // another credential, and share one key space (and one rate-limit budget). An application whose
  // verifiers name different callers alike says so with its own scope, as the example does
  // (principalScope in examples/shared/auth.ts, tested above).
  it('treats principals with one id as one caller, whichever verifier named them', async () => {
    const { post, runs } = keyed();
    await post('api-key');
    const other = await post('jwt');
    expect(other.headers['idempotent-replayed']).toBe('true');
    expect(runs()).toBe(1);
  });
});
