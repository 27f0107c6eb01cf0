/**
 * `RedisApiKeyStore`: API key records on Redis through the application's own
 * ioredis client (standalone or Cluster; every operation touches one key).
 *
 * A record is one hash, `<prefix><id>`: field `r` holds the record as JSON
 * (without the revocation), field `revokedAt` the revocation time, so that a
 * revocation is one atomic field write and never rewrites the record. A key
 * with an expiry gets a Redis TTL of its expiry plus `retainExpiredMs`: an
 * expired key is still reported as expired for that long, then forgotten.
 *
 * If Redis evicts or loses a record, its key stops working: the failure is
 * closed, never open. For keys that must keep working, run Redis with
 * `maxmemory-policy noeviction` and persistence (see docs/stores.md).
 *
 * Exported from `restwell/auth/redis`. ioredis is an optional peer
 * dependency: this file only uses the client it is given.
 */
import type { Cluster, Redis } from 'ioredis';
import { checkOptions, invalidOption, StoreUnavailableError } from '../core/errors.js';
import { bounded } from '../stores/types.js';
import type { ApiKeyRecord, ApiKeyStore } from './api-keys.js';

/** Options of {@link RedisApiKeyStore}. */
export interface RedisApiKeyStoreOptions {
  /** Your ioredis client. The store never closes it. Required. */
  client: Redis | Cluster;
  /** Prepended to every key id. @default 'rw:apikey:' */
  prefix?: string;
  /** Longest time one command may take. @default 1000 */
  timeoutMs?: number;
  /** How long an expired key's record is kept (and reported as expired) after its expiry. @default 2_592_000_000 (30 days) */
  retainExpiredMs?: number;
}

// KEYS[1] record; ARGV[1] JSON; ARGV[2] absolute expiry in epoch ms, or ''.
const CREATE = `
if redis.call('HSETNX', KEYS[1], 'r', ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1`;

// KEYS[1] record; ARGV[1] revocation time. Keeps the first revocation.
const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revokedAt', ARGV[1])
return 1`;

/**
 * API key records on Redis: one hash per key, atomic create-if-absent and
 * revocation, one round trip per operation.
 *
 * @example
 * ```ts
 * const store = new RedisApiKeyStore({ client: redis, prefix: 'api:keys:' });
 * ```
 */
export class RedisApiKeyStore implements ApiKeyStore {
  readonly kind = 'redis';
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly client: Redis | Cluster;
  private readonly retainExpiredMs: number;

  constructor(options: RedisApiKeyStoreOptions) {
    checkOptions('auth RedisApiKeyStore', options, [
      'client',
      'prefix',
      'timeoutMs',
      'retainExpiredMs',
    ]);
    const {
      client,
      prefix = 'rw:apikey:',
      timeoutMs = 1000,
      retainExpiredMs = 2_592_000_000,
    } = options ?? ({} as RedisApiKeyStoreOptions);
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof (client as Redis).hmget !== 'function'
    ) {
      invalidOption('auth RedisApiKeyStore', 'client', 'an ioredis client', client);
    }
    if (typeof prefix !== 'string')
      invalidOption('auth RedisApiKeyStore', 'prefix', 'a string', prefix);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      invalidOption('auth RedisApiKeyStore', 'timeoutMs', 'a positive integer', timeoutMs);
    }
    if (!Number.isInteger(retainExpiredMs) || retainExpiredMs < 0) {
      invalidOption(
        'auth RedisApiKeyStore',
        'retainExpiredMs',
        'a non-negative integer',
        retainExpiredMs,
      );
    }
    this.client = client;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    this.retainExpiredMs = retainExpiredMs;
  }

  private run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    return bounded(
      operation,
      this.timeoutMs,
      command,
      (err) => new StoreUnavailableError(`Redis ${operation} failed.`, { cause: err }),
    );
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const [json, revokedAt] = await this.run('apiKeyGet', () =>
      this.client.hmget(this.prefix + id, 'r', 'revokedAt'),
    );
    if (typeof json !== 'string') return null;
    let record: unknown;
    try {
      record = JSON.parse(json);
    } catch {
      // The verifier refuses what it cannot read.
      return { id } as unknown as ApiKeyRecord;
    }
    if (record === null || typeof record !== 'object') return { id } as unknown as ApiKeyRecord;
    return typeof revokedAt === 'string'
      ? ({ ...(record as ApiKeyRecord), revokedAt: Number(revokedAt) } as ApiKeyRecord)
      : (record as ApiKeyRecord);
  }

  async create(record: ApiKeyRecord): Promise<boolean> {
    const { revokedAt, ...rest } = record;
    const expireAt =
      record.expiresAt === undefined ? '' : String(record.expiresAt + this.retainExpiredMs);
    const created = await this.run('apiKeyCreate', () =>
      this.client.eval(CREATE, 1, this.prefix + record.id, JSON.stringify(rest), expireAt),
    );
    if (created === 1 && revokedAt !== undefined) await this.revoke(record.id, revokedAt);
    return created === 1;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    const done = await this.run('apiKeyRevoke', () =>
      this.client.eval(REVOKE, 1, this.prefix + id, String(at)),
    );
    return done === 1;
  }

  async delete(id: string): Promise<boolean> {
    const n = await this.run('apiKeyDelete', () => this.client.del(this.prefix + id));
    return n === 1;
  }
}
