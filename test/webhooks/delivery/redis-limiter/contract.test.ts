/**
 * redisEndpointLimiter on a real Redis: leases bound the attempts in flight
 * across limiters (workers), a token bucket on Redis's clock, leases of a
 * crashed worker lapse, a release frees one slot once, turned-away jobs are
 * spaced, and the keys share a hash tag and expire.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../../src/core/errors.js';
import { redisEndpointLimiter } from '../../../../src/webhooks/delivery/redis-limiter.js';
import { unreachableRedis } from '../../../helpers/outage.js';
import { services } from '../../../helpers/services.js';
import { until } from '../engine/helpers.js';
import { cleanLimiterKeys, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A client and a prefix of this test, its keys deleted after. */
function setup(label: string) {
  const client = redis();
  const prefix = uniquePrefix(label);
  cleanups.push(async () => {
    await cleanLimiterKeys(client, prefix);
    await client.quit();
  });
  return { client, prefix };
}

/** A second "worker": a limiter on a client of its own, on the same prefix. */
function another(prefix: string, more: { leaseMs?: number } = {}) {
  const client = redis();
  cleanups.push(() => client.quit().catch(() => undefined));
  return { client, limiter: redisEndpointLimiter({ client, prefix, ...more }) };
}

describe('redisEndpointLimiter: options', () => {
  it('refuses a missing or wrong client, bad numbers and unknown options, naming them', () => {
    expect(() => redisEndpointLimiter({} as never)).toThrow(/"client"/);
    expect(() => redisEndpointLimiter({ client: 'redis://x' as never })).toThrow(/"client"/);
    const client = unreachableRedis();
    expect(() => redisEndpointLimiter({ client, leaseMs: 0 })).toThrow(/"leaseMs"/);
    expect(() => redisEndpointLimiter({ client, timeoutMs: 1.5 })).toThrow(/"timeoutMs"/);
    expect(() => redisEndpointLimiter({ client, prefix: '' })).toThrow(/"prefix"/);
    expect(() => redisEndpointLimiter({ client, leasMs: 10 } as never)).toThrow(/leaseMs/);
  });
});

describe.runIf(services.redis)('redisEndpointLimiter on Redis', () => {
  it('bounds the attempts in flight per endpoint over every limiter sharing the prefix', async () => {
    const { client, prefix } = setup('bound');
    const a = redisEndpointLimiter({ client, prefix });
    const b = another(prefix).limiter;
    const limits = { concurrency: 2 };
    const first = await a.tryAcquire('ep', limits);
    const second = await b.tryAcquire('ep', limits);
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    expect(first.lease).not.toBe(second.lease);
    // Full, from either worker; another endpoint is untouched.
    expect((await a.tryAcquire('ep', limits)).ok).toBe(false);
    expect((await b.tryAcquire('ep', limits)).ok).toBe(false);
    expect((await b.tryAcquire('other', limits)).ok).toBe(true);
    expect(await a.inFlight('ep')).toBe(2);
    // A slot one worker frees, the other takes.
    await a.release('ep', undefined, first.lease);
    expect(await b.inFlight('ep')).toBe(1);
    expect((await b.tryAcquire('ep', limits)).ok).toBe(true);
    expect((await a.tryAcquire('ep', limits)).ok).toBe(false);
  });

  it('frees a slot once however often its lease is released, and never another worker’s', async () => {
    const { client, prefix } = setup('idem');
    const limiter = redisEndpointLimiter({ client, prefix });
    const limits = { concurrency: 2 };
    const a = await limiter.tryAcquire('ep', limits);
    const b = await limiter.tryAcquire('ep', limits);
    if (!a.ok || !b.ok) throw new Error('expected two slots');
    await limiter.release('ep', undefined, a.lease);
    await limiter.release('ep', undefined, a.lease);
    // Without a lease nothing can be told apart: nothing is freed.
    await limiter.release('ep');
    expect(await limiter.inFlight('ep')).toBe(1);
    expect((await limiter.tryAcquire('ep', limits)).ok).toBe(true);
    expect((await limiter.tryAcquire('ep', limits)).ok).toBe(false);
  });

  it('gives a crashed worker’s slots back once their leases lapse', async () => {
    const { client, prefix } = setup('crash');
    const crashed = another(prefix, { leaseMs: 300 });
    const limits = { concurrency: 2 };
    expect((await crashed.limiter.tryAcquire('ep', limits)).ok).toBe(true);
    expect((await crashed.limiter.tryAcquire('ep', limits)).ok).toBe(true);
    // The worker dies holding both: its connection closes, nothing is released.
    crashed.client.disconnect();
    const survivor = redisEndpointLimiter({ client, prefix });
    expect((await survivor.tryAcquire('ep', limits)).ok).toBe(false);
    await until(async () => (await survivor.inFlight('ep')) === 0, 5000);
    expect((await survivor.tryAcquire('ep', limits)).ok).toBe(true);
    expect((await survivor.tryAcquire('ep', limits)).ok).toBe(true);
    expect((await survivor.tryAcquire('ep', limits)).ok).toBe(false);
  });

  it('takes a token per attempt from a bucket on Redis’s clock, whatever clock the worker has', async () => {
    const { client, prefix } = setup('bucket');
    const fast = redisEndpointLimiter({ client, prefix });
    const slow = another(prefix).limiter;
    const limits = { concurrency: 10, rateLimitPerSecond: 2 };
    // Two workers, one an hour ahead and one at the epoch: the same bucket of two.
    expect((await fast.tryAcquire('ep', limits, Date.now() + 3_600_000)).ok).toBe(true);
    expect((await slow.tryAcquire('ep', limits, 0)).ok).toBe(true);
    const refused = await fast.tryAcquire('ep', limits, Date.now() + 3_600_000);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    // One token per 500 ms: the next comes within that.
    expect(refused.retryInMs).toBeGreaterThan(0);
    expect(refused.retryInMs).toBeLessThanOrEqual(500);
    expect((await slow.tryAcquire('ep', limits, 0)).ok).toBe(false);
    await new Promise((r) => setTimeout(r, refused.retryInMs + 20));
    expect((await slow.tryAcquire('ep', limits, 0)).ok).toBe(true);
    // A token taken is not given back by a release: the rate counts starts.
    expect((await fast.tryAcquire('ep', limits)).ok).toBe(false);
  });

  it('spaces turned-away jobs by the mean attempt duration over the concurrency', async () => {
    const { client, prefix } = setup('spacing');
    const limiter = redisEndpointLimiter({ client, prefix, busyRetryMs: 100 });
    const limits = { concurrency: 2 };
    expect((await limiter.tryAcquire('slow', limits)).ok).toBe(true);
    expect((await limiter.tryAcquire('slow', limits)).ok).toBe(true);
    // An endpoint whose attempts take 4 s (as two finished attempts would have taught it).
    await client.hset(`{${prefix}:slow}:state`, 'meanMs', '4000');
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await limiter.tryAcquire('slow', limits);
      waits.push(answer.ok ? 0 : answer.retryInMs);
    }
    // 4000 ms / 2 slots: one job every 2 s (less the few ms between the calls).
    [2000, 4000, 6000, 8000].forEach((expected, i) => {
      expect(waits[i]).toBeLessThanOrEqual(expected);
      expect(waits[i]).toBeGreaterThan(expected - 100);
    });
  });

  it('learns the mean from releases, and goes by the oldest attempt when none has finished', async () => {
    const { client, prefix } = setup('mean');
    const limiter = redisEndpointLimiter({ client, prefix, busyRetryMs: 1 });
    const limits = { concurrency: 1 };
    const held = await limiter.tryAcquire('ep', limits);
    if (!held.ok) throw new Error('expected a slot');
    await new Promise((r) => setTimeout(r, 150));
    // Hanging so far, nothing finished: the oldest attempt's age is the duration.
    const waiting = await limiter.tryAcquire('ep', limits);
    expect(waiting.ok ? 0 : waiting.retryInMs).toBeGreaterThanOrEqual(140);
    await limiter.release('ep', undefined, held.lease);
    expect(Number(await client.hget(`{${prefix}:ep}:state`, 'meanMs'))).toBeGreaterThanOrEqual(140);
    // Free again: jobs turned away before do not push new ones back.
    expect(await client.hget(`{${prefix}:ep}:state`, 'nextAt')).toBeNull();
  });

  it('keeps an endpoint’s keys under one hash tag, each with a TTL', async () => {
    const { client, prefix } = setup('keys');
    const limiter = redisEndpointLimiter({ client, prefix, leaseMs: 2000 });
    await limiter.tryAcquire('ep_1', { concurrency: 2, rateLimitPerSecond: 5 });
    const keys = (await client.keys(`{${prefix}:*`)).sort();
    expect(keys).toEqual([`{${prefix}:ep_1}:leases`, `{${prefix}:ep_1}:state`]);
    const leaseTtl = await client.pttl(`{${prefix}:ep_1}:leases`);
    expect(leaseTtl).toBeGreaterThan(0);
    expect(leaseTtl).toBeLessThanOrEqual(2000);
    const stateTtl = await client.pttl(`{${prefix}:ep_1}:state`);
    expect(stateTtl).toBeGreaterThan(0);
    expect(stateTtl).toBeLessThanOrEqual(10 * 60_000);
  });

  it('rejects with a store error, naming no address, when Redis cannot be reached', async () => {
    const client: Redis = unreachableRedis();
    const limiter = redisEndpointLimiter({ client, prefix: uniquePrefix('down') });
    const failure = await limiter.tryAcquire('ep', { concurrency: 1 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as Error).message).not.toMatch(/127\.0\.0\.1/);
    await expect(limiter.release('ep', undefined, '1-x')).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
