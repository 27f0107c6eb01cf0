import { describe, expect, it } from 'vitest';
import { formatLinks, parseLinkHeader, toUriReference } from '../../src/core/link.js';

describe('parseLinkHeader reads what RFC 8288 Appendix B reads', () => {
  it.each([
    ['<a>; rel="next";', [['a', ['next']]]],
    ['<a>;; rel=next', [['a', ['next']]]],
    [
      '<a>; rel="next";, <b>; rel="prev"',
      [
        ['a', ['next']],
        ['b', ['prev']],
      ],
    ],
    [
      '<a>; ; rel="next" ; , <b>;rel=prev;',
      [
        ['a', ['next']],
        ['b', ['prev']],
      ],
    ],
  ])('keeps the links of %j, whose empty parameters hold nothing (B.3)', (field, expected) => {
    expect(parseLinkHeader(field).map((l) => [l.href, l.rel])).toEqual(expected);
  });

  it('still skips a link-value that is not one', () => {
    expect(parseLinkHeader('<a>; =x, <b>; rel=prev').map((l) => l.href)).toEqual(['b']);
    expect(parseLinkHeader('<a; rel=next')).toEqual([]);
  });
});

describe('formatLinks and parseLinkHeader round trip', () => {
  it.each([
    '/v1/users?cursor=abc&q=a%2Cb',
    'https://api.example.com/v1/x?a=1&b=2',
    '/x>, <https://evil.example>; rel="next',
    '/a b/"q"/é/\r\n/%41',
    '/x;rel=next,/y',
  ])('writes %j as one link with its relations, and reads it back encoded', (href) => {
    const field = formatLinks([
      { href, rel: ['prev', 'first'], title: 'A, "quoted"; title' },
      { href: '/other', rel: 'next' },
    ]);
    expect(field).not.toMatch(/[\r\n]/);
    const links = parseLinkHeader(field);
    expect(links).toHaveLength(2);
    expect(links[0]).toEqual({
      href: toUriReference(href),
      rel: ['prev', 'first'],
      params: { title: 'A, "quoted"; title' },
    });
    expect(links[1]?.rel).toEqual(['next']);
  });
});
