import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreTimeoutError, StoreUnavailableError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { migrate, PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { hangingRedis, silentServer, unreachableRedis } from '../helpers/outage.js';
import { services } from '../helpers/services.js';
import { runStoreContract } from './store.contract.js';

const run = Math.random().toString(36).slice(2, 8);

runStoreContract('memory (a cache: evict: true)', () => ({
  make: (prefix = `m${run}:`) => new MemoryStore({ prefix }),
  evicts: true,
}));

runStoreContract('memory (a ledger: evict: false)', () => ({
  make: (prefix = `l${run}:`) => new MemoryStore({ prefix, evict: false }),
  evicts: false,
}));

runStoreContract(
  'redis',
  () => {
    const client = new Redis(services.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
    return {
      make: (prefix = `test:${run}:`) => new RedisStore({ client, prefix }),
      evicts: false,
      teardown: async () => {
        const keys = await client.keys(`*${run}*`);
        if (keys.length > 0) await client.del(...keys);
        await client.quit();
      },
    };
  },
  services.redis,
);

runStoreContract(
  'postgres',
  () => {
    const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 10 });
    const table = `restwell_store_test_${run}`;
    let migrated: Promise<void> | undefined;
    return {
      make: async (prefix = 'rw:') => {
        migrated ??= migrate(pool, { table });
        await migrated;
        return new PostgresStore({ pool, table, prefix });
      },
      evicts: false,
      teardown: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${table}`);
        await pool.end();
      },
    };
  },
  services.postgres,
);

describe('a store whose server is unreachable fails fast with a typed error', () => {
  const cleanups: Array<() => unknown> = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('Redis on a closed port', async () => {
    const client = unreachableRedis();
    cleanups.push(() => client.disconnect());
    const store = new RedisStore({ client, timeoutMs: 500 });
    await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('Redis that accepts and never answers', async () => {
    const silent = await silentServer();
    const client = hangingRedis(silent.port);
    cleanups.push(
      () => client.disconnect(),
      () => silent.close(),
    );
    const store = new RedisStore({ client, timeoutMs: 300 });
    await expect(store.add('k', 'v', 1000)).rejects.toBeInstanceOf(StoreTimeoutError);
  });

  it('PostgreSQL on a closed port', async () => {
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: 1,
      user: 'postgres',
      database: 'test',
      connectionTimeoutMillis: 500,
    });
    cleanups.push(() => pool.end());
    const store = new PostgresStore({ pool, timeoutMs: 1000 });
    await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('PostgreSQL that accepts and never answers', async () => {
    const silent = await silentServer();
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: silent.port,
      user: 'postgres',
      database: 'test',
      connectionTimeoutMillis: 5000,
    });
    pool.on('error', () => {});
    cleanups.push(() => silent.close());
    const store = new PostgresStore({ pool, timeoutMs: 300 });
    await expect(store.get('k')).rejects.toBeInstanceOf(StoreTimeoutError);
  });

  it.runIf(services.postgres)('PostgreSQL without the migration names the fix', async () => {
    const pool = new pg.Pool({ connectionString: services.databaseUrl });
    cleanups.push(() => pool.end());
    const store = new PostgresStore({ pool, table: `missing_${run}` });
    await expect(store.get('k')).rejects.toThrow(`migrate(pool, { table: 'missing_${run}' })`);
  });
});
