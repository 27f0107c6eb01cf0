/**
 * Which stores the example runs on: the embedded memory store by default, Redis
 * when REDIS_URL is set. ioredis is loaded only in the second case.
 *
 * Two stores, because counters and idempotency records fail differently: a
 * rate-limit counter may be forgotten (its client starts a fresh window), an
 * idempotency record may not (a retried payment would charge twice). Apart, a
 * flood of new clients' counters can never push out a record. On Redis both
 * share one server, so it must run `maxmemory-policy noeviction`, and the
 * example refuses to start on a Redis that says it evicts.
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
  const policy = await maxmemoryPolicy(redis);
  if (policy !== undefined && policy !== 'noeviction') {
    await redis.quit();
    throw new Error(
      `The Redis at REDIS_URL runs maxmemory-policy ${policy}: when full it would evict ` +
        'idempotency records, and a retried payment would charge twice. Run it with ' +
        '`maxmemory-policy noeviction` (see examples/README.md).',
    );
  }
  if (policy === undefined)
    console.warn(
      'restwell example: could not read the Redis maxmemory-policy (CONFIG is disabled here); ' +
        'make sure it is noeviction, or idempotency records may be evicted.',
    );
  // REDIS_PREFIX lets several examples (or test runs) share one Redis.
  const prefix = env.REDIS_PREFIX || 'restwell-example:';
  return {
    counters: new RedisStore({ client: redis, prefix: `${prefix}rl:` }),
    records: new RedisStore({ client: redis, prefix: `${prefix}idem:` }),
    redis,
    close: async () => {
      await redis.quit();
    },
  };
}

/**
 * The server's maxmemory-policy, or undefined when it cannot be read (managed
 * services often disable CONFIG).
 */
async function maxmemoryPolicy(redis: import('ioredis').Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as unknown;
    return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
  } catch {
    return undefined;
  }
}
