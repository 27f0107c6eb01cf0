import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export { closedPort, proxyTo, redis, redisNow, sleep } from '../redis-breaker/helpers.js';

/** A health key prefix no other run or suite uses. */
export function uniquePrefix(label: string): string {
  return `rw-test-health-${label}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key of `prefix`: `{<prefix>:…}:health` (SCAN, never FLUSH) and the due index. */
export async function cleanHealthKeys(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = await client.del(`{${prefix}}:health-due`);
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) removed += await client.del(...keys);
  } while (cursor !== '0');
  return removed;
}
