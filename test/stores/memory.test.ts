import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/stores/memory/index.js';

describe('MemoryStore', () => {
  describe('is bounded', () => {
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
      let now = 0;
      const store = new MemoryStore({ maxEntries: 3, now: () => now });
      await store.set('old', 'x', 10);
      await store.set('live1', 'x', 1000);
      await store.set('live2', 'x', 1000);
      now = 50;
      await store.set('new', 'x', 1000);
      expect(await store.get('live1')).toBe('x');
      expect(await store.get('live2')).toBe('x');
      expect(await store.get('new')).toBe('x');
      expect(await store.get('old')).toBeNull();
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
    ])('throws a TypeError naming the option (%o)', (options, name) => {
      expect(() => new MemoryStore(options)).toThrow(TypeError);
      expect(() => new MemoryStore(options)).toThrow(name);
    });
  });
});
