import request from 'supertest';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { encodePathSegment, href, type Link, links } from '../../src/representation/index.js';
import { adapters } from '../helpers/apps.js';

describe('href: interpolated values are one segment each', () => {
  it('percent-encodes /, ?, #, % and spaces in a path segment', () => {
    expect(href`/v1/users/${'a/b?c#d%e f'}/payments`).toBe(
      '/v1/users/a%2Fb%3Fc%23d%25e%20f/payments',
    );
    expect(href`/v1/users/${42}`).toBe('/v1/users/42');
    expect(href`/v1/users/${12345678901234567890n}`).toBe('/v1/users/12345678901234567890');
  });

  it('encodes the values of a query as query components', () => {
    expect(href`/v1/users?cursor=${'a&b=c'}&limit=${20}`).toBe(
      '/v1/users?cursor=a%26b%3Dc&limit=20',
    );
    expect(href`/v1/users/${'x'}?q=${'/y'}`).toBe('/v1/users/x?q=%2Fy');
    // In a query an empty value, "." or ".." is data, not a segment.
    expect(href`/v1/search?q=${''}`).toBe('/v1/search?q=');
    expect(href`/v1/search?q=${'..'}`).toBe('/v1/search?q=..');
  });

  it('encodes non-ASCII text as UTF-8, and lone surrogates as U+FFFD, never throwing', () => {
    expect(href`/v1/users/${'Corbató'}`).toBe('/v1/users/Corbat%C3%B3');
    expect(href`/v1/users/${'a\uD800b'}`).toBe('/v1/users/a%EF%BF%BDb');
  });

  it('refuses a segment that would change the path: empty, "." and ".."', () => {
    for (const value of ['', '.', '..']) {
      expect(() => href`/v1/users/${value}`).toThrow(TypeError);
      expect(() => encodePathSegment(value)).toThrow(/cannot be a path segment/);
    }
    expect(encodePathSegment('...')).toBe('...');
  });

  it('refuses values that are not strings, finite numbers or bigints', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, null, undefined, {}, ['a']]) {
      expect(() => href`/v1/users/${value as never}`).toThrow(TypeError);
    }
  });

  it('whatever the id, the link names the same route with the same id', () => {
    const ids = ['a/b', '../admin', '?x=1', '#frag', '%2e%2e', 'a b', '😀', '%', '\\'];
    for (const id of ids) {
      const url = new URL(href`/v1/users/${id}/payments`, 'https://api.example.com');
      const segments = url.pathname.split('/');
      expect(segments).toHaveLength(5);
      expect(segments.slice(0, 3)).toEqual(['', 'v1', 'users']);
      expect(decodeURIComponent(segments[3]!)).toBe(id);
      expect(url.search).toBe('');
      expect(url.hash).toBe('');
    }
  });
});

describe('links(): a HAL-style _links object', () => {
  const payment = { id: 'pay_1', userId: 'usr/ada', status: 'succeeded' as string };

  it('makes each relation a link object, paths kept relative by default', () => {
    expect(
      links({
        self: href`/v1/payments/${payment.id}`,
        collection: '/v1/payments',
        customer: { href: href`/v1/users/${payment.userId}`, title: 'Ada' },
        docs: 'https://docs.example.com/payments',
      }),
    ).toEqual({
      self: { href: '/v1/payments/pay_1' },
      collection: { href: '/v1/payments' },
      customer: { href: '/v1/users/usr%2Fada', title: 'Ada' },
      docs: { href: 'https://docs.example.com/payments' },
    });
  });

  it('includes an action only when its condition holds, with its method', () => {
    const refund = (p: typeof payment, canRefund: boolean) =>
      links({
        self: href`/v1/payments/${p.id}`,
        refund: {
          href: href`/v1/payments/${p.id}/refunds`,
          method: 'post',
          when: p.status === 'succeeded' && canRefund,
        },
      });
    expect(refund(payment, true).refund).toEqual({
      href: '/v1/payments/pay_1/refunds',
      method: 'POST',
    });
    expect(refund(payment, false)).not.toHaveProperty('refund');
    expect(refund({ ...payment, status: 'refunded' }, true)).not.toHaveProperty('refund');
  });

  it('leaves out relations given false, null or undefined (no next page on the last page)', () => {
    const cursor: string | undefined = undefined;
    const result = links({
      self: '/v1/users',
      next: cursor !== undefined && href`/v1/users?cursor=${cursor}`,
      prev: null,
      related: undefined,
    });
    expect(Object.keys(result)).toEqual(['self']);
  });

  it('types relations that may be left out as optional', () => {
    const result = links({
      self: '/v1/users',
      next: Math.random() > 2 && '/v1/users?cursor=x',
      refund: { href: '/x', method: 'POST', when: Math.random() > 2 },
    });
    expectTypeOf(result.self).toEqualTypeOf<Link>();
    expectTypeOf(result.next).toEqualTypeOf<Link | undefined>();
    expectTypeOf(result.refund).toEqualTypeOf<Link | undefined>();
  });

  it('prefixes paths with a base URL, which may hold a path', () => {
    expect(links({ self: '/v1/users' }, { base: 'https://api.example.com' }).self.href).toBe(
      'https://api.example.com/v1/users',
    );
    expect(
      links({ self: '/v1/users' }, { base: new URL('https://api.example.com/pay-api/') }).self.href,
    ).toBe('https://api.example.com/pay-api/v1/users');
    // Absolute URLs stay as they are.
    expect(
      links({ docs: 'https://docs.example.com/x' }, { base: 'https://api.example.com' }).docs.href,
    ).toBe('https://docs.example.com/x');
  });

  it('refuses a base that is not a plain http(s) URL', () => {
    for (const base of [
      'api.example.com',
      'ftp://example.com',
      'https://example.com/?q=1',
      'https://example.com/#x',
      'https://user:pw@example.com',
    ]) {
      expect(() => links({ self: '/x' }, { base })).toThrow(TypeError);
    }
    // The message never echoes the base: it may hold credentials.
    expect(() => links({ self: '/x' }, { base: 'https://user:hunter2@example.com' })).toThrow(
      /^(?!.*hunter2)/,
    );
  });

  it('refuses targets that are neither a path nor an absolute URL, and protocol-relative ones', () => {
    expect(() => links({ self: 'v1/users' })).toThrow(/must be a path/);
    expect(() => links({ self: '//evil.example/x' })).toThrow(/must be a path/);
    expect(() => links({ self: { href: 5 } as never })).toThrow(TypeError);
    expect(() => links({ self: { href: '/x', method: 'PO ST' } })).toThrow(/method/);
  });

  it('checks its options', () => {
    expect(() => links({ self: '/x' }, { baseUrl: 'https://x' } as never)).toThrow(/Use base/);
    expect(() =>
      links({ self: '/x' }, { base: 'https://a.example', request: {} as never }),
    ).toThrow(/not both/);
  });

  it("refuses the framework's own context as request, naming contextOf()", () => {
    const koaLike = { request: { header: { host: 'x' } }, req: {}, res: {} };
    expect(() => links({ self: '/x' }, { request: koaLike as never })).toThrow(/contextOf/);
  });

  it('never pollutes a prototype through a relation named __proto__', () => {
    const spec = JSON.parse('{"__proto__":"/x","self":"/y"}') as Record<string, string>;
    const result = links(spec) as Record<string, Link>;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.hasOwn(result, '__proto__')).toBe(true);
  });
});

describe.each(adapters)('links({ request }) on $name', (adapter) => {
  const app = () =>
    adapter.build({
      routes: [
        {
          method: 'get',
          path: '/v1/users/:id',
          handler: (req) => ({
            body: {
              id: req.params.id,
              _links: links(
                { self: href`/v1/users/${req.params.id!}`, collection: '/v1/users' },
                { request: req.context },
              ),
            },
          }),
        },
      ],
    });

  it('makes hrefs absolute from the protocol and Host of the request', async () => {
    const res = await request(app()).get('/v1/users/usr%2Fada').set('Host', 'api.example.com:8443');
    expect(res.status).toBe(200);
    expect(res.body.id).toBe('usr/ada');
    expect(res.body._links).toEqual({
      self: { href: 'http://api.example.com:8443/v1/users/usr%2Fada' },
      collection: { href: 'http://api.example.com:8443/v1/users' },
    });
  });

  it('keeps hrefs relative when the Host is not a plain host name', async () => {
    for (const host of ['evil.example/x?', 'evil.example@good.example', 'a_b.example']) {
      const res = await request(app()).get('/v1/users/u1').set('Host', host);
      expect(res.status, host).toBe(200);
      expect(res.body._links.self.href, host).toBe('/v1/users/u1');
    }
  });
});
