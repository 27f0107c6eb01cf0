/**
 * The CLI and the streaming readers on real files and the real servers: a
 * log of any length is read a line or a page at a time, and what is stored
 * is checked as the text it is, not as what JSON.parse made of it.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ChainedRecord,
  type ChainHead,
  chainRecord,
  recordText,
} from '../../src/audit/chain.js';
import { runAuditCli } from '../../src/audit/cli.js';
import { migrateAudit, postgresSink, streamPostgresLog } from '../../src/audit/postgres.js';
import { redisStreamSink } from '../../src/audit/redis.js';
import { verifyAuditStream } from '../../src/audit/verify.js';
import { services } from '../helpers/services.js';

const KEY = 'q'.repeat(32);
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAuditCli(argv, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { AUDIT_KEY: KEY },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function record(log: string, head: ChainHead | undefined, i: number): ChainedRecord {
  return chainRecord(Buffer.from(KEY), log, { type: 'request', time: 't', i }, head);
}

describe('restwell-audit verify on a file', () => {
  it('checks a log larger than one string can hold, line by line', async () => {
    // 540 records padded to 1 MiB a line: 540 MiB, past V8's longest string (about 512 MiB).
    const path = join(tmpdir(), `review-audit-${suffix}.jsonl`);
    const pad = ' '.repeat(1 << 20);
    const fd = openSync(path, 'w');
    try {
      let head: ChainedRecord | undefined;
      for (let i = 0; i < 540; i++) {
        head = record('api', head, i);
        writeSync(fd, `${recordText(head)}${pad}\n`);
      }
      closeSync(fd);
      const r = await cli(['verify', path]);
      expect(r).toMatchObject({ code: 0, out: 'ok: 540 records (1 to 540)' });
    } finally {
      rmSync(path, { force: true });
    }
  }, 120_000);

  it('a missing file is a read error', async () => {
    const r = await cli(['verify', join(tmpdir(), `review-missing-${suffix}.jsonl`)]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Could not read the log: .*ENOENT/);
  });

  it('verifyAuditStream stops at the first defect without reading the rest', async () => {
    let read = 0;
    async function* lines() {
      let head: ChainedRecord | undefined;
      for (let i = 0; i < 1000; i++) {
        read++;
        head = record('api', head, i);
        yield i === 3 ? { ...head, i: 'edited' } : head;
      }
    }
    const result = await verifyAuditStream(lines(), { key: KEY });
    expect(result.defect).toMatchObject({ kind: 'edited', seq: 4 });
    expect(read).toBe(4);
  });
});

describe.runIf(services.redis)('restwell-audit verify --redis', () => {
  const prefix = `review-cli-${suffix}:`;
  const redis = new Redis(services.redisUrl);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('checks the stored texts: a member name twice in one is malformed', async () => {
    const sink = redisStreamSink(redis, { prefix });
    for (let i = 0; i < 3; i++) await sink.append('api', (h) => record('api', h, i));
    const ok = await cli([
      'verify',
      '--redis',
      services.redisUrl,
      '--log',
      'api',
      '--prefix',
      prefix,
    ]);
    expect(ok).toMatchObject({ code: 0, out: 'ok: 3 records (1 to 3)' });
    // The stream rewritten with its second record's text holding a forged member in front.
    const stream = `${prefix}{api}:records`;
    const texts = (await redis.xrange(stream, '-', '+')).map(([, fields]) => fields[1] as string);
    await redis.del(stream);
    for (const [i, text] of texts.entries()) {
      await redis.xadd(stream, '*', 'record', i === 1 ? text.replace('{', '{"i":"forged",') : text);
    }
    const r = await cli([
      'verify',
      '--redis',
      services.redisUrl,
      '--log',
      'api',
      '--prefix',
      prefix,
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^malformed: Line 2 has a member name twice/);
  });
});

describe.runIf(services.postgres)('restwell-audit verify --postgres', () => {
  const table = `restwell_audit_review_${suffix}`;
  const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('reads a long log a page at a time, and sees a row numbered below 1', async () => {
    await migrateAudit(pool, { table });
    const sink = postgresSink(pool, { table });
    const makers = Array.from(
      { length: 2500 },
      (_, i) => (h: ChainHead | undefined) => record('long', h, i),
    );
    await sink.appendMany!('long', makers);
    const texts: string[] = [];
    for await (const t of streamPostgresLog(pool, 'long', { table })) texts.push(t);
    expect(texts.map((t) => JSON.parse(t).seq)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    const r = await cli([
      'verify',
      '--postgres',
      services.databaseUrl,
      '--log',
      'long',
      '--table',
      table,
    ]);
    expect(r).toMatchObject({ code: 0, out: 'ok: 2500 records (1 to 2500)' });
    await pool.query(
      `INSERT INTO ${table} (log, seq, hash, record) VALUES ('long', 0, 'h', '{"log":"long"}')`,
    );
    const zero = await cli([
      'verify',
      '--postgres',
      services.databaseUrl,
      '--log',
      'long',
      '--table',
      table,
    ]);
    expect(zero.code).toBe(1);
    expect(zero.out).toMatch(/^malformed: Line 1/);
  });

  it('checks the stored text: a member name twice in a row is malformed', async () => {
    await pool.query(
      `UPDATE ${table} SET record = replace(record, '{"hash"', '{"i":"forged","hash"') WHERE log = 'long' AND seq = 7`,
    );
    await pool.query(`DELETE FROM ${table} WHERE log = 'long' AND seq = 0`);
    const r = await cli([
      'verify',
      '--postgres',
      services.databaseUrl,
      '--log',
      'long',
      '--table',
      table,
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^malformed: Line 7 has a member name twice/);
  });
});
