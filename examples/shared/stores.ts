/**
 * Which store the example runs on: the embedded memory store by default, Redis
 * when REDIS_URL is set. ioredis is loaded only in the second case.
 */
import type { Store } from 'restwell';
import { MemoryStore } from 'restwell/memory';

export interface ExampleStores {
  /** Rate-limit counters: may evict under pressure. */
  counters: Store;
  /** Idempotency records: never drop a live key (on Redis, run it with `maxmemory-policy noeviction`). */
  records: Store;
  /** The ioredis client when REDIS_URL is set. */
  redis?: import('ioredis').Redis;
  close(): Promise<void>;
}

export async function createStores(env: NodeJS.ProcessEnv = process.env): Promise<ExampleStores> {
  const url = env.REDIS_URL;
  if (!url) {
    // Two stores with their own bounds: a flood of new clients' counters can
    // never push out a payment's idempotency record.
    const counters = new MemoryStore({ prefix: 'rl:', maxEntries: 100_000 });
    const records = new MemoryStore({ prefix: 'idem:', maxEntries: 100_000, evict: false });
    return {
      counters,
      records,
      close: async () => {
        await counters.close();
        await records.close();
      },
    };
  }
  const { Redis } = await import('ioredis');
  const { RedisStore } = await import('restwell/redis');
  // No offline queue: when Redis is down, commands fail at once and restwell's
  // modules apply their documented fail-open / fail-closed policy.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', resolve);
    redis.once('error', reject);
  });
  return {
    counters: new RedisStore({ client: redis, prefix: 'restwell-example:rl:' }),
    records: new RedisStore({ client: redis, prefix: 'restwell-example:idem:' }),
    redis,
    close: async () => {
      await redis.quit();
    },
  };
}
