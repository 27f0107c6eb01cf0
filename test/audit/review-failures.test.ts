/**
 * audit() when its sink or its checkpoint store misbehaves: slow, hung,
 * failing, or gone. The request is never held, and the log stays one chain
 * of each record once, however the sink fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AuditSink, ChainedRecord } from '../../src/audit/chain.js';
import type { AuditCheckpoint } from '../../src/audit/checkpoint.js';
import { audit } from '../../src/audit/middleware.js';
import { migrateAudit, postgresSink, readPostgresLog } from '../../src/audit/postgres.js';
import { readRedisLog, redisStreamSink } from '../../src/audit/redis.js';
import { callbackSink } from '../../src/audit/sinks.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import type { Middleware } from '../../src/core/context.js';
import { type Logger, silentLogger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';

const KEY = 'f'.repeat(32);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A redis-server of this test's own (never the shared one), on a free port, to pause and stop. */
async function ownRedis(): Promise<{ port: number; server: ChildProcess; stop(): void }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 23_000 + Math.floor(Math.random() * 2_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (!free) continue;
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => 50 });
    probe.on('error', () => {});
    for (let i = 0; i < 100; i++) {
      if ((await probe.ping().catch(() => undefined)) === 'PONG') break;
      await sleep(50);
    }
    probe.disconnect();
    return { port, server, stop: () => void server.kill('SIGKILL') };
  }
  throw new Error('no free port for a redis-server');
}

function appFor(auditLog: ReturnType<typeof audit>) {
  return adapters[0]!.build({
    use: [auditLog],
    routes: [{ method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) }],
  });
}

describe('a sink slower than timeoutMs', () => {
  it('appends each record once, in order, instead of the first one again and again', async () => {
    const records: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink(async (r) => {
        await sleep(120);
        records.push(r);
      }),
      key: KEY,
      timeoutMs: 40,
      logger: silentLogger,
    });
    const server = appFor(auditLog);
    const started = Date.now();
    for (let i = 0; i < 3; i++) await request(server).post('/v1/x').expect(201);
    // The requests never waited for the sink.
    expect(Date.now() - started).toBeLessThan(500);
    await auditLog.flush(10_000);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(new Set(records.map((r) => r.traceId)).size).toBe(3);
    expect(auditLog.stats()).toMatchObject({ appended: 3, pending: 0 });
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });
});

describe('an append that never settles', () => {
  it('is given up after ten timeouts and made again, so the log moves on', async () => {
    const records: ChainedRecord[] = [];
    let calls = 0;
    // The first append hangs for good (a connection that died silently); the others work.
    const sink: AuditSink = {
      name: 'hangs-once',
      append(_log, make) {
        calls++;
        if (calls === 1) return new Promise<ChainedRecord>(() => {});
        const record = make(records.at(-1));
        records.push(record);
        return Promise.resolve(record);
      },
    };
    const auditLog = audit({ sink, key: KEY, timeoutMs: 30, logger: silentLogger });
    const server = appFor(auditLog);
    for (let i = 0; i < 2; i++) await request(server).post('/v1/x').expect(201);
    await auditLog.flush(5000);
    expect(records.map((r) => r.seq)).toEqual([1, 2]);
    expect(calls).toBe(3);
  });
});

describe.runIf(services.cluster)('a Redis that stalls past timeoutMs', () => {
  it('gets each record once: the timed-out script lands and is not run again', async () => {
    const own = await ownRedis();
    const redis = new Redis({ port: own.port });
    try {
      const auditLog = audit({
        sink: redisStreamSink(redis, { prefix: 'stall:' }),
        key: KEY,
        timeoutMs: 100,
        logger: silentLogger,
      });
      const server = appFor(auditLog);
      await request(server).post('/v1/x').expect(201);
      await auditLog.flush();
      // The server stops answering while the next append is in flight, longer than timeoutMs.
      own.server.kill('SIGSTOP');
      await request(server).post('/v1/x').expect(201);
      await sleep(600);
      own.server.kill('SIGCONT');
      await request(server).post('/v1/x').expect(201);
      await auditLog.flush(10_000);
      const records = await readRedisLog(redis, 'api', { prefix: 'stall:' });
      expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(new Set(records.map((r) => r.traceId)).size).toBe(3);
      expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
    } finally {
      redis.disconnect();
      own.stop();
    }
  });
});

describe('checkpoints', () => {
  it('a checkpoint store that never answers holds up no record', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const records: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: KEY,
      timeoutMs: 50,
      logger: silentLogger,
      checkpoints: { privateKey, write: () => new Promise<void>(() => {}), everyRecords: 1 },
    });
    const server = appFor(auditLog);
    for (let i = 0; i < 3; i++) await request(server).post('/v1/x').expect(201);
    await auditLog.flush(2000);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(auditLog.stats().pending).toBe(0);
  });

  it('every everyMs, also when no record follows: the newest records are covered', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const records: ChainedRecord[] = [];
    const checkpoints: AuditCheckpoint[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: KEY,
      logger: silentLogger,
      checkpoints: { privateKey, write: (c) => void checkpoints.push(c), everyMs: 100 },
    });
    const server = appFor(auditLog);
    for (let i = 0; i < 2; i++) await request(server).post('/v1/x').expect(201);
    await sleep(400);
    expect(checkpoints.map((c) => c.seq)).toEqual([2]);
    // The tail deleted during the quiet time shows.
    expect(
      verifyAuditLog(records.slice(0, 1), { key: KEY, checkpoints, publicKey }).defect?.kind,
    ).toBe('truncated');
    await auditLog.close();
  });

  it('no timer of audit() keeps a process alive', async () => {
    const script = join(import.meta.dirname, '..', 'fixtures', 'audit', 'review-exit.ts');
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'inherit' });
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    // The checkpoint timer is due in a minute and the failing sink retries for ever: neither waits.
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);
});

describe('close()', () => {
  function capturing(): { logger: Logger; warnings: string[] } {
    const warnings: string[] = [];
    return {
      warnings,
      logger: { ...silentLogger, warn: (message) => void warnings.push(message) },
    };
  }

  it.each([
    ['fails', () => Promise.reject(new Error('down'))],
    ['never answers', () => new Promise<void>(() => {})],
  ])('gives up soon while the sink %s, and counts and reports what it lost', async (_, write) => {
    const { logger, warnings } = capturing();
    const auditLog = audit({ sink: callbackSink(write), key: KEY, timeoutMs: 100, logger });
    const server = appFor(auditLog);
    for (let i = 0; i < 60; i++) await request(server).post('/v1/x').expect(201);
    const started = Date.now();
    await auditLog.close();
    // Three attempts of at most timeoutMs and short waits, not timeoutMs for each of 61 records.
    expect(Date.now() - started).toBeLessThan(1500);
    expect(auditLog.stats()).toMatchObject({ appended: 0, pending: 0, dropped: 60 });
    expect(warnings.at(-1)).toBe('restwell/audit: closed with 60 records not appended.');
    // A write after close is not recorded, and is counted.
    await request(server).post('/v1/x').expect(201);
    expect(auditLog.stats().dropped).toBe(61);
  });
});

describe('a record that cannot be built', () => {
  it('is counted as dropped, and the count is recorded next', async () => {
    const records: ChainedRecord[] = [];
    const auditLog = audit({
      sink: callbackSink((r) => void records.push(r)),
      key: KEY,
      logger: silentLogger,
    });
    const hostilePrincipal: Middleware = async (ctx, next) => {
      if (ctx.request.path === '/v1/x') {
        Object.defineProperty(ctx.state, 'principal', {
          get() {
            throw new Error('the session store is down');
          },
        });
      }
      await next();
    };
    const server = adapters[0]!.build({
      use: [auditLog, hostilePrincipal],
      routes: [
        { method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) },
        { method: 'post', path: '/v1/y', handler: () => ({ status: 201, body: {} }) },
      ],
    });
    await request(server).post('/v1/x').expect(201);
    expect(auditLog.stats().dropped).toBe(1);
    await request(server).post('/v1/y').expect(201);
    await request(server).post('/v1/y').expect(201);
    await auditLog.flush();
    expect(records.map((r) => [r.type, r.count])).toEqual([
      ['request', undefined],
      ['audit.dropped', 1],
      ['request', undefined],
    ]);
  });
});

describe('a logger that throws', () => {
  it('fails no request and rejects nothing unheard, while the sink fails and the buffer is full', async () => {
    const logger: Logger = {
      ...silentLogger,
      warn() {
        throw new Error('the log transport is down');
      },
    };
    const auditLog = audit({
      sink: callbackSink(() => {
        throw new Error('down');
      }),
      key: KEY,
      maxBuffer: 1,
      timeoutMs: 50,
      logger,
    });
    const hostilePrincipal: Middleware = async (ctx, next) => {
      Object.defineProperty(ctx.state, 'principal', {
        get() {
          throw new Error('no session');
        },
      });
      await next();
    };
    const server = adapters[0]!.build({
      use: [auditLog],
      routes: [
        { method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) },
        {
          method: 'post',
          path: '/v1/y',
          use: [hostilePrincipal],
          handler: () => ({ status: 201 }),
        },
      ],
    });
    for (let i = 0; i < 3; i++) await request(server).post('/v1/x').expect(201);
    await request(server).post('/v1/y').expect(201);
    await sleep(300);
    expect(auditLog.stats()).toMatchObject({ pending: 1, dropped: 3 });
    await auditLog.close();
  });
});

describe('after close()', () => {
  it('signs no checkpoint, even when an append in flight at close lands later', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const checkpoints: AuditCheckpoint[] = [];
    let closedAt = Number.POSITIVE_INFINITY;
    const auditLog = audit({
      sink: callbackSink(async () => {
        await sleep(700);
      }),
      key: KEY,
      timeoutMs: 300,
      logger: silentLogger,
      checkpoints: {
        privateKey,
        write: (c) => {
          if (Date.now() >= closedAt) checkpoints.push(c);
        },
        everyMs: 50,
      },
    });
    const server = appFor(auditLog);
    await request(server).post('/v1/x').expect(201);
    // close() waits 600 ms (timeoutMs for the record, plus one), the append lands at 700.
    await auditLog.close();
    closedAt = Date.now();
    await sleep(600);
    expect(auditLog.stats().appended).toBe(1);
    expect(checkpoints).toEqual([]);
  });

  it('a sink that throws instead of rejecting is retried like one that rejects', async () => {
    const records: ChainedRecord[] = [];
    let throwing = true;
    const sink: AuditSink = {
      name: 'throws',
      append(_log, make) {
        if (throwing) throw new Error('not connected');
        const record = make(records.at(-1));
        records.push(record);
        return Promise.resolve(record);
      },
    };
    const auditLog = audit({ sink, key: KEY, logger: silentLogger });
    const server = appFor(auditLog);
    await request(server).post('/v1/x').expect(201);
    throwing = false;
    await auditLog.flush(5000);
    expect(records.map((r) => r.seq)).toEqual([1]);
  });
});

describe.runIf(services.postgres)('a PostgreSQL append held up past timeoutMs', () => {
  it('commits once: the retry waits for it rather than inserting the records again', async () => {
    const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 4 });
    const table = `restwell_audit_held_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const holder = await pool.connect();
    try {
      await migrateAudit(pool, { table });
      const auditLog = audit({
        sink: postgresSink(pool, { table }),
        key: KEY,
        timeoutMs: 100,
        logger: silentLogger,
      });
      const server = appFor(auditLog);
      await request(server).post('/v1/x').expect(201);
      await auditLog.flush();
      // Another session holds the log's lock, as a long append elsewhere would.
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${table}:api`]);
      await request(server).post('/v1/x').expect(201);
      await sleep(700);
      await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${table}:api`]);
      await auditLog.flush(5000);
      const records = await readPostgresLog(pool, 'api', { table });
      expect(records.map((r) => r.seq)).toEqual([1, 2]);
      expect(new Set(records.map((r) => r.traceId)).size).toBe(2);
    } finally {
      holder.release();
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  });
});
