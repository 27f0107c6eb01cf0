import { describe, expect, it } from 'vitest';
import {
  type CursorPayload,
  type CursorValue,
  createCursorCodec,
  InvalidCursorError,
} from '../../src/pagination/index.js';

const secret = 'k'.repeat(32);

describe('cursor bindings cannot be confused with the tagged forms of their values', () => {
  const codec = createCursorCodec({ secrets: secret });
  const pairs: [unknown, unknown][] = [
    [{ id: 5n }, { id: { $n: '5' } }],
    [{ at: new Date(0) }, { at: { $d: new Date(0).toISOString() } }],
    [{ x: Number.NaN }, { x: { $f: 'NaN' } }],
    [[Number.POSITIVE_INFINITY], [{ $f: 'Infinity' }]],
  ];
  it.each(pairs)('a cursor bound to %o is refused under %o, and back', (a, b) => {
    expect(() => codec.decode(codec.encode([1], a), b)).toThrow(InvalidCursorError);
    expect(() => codec.decode(codec.encode([1], b), a)).toThrow(InvalidCursorError);
  });
  it('bindings without $ members keep their tags, so issued cursors stay valid', () => {
    const binding = { sort: ['-a', 'id'], filter: { id: 5n, at: new Date(0) }, limit: 20 };
    expect(codec.decode(codec.encode([1], binding), { ...binding })).toEqual([1]);
  });
});

describe('cursor payloads', () => {
  const codec = createCursorCodec({ secrets: secret });
  it('a hole in a payload array is a TypeError like undefined, never a silent null', () => {
    const sparse: CursorPayload = new Array<CursorValue>(3);
    expect(() => codec.encode(sparse, {})).toThrow(TypeError);
  });
  it('any string decodes to InvalidCursorError or a payload, never another error', () => {
    const good = codec.encode([1, 'a', 5n], {});
    for (let i = 0; i < good.length; i++) {
      for (const ch of ['A', '_', '-', 'z', '0']) {
        const s = good.slice(0, i) + ch + good.slice(i + 1);
        try {
          codec.decode(s, {});
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidCursorError);
        }
      }
    }
    for (const s of ['', '=', 'A', 'AA', 'AQ', 'AQA', 'AQE', 'x'.repeat(5000), '\u0000', 'AQ==']) {
      expect(() => codec.decode(s, {})).toThrow(InvalidCursorError);
    }
  });
});
