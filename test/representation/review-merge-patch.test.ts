import { describe, expect, it } from 'vitest';
import { MergePatchTooDeepError, mergePatch } from '../../src/representation/index.js';

describe('mergePatch against a hostile client (RFC 7396 §2)', () => {
  it('an object member merged into a non-object target member starts from {}', () => {
    for (const target of ['s', 1, true, [1, 2], null]) {
      expect(mergePatch({ a: target }, { a: { b: 'c', d: null } })).toEqual({ a: { b: 'c' } });
    }
    expect(mergePatch([1], { a: { b: null } })).toEqual({ a: {} });
  });

  it('inherited names are never read as members: constructor, prototype, toString', () => {
    const out = mergePatch<Record<string, unknown>>(
      {},
      JSON.parse('{"constructor":{"prototype":{"x":1}},"toString":{"a":null},"hasOwnProperty":1}'),
    );
    expect(out).toEqual({ constructor: { prototype: { x: 1 } }, toString: {}, hasOwnProperty: 1 });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(mergePatch({}, { constructor: null })).toEqual({});
  });

  it('__proto__ is a member, in the target and in the patch, never the prototype', () => {
    const target = JSON.parse('{"__proto__":{"keep":1},"a":1}');
    const out = mergePatch<Record<string, unknown>>(
      target,
      JSON.parse('{"__proto__":{"polluted":true}}'),
    );
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({
      keep: 1,
      polluted: true,
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const removed = mergePatch<object>(target, JSON.parse('{"__proto__":null}'));
    expect(Object.hasOwn(removed, '__proto__')).toBe(false);
    expect(removed).toEqual({ a: 1 });
  });

  it('neither argument changes and the result shares nothing with the patch', () => {
    const target = { a: { b: 1 } };
    const patch = { a: { c: [{ d: null }] }, e: { f: 1 } };
    const out = mergePatch<{ a: { c: { d: null }[] }; e: object }>(target, patch);
    expect(target).toEqual({ a: { b: 1 } });
    expect(patch).toEqual({ a: { c: [{ d: null }] }, e: { f: 1 } });
    expect(out.a.c).not.toBe(patch.a.c);
    expect(out.a.c[0]).toEqual({ d: null }); // nulls inside arrays are values (§2)
    expect(out.e).not.toBe(patch.e);
  });

  it('a patch deeper than the bound is a 400, one at the bound applies; huge arrays are values', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(() => mergePatch({}, deep)).toThrow(MergePatchTooDeepError);
    let arrays: unknown = 1;
    for (let i = 0; i < 100_000; i++) arrays = [arrays];
    expect(() => mergePatch({}, { a: arrays })).toThrow(MergePatchTooDeepError);
    let ok: unknown = 1;
    for (let i = 0; i < 64; i++) ok = { a: ok };
    expect(mergePatch({}, ok)).toEqual(ok);
    const huge = new Array(1_000_000).fill(0);
    expect((mergePatch<{ a: number[] }>({ a: 'x' }, { a: huge }).a as number[]).length).toBe(
      1_000_000,
    );
  });

  it('a deep target is merged only as deep as the patch reaches', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    expect(mergePatch<{ a: unknown; b: number }>(deep, { b: 1 }).a).toBe(
      (deep as { a: unknown }).a,
    );
  });
});

describe('mergePatch and values that are not plain JSON', () => {
  class Money {
    constructor(
      readonly cents: number,
      readonly currency: string,
    ) {}
    toJSON() {
      return `${this.cents / 100} ${this.currency}`;
    }
  }

  it('an object patched into a non-plain target member starts from {}, never from its fields', () => {
    // The client read "12.5 EUR", a string: RFC 7396 §2 merges into {}, and the object's
    // internals are never copied out.
    const out = mergePatch<{ price: unknown; at: unknown }>(
      { price: new Money(1250, 'EUR'), at: new Date(0) },
      { price: { amount: 12.5 }, at: { day: 1 } },
    );
    expect(out).toEqual({ price: { amount: 12.5 }, at: { day: 1 } });
    expect(JSON.stringify(out)).toBe('{"price":{"amount":12.5},"at":{"day":1}}');
  });

  it('a non-plain target is replaced by an object patch, as a string would be', () => {
    expect(mergePatch(new Money(1, 'EUR'), { a: 1 })).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(mergePatch(new Money(1, 'EUR'), { a: 1 }))).toBe(Object.prototype);
  });

  it('a non-plain value in a patch is kept as the leaf it is, never emptied to {}', () => {
    const at = new Date(0);
    const out = mergePatch<{ at: unknown; nested: { at: unknown } }>(
      { at: 'x' },
      { at, nested: { at } },
    );
    expect(out.at).toBe(at);
    expect(out.nested.at).toBe(at);
    expect(JSON.stringify(out)).toBe(
      '{"at":"1970-01-01T00:00:00.000Z","nested":{"at":"1970-01-01T00:00:00.000Z"}}',
    );
  });

  it('untouched non-plain members of the target stay as they are', () => {
    const price = new Money(1, 'EUR');
    expect(mergePatch<{ price: unknown }>({ price, a: 1 }, { a: 2 }).price).toBe(price);
  });
});
