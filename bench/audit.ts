/**
 * `npm run bench -- audit`: audit append throughput per sink, in process.
 * Each sink appends BENCH_AUDIT_RECORDS records (default 5000) of a typical
 * write's size through one sink instance, one at a time (a quiet API) and, for
 * the shared sinks, in batches of 100 (what the middleware's loop sends when
 * its buffer holds a burst); the table gives records per second. Streams write to /dev/null; Redis and
 * PostgreSQL are the real servers (skipped when they do not answer).
 */
import { createWriteStream } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  type AuditSink,
  callbackSink,
  migrateAudit,
  postgresSink,
  redisStreamSink,
  streamSink,
} from 'restwell/audit';
import { type ChainHead, recordHash } from 'restwell/audit';
import { table } from './harness.js';

const records = Number(process.env.BENCH_AUDIT_RECORDS ?? 5000);
const key = Buffer.from('b'.repeat(32));
const event = {
  type: 'request',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  principal: { id: 'usr_ada', type: 'user' },
  ip: '203.0.113.7',
  method: 'POST',
  route: '/v1/payments',
  path: '/v1/payments',
  status: 201,
  payloadSha256: '3f1c7a9d9e2b4f8a0c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b',
  userAgent: 'curl/8.5.0',
  replayed: false,
};

const make = (log: string) => (head: ChainHead | undefined) => {
  const unsigned = {
    ...event,
    time: new Date().toISOString(),
    log,
    seq: (head?.seq ?? 0) + 1,
    prev: head?.hash ?? '',
  };
  return { ...unsigned, hash: recordHash(key, unsigned) };
};

/** Appends one after another per log; with `batch`, in batches as the middleware's loop does. */
async function run(
  name: string,
  sink: AuditSink,
  log: string,
  batch = 1,
): Promise<Array<string | number>> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < records; i += batch) {
    if (batch === 1 || sink.appendMany === undefined) await sink.append(log, make(log));
    else
      await sink.appendMany(
        log,
        Array.from({ length: batch }, () => make(log)),
      );
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return [name, batch, records, Math.round((records / ms) * 1000), (ms / records).toFixed(3)];
}

const rows: Array<Array<string | number>> = [];
const log = `bench-${process.pid}`;
rows.push(
  await run(
    'callback',
    callbackSink(() => {}),
    log,
  ),
);
rows.push(await run('stream (/dev/null)', streamSink(createWriteStream('/dev/null')), log));

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  lazyConnect: true,
  maxRetriesPerRequest: 1,
});
try {
  await redis.connect();
  const prefix = `restwell-bench-audit-${process.pid}:`;
  rows.push(await run('redis stream', redisStreamSink(redis, { prefix }), log));
  rows.push(await run('redis stream', redisStreamSink(redis, { prefix }), `${log}-b`, 100));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
} catch (err) {
  console.error(`Redis skipped: ${(err as Error).message}`);
} finally {
  redis.disconnect();
}

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
  max: 2,
});
const tableName = `restwell_bench_audit_${process.pid}`;
try {
  await migrateAudit(pool, { table: tableName });
  rows.push(await run('postgres', postgresSink(pool, { table: tableName }), log));
  rows.push(await run('postgres', postgresSink(pool, { table: tableName }), `${log}-b`, 100));
} catch (err) {
  console.error(`PostgreSQL skipped: ${(err as Error).message}`);
} finally {
  await pool.query(`DROP TABLE IF EXISTS ${tableName}`).catch(() => undefined);
  await pool.end();
}

console.log(`${records} appends per sink, in order on one log, one at a time or in batches.\n`);
console.log(table(['sink', 'batch', 'records', 'appends/s', 'ms per record'], rows));
