import { describeValue, StoreTimeoutError } from '../core/errors.js';

/**
 * The Store contract shared by restwell modules that keep state (idempotency
 * records, and any module that needs atomic key/value operations).
 *
 * Every operation is atomic and costs one round trip on a networked store.
 * Values are strings; modules encode their own records. TTLs are positive
 * milliseconds up to {@link MAX_TTL_MS}, checked by {@link assertTtl} on every
 * store before anything is sent: a key never lives forever by accident.
 *
 * A store that cannot answer throws `StoreUnavailableError`, or
 * `StoreTimeoutError` once its `timeoutMs` has passed: never hangs, never
 * returns a made-up answer. Modules decide whether to fail open or closed.
 */
export interface Store {
  /** A short name for logs: `memory`, `redis`, `postgres`. */
  readonly kind: string;
  /**
   * Whether the store may drop a live key before its TTL to make room: `true`
   * for a cache (rate-limit counters may be forgotten), `false` for a ledger
   * that keeps every live key until it expires or is deleted, and fails a
   * write it has no room for with `StoreFullError` instead. Modules whose
   * promise rests on a record (idempotency, webhook dedupe, audit, tasks)
   * refuse a store that evicts.
   */
  readonly evicts: boolean;
  /** The current value, or `null` when absent or expired. Keys and values are any strings without U+0000. */
  get(key: string): Promise<string | null>;
  /** Writes unconditionally with a TTL. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Creates the key only if it is absent (or expired). Exactly one of any number
   * of concurrent callers gets `true`.
   */
  add(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Creates the key if it is absent (or expired) and returns `null`; otherwise
   * leaves it alone and returns the current value. One atomic step, so a
   * caller learns in one round trip either that it won or what it lost to.
   */
  addOrGet(key: string, value: string, ttlMs: number): Promise<string | null>;
  /**
   * Replaces the value only if it currently equals `expected`, with a new TTL.
   * `false` when the key is absent, expired or holds another value.
   */
  compareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes the key only if it currently equals `expected`. */
  compareAndDelete(key: string, expected: string): Promise<boolean>;
  /** Deletes the key; `true` when something was deleted. */
  delete(key: string): Promise<boolean>;
  /** Releases what the store owns (timers, its own connections). Clients passed in are left open. */
  close?(): Promise<void>;
  /**
   * Called by {@link assertLedger} when a module is about to rely on this
   * store as a ledger. A store whose promise also depends on how its server
   * is configured (RedisStore: `maxmemory-policy`) checks that, once and
   * lazily, and reports what it finds through its logger. Never throws.
   */
  verifyLedger?(): void;
}

/** One key's new value, as returned to {@link AtomicUpdates.updateAtomically}. */
export interface AtomicWrite {
  value: string;
  ttlMs: number;
}

/**
 * Optional capability of an in-process store (MemoryStore): read several keys
 * and write them back in one synchronous step, with nothing running in
 * between. Modules that need a multi-key check-and-set (the rate limiter's
 * all-or-nothing policies) use it.
 */
export interface AtomicUpdates {
  /**
   * Calls `update` with the current values (`null` when absent or expired) and
   * the store's clock, then writes each non-null result with its TTL.
   */
  updateAtomically(
    keys: readonly string[],
    update: (values: Array<string | null>, now: number) => ReadonlyArray<AtomicWrite | null>,
  ): void;
}

/** A server-side script: a stable name and its Lua source. */
export interface StoreScript {
  /** Registered once per client under this name; must be a valid JavaScript identifier. */
  name: string;
  lua: string;
}

/**
 * Optional capability of a scripted store (RedisStore): run a Lua script on the
 * server in one round trip. Keys are prefixed like every other key; on a
 * Cluster they must share a hash slot.
 */
export interface ScriptRunner {
  /** `options.timeoutMs` overrides the store's own `timeoutMs` for this call. */
  runScript(
    script: StoreScript,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
    options?: { timeoutMs?: number },
  ): Promise<unknown>;
}

/** Options every store accepts. */
export interface StoreOptions {
  /**
   * Prepended to every key, so that several applications (or modules) can share
   * one server. @default 'rw:'
   */
  prefix?: string;
  /**
   * Longest time one operation may take before it fails with
   * `StoreTimeoutError`. Bounds the damage of a slow or unreachable server.
   * Ignored by the memory store. @default 1000
   */
  timeoutMs?: number;
}

/**
 * The longest TTL any store accepts: ten years (of 365.25 days). Every store
 * enforces the same bound, so a TTL that works on one works on all. A record
 * meant to be kept "for ever" uses this, or a ledger outside the Store.
 */
export const MAX_TTL_MS = 315_576_000_000;

/** Validates a TTL argument: a positive number of milliseconds, at most {@link MAX_TTL_MS}. */
export function assertTtl(ttlMs: number): void {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
    throw new TypeError(
      `restwell/stores: a TTL must be a positive number of milliseconds up to ${MAX_TTL_MS} (ten years), got ${describeValue(ttlMs)}.`,
    );
  }
}

const LEDGER_HINTS: Readonly<Record<string, string>> = {
  memory:
    'a MemoryStore that evicts; use new MemoryStore({ evict: false }), with its own maxEntries',
  redis:
    'a RedisStore created with evicts: true; use a Redis run with maxmemory-policy noeviction, and a RedisStore without evicts: true',
};

/**
 * Refuses, at construction, a store that may evict live keys, for a module
 * whose promise rests on its records (see {@link Store.evicts}); then lets the
 * store verify what it can of its server ({@link Store.verifyLedger}).
 */
export function assertLedger(module: string, store: Store, option = 'store'): void {
  if (store.evicts !== false) {
    throw new TypeError(
      `restwell/${module}: option "${option}" must be a store that never drops a live key, got ${Object.hasOwn(LEDGER_HINTS, store.kind) ? LEDGER_HINTS[store.kind] : `a ${String(store.kind)} store that may evict`}. Records this module keeps are promises to clients; a store that forgets them breaks those promises.`,
    );
  }
  if (typeof store.verifyLedger === 'function') store.verifyLedger();
}

/**
 * Runs one store operation within `timeoutMs`. A timeout becomes
 * `StoreTimeoutError`; any other failure is handed to `onError`, which turns the
 * driver's error into the store's typed error.
 */
export async function bounded<T>(
  operation: string,
  timeoutMs: number,
  run: () => Promise<T>,
  onError: (err: unknown) => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(operation, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([run(), timeout]);
  } catch (err) {
    throw err instanceof StoreTimeoutError ? err : onError(err);
  } finally {
    clearTimeout(timer);
  }
}
