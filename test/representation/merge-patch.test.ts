import { describe, expect, it } from 'vitest';
import { mergePatch } from '../../src/representation/index.js';

// RFC 7396 Appendix A: every example, as the RFC lists them.
const APPENDIX_A: Array<[unknown, unknown, unknown]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [
    ['a', 'b'],
    ['c', 'd'],
    ['c', 'd'],
  ],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe('mergePatch (RFC 7396)', () => {
  it.each(APPENDIX_A)('Appendix A: %j patched with %j is %j', (target, patch, result) => {
    expect(mergePatch(target, patch)).toEqual(result);
  });

  it('the section 3 example: untouched members stay, null removes, arrays replace', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    expect(mergePatch(target, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('changes neither argument and shares no object with the patch', () => {
    const target = { a: { b: 1 }, keep: [1] };
    const patch = { a: { c: { d: 2 } }, list: [{ x: 1 }] };
    const before = JSON.stringify([target, patch]);
    const result = mergePatch<{ a: { c: object }; list: object[] }>(target, patch);
    expect(JSON.stringify([target, patch])).toBe(before);
    expect(result.a.c).not.toBe(patch.a.c);
    expect(result.list[0]).not.toBe(patch.list[0]);
  });

  it('a member named __proto__ is a member, never the prototype', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const result = mergePatch<Record<string, unknown>>({}, patch);
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(result).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toEqual({ polluted: true });
  });

  it('refuses a patch 8,000 levels deep with a 400 instead of overflowing the stack', () => {
    let patch: unknown = 1;
    for (let i = 0; i < 8000; i++) patch = { a: patch };
    expect(() => mergePatch({}, patch)).toThrow(
      expect.objectContaining({ status: 400, code: 'json-too-deep' }),
    );
  });
});
