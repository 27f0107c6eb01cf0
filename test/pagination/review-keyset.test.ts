import { describe, expect, it } from 'vitest';
import { keysetArray, keysetSort, keysetSql } from '../../src/pagination/keyset.js';

describe('keyset positions of the wrong type are TypeErrors', () => {
  const sort = keysetSort([], { unique: { column: 'id', type: 'bigint' } });
  for (const bad of ['abc', '1.5', '', 1.5, Number.NaN, true, {}, [1]]) {
    it(`a bigint position ${JSON.stringify(bad)} throws TypeError`, () => {
      expect(() => keysetArray([{ id: '1' }], sort, { after: [bad], limit: 1 })).toThrow(TypeError);
      expect(() => keysetSql(sort, { after: [bad], limit: 1 })).toThrow(TypeError);
    });
  }
  it('a bigint row value that is not an integer throws TypeError', () => {
    expect(() => keysetArray([{ id: '1' }, { id: 'x' }], sort, { limit: 5 })).toThrow(TypeError);
  });
  it('integers as strings, safe numbers and bigints are accepted', () => {
    const page = keysetArray([{ id: '3' }, { id: 2 }, { id: 1n }], sort, {
      after: ['1'],
      limit: 5,
    });
    expect(page.items.map((r) => String(r.id))).toEqual(['2', '3']);
    expect(keysetSql(sort, { after: [-9007199254740993n], limit: 1 }).params).toHaveLength(1);
  });
});

describe('keyset positions of an auto column hold scalars', () => {
  const sort = keysetSort([{ column: 'at' }], { unique: 'id' });
  for (const bad of [{}, { $ts: '2026-12-01T10:00:00.123456Z' }, [1], new Date(Number.NaN)]) {
    it(`a position ${String(bad)} throws TypeError`, () => {
      expect(() => keysetSql(sort, { after: [bad, 1], limit: 1 })).toThrow(TypeError);
      expect(() => keysetArray([{ at: 'a', id: 1 }], sort, { after: [bad, 1], limit: 1 })).toThrow(
        TypeError,
      );
    });
  }
  it('a position of the wrong length throws TypeError', () => {
    expect(() => keysetSql(sort, { after: [1], limit: 1 })).toThrow(TypeError);
    expect(() => keysetSql(sort, { after: [1, 2, 3], limit: 1 })).toThrow(TypeError);
  });
  it('strings, numbers, bigints, booleans and Dates are accepted', () => {
    for (const ok of ['2026-12-01', 1.5, 2n, true, new Date(0)]) {
      expect(keysetSql(sort, { after: [ok, 1], limit: 1 }).params).toEqual([ok, 1]);
    }
  });
});
