/**
 * No secret in any sink: secrets sent in every place a client can put them,
 * then every stored text searched, on the real Redis and PostgreSQL too; and
 * the payload hash stored there is the one of the redacted canonical JSON.
 */
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/chain.js';
import { audit } from '../../src/audit/middleware.js';
import { migrateAudit, postgresSink, streamPostgresLog } from '../../src/audit/postgres.js';
import { redisStreamSink, streamRedisLog } from '../../src/audit/redis.js';
import { callbackSink, streamSink } from '../../src/audit/sinks.js';
import { verifyAuditStream } from '../../src/audit/verify.js';
import { jsonBody } from '../../src/core/body.js';
import { sha256 } from '../../src/core/hash.js';
import { silentLogger } from '../../src/core/logger.js';
import { canonicalJson } from '../../src/idempotency/canonical-json.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';

const KEY = 'z'.repeat(32);
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const SECRETS = {
  bearer: 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln',
  apiKey: 'sk_live_review_4f9a',
  cookie: 'sid_review_77e1',
  queryKey: 'qk_review_1b2c',
  password: 'correct horse battery',
  nestedToken: 'tok_review_9d8e',
  cvc: '913',
};
const body = {
  amount: 5,
  Password: SECRETS.password,
  card: { CVC: SECRETS.cvc, last4: '4242' },
  items: [{ token: SECRETS.nestedToken }],
};
const expectedHash = sha256(
  canonicalJson({
    amount: 5,
    Password: '[redacted]',
    card: { CVC: '[redacted]', last4: '4242' },
    items: [{ token: '[redacted]' }],
  }) as string,
);

async function sendSecrets(sink: AuditSink, adapter = adapters[0]!) {
  const auditLog = audit({ sink, key: KEY, log: `secrets-${suffix}`, logger: silentLogger });
  const server = adapter.build({
    use: [auditLog, jsonBody()],
    routes: [{ method: 'post', path: '/v1/payments', handler: () => ({ status: 201, body: {} }) }],
  });
  await request(server)
    .post(`/v1/payments?api_key=${SECRETS.queryKey}&access_token=${SECRETS.queryKey}`)
    .set('authorization', `Bearer ${SECRETS.bearer}`)
    .set('x-api-key', SECRETS.apiKey)
    .set('cookie', `session=${SECRETS.cookie}`)
    .set('user-agent', 'review/1.0')
    .send(body)
    .expect(201);
  await auditLog.flush(10_000);
  return auditLog;
}

function expectClean(texts: string[]) {
  expect(texts).toHaveLength(1);
  const all = texts.join('\n');
  for (const secret of Object.values(SECRETS)) expect(all).not.toContain(secret);
  expect(all).not.toContain('api_key');
  expect(JSON.parse(texts[0] as string)).toMatchObject({
    payloadSha256: expectedHash,
    path: '/v1/payments',
    userAgent: 'review/1.0',
    status: 201,
  });
}

describe('no secret reaches an in-process sink', () => {
  it('stream and callback', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => {
      text += c;
    });
    await sendSecrets(streamSink(out, { pino: false }));
    expectClean(text.trim().split('\n'));
    const records: unknown[] = [];
    await sendSecrets(
      callbackSink((r) => void records.push(r)),
      adapters[2],
    );
    expectClean(records.map((r) => JSON.stringify(r)));
  });
});

describe.runIf(services.redis)('no secret reaches Redis', () => {
  const redis = new Redis(services.redisUrl);
  const prefix = `review-secrets-${suffix}:`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('in any stored text or key', async () => {
    const log = `secrets-${suffix}`;
    await sendSecrets(redisStreamSink(redis, { prefix }));
    const texts: string[] = [];
    for await (const t of streamRedisLog(redis, log, { prefix })) texts.push(t);
    expectClean(texts);
    for (const key of await redis.keys(`${prefix}*`)) {
      const dump = JSON.stringify(
        (await redis.type(key)) === 'hash'
          ? await redis.hgetall(key)
          : await redis.xrange(key, '-', '+'),
      );
      for (const secret of Object.values(SECRETS)) expect(dump).not.toContain(secret);
    }
    expect((await verifyAuditStream(streamRedisLog(redis, log, { prefix }), { key: KEY })).ok).toBe(
      true,
    );
  });
});

describe.runIf(services.postgres)('no secret reaches PostgreSQL', () => {
  const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
  const table = `restwell_audit_secrets_${suffix}`;
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('in any stored row', async () => {
    await migrateAudit(pool, { table });
    await sendSecrets(postgresSink(pool, { table }), adapters[2]);
    const texts: string[] = [];
    for await (const t of streamPostgresLog(pool, `secrets-${suffix}`, { table })) texts.push(t);
    expectClean(texts);
    const { rows } = await pool.query(`SELECT * FROM ${table}`);
    const dump = JSON.stringify(rows);
    for (const secret of Object.values(SECRETS)) expect(dump).not.toContain(secret);
  });
});
