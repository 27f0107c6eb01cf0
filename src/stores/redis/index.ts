/**
 * RedisStore: the Store contract on Redis through the user's own ioredis
 * client (standalone or Cluster). One round trip per operation: GET, SET PX,
 * SET NX PX, DEL, and two Lua scripts (compare-and-set, compare-and-delete)
 * registered once with `defineCommand`, so they run as EVALSHA. Every
 * operation touches one key, so it is Cluster-safe as it is.
 *
 * Exported from `restwell/redis`. ioredis is an optional peer dependency: this
 * file only uses the client it is given.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisStore } from 'restwell/redis';
 * // No offline queue: when Redis is down, commands fail at once instead of piling up.
 * const client = new Redis(process.env.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
 * const store = new RedisStore({ client, prefix: 'api:' });
 * ```
 */
import type { Cluster, Redis } from 'ioredis';
import { invalidOption, StoreUnavailableError } from '../../core/errors.js';
import {
  assertTtl,
  bounded,
  type ScriptRunner,
  type Store,
  type StoreOptions,
  type StoreScript,
} from '../types.js';

export interface RedisStoreOptions extends StoreOptions {
  /** Your ioredis client (`Redis` or `Cluster`). The store never closes it. */
  client: Redis | Cluster;
}

// KEYS[1] key; ARGV[1] expected; ARGV[2] new value; ARGV[3] ttl ms.
const COMPARE_AND_SET = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

// KEYS[1] key; ARGV[1] expected.
const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

// KEYS[1] key; ARGV[1] value; ARGV[2] ttl ms. Returns the existing value, or false once set.
const ADD_OR_GET = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`;

interface ScriptedClient {
  restwellAddOrGet(key: string, value: string, ttlMs: number): Promise<string | null>;
  restwellCompareAndSet(
    key: string,
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<number>;
  restwellCompareAndDelete(key: string, expected: string): Promise<number>;
}

export class RedisStore implements Store, ScriptRunner {
  readonly kind = 'redis';
  readonly evicts = false;
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly client: (Redis | Cluster) & ScriptedClient;

  constructor(options: RedisStoreOptions) {
    const { client, prefix = 'rw:', timeoutMs = 1000 } = options ?? ({} as RedisStoreOptions);
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof (client as Redis).defineCommand !== 'function'
    ) {
      invalidOption('redis', 'client', 'an ioredis Redis or Cluster client', client);
    }
    if (typeof prefix !== 'string') invalidOption('redis', 'prefix', 'a string', prefix);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      invalidOption('redis', 'timeoutMs', 'a positive number', timeoutMs);
    const scripted = client as (Redis | Cluster) & Partial<ScriptedClient>;
    // Registered once per client, shared by every store on it.
    if (typeof scripted.restwellAddOrGet !== 'function') {
      client.defineCommand('restwellCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET });
      client.defineCommand('restwellCompareAndDelete', {
        numberOfKeys: 1,
        lua: COMPARE_AND_DELETE,
      });
      client.defineCommand('restwellAddOrGet', { numberOfKeys: 1, lua: ADD_OR_GET });
    }
    this.client = client as (Redis | Cluster) & ScriptedClient;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
  }

  /** Runs one command within `timeoutMs`, turning every failure into a typed store error. */
  private run<T>(
    operation: string,
    command: () => Promise<T>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    return bounded(
      operation,
      timeoutMs,
      command,
      (err) => new StoreUnavailableError(`Redis ${operation} failed.`, { cause: err }),
    );
  }

  get(key: string): Promise<string | null> {
    return this.run('get', () => this.client.get(this.prefix + key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs);
    await this.run('set', () => this.client.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs)));
  }

  async add(key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs);
    const reply = await this.run('add', () =>
      this.client.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs), 'NX'),
    );
    return reply === 'OK';
  }

  async addOrGet(key: string, value: string, ttlMs: number): Promise<string | null> {
    assertTtl(ttlMs);
    return this.run('addOrGet', () =>
      this.client.restwellAddOrGet(this.prefix + key, value, Math.ceil(ttlMs)),
    );
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    assertTtl(ttlMs);
    const reply = await this.run('compareAndSet', () =>
      this.client.restwellCompareAndSet(this.prefix + key, expected, value, Math.ceil(ttlMs)),
    );
    return reply === 1;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    const reply = await this.run('compareAndDelete', () =>
      this.client.restwellCompareAndDelete(this.prefix + key, expected),
    );
    return reply === 1;
  }

  async runScript(
    script: StoreScript,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    const command = `restwellScript_${script.name}`;
    const client = this.client as unknown as Record<
      string,
      ((...a: Array<string | number>) => Promise<unknown>) | undefined
    >;
    if (typeof client[command] !== 'function') {
      // No fixed key count: it is passed with each call. Loaded once (EVALSHA after the first call).
      this.client.defineCommand(command, { lua: script.lua });
    }
    const run = client[command] as (...a: Array<string | number>) => Promise<unknown>;
    return this.run(
      script.name,
      () => run.call(this.client, keys.length, ...keys.map((k) => this.prefix + k), ...args),
      options.timeoutMs,
    );
  }

  async delete(key: string): Promise<boolean> {
    const reply = await this.run('delete', () => this.client.del(this.prefix + key));
    return reply > 0;
  }
}
