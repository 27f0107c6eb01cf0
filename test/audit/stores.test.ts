/**
 * The shared sinks on the real servers: appends from two processes at once
 * (and several in flight in each) form one chain, never a fork.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChainedRecord, chainRecord } from '../../src/audit/chain.js';
import { audit } from '../../src/audit/middleware.js';
import {
  auditTableSql,
  migrateAudit,
  postgresSink,
  readPostgresLog,
} from '../../src/audit/postgres.js';
import { readRedisLog, redisStreamSink } from '../../src/audit/redis.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';
import { readFileSync } from 'node:fs';

const KEY = Buffer.from('k'.repeat(32));
const script = join(import.meta.dirname, '..', 'fixtures', 'audit', 'appender.ts');
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

async function appendFromProcess(env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
}

function checkOneChain(records: ChainedRecord[], expected: number): void {
  expect(records).toHaveLength(expected);
  expect(verifyAuditLog(records, { key: KEY })).toMatchObject({
    ok: true,
    records: expected,
    last: expected,
  });
  const from = new Set(records.map((r) => r.from));
  expect(from).toEqual(new Set(['a', 'b', 'here']));
}

describe.runIf(services.redis)('redisStreamSink on Redis', () => {
  const prefix = `audit-test-${suffix}:`;
  const redis = new Redis(services.redisUrl);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('chains appends from two processes and this one into one log', async () => {
    const sink = redisStreamSink(redis, { prefix });
    const env = {
      SINK: 'redis',
      REDIS_URL: services.redisUrl,
      PREFIX: prefix,
      LOG: 'shared',
      COUNT: '60',
    };
    await Promise.all([
      appendFromProcess({ ...env, NAME: 'a' }),
      appendFromProcess({ ...env, NAME: 'b' }),
      ...Array.from({ length: 30 }, (_, i) =>
        sink.append('shared', (h) =>
          chainRecord(KEY, 'shared', { type: 'request', time: 't', from: 'here', i }, h),
        ),
      ),
    ]);
    checkOneChain(await readRedisLog(redis, 'shared', { prefix }), 150);
  });

  it("appends batches that chain to each other and to other processes' records", async () => {
    const sink = redisStreamSink(redis, { prefix });
    const makers = (from: string) =>
      Array.from(
        { length: 20 },
        (_, i) => (h: Parameters<typeof chainRecord>[3]) =>
          chainRecord(KEY, 'batched', { type: 'request', time: 't', from, i }, h),
      );
    const env = {
      SINK: 'redis',
      REDIS_URL: services.redisUrl,
      PREFIX: prefix,
      LOG: 'batched',
      COUNT: '30',
    };
    await Promise.all([
      appendFromProcess({ ...env, NAME: 'a' }),
      appendFromProcess({ ...env, NAME: 'b' }),
      sink.appendMany!('batched', makers('here')),
      sink.appendMany!('batched', makers('here')),
    ]);
    checkOneChain(await readRedisLog(redis, 'batched', { prefix }), 100);
  });

  it('trims the oldest records with maxLen, and the rest still verifies', async () => {
    const sink = redisStreamSink(redis, { prefix, maxLen: 10 });
    for (let i = 0; i < 500; i++) {
      await sink.append('trimmed', (h) =>
        chainRecord(KEY, 'trimmed', { type: 'request', time: 't', i }, h),
      );
    }
    const records = await readRedisLog(redis, 'trimmed', { prefix });
    expect(records.length).toBeLessThan(500);
    expect(records.at(-1)?.seq).toBe(500);
    expect(verifyAuditLog(records, { key: KEY, allowTrimmedStart: true }).ok).toBe(true);
  });

  it('never fails a request when Redis is unreachable', async () => {
    const down = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    down.on('error', () => {});
    const auditLog = audit({
      sink: redisStreamSink(down, { prefix }),
      key: KEY,
      logger: silentLogger,
      timeoutMs: 200,
    });
    const server = adapters[0]!.build({
      use: [auditLog],
      routes: [{ method: 'post', path: '/x', handler: () => ({ status: 201, body: {} }) }],
    });
    await request(server).post('/x').expect(201);
    await request(server).post('/x').expect(201);
    expect(auditLog.stats().appended).toBe(0);
    expect(auditLog.stats().pending).toBe(2);
    down.disconnect();
  });
});

describe.runIf(services.postgres)('postgresSink on PostgreSQL', () => {
  const table = `restwell_audit_${suffix}`;
  const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 4 });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('chains appends from two processes and this one into one log', async () => {
    await migrateAudit(pool, { table });
    const sink = postgresSink(pool, { table });
    const env = {
      SINK: 'postgres',
      DATABASE_URL: services.databaseUrl,
      TABLE: table,
      LOG: 'shared',
      COUNT: '40',
    };
    await Promise.all([
      appendFromProcess({ ...env, NAME: 'a' }),
      appendFromProcess({ ...env, NAME: 'b' }),
      ...Array.from({ length: 20 }, (_, i) =>
        sink.append('shared', (h) =>
          chainRecord(KEY, 'shared', { type: 'request', time: 't', from: 'here', i }, h),
        ),
      ),
    ]);
    checkOneChain(await readPostgresLog(pool, 'shared', { table }), 100);
  });

  it('catches an edited row, and a deleted newest row against a checkpoint', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const before = await readPostgresLog(pool, 'shared', { table });
    const last = before.at(-1) as ChainedRecord;
    const cp = signCheckpoint(privateKey, {
      log: 'shared',
      seq: last.seq,
      head: last.hash,
      time: 't',
    });
    await pool.query(`DELETE FROM ${table} WHERE log = 'shared' AND seq = $1`, [last.seq]);
    const truncated = verifyAuditLog(await readPostgresLog(pool, 'shared', { table }), {
      key: KEY,
      checkpoints: [cp],
      publicKey,
    });
    expect(truncated.defect).toMatchObject({ kind: 'truncated', seq: last.seq });
    await pool.query(
      `UPDATE ${table} SET record = replace(record, '"status"', '"statuz"') WHERE log = 'shared' AND seq = 10`,
    );
    await pool.query(
      `UPDATE ${table} SET record = replace(record, '"type":"request"', '"type":"requesT"') WHERE log = 'shared' AND seq = 10`,
    );
    const edited = verifyAuditLog(await readPostgresLog(pool, 'shared', { table }), { key: KEY });
    expect(edited.defect).toMatchObject({ kind: 'edited', seq: 10 });
  });

  it('appends a burst of writes in batches through the middleware, as one chain', async () => {
    const log = `burst-${suffix}`;
    const auditLog = audit({
      sink: postgresSink(pool, { table }),
      key: KEY,
      log,
      logger: silentLogger,
    });
    const server = adapters[2]!.build({
      use: [auditLog],
      routes: [{ method: 'post', path: '/x', handler: () => ({ status: 201, body: {} }) }],
    });
    await Promise.all(Array.from({ length: 150 }, () => request(server).post('/x').expect(201)));
    await auditLog.flush(30_000);
    const records = await readPostgresLog(pool, log, { table });
    expect(records).toHaveLength(150);
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });

  it('matches the migration file', () => {
    const file = readFileSync(
      join(import.meta.dirname, '..', '..', 'migrations', 'postgres', '003_restwell_audit.sql'),
      'utf8',
    );
    expect(file).toContain(auditTableSql().trim());
  });
});
