import stableStringify from 'fast-json-stable-stringify';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/idempotency/canonical-json.js';

/** A small deterministic generator, so that a failure is reproducible from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 5 ? 6 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return Math.floor(next() * 2_000_000) - 1_000_000;
    case 3:
      return next() * 1e6 - 5e5;
    case 4:
      return ['', 'a', 'é', '"q"', '\\', '\u0001', 'key with spaces', '😀'][Math.floor(next() * 8)];
    case 5:
      return [Number.NaN, Number.POSITIVE_INFINITY, undefined, new Date(0)][Math.floor(next() * 4)];
    case 6:
    case 7: {
      const obj: Record<string, unknown> = {};
      const n = Math.floor(next() * 6);
      for (let i = 0; i < n; i++) {
        obj[['b', 'a', 'A', '10', '9', 'é', '', 'z z'][Math.floor(next() * 8)]!] = randomValue(
          next,
          depth + 1,
        );
      }
      return obj;
    }
    default:
      return Array.from({ length: Math.floor(next() * 5) }, () => randomValue(next, depth + 1));
  }
}

describe('canonicalJson', () => {
  it('writes what fast-json-stable-stringify writes, on 2,000 random nested values', () => {
    for (let seed = 1; seed <= 2_000; seed++) {
      const value = randomValue(prng(seed), 0);
      expect(canonicalJson(value), `seed ${seed}`).toBe(stableStringify(value));
    }
  });

  it('follows JSON.stringify for the edge cases', () => {
    const cases: unknown[] = [
      undefined,
      null,
      0,
      -0,
      1e21,
      'x',
      [],
      {},
      [undefined, () => 1, Symbol('s')],
      { a: undefined, b: () => 1, c: 1 },
      { toJSON: () => ({ z: 1, a: 2 }) },
      { nested: { toJSON: () => 'replaced' } },
      { b: [{ d: 1, c: 2 }], a: { y: [], x: {} } },
    ];
    for (const value of cases) expect(canonicalJson(value)).toBe(stableStringify(value));
  });

  it('walks 100,000 levels of arrays and objects without recursion', () => {
    const depth = 100_000;
    const arrays = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    expect(canonicalJson(JSON.parse(arrays))).toBe(arrays);
    let obj: unknown = 1;
    for (let i = 0; i < depth; i++) obj = { b: obj, a: i % 3 };
    const text = canonicalJson(obj)!;
    expect(text.startsWith('{"a":')).toBe(true);
    expect(text.length).toBeGreaterThan(depth * 10);
  });

  it('writes the same across the depth where recursion hands over to the explicit stack', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = prng(seed);
      let value: unknown = randomValue(next, 0);
      for (let level = 0; level < 200; level++) {
        const sibling = randomValue(next, 3);
        const inner = value;
        value =
          level % 3 === 0
            ? [sibling, inner]
            : level % 3 === 1
              ? { z: inner, a: sibling, m: undefined }
              : { toJSON: () => ({ inner }) };
      }
      expect(canonicalJson(value), `seed ${seed}`).toBe(stableStringify(value));
    }
  });

  it('throws TypeError on a cycle, of objects or arrays', () => {
    // A cycle that closes deep below the depth where the explicit stack takes over.
    const top: Record<string, unknown> = {};
    let cursor = top;
    for (let i = 0; i < 300; i++) {
      const child: Record<string, unknown> = {};
      cursor.child = child;
      cursor = child;
    }
    cursor.back = top;
    expect(() => canonicalJson(top)).toThrow(TypeError);
    const obj: Record<string, unknown> = {};
    obj.self = obj;
    expect(() => canonicalJson(obj)).toThrow(TypeError);
    const arr: unknown[] = [];
    arr.push(arr);
    expect(() => canonicalJson(arr)).toThrow(TypeError);
    // A shared value that is not a cycle is fine.
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}');
  });
});
