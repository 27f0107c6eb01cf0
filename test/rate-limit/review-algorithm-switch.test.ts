/**
 * A policy whose algorithm changes (a deploy switches `per-ip` from a token
 * bucket to a fixed window, keeping its name) reads the counters the old
 * algorithm left. A bucket's state is a time in epoch milliseconds; read as a
 * window's index it lies millions of years ahead, and the window then never
 * closes: the client is refused for ever, with a `t` and a `Retry-After`
 * beyond any sf-integer. A window whose length changes (a per-plan
 * `windowMs`) moved the index as far: 60 s to 61 s is a year ahead.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { Algorithm } from '../../src/rate-limit/algorithms.js';
import { type RateLimitBackend, rateLimitBackend } from '../../src/rate-limit/backend.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
let redis: Redis | undefined;

afterAll(async () => {
  if (redis === undefined) return;
  const keys = await redis.keys(`rl-switch:${run}:*`);
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
      return rateLimitBackend(new RedisStore({ client: redis, prefix: `rl-switch:${run}:` }));
    },
  },
];

const T0 = 1_800_000_000_000;
const WINDOW = 3_600_000;

for (const b of backends) {
  describe.runIf(b.enabled)(`on ${b.name}`, () => {
    it.each([
      ['token-bucket', 'fixed-window'],
      ['token-bucket', 'sliding-window'],
      ['leaky-bucket', 'fixed-window'],
      ['leaky-bucket', 'sliding-window'],
    ] as Array<[Algorithm, Algorithm]>)(
      'a window policy that finds a %s state starts afresh (%s)',
      async (before, after) => {
        const backend = b.make();
        const key = `k-${before}-${after}`;
        const check = { key, limit: 2, windowMs: WINDOW, burst: 2, cost: 1 };
        await backend.consume([{ ...check, algorithm: before }], T0 + 123);
        const now = T0 + 456;
        const outcomes = [];
        for (let i = 0; i < 3; i++) {
          const {
            outcomes: [o],
          } = await backend.consume([{ ...check, algorithm: after }], now);
          outcomes.push(o);
        }
        expect(outcomes.map((o) => o?.allowed)).toEqual([true, true, false]);
        for (const o of outcomes) {
          // Within the window's own horizon: two windows at most.
          expect(o?.resetMs).toBeLessThanOrEqual(2 * WINDOW);
          expect(o?.retryAfterMs).toBeLessThanOrEqual(2 * WINDOW);
        }
        // And the window closes: an hour and more later the client is admitted again.
        const later = await backend.consume([{ ...check, algorithm: after }], now + 2 * WINDOW);
        expect(later.outcomes[0]?.allowed).toBe(true);
      },
    );

    it.each([
      ['fixed-window', 60_000, 61_000],
      ['sliding-window', 60_000, 61_000],
      ['fixed-window', 60_000, 120_000],
      ['sliding-window', 3_600_000, 7_200_000],
    ] as Array<[Algorithm, number, number]>)(
      'a %s policy whose window changes from %i ms to %i ms starts afresh',
      async (algorithm, before, after) => {
        const backend = b.make();
        const key = `w-${algorithm}-${before}-${after}`;
        const check = { key, algorithm, limit: 1, burst: 1, cost: 1 };
        await backend.consume([{ ...check, windowMs: before }], T0 + 123);
        const { outcomes } = await backend.consume([{ ...check, windowMs: after }], T0 + 456);
        expect(outcomes[0]).toMatchObject({ allowed: true });
        expect(outcomes[0]?.resetMs).toBeLessThanOrEqual(2 * after);
        const refused = await backend.consume([{ ...check, windowMs: after }], T0 + 789);
        expect(refused.outcomes[0]?.allowed).toBe(false);
        expect(refused.outcomes[0]?.retryAfterMs).toBeLessThanOrEqual(2 * after);
      },
    );

    it.each([
      ['fixed-window', 1000],
      ['sliding-window', 1000],
      ['fixed-window', 3_600_000],
    ] as Array<[Algorithm, number]>)(
      'a %s policy (%i ms) keeps what it counted when the clock steps back up to a minute',
      async (algorithm, windowMs) => {
        const backend = b.make();
        const check = {
          key: `step-${algorithm}-${windowMs}`,
          algorithm,
          limit: 1,
          burst: 1,
          cost: 1,
          windowMs,
        };
        await backend.consume([check], T0 + 59_999);
        const back = await backend.consume([check], T0);
        expect(back.outcomes[0]?.allowed).toBe(false);
      },
    );
  });
}
