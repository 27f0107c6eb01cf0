/**
 * Origins as RFC 6454 defines them, and the allowlist matcher: exact
 * entries, `*.` wildcards and anchored RegExps, against the spellings an
 * attacker would try.
 */
import { describe, expect, it } from 'vitest';
import { originMatcher, parseOrigin } from '../../src/security/origin.js';

describe('parseOrigin (RFC 6454 §6.2 serialisation)', () => {
  it('lower-cases scheme and host and drops the default port', () => {
    expect(parseOrigin('HTTPS://App.Example.COM:443')?.serialized).toBe('https://app.example.com');
    expect(parseOrigin('http://example.com:80')?.serialized).toBe('http://example.com');
    expect(parseOrigin('https://example.com:8443')?.serialized).toBe('https://example.com:8443');
    expect(parseOrigin('http://127.0.0.1:3000')?.serialized).toBe('http://127.0.0.1:3000');
    expect(parseOrigin('http://[::1]:3000')?.serialized).toBe('http://[::1]:3000');
    expect(parseOrigin('chrome-extension://abcdefghijklmnop')?.serialized).toBe(
      'chrome-extension://abcdefghijklmnop',
    );
  });

  it('keeps the tuple', () => {
    expect(parseOrigin('https://a.example.com:8443')).toEqual({
      scheme: 'https',
      host: 'a.example.com',
      port: 8443,
      serialized: 'https://a.example.com:8443',
    });
    expect(parseOrigin('https://a.example.com')?.port).toBeUndefined();
  });

  it('refuses what is not scheme://host[:port]', () => {
    for (const value of [
      'null',
      '',
      'example.com',
      'https://example.com/',
      'https://example.com/path',
      'https://evil.com/.example.com',
      'https://user@example.com',
      'https://example.com?x',
      'https://example.com#x',
      'https://example.com:99999',
      'https://exa mple.com',
      'https://example.com, https://evil.net',
      'https://example.com https://evil.net',
      'https://',
      'https://.example.com',
      'https://a..example.com',
      'https://[1.2.3.4]',
      'https://example.com\\@evil.net',
      `https://${'a'.repeat(300)}.com`,
    ]) {
      expect(parseOrigin(value), value).toBeUndefined();
    }
  });
});

describe('originMatcher', () => {
  const allowed = originMatcher([
    'https://app.example.com',
    'HTTP://LOCALHOST:3000',
    'https://*.preview.example.com',
    'https://*.example.org:8443',
    /^https:\/\/tenant-[a-z]+\.example\.net$/,
  ]);
  const check = (origin: string) => {
    const parsed = parseOrigin(origin);
    return parsed !== undefined && allowed(parsed);
  };

  it('matches exact origins, however they are spelled', () => {
    expect(check('https://app.example.com')).toBe(true);
    expect(check('https://APP.example.com:443')).toBe(true);
    expect(check('http://localhost:3000')).toBe(true);
    expect(check('http://localhost:3001')).toBe(false);
    expect(check('http://app.example.com')).toBe(false);
    expect(check('https://app.example.com:8443')).toBe(false);
  });

  it('does not match what merely contains or extends an allowed origin', () => {
    expect(check('https://app.example.com.evil.net')).toBe(false);
    expect(check('https://evilapp.example.com')).toBe(false);
    expect(check('https://app.example.co')).toBe(false);
    expect(check('https://app.example.com.')).toBe(false);
  });

  it('matches wildcard subdomains at any depth, on the same scheme and port only', () => {
    expect(check('https://pr-7.preview.example.com')).toBe(true);
    expect(check('https://a.b.preview.example.com')).toBe(true);
    expect(check('https://preview.example.com')).toBe(false);
    expect(check('https://evilpreview.example.com')).toBe(false);
    expect(check('https://preview.example.com.evil.net')).toBe(false);
    expect(check('https://x.preview.example.com.evil.net')).toBe(false);
    expect(check('http://pr-7.preview.example.com')).toBe(false);
    expect(check('https://pr-7.preview.example.com:8443')).toBe(false);
    expect(check('https://a.example.org:8443')).toBe(true);
    expect(check('https://a.example.org')).toBe(false);
  });

  it('tests anchored RegExps against the serialised origin', () => {
    expect(check('https://tenant-acme.example.net')).toBe(true);
    expect(check('https://TENANT-ACME.example.net:443')).toBe(true);
    expect(check('https://tenant-acme.example.net.evil.com')).toBe(false);
    expect(check('https://tenant-1.example.net')).toBe(false);
  });

  it('matches a RegExp with a top-level alternation against the whole origin, in every branch', () => {
    // Written with both anchors, yet as /^A|B$/ the first branch has no $ and the second no ^.
    const either = originMatcher([/^https:\/\/a\.example\.com|https:\/\/b\.example\.com$/]);
    const test = (o: string) => either(parseOrigin(o)!);
    expect(test('https://a.example.com')).toBe(true);
    expect(test('https://b.example.com')).toBe(true);
    expect(test('https://a.example.com.evil.net')).toBe(false);
    expect(test('xhttps://b.example.com')).toBe(false);
    expect(test('https://xb.example.com')).toBe(false);
  });

  it('refuses entries that would allow more than they say', () => {
    expect(() => originMatcher([/example\.com$/])).toThrow(/anchored at both ends/);
    expect(() => originMatcher([/^https:\/\/example\.com/])).toThrow(/anchored/);
    expect(() => originMatcher([/^https:\/\/example\.com\$/])).toThrow(/anchored/);
    expect(() => originMatcher([/^https:\/\/example\.com$/g])).toThrow(/g or y flag/);
    expect(() => originMatcher([/^https:\/\/example\.com$/y])).toThrow(/g or y flag/);
    expect(() => originMatcher([/^https:\/\/example\.com$/i])).not.toThrow();
    expect(() => originMatcher(['*'])).toThrow(/origins: '\*'/);
    expect(() => originMatcher(['null'])).toThrow(/allowNull/);
    expect(() => originMatcher(['https://*.com'])).toThrow(/two labels/);
    expect(() => originMatcher(['https://*'])).toThrow(/wildcard/);
    expect(() => originMatcher(['https://app.*.example.com'])).toThrow(/wildcard/);
    expect(() => originMatcher(['https://*example.com'])).toThrow(/wildcard/);
    expect(() => originMatcher(['https://*.example.com/'])).toThrow(/wildcard/);
    expect(() => originMatcher(['https://app.example.com/'])).toThrow(/no path, not even "\/"/);
    expect(() => originMatcher(['app.example.com'])).toThrow(/origins\[0\]/);
    expect(() => originMatcher(['https://ok.example', 42 as never])).toThrow(/origins\[1\]/);
  });

  it('takes IDN hosts in their Unicode form and matches the ASCII form browsers send', () => {
    const idn = originMatcher(['https://bücher.example']);
    expect(idn(parseOrigin('https://xn--bcher-kva.example')!)).toBe(true);
  });
});
