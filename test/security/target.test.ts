/**
 * inspectTarget(): the pure decision behind requestHygiene(), one describe
 * per rule, each with the spellings that must be refused and the
 * look-alikes that must pass.
 */
import { describe, expect, it } from 'vitest';
import { MalformedTargetError, TargetTooLongError } from '../../src/security/errors.js';
import { findRepeatedHeader, inspectTarget, targetRules } from '../../src/security/hygiene.js';
import { parseHost } from '../../src/security/host.js';

const rules = targetRules();
const codeOf = (url: string, r = rules) => inspectTarget(url, r)?.code;
const partOf = (url: string) => {
  const finding = inspectTarget(url, rules);
  return finding === undefined ? undefined : (finding.extensions as { part: string }).part;
};

describe('dot-segments in any spelling are path-traversal', () => {
  it.each([
    ['raw ..', '/files/../etc/passwd'],
    ['raw .', '/files/./x'],
    ['trailing ..', '/files/..'],
    ['..%2f', '/files/..%2f..%2fetc%2fpasswd'],
    ['..%2F upper', '/files/..%2F'],
    ['%2e%2e', '/files/%2e%2e/etc'],
    ['%2E%2E', '/files/%2E%2E'],
    ['.%2e', '/files/.%2e/x'],
    ['%2e.', '/files/%2e./x'],
    ['%2e alone', '/files/%2e/x'],
    ['double-encoded %252e%252e', '/files/%252e%252e/etc'],
    ['double-encoded ..%252f', '/files/..%252f..%252fetc'],
    ['triple-encoded %25252e%25252e', '/files/%25252e%25252e'],
    ['..%5c', '/files/..%5c..%5cwindows'],
    ['raw backslash', '/files/..\\..\\windows'],
    ['..; (Tomcat path parameter)', '/files/..;/admin'],
    ['..%3b', '/files/..%3bx/admin'],
    ['overlong %c0%ae', '/files/%c0%ae%c0%ae/etc'],
    ['overlong %C0%AE upper', '/files/%C0%AE%C0%AE'],
    ['overlong slash %c0%af', '/files/..%c0%afetc'],
    ['overlong backslash %c1%9c', '/files/..%c1%9cetc'],
    ['overlong 3-byte %e0%80%ae', '/files/%e0%80%ae%e0%80%ae'],
    ['overlong 4-byte %f0%80%80%ae', '/files/%f0%80%80%ae%f0%80%80%ae'],
    ['double-encoded overlong %25c0%25ae', '/files/%25c0%25ae%25c0%25ae'],
    ['full-width dots (NFKC)', '/files/%ef%bc%8e%ef%bc%8e/etc'],
    ['full-width dots and solidus', '/files/%ef%bc%8e%ef%bc%8e%ef%bc%8fetc'],
  ])('%s', (_label, url) => {
    expect(codeOf(url)).toBe('path-traversal');
    expect(partOf(url)).toBe('path');
  });

  it.each([
    ['a file name with dots', '/files/report.v2.json'],
    ['dots inside a segment', '/files/a..b'],
    ['three dots', '/files/...'],
    ['a hidden file', '/files/.well-known'],
    ['an encoded dot inside a name', '/files/report%2ejson'],
    ['a literal percent, encoded once', '/files/100%25'],
    ['UTF-8', '/files/caf%C3%A9'],
    ['a semicolon parameter', '/files/a;v=1'],
    ['dots in the query', '/search?q=../../etc/passwd'],
    ['encoded traversal in the query', '/search?path=..%2f..%2fetc&x=%2e%2e'],
    ['double-encoded traversal in the query', '/search?q=%252e%252e'],
    ['the asterisk form', '*'],
    ['the root', '/'],
    ['empty segments', '/v1//users'],
  ])('passes %s', (_label, url) => {
    expect(codeOf(url)).toBeUndefined();
  });
});

describe('encoded separators and raw backslashes are ambiguous-path', () => {
  it.each([
    ['%2f', '/files/a%2fb'],
    ['%2F', '/files/a%2Fb'],
    ['%5c', '/files/a%5cb'],
    ['raw backslash', '/files/a\\b'],
  ])('%s', (_label, url) => {
    expect(codeOf(url)).toBe('ambiguous-path');
  });

  it('lets encoded slashes through with allowEncodedSlashes, but not the traversals they form', () => {
    const lenient = targetRules({ allowEncodedSlashes: true });
    expect(codeOf('/v1/repos/group%2Fproject', lenient)).toBeUndefined();
    expect(codeOf('/v1/repos/a%5Cb', lenient)).toBeUndefined();
    expect(codeOf('/v1/repos/group%2F..%2F..%2Fadmin', lenient)).toBe('path-traversal');
    expect(codeOf('/v1/repos/..%2F', lenient)).toBe('path-traversal');
    expect(codeOf('/v1/repos/a\\b', lenient)).toBe('ambiguous-path');
  });

  it('does not count a double-encoded slash, which the router leaves as %2F', () => {
    expect(codeOf('/files/a%252Fb')).toBeUndefined();
  });
});

describe('a fragment is invalid-request-target', () => {
  it('in the path or the query', () => {
    expect(codeOf('/files/a#b')).toBe('invalid-request-target');
    expect(partOf('/files/a#b')).toBe('path');
    expect(codeOf('/search?q=a#b')).toBe('invalid-request-target');
    expect(partOf('/search?q=a#b')).toBe('query');
    expect(codeOf('/files/a%23b?q=%23')).toBeUndefined();
  });
});

describe('NUL bytes are null-byte', () => {
  it.each([
    ['%00 in the path', '/files/a%00.json', 'path'],
    ['double-encoded %2500 in the path', '/files/a%2500.json', 'path'],
    ['overlong %c0%80 in the path', '/files/a%c0%80', 'path'],
    ['%00 in the query', '/search?q=a%00b', 'query'],
  ])('%s', (_label, url, part) => {
    expect(codeOf(url)).toBe('null-byte');
    expect(partOf(url)).toBe(part);
  });

  it('passes %2500 in the query: one decoding gives the text "%00", which is data', () => {
    expect(codeOf('/search?q=%2500')).toBeUndefined();
  });
});

describe('broken percent-encoding is invalid-percent-encoding', () => {
  it.each([
    ['a bare % in the path', '/files/100%', 'path'],
    ['% and one digit', '/files/%2', 'path'],
    ['% and non-hex', '/files/%zz', 'path'],
    ['Latin-1, not UTF-8, in the path', '/files/caf%E9', 'path'],
    ['a lone continuation byte', '/files/%80', 'path'],
    ['an overlong letter', '/files/%c1%81', 'path'],
    ['a bare % in the query', '/search?discount=50%', 'query'],
    ['% and non-hex in the query', '/search?q=%G1', 'query'],
  ])('%s', (_label, url, part) => {
    expect(codeOf(url)).toBe('invalid-percent-encoding');
    expect(partOf(url)).toBe(part);
  });

  it('passes Latin-1 bytes in the query, which URLSearchParams replaces, and skips the query with checkQuery: false', () => {
    expect(codeOf('/search?q=caf%E9')).toBeUndefined();
    const noQuery = targetRules({ checkQuery: false });
    expect(codeOf('/search?discount=50%', noQuery)).toBeUndefined();
    expect(codeOf('/search?q=%00', noQuery)).toBeUndefined();
    expect(codeOf('/files/%00?q=1', noQuery)).toBe('null-byte');
  });
});

describe('lengths are uri-too-long (414)', () => {
  it('bounds the path and the query separately', () => {
    const short = targetRules({ maxPathLength: 16, maxQueryLength: 8 });
    expect(codeOf('/abcdefghijklmno', short)).toBeUndefined();
    const long = inspectTarget('/abcdefghijklmnop', short);
    expect(long?.status).toBe(414);
    expect(long?.code).toBe('uri-too-long');
    expect(long?.extensions).toEqual({ part: 'path', maxLength: 16 });
    expect(codeOf('/a?12345678', short)).toBeUndefined();
    expect(inspectTarget('/a?123456789', short)?.extensions).toEqual({
      part: 'query',
      maxLength: 8,
    });
  });

  it('has defaults of 2048 and 8192', () => {
    expect(codeOf(`/${'a'.repeat(2047)}`)).toBeUndefined();
    expect(codeOf(`/${'a'.repeat(2048)}`)).toBe('uri-too-long');
    expect(codeOf(`/?${'a'.repeat(8192)}`)).toBeUndefined();
    expect(codeOf(`/?${'a'.repeat(8193)}`)).toBe('uri-too-long');
  });
});

describe('the findings', () => {
  it('are typed errors: reason repeats the code, part names where, and nothing echoes the target', () => {
    const finding = inspectTarget('/files/..%2f..%2fsecret-name', rules);
    expect(finding).toBeInstanceOf(MalformedTargetError);
    const malformed = finding as MalformedTargetError;
    expect(malformed.reason).toBe('path-traversal');
    expect(malformed.code).toBe('path-traversal');
    expect(malformed.part).toBe('path');
    expect(malformed.status).toBe(400);
    expect(JSON.stringify([malformed.detail, malformed.extensions])).not.toContain('secret-name');
    expect(inspectTarget(`/${'a'.repeat(3000)}`, rules)).toBeInstanceOf(TargetTooLongError);
  });
});

describe('targetRules options', () => {
  it('refuses bad values and unknown names', () => {
    expect(() => targetRules({ maxPathLength: 0 })).toThrow(/maxPathLength/);
    expect(() => targetRules({ maxQueryLength: 1.5 })).toThrow(/maxQueryLength/);
    expect(() => targetRules({ allowEncodedSlashes: 'yes' as never })).toThrow(
      /allowEncodedSlashes/,
    );
    expect(() => targetRules({ checkQuery: 1 as never })).toThrow(/checkQuery/);
    expect(() => targetRules({ maxPathLen: 10 } as never)).toThrow(/Did you mean "maxPathLength"/);
  });
});

describe('findRepeatedHeader', () => {
  const names = new Set(['host', 'authorization']);
  it('finds a second line of a listed header, whatever its case', () => {
    expect(findRepeatedHeader(['Host', 'a', 'hOST', 'a'], names)).toBe('host');
    expect(
      findRepeatedHeader(['Host', 'a', 'Authorization', 'x', 'authorization', 'y'], names),
    ).toBe('authorization');
  });
  it('ignores repeated list headers and single lines', () => {
    expect(findRepeatedHeader(['Host', 'a', 'Accept', 'x', 'Accept', 'y'], names)).toBeUndefined();
    expect(findRepeatedHeader([], names)).toBeUndefined();
  });
});

describe('parseHost (RFC 9112 §3.2, RFC 3986 §3.2.2)', () => {
  it('reads names, addresses and ports', () => {
    expect(parseHost('API.Example.com')).toEqual({ host: 'api.example.com', port: undefined });
    expect(parseHost('api.example.com:8443')).toEqual({ host: 'api.example.com', port: 8443 });
    expect(parseHost('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(parseHost('[::1]:3000')).toEqual({ host: '[::1]', port: 3000 });
    expect(parseHost('[2001:DB8::1]')).toEqual({ host: '[2001:db8::1]', port: undefined });
    expect(parseHost('example.com:')).toEqual({ host: 'example.com', port: undefined });
    expect(parseHost('my_host.internal')).toEqual({ host: 'my_host.internal', port: undefined });
  });
  it('refuses anything else', () => {
    for (const value of [
      '',
      'a b',
      'example.com:99999',
      'example.com:80:80',
      'user@example.com',
      'example.com/path',
      '[::1',
      '[not-ipv6]',
      'exa%6dple.com',
      '-example.com',
      'a..b',
      `${'a'.repeat(64)}.com`,
    ]) {
      expect(parseHost(value), value).toBeUndefined();
    }
  });
});
