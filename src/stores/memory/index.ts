/**
 * MemoryStore: the embedded default store. Single-process only; use the Redis
 * or PostgreSQL store when several processes serve the same API.
 *
 * Exported from `restwell/memory` (and re-exported from `restwell`).
 *
 * - Bounded: at most `maxEntries` keys. When a new key finds the store full,
 *   an expired key is reclaimed first; failing that, a cache (`evict: true`,
 *   the default) evicts the least recently written key, and a ledger
 *   (`evict: false`) refuses the write with `StoreFullError`. Replacing a key
 *   that is held never needs room.
 * - Expiry without a timer per key: each entry carries its deadline, checked on
 *   access, and a bounded sweep of the earliest deadlines runs as keys are written.
 * - The same cost per write at 10 000 or 1 000 000 entries: eviction order is a
 *   linked list and expiry order a binary heap, never a scan (bench/stores.ts).
 * - Same semantics as the Redis and PostgreSQL stores, proven by one contract suite.
 *
 * @example
 * ```ts
 * import { MemoryStore } from 'restwell/memory';
 * const counters = new MemoryStore({ maxEntries: 50_000 });           // a cache: rate limits
 * const records = new MemoryStore({ maxEntries: 50_000, evict: false }); // a ledger: idempotency
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

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions extends Pick<StoreOptions, 'prefix'> {
  /** Most keys held at once, expired ones included until reclaimed. @default 10_000 */
  maxEntries?: number;
  /**
   * What a write does when it needs a new key and `maxEntries` live keys are
   * held (expired keys are always reclaimed first). `true` (a cache): the
   * least recently written key is evicted to make room, which suits rate-limit
   * counters. `false` (a ledger): nothing live is ever dropped, and the write
   * fails with `StoreFullError`; idempotency and every module that keeps
   * promises require this. @default true
   */
  evict?: boolean;
  /** The clock, in milliseconds; injectable for tests. @default Date.now */
  now?: () => number;
}

const OPTIONS = ['prefix', 'maxEntries', 'evict', 'now'] as const;

/**
 * One key. It sits in three structures: the Map (lookup by key), the write
 * order (a doubly linked list, oldest first: the eviction order) and the
 * expiry heap (a binary min-heap on `due`: the sweep order).
 *
 * Neither order can come from the Map itself: a Map iterates in insertion
 * order, but V8 keeps a deleted entry's slot until the table is rehashed, so
 * taking the "first" key after many deletions walks every hole before it,
 * and insertion order is not expiry order once TTLs differ.
 */
class Entry {
  older: Entry | undefined = undefined;
  newer: Entry | undefined = undefined;
  constructor(
    readonly key: string,
    public value: string,
    public expiresAt: number,
    /**
     * The heap's sort key: a lower bound of `expiresAt`. Rewriting a key with a
     * later deadline (a rate-limit counter on every request) leaves it alone,
     * so the rewrite costs no heap work; the sweep corrects it when it reaches
     * the top. An earlier deadline is applied at once. Since no entry's `due`
     * is later than its deadline, a heap top whose `due` is in the future
     * proves that nothing has expired.
     */
    public due: number,
    /** Index in the heap. */
    public slot: number,
  ) {}
}

/** How many heap tops one write may examine while sweeping expired keys. */
const SWEEP_BATCH = 16;

/**
 * The embedded store: one process, bounded by `maxEntries`, a cache by default (`evict: true`)
 * or a ledger (`evict: false`). Same semantics as the Redis and PostgreSQL stores.
 */
export class MemoryStore implements Store, AtomicUpdates {
  readonly kind = 'memory';
  /** `true` for a cache (the default), `false` for a ledger; see {@link MemoryStoreOptions.evict}. */
  readonly evicts: boolean;
  readonly prefix: string;
  readonly maxEntries: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly heap: Entry[] = [];
  private oldest: Entry | undefined = undefined;
  private newest: Entry | undefined = undefined;

  constructor(options: MemoryStoreOptions = {}) {
    checkOptions('memory', options, OPTIONS);
    const { prefix = 'rw:', maxEntries = 10_000, evict = true, now = Date.now } = options;
    if (typeof evict !== 'boolean') invalidOption('memory', 'evict', 'true or false', evict);
    if (typeof prefix !== 'string') invalidOption('memory', 'prefix', 'a string', prefix);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      invalidOption('memory', 'maxEntries', 'a positive integer', maxEntries);
    }
    if (typeof now !== 'function') invalidOption('memory', 'now', 'a function', now);
    this.evicts = evict;
    this.prefix = prefix;
    this.maxEntries = maxEntries;
    this.now = now;
  }

  /** Number of keys held, expired ones included until reclaimed. */
  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<string | null> {
    return this.live(this.prefix + key, this.now())?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs);
    this.write(this.prefix + key, value, ttlMs, this.now());
  }

  async add(key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs);
    const full = this.prefix + key;
    const now = this.now();
    if (this.live(full, now) !== undefined) return false;
    this.write(full, value, ttlMs, now);
    return true;
  }

  async addOrGet(key: string, value: string, ttlMs: number): Promise<string | null> {
    assertTtl(ttlMs);
    const full = this.prefix + key;
    const now = this.now();
    const entry = this.live(full, now);
    if (entry !== undefined) return entry.value;
    this.write(full, value, ttlMs, now);
    return null;
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    assertTtl(ttlMs);
    const full = this.prefix + key;
    const now = this.now();
    const entry = this.live(full, now);
    if (entry === undefined || entry.value !== expected) return false;
    this.write(full, value, ttlMs, now);
    return true;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    const entry = this.live(this.prefix + key, this.now());
    if (entry === undefined || entry.value !== expected) return false;
    this.remove(entry);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const entry = this.entries.get(this.prefix + key);
    if (entry === undefined) return false;
    this.remove(entry);
    return entry.expiresAt > this.now();
  }

  /**
   * All or nothing, also when the store is full: a ledger checks that it has
   * room for every new key before writing any, and otherwise throws
   * `StoreFullError` with nothing written. One reading of the clock serves the
   * whole step, so a key read as live cannot expire before it is written.
   */
  updateAtomically(
    keys: readonly string[],
    update: (values: Array<string | null>, now: number) => ReadonlyArray<AtomicWrite | null>,
  ): void {
    const now = this.now();
    const full = keys.map((key) => this.prefix + key);
    const writes = update(
      full.map((k) => this.live(k, now)?.value ?? null),
      now,
    );
    // Every write is checked before any is made.
    for (const write of writes) if (write !== null && write !== undefined) assertTtl(write.ttlMs);
    if (!this.evicts) {
      // live() has removed the expired ones: a key not held now is a new key.
      const fresh = new Set<string>();
      full.forEach((k, i) => {
        const write = writes[i];
        if (write !== null && write !== undefined && !this.entries.has(k)) fresh.add(k);
      });
      this.sweep(now);
      this.makeRoom(fresh.size, now);
    }
    full.forEach((k, i) => {
      const write = writes[i];
      if (write !== null && write !== undefined) this.write(k, write.value, write.ttlMs, now);
    });
  }

  /** Drops every key. */
  clear(): void {
    this.entries.clear();
    this.heap.length = 0;
    this.oldest = undefined;
    this.newest = undefined;
  }

  async close(): Promise<void> {
    this.clear();
  }

  /** The entry under a full key, when it is live at `now`; an expired one is removed. */
  private live(full: string, now: number): Entry | undefined {
    const entry = this.entries.get(full);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.remove(entry);
      return undefined;
    }
    return entry;
  }

  private write(full: string, value: string, ttlMs: number, now: number): void {
    this.sweep(now);
    const expiresAt = now + ttlMs;
    const entry = this.entries.get(full);
    if (entry !== undefined) {
      // Replacing a key needs no room.
      entry.value = value;
      entry.expiresAt = expiresAt;
      if (expiresAt < entry.due) {
        entry.due = expiresAt;
        this.siftUp(entry.slot);
      }
      if (this.evicts && entry !== this.newest) {
        this.unlink(entry);
        this.append(entry);
      }
      return;
    }
    this.makeRoom(1, now);
    const created = new Entry(full, value, expiresAt, expiresAt, this.heap.length);
    this.entries.set(full, created);
    this.heap.push(created);
    this.siftUp(created.slot);
    // Only a cache needs the write order: a ledger never evicts.
    if (this.evicts) this.append(created);
  }

  /**
   * Makes room for `count` new keys: expired keys first, then (a cache) the
   * least recently written ones; a ledger that would have to drop a live key
   * throws `StoreFullError` instead, having dropped none.
   */
  private makeRoom(count: number, now: number): void {
    while (this.entries.size + count > this.maxEntries) {
      if (this.reclaimExpired(now, true)) continue;
      if (!this.evicts || this.oldest === undefined) {
        throw new StoreFullError(
          `restwell/memory: the store is full (${this.maxEntries} live keys, maxEntries) and never evicts a live key.`,
        );
      }
      this.remove(this.oldest);
    }
  }

  /** The bounded sweep each write runs: a few heap tops, at most. */
  private sweep(now: number): void {
    const top = this.heap[0];
    if (top === undefined || top.due > now) return; // the usual case: one comparison
    this.reclaimExpired(now, false, SWEEP_BATCH);
  }

  /**
   * Removes expired entries from the top of the heap: one when `one` is set
   * (and then answers whether it found one), or up to `budget` heap steps. A
   * top whose deadline moved later since it was pushed gets its true deadline
   * and sinks; that is the deferred half of a rewrite, done once per rewrite
   * at most, so the cost stays amortised O(log n) per write.
   */
  private reclaimExpired(now: number, one: boolean, budget = Number.POSITIVE_INFINITY): boolean {
    for (let steps = 0; steps < budget; steps++) {
      const top = this.heap[0];
      if (top === undefined || top.due > now) return false;
      if (top.expiresAt <= now) {
        this.remove(top);
        if (one) return true;
      } else {
        top.due = top.expiresAt;
        this.siftDown(0);
      }
    }
    return false;
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.key);
    const heap = this.heap;
    const last = heap.pop()!;
    if (last !== entry) {
      const i = entry.slot;
      heap[i] = last;
      last.slot = i;
      if (i > 0 && heap[(i - 1) >> 1]!.due > last.due) this.siftUp(i);
      else this.siftDown(i);
    }
    if (this.evicts) this.unlink(entry);
  }

  private append(entry: Entry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest === undefined) this.oldest = entry;
    else this.newest.newer = entry;
    this.newest = entry;
  }

  private unlink(entry: Entry): void {
    if (entry.older === undefined) this.oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.newest = entry.older;
    else entry.newer.older = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.due <= entry.due) break;
      heap[i] = parent;
      parent.slot = i;
      i = p;
    }
    heap[i] = entry;
    entry.slot = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const right = c + 1;
      if (right < n && heap[right]!.due < heap[c]!.due) c = right;
      const child = heap[c]!;
      if (child.due >= entry.due) break;
      heap[i] = child;
      child.slot = i;
      i = c;
    }
    heap[i] = entry;
    entry.slot = i;
  }
}

/** The longest TTL this store (and every other) accepts: ten years. */
export { MAX_TTL_MS } from '../types.js';
