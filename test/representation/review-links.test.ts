/**
 * links() against a hostile reading: an action must never be shown when the
 * condition for it is not a plain yes, and a base URL must never put the
 * links into a query or a fragment.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type Link, links } from '../../src/representation/index.js';

describe('links(): actions only when allowed', () => {
  it('leaves out an action whose when is given but undefined (an optional check that did not run)', () => {
    const caller: { roles?: string[] } = {};
    const result = links({
      self: '/v1/payments/pay_1',
      refund: {
        href: '/v1/payments/pay_1/refunds',
        method: 'POST',
        when: caller.roles?.includes('refunds'),
      },
    });
    expect(result).toEqual({ self: { href: '/v1/payments/pay_1' } });
  });

  it('leaves out an action whose when is null', () => {
    expect(links({ refund: { href: '/r', when: null as never } })).toEqual({});
  });

  it('refuses a when that is not a boolean (a promise of a permission check not awaited)', () => {
    const may = async () => false;
    expect(() => links({ refund: { href: '/r', when: may() as never } })).toThrow(
      /"refund"\.when must be true or false/,
    );
    expect(() => links({ refund: { href: '/r', when: 1 as never } })).toThrow(TypeError);
  });

  it('types a link given a when that may be undefined as optional', () => {
    const roles: string[] | undefined = Math.random() > 2 ? ['refunds'] : undefined;
    const result = links({
      self: '/v1/payments/pay_1',
      given: { href: '/g', when: true },
      bare: { href: '/b' },
      unset: { href: '/u', when: undefined },
      maybe: { href: '/m', when: roles?.includes('refunds') },
    });
    expectTypeOf(result.self).toEqualTypeOf<Link>();
    expectTypeOf(result.given).toEqualTypeOf<Link>();
    expectTypeOf(result.bare).toEqualTypeOf<Link>();
    expectTypeOf(result.unset).toEqualTypeOf<Link | undefined>();
    expectTypeOf(result.maybe).toEqualTypeOf<Link | undefined>();
    expect(Object.keys(result)).toEqual(['self', 'given', 'bare']);
  });

  it('shows an action whose when is true, or that has no when', () => {
    expect(links({ a: { href: '/a', when: true }, b: { href: '/b' } })).toEqual({
      a: { href: '/a' },
      b: { href: '/b' },
    });
  });
});

describe('links(): base', () => {
  it('refuses a base ending in an empty query or fragment, which would make every href one page', () => {
    for (const base of ['https://api.example.com/p?', 'https://api.example.com/p#']) {
      expect(() => links({ self: '/v1/users' }, { base }), base).toThrow(
        /without query or fragment/,
      );
    }
  });
});
