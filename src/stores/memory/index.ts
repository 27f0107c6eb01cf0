/**
 * MemoryStore: the embedded default store. Single-process only; use the Redis
 * or PostgreSQL store when several processes serve the same API.
 *
 * Exported from `restwell/memory` (and re-exported from `restwell`).
 *
 * - Bounded: at most `maxEntries` keys; when full, expired keys are swept and
 *   then the least recently written ones are evicted.
 * - Expiry without a timer per key: each entry carries its deadline, checked on
 *   access, and a bounded sweep runs as keys are written.
 * - Same semantics as the Redis and PostgreSQL stores, proven by one contract suite.
 *
 * @example
 * ```ts
 * import { MemoryStore } from 'restwell/memory';
 * const store = new MemoryStore({ maxEntries: 50_000 });
 * ```
 */
import { checkOptions, invalidOption, StoreFullError } from '../../core/errors.js';
import {
  type AtomicUpdates,
  type AtomicWrite,
  assertTtl,
  type Store,
  type StoreOptions,
} from '../types.js';

export interface MemoryStoreOptions extends Pick<StoreOptions, 'prefix'> {
  /** Most keys held at once. @default 10_000 */
  maxEntries?: number;
  /**
   * What a write does when `maxEntries` live keys are held. `true` (a cache):
   * the least recently written key is evicted to make room, which suits
   * rate-limit counters. `false` (a ledger): nothing live is ever dropped, and
   * a write that needs a new key fails with `StoreFullError`; idempotency and
   * every module that keeps promises require this. @default true
   */
  evict?: boolean;
  /** The clock, in milliseconds; injectable for tests. @default Date.now */
  now?: () => number;
}

interface Entry {
  value: string;
  expiresAt: number;
}

/** How many entries one write may examine while sweeping expired keys. */
const SWEEP_BATCH = 16;

export class MemoryStore implements Store, AtomicUpdates {
  readonly kind = 'memory';
  readonly evicts: boolean;
  readonly prefix: string;
  readonly maxEntries: number;
  private readonly now: () => number;
  // A Map iterates in insertion order; re-inserting on write keeps the oldest
  // writes first, which is both the sweep order and the eviction order.
  private readonly entries = new Map<string, Entry>();

  constructor(options: MemoryStoreOptions = {}) {
    checkOptions('memory', options, ['prefix', 'maxEntries', 'evict', 'now']);
    const { prefix = 'rw:', maxEntries = 10_000, evict = true, now = Date.now } = options;
    if (typeof evict !== 'boolean') invalidOption('memory', 'evict', 'true or false', evict);
    this.evicts = evict;
    if (typeof prefix !== 'string') invalidOption('memory', 'prefix', 'a string', prefix);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      invalidOption('memory', 'maxEntries', 'a positive integer', maxEntries);
    }
    if (typeof now !== 'function') invalidOption('memory', 'now', 'a function', now);
    this.prefix = prefix;
    this.maxEntries = maxEntries;
    this.now = now;
  }

  /** Number of keys held, expired ones included until swept. */
  get size(): number {
    return this.entries.size;
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(this.prefix + key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(this.prefix + key);
      return undefined;
    }
    return entry;
  }

  private write(key: string, value: string, ttlMs: number): void {
    const full = this.prefix + key;
    // Replacing a key needs no room; only a new one may find the store full.
    if (!this.entries.delete(full)) this.makeRoom();
    this.entries.set(full, { value, expiresAt: this.now() + ttlMs });
  }

  private makeRoom(): void {
    const now = this.now();
    let examined = 0;
    for (const [k, e] of this.entries) {
      if (examined++ >= SWEEP_BATCH) break;
      if (e.expiresAt <= now) this.entries.delete(k);
    }
    if (this.entries.size >= this.maxEntries && !this.evicts) {
      // A ledger: every expired key has to go before a live one is refused.
      for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
      if (this.entries.size >= this.maxEntries) {
        throw new StoreFullError(
          `MemoryStore is full: ${this.maxEntries} live keys (maxEntries), and it never evicts one.`,
        );
      }
    }
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs);
    this.write(key, value, ttlMs);
  }

  async add(key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs);
    if (this.live(key) !== undefined) return false;
    this.write(key, value, ttlMs);
    return true;
  }

  async addOrGet(key: string, value: string, ttlMs: number): Promise<string | null> {
    assertTtl(ttlMs);
    const entry = this.live(key);
    if (entry !== undefined) return entry.value;
    this.write(key, value, ttlMs);
    return null;
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    assertTtl(ttlMs);
    const entry = this.live(key);
    if (entry === undefined || entry.value !== expected) return false;
    this.write(key, value, ttlMs);
    return true;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    const entry = this.live(key);
    if (entry === undefined || entry.value !== expected) return false;
    this.entries.delete(this.prefix + key);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const existed = this.live(key) !== undefined;
    this.entries.delete(this.prefix + key);
    return existed;
  }

  updateAtomically(
    keys: readonly string[],
    update: (values: Array<string | null>, now: number) => ReadonlyArray<AtomicWrite | null>,
  ): void {
    const writes = update(
      keys.map((key) => this.live(key)?.value ?? null),
      this.now(),
    );
    // Every write is checked before any is made: all of them happen, or none.
    for (const write of writes) if (write !== null && write !== undefined) assertTtl(write.ttlMs);
    keys.forEach((key, i) => {
      const write = writes[i];
      if (write !== null && write !== undefined) this.write(key, write.value, write.ttlMs);
    });
  }

  /** Drops every key. */
  clear(): void {
    this.entries.clear();
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
