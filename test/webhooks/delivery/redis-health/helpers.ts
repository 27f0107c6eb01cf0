import type { Redis } from 'ioredis';
import { cleanKeys, uniquePrefixOf } from '../redis-keys.js';

export { closedPort, proxyTo } from '../../../helpers/outage.js';
export { redisNow, sleep } from '../redis-breaker/helpers.js';
export { redis } from '../redis-keys.js';

/** A health key prefix no other run or suite uses. */
export const uniquePrefix = (label: string): string => uniquePrefixOf('health', label);

/** Deletes every key of `prefix`: `{<prefix>:…}:health` (SCAN, never FLUSH) and the due index. */
export const cleanHealthKeys = (client: Redis, prefix: string): Promise<number> =>
  cleanKeys(client, prefix, [`{${prefix}}:health-due`]);
