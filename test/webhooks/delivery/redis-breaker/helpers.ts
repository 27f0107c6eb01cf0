import type { Redis } from 'ioredis';
import { cleanKeys, uniquePrefixOf } from '../redis-keys.js';

export { closedPort, proxyTo } from '../../../helpers/outage.js';
export { redis } from '../redis-keys.js';

/** A breaker key prefix no other run or suite uses. */
export const uniquePrefix = (label: string): string => uniquePrefixOf('breaker', label);

/** Deletes every key under `prefix` (`{<prefix>:…}:…`; SCAN, never FLUSH). */
export const cleanBreakerKeys = (client: Redis, prefix: string): Promise<number> =>
  cleanKeys(client, prefix);

/** Redis's own clock, in ms: what the shared breaker reads. */
export async function redisNow(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
