/**
 * The three ledger stores a module's behaviour suite runs on: a MemoryStore
 * that never evicts, a RedisStore and a PostgresStore on the real servers,
 * each under a prefix or table of its own, removed by `cleanup()`.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { migrate, PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { services } from './services.js';

export interface LedgerCase {
  name: 'memory' | 'redis' | 'postgres';
  enabled: boolean;
  setup(): Promise<Store>;
}

/** Ledger stores for a suite named `label` (used in the Redis prefix and the table name). */
export function ledgerStores(label: string): { cases: LedgerCase[]; cleanup(): Promise<void> } {
  const run = Math.random().toString(36).slice(2, 8);
  const prefix = `${label}:${run}:`;
  const table = `restwell_${label.replace(/[^a-z0-9]/g, '_')}_${run}`;
  let redis: Redis | undefined;
  let pool: pg.Pool | undefined;
  return {
    cases: [
      { name: 'memory', enabled: true, setup: async () => new MemoryStore({ evict: false }) },
      {
        name: 'redis',
        enabled: services.redis,
        setup: async () => {
          redis ??= new Redis(services.redisUrl);
          return new RedisStore({ client: redis, prefix });
        },
      },
      {
        name: 'postgres',
        enabled: services.postgres,
        setup: async () => {
          pool ??= new pg.Pool({ connectionString: services.databaseUrl, max: 10 });
          await migrate(pool, { table });
          return new PostgresStore({ pool, table });
        },
      },
    ],
    async cleanup() {
      const keys = (await redis?.keys(`${prefix}*`)) ?? [];
      if (keys.length > 0) await redis?.del(...keys);
      await redis?.quit();
      await pool?.query(`DROP TABLE IF EXISTS ${table}`);
      await pool?.end();
    },
  };
}
