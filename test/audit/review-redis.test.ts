/**
 * redisStreamSink when its keys are not what it left: the head deleted (or
 * evicted) with the stream still there, the whole log wiped while processes
 * hold a cached head. On the shared Redis, under a prefix of this test's own.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChainHead, chainRecord } from '../../src/audit/chain.js';
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
