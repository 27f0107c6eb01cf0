/**
 * redisStreamSink when its keys are not what it left: the head deleted (or
 * evicted) with the stream still there, the whole log wiped while processes
 * hold a cached head. On the shared Redis, under a prefix of this test's own.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type ChainHead, chainRecord, recordText } from '../../src/audit/chain.js';
import { readRedisLog, redisStreamSink } from '../../src/audit/redis.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { services } from '../helpers/services.js';

const KEY = Buffer.from('d'.repeat(32));
const prefix = `review-redis-${process.pid}-${Math.random().toString(36).slice(2, 8)}:`;

describe.runIf(services.redis)('redisStreamSink and its head', () => {
  const redis = new Redis(services.redisUrl);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  const make = (log: string, from: string) => (h: ChainHead | undefined) =>
    chainRecord(KEY, log, { type: 'request', time: 't', from }, h);

  it('takes up the chain from the newest record when the head is gone', async () => {
    const a = redisStreamSink(redis, { prefix });
    for (let i = 0; i < 3; i++) await a.append('lost-head', make('lost-head', 'a'));
    await redis.del(`${prefix}{lost-head}:head`);
    // A process with no cached head, and one whose cached head is now behind.
    const b = redisStreamSink(redis, { prefix });
    await b.append('lost-head', make('lost-head', 'b'));
    await a.append('lost-head', make('lost-head', 'a'));
    const records = await readRedisLog(redis, 'lost-head', { prefix });
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });

  it('does not chain to a cached head of the same number from before the log was wiped', async () => {
    const a = redisStreamSink(redis, { prefix });
    for (let i = 0; i < 3; i++) await a.append('wiped', make('wiped', 'a'));
    await redis.del(`${prefix}{wiped}:head`, `${prefix}{wiped}:records`);
    const b = redisStreamSink(redis, { prefix });
    for (let i = 0; i < 3; i++) await b.append('wiped', make('wiped', 'b'));
    // a still holds the old record 3 as its head: same number, another hash.
    await a.append('wiped', make('wiped', 'a'));
    const records = await readRedisLog(redis, 'wiped', { prefix });
    expect(records.map((r) => [r.seq, r.from])).toEqual([
      [1, 'b'],
      [2, 'b'],
      [3, 'b'],
      [4, 'a'],
    ]);
    expect(verifyAuditLog(records, { key: KEY }).ok).toBe(true);
  });
});

describe.runIf(services.redis)('redisStreamSink retention', () => {
  const redis = new Redis(services.redisUrl);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("measures retentionMs by the server's clock, which stream ids are made of", async () => {
    const sink = redisStreamSink(redis, { prefix, retentionMs: 3_600_000 });
    const make = (h: ChainHead | undefined) =>
      chainRecord(KEY, 'retained', { type: 'request', time: 't' }, h);
    for (let i = 0; i < 250; i++) await sink.append('retained', make);
    // An appender whose clock runs a day ahead: every record is minutes old by the server's.
    const ahead = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 86_400_000);
    try {
      await sink.append('retained', make);
    } finally {
      ahead.mockRestore();
    }
    const records = await readRedisLog(redis, 'retained', { prefix });
    expect(records).toHaveLength(251);
  });

  it('still trims what is older than retentionMs by that clock', async () => {
    const sink = redisStreamSink(redis, { prefix, retentionMs: 3_600_000 });
    const stream = `${prefix}{aged}:records`;
    // 300 records appended two hours ago (ids of then), with no head key: the sink reads it back.
    const start = Date.now() - 7_200_000;
    let head: ChainHead | undefined;
    for (let i = 0; i < 300; i++) {
      const record = chainRecord(KEY, 'aged', { type: 'request', time: 't' }, head);
      await redis.xadd(stream, `${start + i}-0`, 'record', recordText(record));
      head = record;
    }
    await sink.append('aged', (h) => chainRecord(KEY, 'aged', { type: 'request', time: 't' }, h));
    const records = await readRedisLog(redis, 'aged', { prefix });
    expect(records.length).toBeLessThan(301);
    expect(records.at(-1)?.seq).toBe(301);
    expect(verifyAuditLog(records, { key: KEY, allowTrimmedStart: true }).ok).toBe(true);
  });
});
