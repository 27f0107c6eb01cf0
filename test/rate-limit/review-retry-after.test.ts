/**
 * A refusal's Retry-After covers every policy of the request. When a
 * rate-limiter-flexible policy refuses first, the native policies were not
 * consulted, and the Retry-After was the flexible limiter's alone: a client
 * that waited that long was refused again by a native policy it was never
 * told about.
 */
import { Redis } from 'ioredis';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { flexiblePolicy, rateLimit } from '../../src/rate-limit/index.js';
import type { Store } from '../../src/stores/types.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
let redis: Redis | undefined;
afterAll(async () => {
  if (redis === undefined) return;
  const keys = await redis.keys(`rl-retry:${run}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const stores: Array<{ name: string; enabled: boolean; make(): Store }> = [
  { name: 'memory', enabled: true, make: () => new MemoryStore() },
  {
    name: 'redis',
    enabled: services.redis,
    make: () => {
      redis ??= new Redis(services.redisUrl);
      return new RedisStore({ client: redis, prefix: `rl-retry:${run}:${Math.random()}:` });
    },
  },
];

for (const s of stores) {
  describe.runIf(s.enabled)(`on ${s.name}`, () => {
    it.each(adapters)(
      'a flexible refusal waits for the native policies too ($name)',
      async (adapter) => {
        const limiter = new RateLimiterMemory({ points: 2, duration: 1 });
        const listener = adapter.build({
          use: [
            rateLimit({
              store: s.make(),
              policies: [
                flexiblePolicy({ name: 'burst', limiter }),
                { name: 'hourly', limit: 1, windowMs: 3_600_000 },
              ],
            }),
          ],
          routes: [{ method: 'get', path: '/x', handler: () => ({ body: {} }) }],
        });
        await request(listener).get('/x').expect(200);
        await request(listener).get('/x').expect(429);
        // The flexible limiter is now exhausted too (for under a second).
        await limiter.consume('127.0.0.1', 1);
        const res = await request(listener).get('/x').expect(429);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(3500);
        expect(res.body.policy).toBe('hourly');
        expect(res.headers['ratelimit-policy']).toBe('"burst";q=2;w=1, "hourly";q=1;w=3600');
        // Peeking consumed nothing: the hourly counter still holds one request.
        expect(res.headers.ratelimit).toMatch(/^"hourly";r=0;t=\d+$/);
      },
    );
  });
}
