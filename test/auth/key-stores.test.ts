/**
 * One contract for every API key store, run on memory and on the real Redis
 * and PostgreSQL servers, each under a prefix or table of its own.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { type ApiKeyStore, apiKeyVerifier, createApiKey } from '../../src/auth/api-keys.js';
import { MemoryApiKeyStore } from '../../src/auth/key-stores/memory.js';
import { apiKeyTableSql, migrateApiKeys, PostgresApiKeyStore } from '../../src/auth/postgres.js';
import { RedisApiKeyStore } from '../../src/auth/redis.js';
import request from 'supertest';
import { silentLogger } from '../../src/core/logger.js';
import { authenticate } from '../../src/auth/authenticate.js';
import { adapters } from '../helpers/apps.js';
import { hangingRedis, silentServer, unreachableRedis } from '../helpers/outage.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
const prefix = `test:auth:${run}:`;
const table = `restwell_api_keys_test_${run}`;
let redis: Redis | undefined;
let pool: pg.Pool | undefined;

afterAll(async () => {
  if (redis !== undefined) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  if (pool !== undefined) {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  }
});

const cases: Array<{ name: string; enabled: boolean; make: () => Promise<ApiKeyStore> }> = [
  { name: 'memory', enabled: true, make: async () => new MemoryApiKeyStore() },
  {
    name: 'redis',
    enabled: services.redis,
    make: async () => {
      redis ??= new Redis(services.redisUrl);
      return new RedisApiKeyStore({ client: redis, prefix });
    },
  },
  {
    name: 'postgres',
    enabled: services.postgres,
    make: async () => {
      pool ??= new pg.Pool({ connectionString: services.databaseUrl, max: 5 });
      await migrateApiKeys(pool, { table });
      return new PostgresApiKeyStore({ pool, table });
    },
  },
];

describe.each(cases)('$name API key store', ({ enabled, make }) => {
  it.runIf(enabled)('round-trips every field of a record', async () => {
    const store = await make();
    const { record } = createApiKey({
      subject: 'svc_billing',
      name: 'billing key',
      roles: ['admin', 'ops'],
      scopes: ['payments:read', 'payments:write'],
      tenant: 'acme',
      allowedIps: ['10.0.0.0/8', '2001:db8::/32'],
      expiresAt: Date.UTC(2030, 0, 1, 0, 0, 0, 123),
      now: () => Date.UTC(2026, 0, 1, 0, 0, 0, 456),
    });
    expect(await store.create(record)).toBe(true);
    expect(await store.get(record.id)).toEqual(record);
  });

  it.runIf(enabled)('a minimal record has no optional members', async () => {
    const store = await make();
    const { record } = createApiKey();
    await store.create(record);
    const read = await store.get(record.id);
    expect(read).toEqual(record);
    for (const member of ['name', 'tenant', 'allowedIps', 'expiresAt', 'revokedAt']) {
      expect(read).not.toHaveProperty(member);
    }
  });

  it.runIf(enabled)('an unknown id is null', async () => {
    const store = await make();
    expect(await store.get('doesNotExist')).toBeNull();
    expect(await store.revoke('doesNotExist', 1)).toBe(false);
    expect(await store.delete('doesNotExist')).toBe(false);
  });

  it.runIf(enabled)('create never overwrites: exactly one of concurrent creates wins', async () => {
    const store = await make();
    const first = createApiKey().record;
    const rivals = Array.from({ length: 8 }, () => ({ ...createApiKey().record, id: first.id }));
    const results = await Promise.all([first, ...rivals].map((r) => store.create(r)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = [first, ...rivals][results.indexOf(true)]!;
    expect((await store.get(first.id))?.hash).toBe(winner.hash);
  });

  it.runIf(enabled)('revocation keeps the first time, and only revokes', async () => {
    const store = await make();
    const { record } = createApiKey({ roles: ['admin'] });
    await store.create(record);
    expect(await store.revoke(record.id, 1_000_000)).toBe(true);
    expect(await store.revoke(record.id, 2_000_000)).toBe(true);
    const read = await store.get(record.id);
    expect(read?.revokedAt).toBe(1_000_000);
    expect({ ...read, revokedAt: undefined }).toEqual({ ...record, revokedAt: undefined });
  });

  it.runIf(enabled)('delete removes the record', async () => {
    const store = await make();
    const { record } = createApiKey();
    await store.create(record);
    expect(await store.delete(record.id)).toBe(true);
    expect(await store.get(record.id)).toBeNull();
  });

  it.runIf(enabled)('a verifier over it accepts, then refuses a revoked key', async () => {
    const store = await make();
    const { key, record } = createApiKey({ scopes: ['a'] });
    await store.create(record);
    const verifier = apiKeyVerifier({ store });
    expect((await verifier.verify(key)).principal.scopes).toEqual(['a']);
    await store.revoke(record.id, Date.now());
    await expect(verifier.verify(key)).rejects.toMatchObject({ reason: 'revoked' });
  });
});

describe('memory specifics', () => {
  it('a record is copied in and frozen: neither the caller’s object nor a reader changes it', async () => {
    const store = new MemoryApiKeyStore();
    const { record } = createApiKey({ roles: ['member'] });
    const mine = { ...record, roles: [...record.roles] };
    await store.create(mine);
    mine.roles.push('admin');
    const read = (await store.get(record.id))!;
    expect(read.roles).toEqual(['member']);
    expect(() => (read.roles as string[]).push('admin')).toThrow(TypeError);
    expect(() => {
      (read as { subject: string }).subject = 'someone else';
    }).toThrow(TypeError);
    expect((await store.get(record.id))!.subject).toBe(record.subject);
  });
});

describe.runIf(services.redis)('Redis specifics', () => {
  it('an expiring key lives in Redis until its expiry plus retainExpiredMs', async () => {
    redis ??= new Redis(services.redisUrl);
    const store = new RedisApiKeyStore({ client: redis, prefix, retainExpiredMs: 60_000 });
    const expiresAt = Date.now() + 120_000;
    const { record } = createApiKey({ expiresAt });
    await store.create(record);
    const pexpireAt = await redis.pexpiretime(`${prefix}${record.id}`);
    expect(pexpireAt).toBe(expiresAt + 60_000);
    const forever = createApiKey().record;
    await store.create(forever);
    expect(await redis.pttl(`${prefix}${forever.id}`)).toBe(-1);
  });

  it('an unreachable Redis is a store error', async () => {
    const client = unreachableRedis();
    const store = new RedisApiKeyStore({ client, timeoutMs: 300 });
    await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    client.disconnect();
  });
});

describe.runIf(services.postgres)('PostgreSQL specifics', () => {
  it('a missing table says how to create it', async () => {
    pool ??= new pg.Pool({ connectionString: services.databaseUrl, max: 5 });
    const store = new PostgresApiKeyStore({ pool, table: `restwell_api_keys_missing_${run}` });
    await expect(store.get('x')).rejects.toThrow(/migrateApiKeys/);
  });

  it('the table holds hashes only: no column could hold a key', async () => {
    pool ??= new pg.Pool({ connectionString: services.databaseUrl, max: 5 });
    await migrateApiKeys(pool, { table });
    const { key, record } = createApiKey();
    await new PostgresApiKeyStore({ pool, table }).create(record);
    const { rows } = await pool.query(`SELECT * FROM ${table} WHERE id = $1`, [record.id]);
    expect(JSON.stringify(rows)).not.toContain(key.split('_')[2]);
  });
});

describe('a real store that is down or hangs answers 503 on every adapter, never a 500 nor an allow', () => {
  const { key } = createApiKey({ roles: ['admin'] });
  const outages: Array<{
    name: string;
    open: () => Promise<{ store: ApiKeyStore; close(): Promise<void> }>;
  }> = [
    {
      name: 'Redis on a closed port',
      open: async () => {
        const client = unreachableRedis();
        return {
          store: new RedisApiKeyStore({ client, timeoutMs: 300 }),
          close: async () => client.disconnect(),
        };
      },
    },
    {
      name: 'Redis that never answers',
      open: async () => {
        const server = await silentServer();
        const client = hangingRedis(server.port);
        return {
          store: new RedisApiKeyStore({ client, timeoutMs: 300 }),
          close: async () => {
            client.disconnect();
            await server.close();
          },
        };
      },
    },
    {
      name: 'PostgreSQL on a closed port',
      open: async () => {
        const down = new pg.Pool({
          host: '127.0.0.1',
          port: 1,
          user: 'postgres',
          database: 'test',
        });
        down.on('error', () => {});
        return {
          store: new PostgresApiKeyStore({ pool: down, timeoutMs: 300 }),
          close: () => down.end(),
        };
      },
    },
    {
      name: 'PostgreSQL that never answers',
      open: async () => {
        const server = await silentServer();
        const hung = new pg.Pool({
          host: '127.0.0.1',
          port: server.port,
          user: 'postgres',
          database: 'test',
          connectionTimeoutMillis: 2000,
        });
        hung.on('error', () => {});
        return {
          store: new PostgresApiKeyStore({ pool: hung, timeoutMs: 300 }),
          close: async () => {
            await server.close();
            await hung.end().catch(() => {});
          },
        };
      },
    },
  ];
  it.each(outages)('$name', async ({ open }) => {
    const { store, close } = await open();
    try {
      for (const adapter of adapters) {
        let ran = 0;
        const app = adapter.build({
          use: [authenticate({ apiKeys: apiKeyVerifier({ store, logger: silentLogger }) })],
          routes: [
            {
              method: 'get',
              path: '/v1/me',
              handler: () => {
                ran++;
                return { body: {} };
              },
            },
          ],
        });
        for (const headers of [{ 'X-API-Key': key }, { Authorization: `Bearer ${key}` }]) {
          const res = await request(app).get('/v1/me').set(headers);
          expect(res.status, adapter.name).toBe(503);
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(res.body.code).toBe('service-unavailable');
          expect(res.headers['retry-after']).toBe('1');
          expect(JSON.stringify(res.body)).not.toMatch(
            /127\.0\.0\.1|ECONNREFUSED|Redis|PostgreSQL/,
          );
        }
        expect(ran, adapter.name).toBe(0);
      }
    } finally {
      await close();
    }
  });
});

describe('the shipped migration', () => {
  it('is the SQL migrateApiKeys() runs', () => {
    const file = readFileSync(
      new URL('../../migrations/postgres/005_restwell_api_keys.sql', import.meta.url),
      'utf8',
    );
    const statements = (sql: string) =>
      sql
        .split('\n')
        .filter((l) => !l.startsWith('--'))
        .join('\n')
        .trim();
    expect(statements(file)).toBe(statements(apiKeyTableSql()));
  });

  it('table names are checked', () => {
    expect(() => apiKeyTableSql('keys; DROP TABLE users')).toThrow(/table name/);
    expect(apiKeyTableSql('auth.api_keys')).toContain(
      'CREATE INDEX IF NOT EXISTS auth_api_keys_subject_idx',
    );
  });
});
