import { describe, expect, it } from 'vitest';
import {
  applyJsonPatch,
  InvalidJsonPatchError,
  JSON_PATCH_MEDIA_TYPE,
  JsonPatchConflictError,
  JsonPatchUnprocessableError,
} from '../../src/representation/index.js';

/** The error `fn` throws, for assertions on its members. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function conflict(fn: () => unknown): JsonPatchConflictError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(JsonPatchConflictError);
  return err as JsonPatchConflictError;
}

function invalid(fn: () => unknown): InvalidJsonPatchError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(InvalidJsonPatchError);
  return err as InvalidJsonPatchError;
}

function unprocessable(fn: () => unknown): JsonPatchUnprocessableError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(JsonPatchUnprocessableError);
  return err as JsonPatchUnprocessableError;
}

// RFC 6902 Appendix A: each example, its document, patch and result as the RFC gives them.
describe('applyJsonPatch: RFC 6902 Appendix A', () => {
  it('A.1 adds an object member', () => {
    expect(applyJsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }])).toEqual({
      baz: 'qux',
      foo: 'bar',
    });
  });

  it('A.2 adds an array element before the one at the index', () => {
    expect(
      applyJsonPatch({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }]),
    ).toEqual({ foo: ['bar', 'qux', 'baz'] });
  });

  it('A.3 removes an object member', () => {
    expect(applyJsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }])).toEqual({
      foo: 'bar',
    });
  });

  it('A.4 removes an array element, shifting the rest left', () => {
    expect(
      applyJsonPatch({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }]),
    ).toEqual({ foo: ['bar', 'baz'] });
  });

  it('A.5 replaces a value', () => {
    expect(
      applyJsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }]),
    ).toEqual({ baz: 'boo', foo: 'bar' });
  });

  it('A.6 moves a value', () => {
    expect(
      applyJsonPatch({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [
        { op: 'move', from: '/foo/waldo', path: '/qux/thud' },
      ]),
    ).toEqual({ foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
  });

  it('A.7 moves an array element (removed first, then added at the index)', () => {
    expect(
      applyJsonPatch({ foo: ['all', 'grass', 'cows', 'eat'] }, [
        { op: 'move', from: '/foo/1', path: '/foo/3' },
      ]),
    ).toEqual({ foo: ['all', 'cows', 'eat', 'grass'] });
  });

  it('A.8 tests values: success leaves the document as it was', () => {
    const doc = { baz: 'qux', foo: ['a', 2, 'c'] };
    expect(
      applyJsonPatch(doc, [
        { op: 'test', path: '/baz', value: 'qux' },
        { op: 'test', path: '/foo/1', value: 2 },
      ]),
    ).toEqual(doc);
  });

  it('A.9 tests a value: an error, naming the operation and its value', () => {
    const err = conflict(() =>
      applyJsonPatch({ baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }]),
    );
    expect(err.status).toBe(409);
    expect(err.code).toBe('json-patch-conflict');
    expect(err.reason).toBe('test-failed');
    expect(err.operation).toBe(0);
    expect(err.pointer).toBe('/0/value');
  });

  it('A.10 adds a nested member object', () => {
    expect(
      applyJsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }]),
    ).toEqual({ foo: 'bar', child: { grandchild: {} } });
  });

  it('A.11 ignores members an operation does not define', () => {
    expect(
      applyJsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }]),
    ).toEqual({ foo: 'bar', baz: 'qux' });
  });

  it('A.12 refuses to add to a nonexistent target', () => {
    const err = conflict(() =>
      applyJsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }]),
    );
    expect(err.reason).toBe('path-not-found');
    expect(err.pointer).toBe('/0/path');
    expect(err.detail).toContain('"/baz" does not exist');
  });

  it('A.13 a patch with two "op" members is an error (JSON.parse keeps the last: a remove of a missing member)', () => {
    const patch: unknown = JSON.parse(
      '[{ "op": "add", "path": "/baz", "value": "qux", "op": "remove" }]',
    );
    const err = conflict(() => applyJsonPatch({ foo: 'bar' }, patch));
    expect(err.reason).toBe('path-not-found');
  });

  it('A.14 decodes ~1 before ~0, so "/~01" names the member "~1"', () => {
    const doc = { '/': 9, '~1': 10 };
    expect(applyJsonPatch(doc, [{ op: 'test', path: '/~01', value: 10 }])).toEqual(doc);
  });

  it('A.15 compares strings and numbers as different values', () => {
    const err = conflict(() =>
      applyJsonPatch({ '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: '10' }]),
    );
    expect(err.reason).toBe('test-failed');
  });

  it('A.16 adds an array value as one element, not flattened', () => {
    expect(
      applyJsonPatch({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }]),
    ).toEqual({ foo: ['bar', ['abc', 'def']] });
  });
});

describe('applyJsonPatch: the operations (RFC 6902 §4)', () => {
  it('add replaces an existing member (§4.1), and can set null, which a merge patch cannot', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '/a', value: null }])).toEqual({ a: null });
  });

  it('add at the array length appends; past it is out of range', () => {
    expect(applyJsonPatch([1, 2], [{ op: 'add', path: '/2', value: 3 }])).toEqual([1, 2, 3]);
    const err = conflict(() => applyJsonPatch([1, 2], [{ op: 'add', path: '/3', value: 3 }]));
    expect(err.reason).toBe('index-out-of-range');
  });

  it('add and replace at the root replace the whole document', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '', value: [1] }])).toEqual([1]);
    expect(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '', value: 'x' }])).toBe('x');
  });

  it('the empty token names the member ""', () => {
    expect(applyJsonPatch({}, [{ op: 'add', path: '/', value: 1 }])).toEqual({ '': 1 });
  });

  it('remove and replace need the location to exist (§4.2, §4.3)', () => {
    expect(conflict(() => applyJsonPatch({}, [{ op: 'remove', path: '/a' }])).reason).toBe(
      'path-not-found',
    );
    expect(
      conflict(() => applyJsonPatch({}, [{ op: 'replace', path: '/a', value: 1 }])).reason,
    ).toBe('path-not-found');
    expect(
      conflict(() => applyJsonPatch({ a: [] }, [{ op: 'replace', path: '/a/0', value: 1 }])).reason,
    ).toBe('index-out-of-range');
  });

  it('move and copy need "from" to exist, and name it', () => {
    const err = conflict(() => applyJsonPatch({}, [{ op: 'copy', from: '/x', path: '/y' }]));
    expect(err.reason).toBe('from-not-found');
    expect(err.pointer).toBe('/0/from');
  });

  it('move to the same location changes nothing; "from" must still exist', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'move', from: '/a', path: '/a' }])).toEqual({ a: 1 });
    expect(
      conflict(() => applyJsonPatch({}, [{ op: 'move', from: '/a', path: '/a' }])).reason,
    ).toBe('from-not-found');
  });

  it('copy duplicates: changing the copy leaves the original alone', () => {
    const result = applyJsonPatch({ a: { b: [1] } }, [
      { op: 'copy', from: '/a', path: '/c' },
      { op: 'add', path: '/c/b/-', value: 2 },
    ]);
    expect(result).toEqual({ a: { b: [1] }, c: { b: [1, 2] } });
  });

  it('operations see the result of the ones before them', () => {
    expect(
      applyJsonPatch({}, [
        { op: 'add', path: '/a', value: {} },
        { op: 'add', path: '/a/b', value: [] },
        { op: 'add', path: '/a/b/-', value: 1 },
        { op: 'move', from: '/a/b', path: '/c' },
        { op: 'test', path: '/c', value: [1] },
        { op: 'remove', path: '/a' },
      ]),
    ).toEqual({ c: [1] });
  });

  it('test compares numbers by value, objects without order, arrays in order (§4.6)', () => {
    const doc = { n: 1, o: { a: 1, b: [1, 2] }, arr: [1, 2], z: 0 };
    expect(() =>
      applyJsonPatch(doc, [
        { op: 'test', path: '/n', value: 1.0 },
        { op: 'test', path: '/o', value: { b: [1, 2], a: 1 } },
        { op: 'test', path: '/z', value: -0 },
        { op: 'test', path: '', value: doc },
      ]),
    ).not.toThrow();
    expect(
      conflict(() => applyJsonPatch(doc, [{ op: 'test', path: '/arr', value: [2, 1] }])).reason,
    ).toBe('test-failed');
    expect(
      conflict(() => applyJsonPatch(doc, [{ op: 'test', path: '/o', value: { a: 1 } }])).reason,
    ).toBe('test-failed');
    expect(
      conflict(() => applyJsonPatch({ a: null }, [{ op: 'test', path: '/a', value: {} }])).reason,
    ).toBe('test-failed');
  });

  it('test compares a Date in the document as the ISO string a client read', () => {
    const doc = { at: new Date(0) };
    expect(() =>
      applyJsonPatch(doc, [{ op: 'test', path: '/at', value: '1970-01-01T00:00:00.000Z' }]),
    ).not.toThrow();
  });

  it('exports the media type of RFC 6902 §6', () => {
    expect(JSON_PATCH_MEDIA_TYPE).toBe('application/json-patch+json');
  });
});

describe('applyJsonPatch: atomic (RFC 6902 §5)', () => {
  it('never changes the input document, even when operations change nested values', () => {
    const doc = { a: { b: [1, 2, { c: 3 }] }, d: 'x' };
    const before = structuredClone(doc);
    const result = applyJsonPatch<typeof doc>(doc, [
      { op: 'add', path: '/a/b/2/e', value: 4 },
      { op: 'remove', path: '/a/b/0' },
      { op: 'replace', path: '/d', value: 'y' },
      { op: 'move', from: '/a/b/1', path: '/m' },
    ]);
    expect(doc).toEqual(before);
    expect(result).toEqual({ a: { b: [2] }, d: 'y', m: { c: 3, e: 4 } });
  });

  it('applies nothing when a later operation fails: the input is unchanged and nothing is returned', () => {
    const doc = { a: [1, 2, 3], b: { c: 1 } };
    const before = structuredClone(doc);
    const err = conflict(() =>
      applyJsonPatch(doc, [
        { op: 'remove', path: '/a/0' },
        { op: 'add', path: '/b/d', value: 2 },
        { op: 'test', path: '/b/c', value: 2 },
      ]),
    );
    expect(err.operation).toBe(2);
    expect(doc).toEqual(before);
  });

  it('returns a new root even for a patch of tests only, and shares nothing with the patch', () => {
    const doc = { a: 1 };
    expect(applyJsonPatch(doc, [])).not.toBe(doc);
    const value = { deep: { x: [1] } };
    const result = applyJsonPatch<{ v: typeof value }>({}, [{ op: 'add', path: '/v', value }]);
    expect(result.v).toEqual(value);
    expect(result.v).not.toBe(value);
    expect(result.v.deep.x).not.toBe(value.deep.x);
  });

  it('leaves unchanged subtrees shared with the input, and copies every container on a changed path', () => {
    const doc = { keep: { big: [1, 2, 3] }, edit: { inner: { n: 1 } } };
    const result = applyJsonPatch<typeof doc>(doc, [
      { op: 'replace', path: '/edit/inner/n', value: 2 },
    ]);
    expect(result.keep).toBe(doc.keep);
    expect(result.edit).not.toBe(doc.edit);
    expect(result.edit.inner).not.toBe(doc.edit.inner);
    expect(doc.edit.inner.n).toBe(1);
  });
});

describe('applyJsonPatch: malformed patch documents are a 400 naming every fault', () => {
  it('refuses a patch that is not an array', () => {
    for (const patch of [{}, null, 'add', undefined, { op: 'add', path: '/a', value: 1 }]) {
      const err = invalid(() => applyJsonPatch({}, patch));
      expect(err.status).toBe(400);
      expect(err.code).toBe('invalid-json-patch');
      expect(err.reason).toBe('not-an-array');
      expect(err.pointer).toBe('');
    }
  });

  it('lists every fault, each with its pointer into the patch, and names the first operation', () => {
    const err = invalid(() =>
      applyJsonPatch({}, [
        { op: 'add', path: '/ok', value: 1 },
        'not an op',
        { path: '/a' },
        { op: 'frobnicate', path: '/a' },
        { op: 'add', value: 1 },
        { op: 'add', path: 'a', value: 1 },
        { op: 'add', path: '/a~2', value: 1 },
        { op: 'replace', path: '/a' },
        { op: 'move', path: '/a' },
        { op: 'copy', from: 7, path: '/a' },
        { op: 5, path: '/a' },
      ]),
    );
    expect(err.operation).toBe(1);
    expect(err.pointer).toBe('/1');
    expect(err.errors.map((e) => [e.pointer, e.reason])).toEqual([
      ['/1', 'not-an-object'],
      ['/2/op', 'invalid-op'],
      ['/3/op', 'invalid-op'],
      ['/4/path', 'invalid-pointer'],
      ['/5/path', 'invalid-pointer'],
      ['/6/path', 'invalid-pointer'],
      ['/7/value', 'missing-value'],
      ['/8/from', 'invalid-pointer'],
      ['/9/from', 'invalid-pointer'],
      ['/10/op', 'invalid-op'],
    ]);
    expect(err.detail).toMatch(/^Operation 1: .*\(and 9 other faults\)$/);
    const ext = err.extensions as { errors: unknown[]; operation: number; pointer: string };
    expect(ext.operation).toBe(1);
    expect(ext.pointer).toBe('/1');
    expect(ext.errors).toHaveLength(10);
  });

  it('caps the list at 20 and says it is truncated', () => {
    const patch = Array.from({ length: 30 }, () => ({ op: 'nope', path: '/a' }));
    const err = invalid(() => applyJsonPatch({}, patch));
    expect(err.errors).toHaveLength(20);
    expect(err.extensions.errorsTruncated).toBe(true);
    expect(err.detail).toContain('19 or more other faults');
  });

  it('refuses a move into its own child (§4.4), by tokens, not by string prefix', () => {
    const err = invalid(() =>
      applyJsonPatch({ a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a/b/c' }]),
    );
    expect(err.reason).toBe('move-into-itself');
    expect(err.pointer).toBe('/0/from');
    expect(applyJsonPatch({ a: 1, ab: {} }, [{ op: 'move', from: '/a', path: '/ab/x' }])).toEqual({
      ab: { x: 1 },
    });
    expect(
      invalid(() => applyJsonPatch({ a: 1 }, [{ op: 'move', from: '', path: '/x' }])).reason,
    ).toBe('move-into-itself');
  });

  it('refuses a patch of more than maxOperations before reading any', () => {
    const patch = Array.from({ length: 1001 }, () => ({ op: 'test', path: '', value: {} }));
    const err = invalid(() => applyJsonPatch({}, patch));
    expect(err.reason).toBe('too-many-operations');
    expect(err.operation).toBe(1000);
    expect(err.pointer).toBe('/1000');
    expect(() => applyJsonPatch({}, patch.slice(0, 1000))).not.toThrow();
    expect(invalid(() => applyJsonPatch({}, patch.slice(0, 3), { maxOperations: 2 })).reason).toBe(
      'too-many-operations',
    );
  });

  it('refuses pointers longer than maxPointerLength', () => {
    const path = `/${'a'.repeat(1024)}`;
    const err = invalid(() => applyJsonPatch({}, [{ op: 'add', path, value: 1 }]));
    expect(err.reason).toBe('invalid-pointer');
    expect(err.detail).toContain('longer than 1024');
    expect(err.detail?.length).toBeLessThan(300);
    expect(applyJsonPatch({}, [{ op: 'add', path: path.slice(0, 1024), value: 1 }])).toBeTypeOf(
      'object',
    );
  });
});

describe('applyJsonPatch: hostile patches', () => {
  it('never pollutes a prototype through __proto__, constructor or prototype', () => {
    const patches: unknown[] = [
      [{ op: 'add', path: '/__proto__/polluted', value: 'yes' }],
      [{ op: 'add', path: '/constructor/prototype/polluted', value: 'yes' }],
      [{ op: 'replace', path: '/__proto__', value: { polluted: 'yes' } }],
      [{ op: 'copy', from: '/__proto__', path: '/x' }],
      [{ op: 'move', from: '/constructor', path: '/x' }],
      [{ op: 'test', path: '/__proto__', value: {} }],
      [{ op: 'remove', path: '/toString' }],
      [{ op: 'add', path: '/a/__proto__/polluted', value: 'yes' }],
      JSON.parse('[{"op":"add","path":"/x","value":{"__proto__":{"polluted":"yes"}}}]'),
    ];
    for (const patch of patches) {
      try {
        applyJsonPatch({ a: {} }, patch);
      } catch (err) {
        expect(err).toBeInstanceOf(JsonPatchConflictError);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    }
  });

  it('adds a member named __proto__ as a member, not as the prototype', () => {
    const result = applyJsonPatch<Record<string, unknown>>({}, [
      { op: 'add', path: '/__proto__', value: { polluted: 'yes' } },
    ]);
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.hasOwn(result, '__proto__')).toBe(true);
    expect(result.polluted).toBeUndefined();
    expect(JSON.stringify(result)).toBe('{"__proto__":{"polluted":"yes"}}');
    // …and can then be addressed, tested and removed like any member.
    const removed = applyJsonPatch<object>(result, [
      { op: 'test', path: '/__proto__/polluted', value: 'yes' },
      { op: 'remove', path: '/__proto__' },
    ]);
    expect(Object.keys(removed)).toEqual([]);
  });

  it('refuses inherited names: "constructor" and "toString" are not members of {}', () => {
    const err = conflict(() =>
      applyJsonPatch({}, [{ op: 'test', path: '/constructor', value: 1 }]),
    );
    expect(err.reason).toBe('path-not-found');
  });

  it('refuses array tokens that are not indices: leading zeros, signs, fractions, "length"', () => {
    for (const token of ['01', '-1', '1.0', '+1', ' 1', '1e0', 'length', '0x1']) {
      const err = conflict(() =>
        applyJsonPatch({ a: [1, 2] }, [{ op: 'replace', path: `/a/${token}`, value: 9 }]),
      );
      expect(err.reason, token).toBe('invalid-array-index');
    }
  });

  it('refuses a huge index as out of range, without allocating', () => {
    for (const token of ['4294967295', '99999999999999999999999999', '9'.repeat(1000)]) {
      const err = conflict(() =>
        applyJsonPatch({ a: [] }, [{ op: 'add', path: `/a/${token}`, value: 1 }]),
      );
      expect(err.reason).toBe('index-out-of-range');
      expect(err.detail?.length).toBeLessThan(400);
    }
  });

  it('accepts "-" only to add at the end: elsewhere it names no element', () => {
    for (const patch of [
      [{ op: 'remove', path: '/a/-' }],
      [{ op: 'replace', path: '/a/-', value: 1 }],
      [{ op: 'test', path: '/a/-', value: 1 }],
      [{ op: 'copy', from: '/a/-', path: '/b' }],
      [{ op: 'move', from: '/a/-', path: '/b' }],
      [{ op: 'add', path: '/a/-/x', value: 1 }],
    ]) {
      const err = conflict(() => applyJsonPatch({ a: [{}] }, patch));
      expect(err.reason).toBe('invalid-array-index');
      expect(err.detail).toContain('"-" names the element after the last');
    }
    // On an object, "-" is an ordinary member name.
    expect(applyJsonPatch({ a: {} }, [{ op: 'add', path: '/a/-', value: 1 }])).toEqual({
      a: { '-': 1 },
    });
  });

  it('refuses to go through a scalar', () => {
    for (const [doc, path] of [
      [{ a: 'text' }, '/a/0'],
      [{ a: 5 }, '/a/b'],
      [{ a: null }, '/a/b'],
      [{ a: true }, '/a/b'],
      ['root', '/a'],
    ] as const) {
      const err = conflict(() => applyJsonPatch(doc, [{ op: 'add', path, value: 1 }]));
      expect(err.reason).toBe('not-a-container');
    }
  });

  it('refuses values JSON cannot hold, naming where they are', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const shared = { x: 1 };
    const cases: Array<[unknown, string]> = [
      [undefined, '/0/value'],
      [Number.NaN, '/0/value'],
      [Number.POSITIVE_INFINITY, '/0/value'],
      [10n, '/0/value'],
      [() => 1, '/0/value'],
      [Symbol('s'), '/0/value'],
      [new Date(0), '/0/value'],
      [new Map(), '/0/value'],
      [{ a: [1, undefined] }, '/0/value/a/1'],
      [{ 'a/b': { c: Number.NaN } }, '/0/value/a~1b/c'],
      [cycle, '/0/value/self'],
      [{ p: shared, q: shared }, '/0/value/p'],
    ];
    for (const [value, pointer] of cases) {
      const err = invalid(() => applyJsonPatch({}, [{ op: 'add', path: '/v', value }]));
      expect(err.reason).toBe('invalid-value');
      expect(err.pointer).toBe(pointer);
    }
  });

  it('refuses a value nested deeper than maxDepth, without walking it recursively', () => {
    let value: unknown = 1;
    for (let i = 0; i < 100_000; i++) value = [value];
    const err = invalid(() => applyJsonPatch({}, [{ op: 'add', path: '/v', value }]));
    expect(err.reason).toBe('too-deep');
    let ok: unknown = 1;
    for (let i = 0; i < 63; i++) ok = [ok];
    expect(() => applyJsonPatch({}, [{ op: 'add', path: '/v', value: ok }])).not.toThrow();
  });

  it('refuses a write that would make the document deeper than maxDepth (422)', () => {
    let value: unknown = 1;
    for (let i = 0; i < 60; i++) value = [value];
    const doc = { a: { b: { c: { d: {} } } } };
    const err = unprocessable(() =>
      applyJsonPatch(doc, [{ op: 'add', path: '/a/b/c/d/e', value }]),
    );
    expect(err.status).toBe(422);
    expect(err.code).toBe('json-patch-unprocessable');
    expect(err.reason).toBe('result-too-deep');
    expect(err.pointer).toBe('/0/value');
    expect(() => applyJsonPatch(doc, [{ op: 'add', path: '/a/b/c/e', value }])).not.toThrow();
  });

  it('refuses a move or copy that would nest a subtree deeper than maxDepth', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 62; i++) deep = [deep];
    const doc = { deep, x: { y: {} } };
    expect(
      unprocessable(() => applyJsonPatch(doc, [{ op: 'move', from: '/deep', path: '/x/y/z' }]))
        .reason,
    ).toBe('result-too-deep');
    expect(
      unprocessable(() => applyJsonPatch(doc, [{ op: 'copy', from: '/deep', path: '/x/y/z' }]))
        .reason,
    ).toBe('result-too-deep');
    expect(() => applyJsonPatch(doc, [{ op: 'copy', from: '/deep', path: '/x/z' }])).not.toThrow();
  });

  it('bounds the values copies create, so copies cannot double the document without end', () => {
    const patch = [{ op: 'add', path: '/a', value: [1, 2, 3, 4, 5, 6, 7, 8] }];
    for (let i = 0; i < 40; i++) {
      patch.push({ op: 'copy', from: '/a', path: '/b' } as never);
      patch.push(
        { op: 'add', path: '/a/-', value: 0 } as never,
        {
          op: 'copy',
          from: '/a',
          path: '/a/-',
        } as never,
      );
    }
    const err = unprocessable(() => applyJsonPatch({}, patch));
    expect(err.reason).toBe('copy-too-large');
    expect(err.extensions.limit).toBe(100_000);
    expect(
      unprocessable(() =>
        applyJsonPatch({ a: [1, 2, 3] }, [{ op: 'copy', from: '/a', path: '/b' }], {
          maxCopiedValues: 3,
        }),
      ).reason,
    ).toBe('copy-too-large');
    expect(
      applyJsonPatch({ a: [1, 2, 3] }, [{ op: 'copy', from: '/a', path: '/b' }], {
        maxCopiedValues: 4,
      }),
    ).toEqual({ a: [1, 2, 3], b: [1, 2, 3] });
  });

  it('refuses to remove the whole document (422): there would be no representation', () => {
    const err = unprocessable(() => applyJsonPatch({ a: 1 }, [{ op: 'remove', path: '' }]));
    expect(err.reason).toBe('removes-document');
  });

  it('reads and writes a document deeper than maxDepth only above the limit', () => {
    let doc: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 200; i++) doc = { n: doc };
    const deepPath = `${'/n'.repeat(200)}/leaf`;
    expect(() => applyJsonPatch(doc, [{ op: 'test', path: deepPath, value: 1 }])).not.toThrow();
    expect(
      unprocessable(() => applyJsonPatch(doc, [{ op: 'replace', path: deepPath, value: 2 }]))
        .reason,
    ).toBe('result-too-deep');
    expect(applyJsonPatch(doc, [{ op: 'add', path: '/top', value: 1 }])).toHaveProperty('top', 1);
  });

  it('treats non-plain objects of the document as leaves it never walks', () => {
    const doc = { at: new Date(0), map: new Map([['k', 1]]) };
    expect(
      conflict(() => applyJsonPatch(doc, [{ op: 'add', path: '/map/k', value: 2 }])).reason,
    ).toBe('not-a-container');
    const result = applyJsonPatch<typeof doc>(doc, [{ op: 'copy', from: '/at', path: '/again' }]);
    expect(result.at).toBe(doc.at);
  });

  it('quotes client input in details at a bounded length', () => {
    const err = invalid(() => applyJsonPatch({}, [{ op: 'x'.repeat(10_000), path: '/a' }]));
    expect(err.detail?.length).toBeLessThan(300);
  });
});

describe('applyJsonPatch: options', () => {
  it('checks options: unknown names (with the nearest) and bad values throw a TypeError', () => {
    expect(() => applyJsonPatch({}, [], { maxOperation: 5 } as never)).toThrow(
      /unknown option "maxOperation"\. Did you mean "maxOperations"\?/,
    );
    expect(() => applyJsonPatch({}, [], { maxDepth: 0 })).toThrow(TypeError);
    expect(() => applyJsonPatch({}, [], { maxDepth: 5000 })).toThrow(/up to 1000/);
    expect(() => applyJsonPatch({}, [], { maxCopiedValues: 1.5 })).toThrow(TypeError);
    expect(() => applyJsonPatch({}, [], { maxPointerLength: -1 })).toThrow(TypeError);
  });

  it('applies a smaller maxDepth to values and writes', () => {
    expect(
      invalid(() =>
        applyJsonPatch({}, [{ op: 'add', path: '/a', value: [[[1]]] }], { maxDepth: 2 }),
      ).reason,
    ).toBe('too-deep');
    expect(
      unprocessable(() =>
        applyJsonPatch({ a: {} }, [{ op: 'add', path: '/a/b', value: [1] }], { maxDepth: 2 }),
      ).reason,
    ).toBe('result-too-deep');
  });
});
