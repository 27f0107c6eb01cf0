import { describe, expect, it } from 'vitest';
import { StoreFullError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** A store on a clock the test moves. */
function clocked(options: { maxEntries: number; evict?: boolean }) {
  const clock = { now: 0 };
  const store = new MemoryStore({ ...options, now: () => clock.now });
  return { store, clock };
}

describe('MemoryStore', () => {
  describe('as a cache (evict: true, the default)', () => {
    it('says it evicts', () => {
      expect(new MemoryStore().evicts).toBe(true);
    });

    it('evicts the least recently written keys beyond maxEntries', async () => {
      const store = new MemoryStore({ maxEntries: 3 });
      for (const k of ['a', 'b', 'c']) await store.set(k, k, 60_000);
      await store.set('a', 'a2', 60_000); // rewriting makes "a" the newest
      await store.set('d', 'd', 60_000);
      expect(store.size).toBe(3);
      expect(await store.get('b')).toBeNull();
      expect(await store.get('a')).toBe('a2');
      expect(await store.get('c')).toBe('c');
      expect(await store.get('d')).toBe('d');
    });

    it('sweeps expired keys before evicting live ones', async () => {
      const { store, clock } = clocked({ maxEntries: 3 });
      await store.set('old', 'x', 10);
      await store.set('live1', 'x', 1000);
      await store.set('live2', 'x', 1000);
      clock.now = 50;
      await store.set('new', 'x', 1000);
      expect(await store.get('live1')).toBe('x');
      expect(await store.get('live2')).toBe('x');
      expect(await store.get('new')).toBe('x');
      expect(await store.get('old')).toBeNull();
    });

    it('reclaims an expired key before evicting, wherever it sits in write order', async () => {
      // The newest write expires first: the oldest write is not the earliest to expire.
      const { store, clock } = clocked({ maxEntries: 40 });
      for (let i = 0; i < 39; i++) await store.set(`long${i}`, 'x', 10_000);
      await store.set('short', 'x', 10);
      clock.now = 20;
      await store.set('new', 'x', 10_000);
      for (let i = 0; i < 39; i++) expect(await store.get(`long${i}`)).toBe('x');
      expect(await store.get('new')).toBe('x');
    });
  });

  describe('as a ledger (evict: false)', () => {
    it('says it does not evict', () => {
      expect(new MemoryStore({ evict: false }).evicts).toBe(false);
    });

    it('refuses a new key when full, and keeps every live one', async () => {
      const { store } = clocked({ maxEntries: 3, evict: false });
      for (const k of ['a', 'b', 'c']) await store.set(k, k, 60_000);
      await expect(store.set('d', 'd', 60_000)).rejects.toBeInstanceOf(StoreFullError);
      await expect(store.add('d', 'd', 60_000)).rejects.toBeInstanceOf(StoreFullError);
      await expect(store.addOrGet('d', 'd', 60_000)).rejects.toBeInstanceOf(StoreFullError);
      const err = await store.set('d', 'd', 60_000).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 503, code: 'store-full' });
      expect(store.size).toBe(3);
      for (const k of ['a', 'b', 'c']) expect(await store.get(k)).toBe(k);
      expect(await store.get('d')).toBeNull();
    });

    it('replaces a key it holds when full: that needs no room', async () => {
      const { store } = clocked({ maxEntries: 2, evict: false });
      await store.set('a', 'a', 60_000);
      await store.set('b', 'b', 60_000);
      await store.set('a', 'a2', 60_000);
      expect(await store.compareAndSet('b', 'b', 'b2', 60_000)).toBe(true);
      expect(await store.add('a', 'other', 60_000)).toBe(false);
      expect(await store.addOrGet('b', 'other', 60_000)).toBe('b2');
      expect(await store.get('a')).toBe('a2');
      expect(await store.get('b')).toBe('b2');
    });

    it('reclaims any expired key before refusing, whatever the TTL mix', async () => {
      const { store, clock } = clocked({ maxEntries: 50, evict: false });
      for (let i = 0; i < 25; i++) await store.set(`long${i}`, 'x', 10_000);
      await store.set('short', 'x', 10); // in the middle of the write order
      for (let i = 25; i < 49; i++) await store.set(`long${i}`, 'x', 10_000);
      await expect(store.set('refused', 'x', 10_000)).rejects.toBeInstanceOf(StoreFullError);
      clock.now = 20;
      await store.set('new', 'x', 10_000);
      for (let i = 0; i < 49; i++) expect(await store.get(`long${i}`)).toBe('x');
      expect(await store.get('new')).toBe('x');
      await expect(store.set('again', 'x', 10_000)).rejects.toBeInstanceOf(StoreFullError);
    });

    it('takes a rewritten key at its new deadline, later or earlier', async () => {
      const { store, clock } = clocked({ maxEntries: 2, evict: false });
      await store.set('a', 'x', 10);
      await store.set('a', 'x', 1000); // later: "a" must not be reclaimed at 10
      await store.set('b', 'x', 1000);
      await store.set('b', 'x', 5); // earlier: "b" may be reclaimed at 5
      clock.now = 20;
      await store.set('c', 'x', 1000);
      expect(await store.get('a')).toBe('x');
      expect(await store.get('b')).toBeNull();
      expect(await store.get('c')).toBe('x');
    });

    it('has room again once a key is deleted', async () => {
      const { store } = clocked({ maxEntries: 1, evict: false });
      await store.set('a', 'a', 60_000);
      await expect(store.set('b', 'b', 60_000)).rejects.toBeInstanceOf(StoreFullError);
      expect(await store.compareAndDelete('a', 'a')).toBe(true);
      await store.set('b', 'b', 60_000);
      expect(await store.delete('b')).toBe(true);
      await store.set('c', 'c', 60_000);
      expect(await store.get('c')).toBe('c');
    });

    describe('updateAtomically stays all or nothing when full', () => {
      it('writes none of the keys when there is no room for all the new ones', () => {
        const { store } = clocked({ maxEntries: 3, evict: false });
        store.updateAtomically(['held', 'other'], () => [
          { value: '1', ttlMs: 60_000 },
          { value: '1', ttlMs: 60_000 },
        ]);
        // One slot left, two new keys wanted.
        expect(() =>
          store.updateAtomically(['held', 'new1', 'new2'], () => [
            { value: '2', ttlMs: 60_000 },
            { value: '2', ttlMs: 60_000 },
            { value: '2', ttlMs: 60_000 },
          ]),
        ).toThrow(StoreFullError);
        const seen: Array<string | null> = [];
        store.updateAtomically(['held', 'new1', 'new2'], (values) => {
          seen.push(...values);
          return [];
        });
        expect(seen).toEqual(['1', null, null]);
        expect(store.size).toBe(2);
      });

      it('writes them all when there is room, counting a repeated key once', () => {
        const { store } = clocked({ maxEntries: 3, evict: false });
        store.updateAtomically(['held'], () => [{ value: '1', ttlMs: 60_000 }]);
        store.updateAtomically(['held', 'new1', 'new2', 'new1'], () => [
          { value: '2', ttlMs: 60_000 },
          { value: '2', ttlMs: 60_000 },
          { value: '2', ttlMs: 60_000 },
          { value: '3', ttlMs: 60_000 },
        ]);
        let seen: Array<string | null> = [];
        store.updateAtomically(['held', 'new1', 'new2'], (values) => {
          seen = values;
          return [];
        });
        expect(seen).toEqual(['2', '3', '2']);
      });

      it('reclaims expired keys to make room for all of them', () => {
        const { store, clock } = clocked({ maxEntries: 2, evict: false });
        store.updateAtomically(['x', 'y'], () => [
          { value: 'old', ttlMs: 10 },
          { value: 'old', ttlMs: 10 },
        ]);
        clock.now = 20;
        store.updateAtomically(['a', 'b'], () => [
          { value: 'new', ttlMs: 60_000 },
          { value: 'new', ttlMs: 60_000 },
        ]);
        let seen: Array<string | null> = [];
        store.updateAtomically(['a', 'b', 'x'], (values) => {
          seen = values;
          return [];
        });
        expect(seen).toEqual(['new', 'new', null]);
      });

      it('writes nothing when one TTL is invalid', () => {
        const { store } = clocked({ maxEntries: 10, evict: false });
        expect(() =>
          store.updateAtomically(['a', 'b'], () => [
            { value: '1', ttlMs: 60_000 },
            { value: '1', ttlMs: 0 },
          ]),
        ).toThrow(TypeError);
        expect(store.size).toBe(0);
      });
    });
  });

  describe('agrees with a plain model under random operations and mixed TTLs', () => {
    /** The intended semantics, written the slow and obvious way. */
    class Model {
      entries = new Map<string, { value: string; expiresAt: number; written: number }>();
      writes = 0;
      constructor(
        readonly max: number,
        readonly evict: boolean,
      ) {}
      live(k: string, now: number) {
        const e = this.entries.get(k);
        if (e !== undefined && e.expiresAt <= now) this.entries.delete(k);
        return e !== undefined && e.expiresAt > now ? e : undefined;
      }
      write(k: string, value: string, ttl: number, now: number): 'ok' | 'full' {
        for (const [key, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(key);
        if (!this.entries.has(k) && this.entries.size >= this.max) {
          if (!this.evict) return 'full';
          let oldest: string | undefined;
          let at = Number.POSITIVE_INFINITY;
          for (const [key, e] of this.entries) if (e.written < at) [oldest, at] = [key, e.written];
          this.entries.delete(oldest!);
        }
        this.entries.set(k, { value, expiresAt: now + ttl, written: this.writes++ });
        return 'ok';
      }
    }

    function random(seed: number) {
      let s = seed;
      return () => {
        s = (s * 16_807) % 2_147_483_647;
        return s / 2_147_483_647;
      };
    }

    it.each([
      [true, 1],
      [true, 2],
      [false, 3],
      [false, 4],
    ])('evict: %s, seed %i', async (evict, seed) => {
      const next = random(seed);
      const max = 20;
      const { store, clock } = clocked({ maxEntries: max, evict });
      const model = new Model(max, evict);
      const ttls = [1, 3, 10, 40, 200];
      for (let step = 0; step < 5000; step++) {
        clock.now += Math.floor(next() * 3);
        const k = `k${Math.floor(next() * 40)}`;
        const ttl = ttls[Math.floor(next() * ttls.length)]!;
        const op = next();
        const now = clock.now;
        if (op < 0.4) {
          const expected = model.write(k, `v${step}`, ttl, now);
          const got = await store.set(k, `v${step}`, ttl).then(
            () => 'ok',
            (e: unknown) => (e instanceof StoreFullError ? 'full' : 'error'),
          );
          expect(got, `step ${step}`).toBe(expected);
        } else if (op < 0.6) {
          const held = model.live(k, now);
          const expected =
            held !== undefined
              ? held.value
              : model.write(k, `v${step}`, ttl, now) === 'ok'
                ? null
                : 'full';
          const got = await store
            .addOrGet(k, `v${step}`, ttl)
            .catch((e: unknown) => (e instanceof StoreFullError ? 'full' : 'error'));
          expect(got, `step ${step}`).toBe(expected);
        } else if (op < 0.7) {
          const expected = model.live(k, now) !== undefined;
          model.entries.delete(k);
          expect(await store.delete(k), `step ${step}`).toBe(expected);
        } else {
          expect(await store.get(k), `step ${step}`).toBe(model.live(k, now)?.value ?? null);
        }
        expect(store.size).toBeLessThanOrEqual(max);
      }
    });
  });

  describe('honours expiry without a timer per key', () => {
    it('answers from the injected clock', async () => {
      let now = 1_000;
      const store = new MemoryStore({ now: () => now });
      await store.set('k', 'v', 100);
      now = 1_099;
      expect(await store.get('k')).toBe('v');
      now = 1_100;
      expect(await store.get('k')).toBeNull();
      expect(await store.add('k', 'again', 100)).toBe(true);
    });
  });

  describe('validates its options', () => {
    it.each([
      [{ maxEntries: 0 }, /maxEntries/],
      [{ maxEntries: 1.5 }, /maxEntries/],
      [{ prefix: 42 as unknown as string }, /prefix/],
      [{ now: 'soon' as unknown as () => number }, /now/],
      [{ evict: 'no' as unknown as boolean }, /evict/],
    ])('throws a TypeError naming the option (%o)', (options, name) => {
      expect(() => new MemoryStore(options)).toThrow(TypeError);
      expect(() => new MemoryStore(options)).toThrow(name);
      expect(() => new MemoryStore(options)).toThrow(/^restwell\/memory: /);
    });

    it('rejects an unknown option with the nearest name', () => {
      expect(() => new MemoryStore({ maxEntrys: 5 } as never)).toThrow(
        /^restwell\/memory: unknown option "maxEntrys"\. Did you mean "maxEntries"\?/,
      );
      expect(() => new MemoryStore({ evicts: false } as never)).toThrow(/Did you mean "evict"/);
    });
  });
});
