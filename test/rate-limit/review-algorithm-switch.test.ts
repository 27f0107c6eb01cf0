/**
 * A policy whose algorithm changes (a deploy switches `per-ip` from a token
 * bucket to a fixed window, keeping its name) reads the counters the old
 * algorithm left. A bucket's state is a time in epoch milliseconds; read as a
 * window's index it lies millions of years ahead, and the window then never
 * closes: the client is refused for ever, with a `t` and a `Retry-After`
 * beyond any sf-integer.
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
  });
}
