import { describe, expect, it } from 'vitest';
import { formatLink, formatLinks, parseLinkHeader, toUriReference } from '../../src/core/link.js';

describe('formatLink (RFC 8288 §3)', () => {
  it('writes the target in angle brackets and rel as a quoted string', () => {
    expect(formatLink({ href: '/v1/users?cursor=abc', rel: 'next' })).toBe(
      '</v1/users?cursor=abc>; rel="next"',
    );
  });

  it('writes several relation types space-separated in one rel (§3.3)', () => {
    expect(formatLink({ href: '/a', rel: ['prev', 'first'] })).toBe('</a>; rel="prev first"');
    expect(formatLink({ href: '/a', rel: 'prev first' })).toBe('</a>; rel="prev first"');
  });

  it('accepts extension relation types that are absolute URIs (§2.1.2)', () => {
    expect(formatLink({ href: '/a', rel: 'https://example.com/rels/refund' })).toBe(
      '</a>; rel="https://example.com/rels/refund"',
    );
  });

  it('refuses relation types that are neither registered-style nor URIs', () => {
    expect(() => formatLink({ href: '/a', rel: 'Next Page"' })).toThrow(TypeError);
    expect(() => formatLink({ href: '/a', rel: 'NEXT' })).toThrow(/registered relation type/);
    expect(() => formatLink({ href: '/a', rel: [] })).toThrow(/at least one/);
    expect(() => formatLink({ href: '/a', rel: '' })).toThrow(/at least one/);
  });

  it('percent-encodes what a URI reference cannot hold, keeping valid escapes', () => {
    expect(formatLink({ href: '/a b/<x>/"q"/é/%41/%zz', rel: 'next' })).toBe(
      '</a%20b/%3Cx%3E/%22q%22/%C3%A9/%41/%25zz>; rel="next"',
    );
    // A client cannot close the angle brackets or start another link-value.
    const header = formatLink({ href: '/x>, <https://evil.example>; rel="next', rel: 'prev' });
    expect(parseLinkHeader(header)).toHaveLength(1);
    expect(parseLinkHeader(header)[0]?.rel).toEqual(['prev']);
  });

  it('writes an astral character as its four UTF-8 bytes and a lone surrogate as U+FFFD', () => {
    expect(toUriReference('/😀')).toBe('/%F0%9F%98%80');
    expect(toUriReference('/\uD800')).toBe('/%EF%BF%BD');
  });

  it('quotes titles, escaping quotes and backslashes, and writes non-ASCII ones as title* (RFC 8187)', () => {
    expect(formatLink({ href: '/a', rel: 'next', title: 'say "hi" \\ bye' })).toBe(
      '</a>; rel="next"; title="say \\"hi\\" \\\\ bye"',
    );
    expect(formatLink({ href: '/a', rel: 'next', title: 'Página €' })).toBe(
      '</a>; rel="next"; title*=UTF-8\'\'P%C3%A1gina%20%E2%82%AC',
    );
  });

  it('writes type and hreflang, and refuses malformed ones', () => {
    expect(formatLink({ href: '/d', rel: 'deprecation', type: 'text/html', hreflang: 'en' })).toBe(
      '</d>; rel="deprecation"; type="text/html"; hreflang=en',
    );
    expect(() => formatLink({ href: '/d', rel: 'next', type: 'html' })).toThrow(/media type/);
    expect(() => formatLink({ href: '/d', rel: 'next', hreflang: 'en us' })).toThrow(/language/);
  });

  it('joins several links with commas', () => {
    expect(
      formatLinks([
        { href: '/a', rel: 'first' },
        { href: '/b', rel: 'next' },
      ]),
    ).toBe('</a>; rel="first", </b>; rel="next"');
  });
});

describe('parseLinkHeader', () => {
  it('reads what formatLinks writes', () => {
    const header = formatLinks([
      { href: '/v1/users?limit=2&cursor=a,b;c', rel: 'next', title: 'a, "b"; c' },
      { href: 'https://api.example.com/v1/users', rel: ['first', 'prev'] },
    ]);
    expect(parseLinkHeader(header)).toEqual([
      { href: '/v1/users?limit=2&cursor=a,b;c', rel: ['next'], params: { title: 'a, "b"; c' } },
      { href: 'https://api.example.com/v1/users', rel: ['first', 'prev'], params: {} },
    ]);
  });

  it('reads relation types case-insensitively and keeps the first of a repeated parameter (§3)', () => {
    expect(parseLinkHeader('</a>; REL="Next"; rel=prev; Title=x')).toEqual([
      { href: '/a', rel: ['next'], params: { title: 'x' } },
    ]);
  });

  it('skips link-values that do not parse and keeps the rest', () => {
    expect(parseLinkHeader('garbage, </a>; rel=next, </b> junk, </c>; rel="prev"')).toEqual([
      { href: '/a', rel: ['next'], params: {} },
      { href: '/c', rel: ['prev'], params: {} },
    ]);
    expect(parseLinkHeader('</a')).toEqual([]);
    expect(parseLinkHeader(undefined)).toEqual([]);
    expect(parseLinkHeader('x'.repeat(70_000))).toEqual([]);
  });
});
