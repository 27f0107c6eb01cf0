/**
 * Which store the example runs on: the embedded memory store by default, Redis
 * when REDIS_URL is set. ioredis is loaded only in the second case.
 */
import type { Store } from 'restwell';
import { MemoryStore } from 'restwell/memory';

export interface ExampleStores {
  store: Store;
  /** The ioredis client when REDIS_URL is set. */
  redis?: import('ioredis').Redis;
  close(): Promise<void>;
}

export async function createStores(env: NodeJS.ProcessEnv = process.env): Promise<ExampleStores> {
  const url = env.REDIS_URL;
  if (!url) {
    const store = new MemoryStore();
    return { store, close: () => store.close() };
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
  const store = new RedisStore({ client: redis, prefix: 'restwell-example:' });
  return {
    store,
    redis,
    close: async () => {
      await redis.quit();
    },
  };
}
