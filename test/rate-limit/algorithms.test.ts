/**
 * Every algorithm, driven by an injected clock, with the same expectations on
 * the memory backend and on real Redis (where the Lua transcription runs).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Algorithm } from '../../src/rate-limit/algorithms.js';
import {
  type LimitCheck,
  type RateLimitBackend,
  rateLimitBackend,
} from '../../src/rate-limit/backend.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
let redis: Redis | undefined;

afterAll(async () => {
  if (redis === undefined) return;
  const keys = await redis.keys(`rl-test:${run}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const backends: Array<{ name: string; enabled: boolean; make(): RateLimitBackend }> = [
  { name: 'memory', enabled: true, make: () => rateLimitBackend(new MemoryStore()) },
  {
    name: 'redis',
    enabled: services.redis,
    make: () => {
      redis ??= new Redis(services.redisUrl);
      return rateLimitBackend(new RedisStore({ client: redis, prefix: `rl-test:${run}:` }));
    },
  },
];

// Epoch-aligned so that window boundaries fall on round numbers.
const T0 = 1_800_000_000_000;
let n = 0;

for (const b of backends) {
  describe.runIf(b.enabled)(`algorithms on ${b.name}`, () => {
    let backend: RateLimitBackend;
    let key: string;
    beforeEach(() => {
      backend = b.make();
      key = `k${++n}`;
    });

    const check = (
      algorithm: Algorithm,
      limit: number,
      windowMs: number,
      extra: Partial<LimitCheck> = {},
    ): LimitCheck => ({ key, algorithm, limit, windowMs, burst: limit, cost: 1, ...extra });

    /** Sends `count` requests at time `at` and returns their outcomes. */
    async function hit(c: LimitCheck, at: number, count = 1) {
      const out = [];
      for (let i = 0; i < count; i++) out.push((await backend.consume([c], at)).outcomes[0]!);
      return out;
    }

    describe('token bucket', () => {
      it('admits a burst up to capacity, then refuses until a token refills', async () => {
        const c = check('token-bucket', 10, 10_000); // one token per second
        const burst = await hit(c, T0, 10);
        expect(burst.map((o) => o.allowed)).toEqual(Array(10).fill(true));
        expect(burst.map((o) => o.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
        const [refused] = await hit(c, T0);
        expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000 });
        expect((await hit(c, T0 + 999))[0]!.allowed).toBe(false);
        const [one] = await hit(c, T0 + 1000);
        expect(one).toMatchObject({ allowed: true, remaining: 0 });
        // Five seconds later, five tokens.
        const five = await hit(c, T0 + 6000, 6);
        expect(five.map((o) => o.allowed)).toEqual([true, true, true, true, true, false]);
      });

      it('reports the time until the bucket is full again', async () => {
        const c = check('token-bucket', 10, 10_000);
        await hit(c, T0, 3);
        const [o] = await hit(c, T0 + 500);
        // 4 tokens taken, 0.5 refilled: 3.5 s to full.
        expect(o).toMatchObject({ allowed: true, remaining: 6, resetMs: 3500 });
      });

      it('caps bursts at `burst` while refilling at limit/window', async () => {
        const c = check('token-bucket', 60, 60_000, { burst: 3 });
        const out = await hit(c, T0, 4);
        expect(out.map((o) => o.allowed)).toEqual([true, true, true, false]);
        expect(out[3]!.retryAfterMs).toBe(1000);
      });

      it('takes `cost` tokens and refuses a request that needs more than remain', async () => {
        const c = check('token-bucket', 10, 10_000, { cost: 4 });
        const out = await hit(c, T0, 3);
        expect(out.map((o) => [o.allowed, o.remaining])).toEqual([
          [true, 6],
          [true, 2],
          [false, 2],
        ]);
        expect(out[2]!.retryAfterMs).toBe(2000);
      });
    });

    describe('sliding window', () => {
      it('carries the previous window over, so there is no burst at the boundary', async () => {
        const c = check('sliding-window', 10, 10_000);
        expect((await hit(c, T0, 10)).every((o) => o.allowed)).toBe(true);
        expect((await hit(c, T0 + 9_999))[0]!.allowed).toBe(false);
        // The next window opens, but the previous one still weighs fully.
        const [atBoundary] = await hit(c, T0 + 10_000);
        expect(atBoundary).toMatchObject({ allowed: false, retryAfterMs: 1000 });
        // 10% into the new window: 9 of the previous still count, room for one.
        const out = await hit(c, T0 + 11_000, 2);
        expect(out.map((o) => o.allowed)).toEqual([true, false]);
        // Halfway: estimate = 10 × 0.5 + 1 = 6 → four more.
        const half = await hit(c, T0 + 15_000, 5);
        expect(half.map((o) => o.allowed)).toEqual([true, true, true, true, false]);
      });

      it('forgets everything after two windows', async () => {
        const c = check('sliding-window', 5, 1000);
        await hit(c, T0, 5);
        const out = await hit(c, T0 + 2000, 5);
        expect(out.every((o) => o.allowed)).toBe(true);
        expect(out[4]!.remaining).toBe(0);
      });
    });

    describe('fixed window', () => {
      it('resets at the window boundary (and so admits a double burst across it)', async () => {
        const c = check('fixed-window', 10, 10_000);
        expect((await hit(c, T0 + 9_000, 10)).every((o) => o.allowed)).toBe(true);
        const [refused] = await hit(c, T0 + 9_500);
        expect(refused).toMatchObject({
          allowed: false,
          remaining: 0,
          retryAfterMs: 500,
          resetMs: 500,
        });
        const next = await hit(c, T0 + 10_000, 11);
        expect(next.filter((o) => o.allowed)).toHaveLength(10);
        expect(next[0]).toMatchObject({ remaining: 9, resetMs: 10_000 });
      });
    });

    describe('leaky bucket', () => {
      it('spaces requests at a constant rate and refuses beyond the queue', async () => {
        const c = check('leaky-bucket', 10, 1000, { burst: 2 }); // one every 100 ms, two may wait
        const out = await hit(c, T0, 4);
        expect(out.map((o) => [o.allowed, o.delayMs])).toEqual([
          [true, 0],
          [true, 100],
          [true, 200],
          [false, 0],
        ]);
        expect(out[3]!.retryAfterMs).toBe(100);
        const [later] = await hit(c, T0 + 100);
        expect(later).toMatchObject({ allowed: true, delayMs: 200 });
      });

      it('without a queue, refuses a request that comes before its turn', async () => {
        const c = check('leaky-bucket', 10, 1000, { burst: 0 });
        const out = await hit(c, T0, 2);
        expect(out.map((o) => o.allowed)).toEqual([true, false]);
        expect(out[1]!.retryAfterMs).toBe(100);
        expect((await hit(c, T0 + 100))[0]!.allowed).toBe(true);
      });
    });

    it('keeps counting when the clock steps back into an earlier window', async () => {
      for (const algorithm of ['fixed-window', 'sliding-window'] as const) {
        const c = { ...check(algorithm, 3, 10_000), key: `${key}:${algorithm}` };
        await hit(c, T0 + 10_000, 3);
        expect((await hit(c, T0 + 9_999))[0]!.allowed).toBe(false);
        expect((await hit(c, T0 + 10_001))[0]!.allowed).toBe(false);
      }
    });

    it('advances its state at a million requests a second', async () => {
      const c = check('token-bucket', 1_000_000, 1000, { burst: 10 }); // one token per µs
      const out = await hit(c, T0, 12);
      expect(out.filter((o) => o.allowed)).toHaveLength(10);
    });

    it('refuses outright a cost above what the policy can ever hold', async () => {
      const [o] = await hit(check('token-bucket', 10, 10_000, { burst: 3, cost: 4 }), T0);
      expect(o).toMatchObject({ allowed: false, retryAfterMs: 10_000 });
      const [w] = await hit(check('fixed-window', 3, 5000, { cost: 4 }), T0);
      expect(w).toMatchObject({ allowed: false, retryAfterMs: 5000 });
    });

    it('admits a leaky-bucket request of cost 0 without a turn', async () => {
      const c = check('leaky-bucket', 10, 1000, { burst: 0 });
      await hit(c, T0);
      const [free] = await hit({ ...c, cost: 0 }, T0 + 10);
      expect(free).toMatchObject({ allowed: true, delayMs: 0 });
      expect((await hit(c, T0 + 100))[0]!.allowed).toBe(true);
    });

    it('is all-or-nothing across policies: a refusal consumes nothing anywhere', async () => {
      const wide = { ...check('token-bucket', 5, 60_000), key: `${key}:wide` };
      const narrow = { ...check('fixed-window', 2, 60_000), key: `${key}:narrow` };
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await backend.consume([wide, narrow], T0));
      expect(results.map((r) => r.outcomes.map((o) => o.allowed))).toEqual([
        [true, true],
        [true, true],
        [true, false],
      ]);
      // The refused third request took nothing from the wide policy.
      const [after] = (await backend.consume([wide], T0)).outcomes;
      expect(after).toMatchObject({ allowed: true, remaining: 2 });
    });

    // A seeded generator: the same parameter sets on every backend and every run.
    function random(seed: number) {
      let x = seed >>> 0;
      return () => {
        x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
        return x / 2 ** 32;
      };
    }

    it.each(['token-bucket', 'leaky-bucket', 'sliding-window', 'fixed-window'] as const)(
      '%s: a retry at exactly retryAfterMs is admitted, one ms earlier is refused (300 random parameter sets)',
      async (algorithm) => {
        const rnd = random(algorithm.length * 7 + (algorithm === 'token-bucket' ? 35 : 0));
        const failures: unknown[] = [];
        const windowed = algorithm === 'sliding-window' || algorithm === 'fixed-window';
        for (let i = 0; i < 300; i++) {
          const limit = windowed
            ? 1 + Math.floor(rnd() * 50)
            : 1 + Math.floor(rnd() * (rnd() < 0.5 ? 10 : 100_000));
          // Windows that make the per-unit interval a repeating fraction, and odd start times.
          const windowMs = 1 + Math.floor(rnd() * 3_600_000);
          const burst =
            algorithm === 'token-bucket'
              ? 1 + Math.floor(rnd() * Math.min(limit * 2, 50))
              : windowed
                ? limit
                : Math.floor(rnd() * 5);
          const cost =
            algorithm === 'token-bucket'
              ? 1 + Math.floor(rnd() * burst)
              : windowed
                ? 1 + Math.floor(rnd() * limit)
                : 1;
          const c = check(algorithm, limit, windowMs, { burst, cost, key: `${key}-${i}` });
          // Near the epoch as well as now: small times keep sub-nanosecond fractions.
          let at = (i % 2 === 0 ? T0 : 0) + Math.floor(rnd() * 1_000_000);
          // Drive it to a refusal, with a few time steps in between so that the state holds fractions.
          let refusedOutcome: { retryAfterMs: number } | undefined;
          for (let k = 0; k < 200 && refusedOutcome === undefined; k++) {
            const [o] = await hit(c, at);
            if (!o!.allowed) refusedOutcome = o;
            else at += Math.floor(rnd() * 3);
          }
          if (refusedOutcome === undefined) continue;
          const retry = refusedOutcome.retryAfterMs;
          const [early] = retry > 1 ? await hit(c, at + retry - 1) : [undefined];
          const [onTime] = await hit(c, at + retry);
          if (early?.allowed === true || onTime?.allowed !== true) {
            failures.push({
              limit,
              windowMs,
              burst,
              cost,
              at,
              retry,
              early: early?.allowed,
              onTime: onTime?.allowed,
            });
          }
        }
        expect(failures).toEqual([]);
      },
      60_000,
    );

    it('reads the clock itself when none is passed', async () => {
      const before = Date.now();
      const r = await backend.consume([check('token-bucket', 5, 1000)]);
      expect(r.outcomes[0]!.allowed).toBe(true);
      expect(Math.abs(r.now - before)).toBeLessThan(5000);
    });
  });
}

describe.runIf(services.redis)('Redis counters', () => {
  it('expire when they would be back to full, and never live forever', async () => {
    redis ??= new Redis(services.redisUrl);
    const backend = rateLimitBackend(new RedisStore({ client: redis, prefix: `rl-test:${run}:` }));
    const key = `ttl-${++n}`;
    await backend.consume(
      [{ key, algorithm: 'token-bucket', limit: 10, windowMs: 10_000, burst: 10, cost: 3 }],
      Date.now(),
    );
    const ttl = await redis.pttl(`rl-test:${run}:${key}`);
    expect(ttl).toBeGreaterThan(2000);
    expect(ttl).toBeLessThanOrEqual(3000);
  });
});
