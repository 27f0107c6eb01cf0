/**
 * RedisStore: the Store contract on Redis through the user's own ioredis
 * client (standalone or Cluster). One round trip per operation: GET, SET PX,
 * SET NX PX, DEL, and three Lua scripts (add-or-get, compare-and-set,
 * compare-and-delete) registered once with `defineCommand`, so they run as
 * EVALSHA. Every operation touches one key, so it is Cluster-safe as it is.
 *
 * Exported from `restwell/redis`. ioredis is an optional peer dependency: this
 * file only uses the client it is given.
 *
 * A ledger only as long as Redis keeps its data: the server must run with
 * `maxmemory-policy noeviction` (checked once when a module relies on the
 * store as a ledger, see {@link RedisStoreOptions.logger})
 * and with the persistence and replication settings described in docs/stores.md.
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
import {
  checkOptions,
  invalidOption,
  StoreFullError,
  StoreUnavailableError,
} from '../../core/errors.js';
import { defaultLogger, type Logger } from '../../core/logger.js';
import {
  assertTtl,
  bounded,
  type ScriptRunner,
  type Store,
  type StoreOptions,
  type StoreScript,
} from '../types.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions extends StoreOptions {
  /** Your ioredis client (`Redis` or `Cluster`). The store never closes it. Required. */
  client: Redis | Cluster;
  /**
   * Declares that this Redis may drop live keys: a cache, run with an
   * eviction policy on purpose (for rate-limit counters, say). The store then
   * reports `evicts: true`, modules that keep promises (idempotency) refuse
   * it, and the server's policy is not checked. @default false
   */
  evicts?: boolean;
  /**
   * Where the store reports, once, that the server may drop keys it holds.
   * Once a module relies on the store as a ledger (idempotency, through
   * `assertLedger`), the next operation also reads the server's
   * `maxmemory-policy` (`CONFIG GET`, sent after the operation's own command
   * and never awaited by it), and the store warns unless it is `noeviction`.
   * Where `CONFIG` is disabled or renamed, one `info` line says that the
   * policy could not be read. A store used as a cache (rate-limit counters)
   * sends no such command. @default restwell's default logger (JSON lines on stderr)
   */
  logger?: Logger;
}

const OPTIONS = ['client', 'prefix', 'timeoutMs', 'evicts', 'logger'] as const;

/**
 * Clients whose server policy has been checked (or is being checked), so
 * that several stores on one client check, and warn, once.
 */
const policyChecked = new WeakSet<object>();

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

/** An error Redis itself answered with (ioredis `ReplyError`), not a connection failure. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

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

/**
 * The Store on Redis (or a Redis Cluster) through the application's own ioredis client: one
 * round trip and one atomic script per operation. A ledger when the server runs
 * `maxmemory-policy noeviction` (see docs/stores.md).
 */
export class RedisStore implements Store, ScriptRunner {
  readonly kind = 'redis';
  /** `false` unless created with `evicts: true`; see {@link RedisStoreOptions.evicts}. */
  readonly evicts: boolean;
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly client: (Redis | Cluster) & ScriptedClient;
  private readonly logger: Logger;
  /** Whether the next operation reads the server's eviction policy (see {@link verifyLedger}). */
  private checkPolicy: boolean;

  constructor(options: RedisStoreOptions) {
    checkOptions('redis', options, OPTIONS);
    const {
      client,
      prefix = 'rw:',
      timeoutMs = 1000,
      evicts = false,
      logger = defaultLogger,
    } = options ?? ({} as RedisStoreOptions);
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof (client as Redis).defineCommand !== 'function'
    ) {
      invalidOption('redis', 'client', 'an ioredis Redis or Cluster client', client);
    }
    if (typeof prefix !== 'string') invalidOption('redis', 'prefix', 'a string', prefix);
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)
      invalidOption('redis', 'timeoutMs', 'a positive number', timeoutMs);
    if (typeof evicts !== 'boolean') invalidOption('redis', 'evicts', 'true or false', evicts);
    if (
      logger === null ||
      typeof logger !== 'object' ||
      typeof logger.warn !== 'function' ||
      typeof logger.info !== 'function'
    ) {
      invalidOption('redis', 'logger', 'a logger with warn() and info()', logger);
    }
    this.evicts = evicts;
    this.logger = logger;
    this.checkPolicy = false;
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

  /**
   * Called by `assertLedger`: the next operation reads the server's eviction
   * policy (once per client) and warns when Redis may drop keys.
   */
  verifyLedger(): void {
    if (!this.evicts && !policyChecked.has(this.client)) this.checkPolicy = true;
  }

  /** Runs one command within `timeoutMs`, turning every failure into a typed store error. */
  private run<T>(
    operation: string,
    command: () => Promise<T>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    const result = bounded(operation, timeoutMs, command, (err) =>
      // With noeviction, a Redis at maxmemory refuses writes with an OOM error:
      // the same answer as a full MemoryStore ledger, and as safe (nothing written).
      isReplyError(err) && /^OOM\b/.test((err as Error).message)
        ? new StoreFullError(`Redis ${operation} refused: the server is at maxmemory.`, {
            cause: err,
          })
        : new StoreUnavailableError(`Redis ${operation} failed.`, { cause: err }),
    );
    // Sent after the operation's own command, so its answer comes first.
    if (this.checkPolicy) this.checkEvictionPolicy();
    return result;
  }

  /**
   * Reads `maxmemory-policy` once per client, in the background, and warns
   * when the server may evict keys. Every policy but `noeviction` may:
   * `volatile-*` ones too, since every key this store writes has a TTL.
   */
  private checkEvictionPolicy(): void {
    this.checkPolicy = false;
    if (policyChecked.has(this.client)) return;
    policyChecked.add(this.client);
    const client = this.client as Redis | Cluster;
    // On a Cluster every master holds keys: ask each one.
    const servers: Redis[] = client.isCluster
      ? (client as Cluster).nodes('master')
      : [client as Redis];
    if (servers.length === 0) {
      // A Cluster that has not discovered its nodes yet: try again later.
      policyChecked.delete(this.client);
      this.checkPolicy = true;
      return;
    }
    void Promise.all(
      servers.map((server) =>
        (server.config('GET', 'maxmemory-policy') as Promise<unknown>).then((reply) =>
          Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined,
        ),
      ),
    ).then(
      (policies) => {
        const evicting = [...new Set(policies)].filter((p) => p !== 'noeviction');
        if (evicting.length === 0) return;
        this.logger.warn(
          `restwell/redis: the Redis server runs with maxmemory-policy ${evicting.map((p) => (p === undefined ? '(unknown)' : `"${p}"`)).join(', ')}, so it may drop keys this store holds before they expire. Records kept as promises (idempotency) are then forgotten. Run it with maxmemory-policy noeviction, or pass evicts: true if this Redis is meant to be a cache.`,
          { code: 'redis-may-evict', maxmemoryPolicy: evicting },
        );
      },
      (err: unknown) => {
        if (isReplyError(err)) {
          // CONFIG disabled, renamed or denied by an ACL: say so once, and trust the operator.
          this.logger.info(
            "restwell/redis: could not read the Redis server's maxmemory-policy (CONFIG is not available to this client); make sure it is noeviction.",
            { code: 'redis-policy-unknown' },
          );
          return;
        }
        // Not connected yet, or a connection error: try again with a later operation.
        policyChecked.delete(this.client);
        this.checkPolicy = true;
      },
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

/** The longest TTL this store (and every other) accepts: ten years. */
export { MAX_TTL_MS } from '../types.js';
