import { generateKeyPairSync } from 'node:crypto';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { ChainedRecord } from '../../src/audit/chain.js';
import type { AuditCheckpoint } from '../../src/audit/checkpoint.js';
import { audit } from '../../src/audit/middleware.js';
import { callbackSink, streamSink } from '../../src/audit/sinks.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { jsonBody } from '../../src/core/body.js';
import { ValidationError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { sha256 } from '../../src/core/hash.js';
import { canonicalJson } from '../../src/idempotency/canonical-json.js';
import { idempotency } from '../../src/idempotency/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

const KEY = 'chain-key-'.repeat(4);
const SECRETS = [
  'Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig',
  'sk_live_topsecret',
  'session=abc123',
  'hunter2-password',
];

describe.each(adapters)('audit() through $name', (adapter) => {
  function app(auditLog: ReturnType<typeof audit>, withIdempotency = false) {
    return adapter.build({
      use: [auditLog, jsonBody()],
      before: (state, headers) => {
        if (headers['x-user'] !== undefined)
          state.principal = { id: String(headers['x-user']), type: 'user' };
      },
      routes: [
        {
          method: 'post',
          path: '/v1/payments',
          use: withIdempotency
            ? [idempotency({ store: new MemoryStore({ evict: false }), anonymous: 'ip' })]
            : [],
          handler: () => ({ status: 201, body: { id: 'pay_1' } }),
        },
        { method: 'get', path: '/v1/payments', handler: () => ({ body: [] }) },
        {
          method: 'delete',
          path: '/v1/payments/:id',
          handler: () => {
            throw new ValidationError([
              { pointer: '', detail: 'A settled payment cannot be deleted.' },
            ]);
          },
        },
      ],
    });
  }

  it('records each write after its response, with no secret in any line', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => {
      text += c;
    });
    const auditLog = audit({ sink: streamSink(out), key: KEY, logger: silentLogger });
    const server = app(auditLog);
    const body = { amount: 5, password: SECRETS[3], card: { cvc: '123', number: '4242' } };
    await request(server)
      .post('/v1/payments?api_key=sk_live_topsecret')
      .set('authorization', SECRETS[0] as string)
      .set('x-api-key', SECRETS[1] as string)
      .set('cookie', SECRETS[2] as string)
      .set('user-agent', 'curl/8')
      .set('x-user', 'usr_ada')
      .send(body)
      .expect(201);
    await request(server).get('/v1/payments').expect(200);
    await request(server).delete('/v1/payments/pay_1').expect(400);
    await auditLog.flush();

    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(2); // the GET is not a write
    const records = lines.map((l) => JSON.parse(l).audit as ChainedRecord);
    expect(records[0]).toMatchObject({
      type: 'request',
      log: 'api',
      seq: 1,
      prev: '',
      method: 'POST',
      path: '/v1/payments',
      status: 201,
      principal: { id: 'usr_ada', type: 'user' },
      userAgent: 'curl/8',
      replayed: false,
    });
    expect(records[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof records[0]?.ip).toBe('string');
    // The payload hash is of the canonical JSON with the secret members redacted.
    const redacted = {
      amount: 5,
      password: '[redacted]',
      card: { cvc: '[redacted]', number: '4242' },
    };
    expect(records[0]?.payloadSha256).toBe(sha256(canonicalJson(redacted) as string));
    expect(records[1]).toMatchObject({
      method: 'DELETE',
      status: 400,
      seq: 2,
      prev: records[0]?.hash,
    });
    expect(records[1]?.route === null || records[1]?.route === '/v1/payments/:id').toBe(true);
    for (const secret of [...SECRETS, 'topsecret', 'abc123', 'eyJhbGci'])
      expect(text).not.toContain(secret);
    expect(verifyAuditLog(lines, { key: KEY }).ok).toBe(true);
  });

  it('marks an idempotent replay', async () => {
    const records: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: KEY,
      logger: silentLogger,
    });
    const server = app(auditLog, true);
    for (let i = 0; i < 2; i++) {
      await request(server)
        .post('/v1/payments')
        .set('idempotency-key', 'k-1')
        .send({ a: 1 })
        .expect(201);
    }
    await auditLog.flush();
    expect(records.map((r) => r.replayed)).toEqual([false, true]);
  });

  it('never fails or delays a request while the sink fails, and appends in order once it recovers', async () => {
    const records: ChainedRecord[] = [];
    let failing = true;
    const auditLog = audit({
      sink: callbackSink((r) => {
        if (failing) throw new Error('sink down');
        records.push(r);
      }),
      key: KEY,
      logger: silentLogger,
    });
    const server = app(auditLog);
    for (let i = 0; i < 5; i++) await request(server).post('/v1/payments').send({ i }).expect(201);
    expect(auditLog.stats()).toMatchObject({ appended: 0, pending: 5 });
    failing = false;
    await auditLog.flush(10_000);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });

  it('answers at once while the sink hangs, drops past the buffer and records what it dropped', async () => {
    const records: ChainedRecord[] = [];
    let release: () => void = () => {};
    let hang = true;
    const auditLog = audit({
      sink: callbackSink(async (r) => {
        if (hang)
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        records.push(r);
      }),
      key: KEY,
      maxBuffer: 3,
      timeoutMs: 60_000,
      logger: silentLogger,
    });
    const server = app(auditLog);
    for (let i = 0; i < 6; i++) await request(server).post('/v1/payments').send({ i }).expect(201);
    expect(auditLog.stats()).toMatchObject({ appended: 0, dropped: 3, pending: 3 });
    hang = false;
    release();
    await auditLog.flush(10_000);
    expect(records.map((r) => r.type)).toEqual(['request', 'audit.dropped', 'request', 'request']);
    expect(records[1]).toMatchObject({ count: 3 });
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });
});

describe('audit() checkpoints and options', () => {
  it('signs checkpoints every N records and on close, and they verify the log', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const records: ChainedRecord[] = [];
    const checkpoints: AuditCheckpoint[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: KEY,
      logger: silentLogger,
      checkpoints: { privateKey, write: (c) => void checkpoints.push(c), everyRecords: 2 },
    });
    const server = adapters[0]!.build({
      use: [auditLog],
      routes: [{ method: 'post', path: '/x', handler: () => ({ status: 204 }) }],
    });
    for (let i = 0; i < 5; i++) await request(server).post('/x').expect(204);
    await auditLog.close();
    expect(checkpoints.map((c) => c.seq)).toEqual([2, 4, 5]);
    expect(verifyAuditLog(records, { key: KEY, checkpoints, publicKey }).ok).toBe(true);
    expect(
      verifyAuditLog(records.slice(0, 4), { key: KEY, checkpoints, publicKey }).defect?.kind,
    ).toBe('truncated');
  });

  it.each([
    [{ sink: undefined }, /sink/],
    [{ key: 'short' }, /32 bytes/],
    [{ log: '' }, /log/],
    [{ maxBuffer: 0 }, /maxBuffer/],
    [{ checkpoints: { privateKey: 'nope', write: () => {} } }, /ed25519/],
    [
      { checkpoints: { privateKey: generateKeyPairSync('ed25519').publicKey, write: () => {} } },
      /ed25519 private/,
    ],
    [
      {
        checkpoints: {
          privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
          write: () => {},
        },
      },
      /ed25519/,
    ],
    [{ sinks: [] }, /sink/],
  ])('refuses %o', (patch, message) => {
    expect(() =>
      audit({ sink: callbackSink(() => {}), key: KEY, ...(patch as object) } as Parameters<
        typeof audit
      >[0]),
    ).toThrow(message);
  });
});
