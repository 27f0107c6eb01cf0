/**
 * What the tests of the Redis-shared limiter, breakers and health have in common: a client on
 * the shared Redis, a prefix no other run uses, and the removal of every key under it.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { services } from '../../helpers/services.js';

export function redis(): Redis {
  return new Redis(services.redisUrl, { maxRetriesPerRequest: null });
}

/** A key prefix of `kind` no other run or suite uses. */
export function uniquePrefixOf(kind: string, label: string): string {
  return `rw-test-${kind}-${label}-${randomBytes(4).toString('hex')}`;
}

/**
 * Deletes every key under `prefix` (`{<prefix>:…}:…`, SCAN, never FLUSH) and the
 * `extra` keys given whole.
 */
export async function cleanKeys(
  client: Redis,
  prefix: string,
  extra: readonly string[] = [],
): Promise<number> {
  let cursor = '0';
  let removed = extra.length > 0 ? await client.del(...extra) : 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) removed += await client.del(...keys);
  } while (cursor !== '0');
  return removed;
}
