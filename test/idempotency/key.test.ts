import { describe, expect, it } from 'vitest';
import { parseIdempotencyKey } from '../../src/idempotency/key.js';

const key = (value: string) => {
  const r = parseIdempotencyKey(value);
  return r.ok ? r.key : r.reason;
};

describe('Idempotency-Key: an RFC 8941 Item whose bare item is an sf-string (draft §2.1)', () => {
  it('reads an sf-string (RFC 8941 §3.3.3), unescaping \\" and \\\\', () => {
    expect(key('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    expect(key('"a b"')).toBe('a b');
    expect(key('"a\\"b"')).toBe('a"b');
    expect(key('"a\\\\b"')).toBe('a\\b');
    expect(key('" !#~"')).toBe(' !#~');
  });

  it('refuses what is not an sf-string: a bad escape, a control character, non-ASCII, no closing quote', () => {
    for (const bad of ['"a\\b"', '"a\tb"', '"é"', '"abc', 'abc"', '"a"b', '"a""b"', '"\\"']) {
      expect(key(bad), bad).toBe('invalid');
    }
  });

  it('accepts a bare token as the same key (clients that skip the quotes)', () => {
    expect(key('abc')).toBe('abc');
    expect(key('8e03978e-40d5')).toBe('8e03978e-40d5');
    expect(key('a:b/c*d')).toBe('a:b/c*d');
    expect(key('!a')).toBe('invalid');
  });

  describe('parameters (RFC 8941 §3.1.2) are parsed and ignored', () => {
    it.each([
      ['"abc";foo=1', 'abc'],
      ['"abc";foo', 'abc'],
      ['"abc"; foo=1', 'abc'],
      ['"abc";foo=1;bar=?0', 'abc'],
      ['"abc";a=-12;b=1.5;c="x;y";d=tok/en;e=:aGk=:;f=?1;*g', 'abc'],
      ['abc;foo=1', 'abc'],
      ['"abc";foo=1;foo=2', 'abc'],
    ])('%s is the key %s', (value, expected) => {
      expect(key(value)).toBe(expected);
    });

    it.each([
      ['"abc";', 'a ";" with no key'],
      ['"abc";Foo=1', 'an upper-case key'],
      ['"abc";1a=1', 'a key starting with a digit'],
      ['"abc" ;foo=1', 'a space before ";"'],
      ['"abc";foo =1', 'a space before "="'],
      ['"abc";foo=', 'no value after "="'],
      ['"abc";foo=1.2345', 'a decimal with four fraction digits'],
      ['"abc";foo=1234567890123456', 'an integer of 16 digits'],
      ['"abc";foo="x', 'an unterminated string value'],
      ['"abc";foo=?2', 'a boolean that is not ?0 or ?1'],
      ['"abc";foo=:a b:', 'a byte sequence with a space'],
      ['"abc";foo=(a)', 'an inner list as value'],
    ])('refuses %s (%s)', (value) => {
      expect(key(value)).toBe('invalid');
    });
  });

  it('refuses a List, an Inner List and a repeated field (one request has one key)', () => {
    for (const bad of ['"a", "b"', 'a,b', '("a")', '("a" "b")', '"a",', '"a";x=1, "b"']) {
      expect(key(bad), bad).toBe('invalid');
    }
  });

  it('refuses other bare item types and garbage', () => {
    for (const bad of [
      '?1',
      ':aGk=:',
      '-1',
      '"a" "b"',
      'a b',
      '',
      ' ',
      '""',
      '"";x=1',
      ';x=1',
      '\u0000',
    ]) {
      expect(key(bad), JSON.stringify(bad)).toBe('invalid');
    }
  });

  it('discards surrounding spaces (RFC 8941 §4.2)', () => {
    expect(key('  "abc"  ')).toBe('abc');
  });

  it('bounds the length of the key, not of its parameters', () => {
    expect(key(`"${'x'.repeat(255)}";p=1`)).toBe('x'.repeat(255));
    expect(key(`"${'x'.repeat(256)}"`)).toBe('too-long');
    expect(parseIdempotencyKey('"abcd"', 3)).toMatchObject({ ok: false, reason: 'too-long' });
  });

  it('names the configured field in its details', () => {
    expect(parseIdempotencyKey(undefined, 255, 'X-Request-Key')).toMatchObject({
      reason: 'missing',
      detail: 'The X-Request-Key header is required.',
    });
    const invalid = parseIdempotencyKey('a b', 255, 'X-Request-Key');
    expect(invalid.ok).toBe(false);
    if (!invalid.ok) expect(invalid.detail).toMatch(/^X-Request-Key must be/);
  });
});
