/**
 * The Store contract, as one suite every store must pass with the same
 * expectations: memory, Redis and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLedger, MAX_TTL_MS, type Store } from '../../src/stores/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface StoreFactory {
  /** A fresh store with its own key prefix. */
  make(prefix?: string): Promise<Store> | Store;
  /** What the store must say about itself: `true` for a cache, `false` for a ledger. */
  evicts: boolean;
  teardown?(): Promise<void>;
}

export function runStoreContract(name: string, factory: () => StoreFactory, enabled = true): void {
  describe.runIf(enabled)(`Store contract: ${name}`, () => {
    let f: StoreFactory;
    let store: Store;
    let n = 0;
    const key = () => `k${++n}:${Math.random().toString(36).slice(2)}`;

    beforeAll(async () => {
      f = factory();
      store = await f.make();
    });
    afterAll(async () => {
      await f?.teardown?.();
    });

    it('round-trips get, set and delete', async () => {
      const k = key();
      expect(await store.get(k)).toBeNull();
      await store.set(k, 'v1', 10_000);
      expect(await store.get(k)).toBe('v1');
      await store.set(k, 'v2', 10_000);
      expect(await store.get(k)).toBe('v2');
      expect(await store.delete(k)).toBe(true);
      expect(await store.delete(k)).toBe(false);
      expect(await store.get(k)).toBeNull();
    });

    it('expires keys after their TTL', async () => {
      const k = key();
      await store.set(k, 'short', 80);
      expect(await store.get(k)).toBe('short');
      await sleep(200);
      expect(await store.get(k)).toBeNull();
    });

    it('add creates only when absent or expired', async () => {
      const k = key();
      expect(await store.add(k, 'first', 80)).toBe(true);
      expect(await store.add(k, 'second', 80)).toBe(false);
      expect(await store.get(k)).toBe('first');
      await sleep(200);
      expect(await store.add(k, 'third', 10_000)).toBe(true);
      expect(await store.get(k)).toBe('third');
    });

    // On the memory store the callers cannot interleave (each call is synchronous): there this
    // proves the answer, not atomicity; Redis and PostgreSQL prove the atomicity.
    it(`lets exactly one of 50 parallel add callers win${name.startsWith('memory') ? ' (memory: no interleaving)' : ''}`, async () => {
      const k = key();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.add(k, `caller-${i}`, 10_000)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await store.get(k)).toBe(`caller-${winner}`);
    });

    it('addOrGet creates when absent and otherwise returns what is there', async () => {
      const k = key();
      expect(await store.addOrGet(k, 'mine', 80)).toBeNull();
      expect(await store.addOrGet(k, 'yours', 80)).toBe('mine');
      expect(await store.get(k)).toBe('mine');
      await sleep(200);
      expect(await store.addOrGet(k, 'after-expiry', 10_000)).toBeNull();
      expect(await store.get(k)).toBe('after-expiry');
    });

    it(`lets exactly one of 50 parallel addOrGet callers win, and tells the others what won${name.startsWith('memory') ? ' (memory: no interleaving)' : ''}`, async () => {
      const k = key();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.addOrGet(k, `caller-${i}`, 10_000)),
      );
      const winners = results.map((r, i) => (r === null ? i : -1)).filter((i) => i >= 0);
      expect(winners).toHaveLength(1);
      for (const r of results) if (r !== null) expect(r).toBe(`caller-${winners[0]}`);
    });

    it('compareAndSet replaces only the expected value, and one of 50 racers wins', async () => {
      const k = key();
      expect(await store.compareAndSet(k, 'nothing', 'x', 10_000)).toBe(false);
      await store.set(k, 'v0', 10_000);
      expect(await store.compareAndSet(k, 'wrong', 'x', 10_000)).toBe(false);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.compareAndSet(k, 'v0', `r${i}`, 10_000)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.get(k)).toBe(`r${results.indexOf(true)}`);
    });

    it('compareAndSet does not resurrect an expired key', async () => {
      const k = key();
      await store.set(k, 'old', 80);
      await sleep(200);
      expect(await store.compareAndSet(k, 'old', 'new', 10_000)).toBe(false);
      expect(await store.get(k)).toBeNull();
    });

    it('compareAndDelete deletes only the expected value', async () => {
      const k = key();
      await store.set(k, 'mine', 10_000);
      expect(await store.compareAndDelete(k, 'theirs')).toBe(false);
      expect(await store.get(k)).toBe('mine');
      expect(await store.compareAndDelete(k, 'mine')).toBe(true);
      expect(await store.get(k)).toBeNull();
    });

    it('keeps prefixes apart', async () => {
      const a = await f.make(`a${Math.random().toString(36).slice(2)}:`);
      const b = await f.make(`b${Math.random().toString(36).slice(2)}:`);
      await a.set('same', 'from-a', 10_000);
      expect(await b.get('same')).toBeNull();
      expect(await a.get('same')).toBe('from-a');
    });

    it('stores unicode, large values and odd keys exactly', async () => {
      const big = 'x'.repeat(100_000);
      // U+0000 is outside the contract: PostgreSQL text cannot hold it.
      const odd = `${key()} {tag}/ü'"; DROP TABLE x;--`;
      await store.set(odd, 'héllo ✓ 💳', 10_000);
      expect(await store.get(odd)).toBe('héllo ✓ 💳');
      const k = key();
      await store.set(k, big, 10_000);
      expect(await store.get(k)).toBe(big);
    });

    it('says whether it evicts, and assertLedger agrees', () => {
      expect(store.evicts).toBe(f.evicts);
      if (f.evicts) expect(() => assertLedger('test', store)).toThrow(TypeError);
      else expect(() => assertLedger('test', store)).not.toThrow();
    });

    describe('TTLs: the same bound on every store', () => {
      const writes: Array<[string, (s: Store, k: string, ttl: number) => Promise<unknown>]> = [
        ['set', (s, k, ttl) => s.set(k, 'v', ttl)],
        ['add', (s, k, ttl) => s.add(k, 'v', ttl)],
        ['addOrGet', (s, k, ttl) => s.addOrGet(k, 'v', ttl)],
        ['compareAndSet', (s, k, ttl) => s.compareAndSet(k, 'v0', 'v', ttl)],
      ];

      it.each(writes)('%s accepts MAX_TTL_MS (ten years)', async (name, write) => {
        const k = key();
        if (name === 'compareAndSet') await store.set(k, 'v0', 10_000);
        await write(store, k, MAX_TTL_MS);
        expect(await store.get(k)).toBe('v');
      });

      it.each(writes)(
        '%s rejects MAX_TTL_MS + 1, 0, a negative, NaN and Infinity with a TypeError, writing nothing',
        async (name, write) => {
          for (const ttl of [
            MAX_TTL_MS + 1,
            0,
            -5,
            Number.NaN,
            Number.POSITIVE_INFINITY,
            Number.NEGATIVE_INFINITY,
            '1000' as unknown as number,
          ]) {
            const k = key();
            if (name === 'compareAndSet') await store.set(k, 'v0', 10_000);
            await expect(write(store, k, ttl), `${name} ttl ${String(ttl)}`).rejects.toThrow(
              TypeError,
            );
            expect(await store.get(k)).toBe(name === 'compareAndSet' ? 'v0' : null);
          }
        },
      );
    });
  });
}
