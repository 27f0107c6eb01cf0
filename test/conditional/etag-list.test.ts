/**
 * Entity-tag parsing, after RFC 9110 §8.8.3: one `describe` per rule of the grammar.
 */
import { describe, expect, it } from 'vitest';
import {
  encodingETag,
  encodingSuffixOf,
  parseEntityTag,
  parseETagList,
  stripEncodingSuffix,
  strongMatch,
  toEntityTag,
  weakMatch,
} from '../../src/conditional/etag-list.js';

const tags = (value: string) => {
  const list = parseETagList(value);
  if (list?.kind !== 'tags') throw new Error(`expected a list, got ${JSON.stringify(list)}`);
  return list.tags.map((t) => (t.weak ? `W/${t.opaque}` : t.opaque));
};

describe('entity-tag = [ weak ] opaque-tag', () => {
  it('parses strong and weak tags', () => {
    expect(parseEntityTag('"xyzzy"')).toEqual({ weak: false, opaque: '"xyzzy"' });
    expect(parseEntityTag('W/"xyzzy"')).toEqual({ weak: true, opaque: '"xyzzy"' });
    expect(parseEntityTag('""')).toEqual({ weak: false, opaque: '""' });
  });

  it('W/ is case-sensitive', () => {
    expect(parseEntityTag('w/"xyzzy"')).toBeUndefined();
  });

  it('requires the quotes', () => {
    expect(parseEntityTag('xyzzy')).toBeUndefined();
    expect(parseEntityTag('"xyzzy')).toBeUndefined();
    expect(parseEntityTag('xyzzy"')).toBeUndefined();
    expect(parseEntityTag('W/xyzzy')).toBeUndefined();
  });

  it('etagc excludes DQUOTE, space and controls; allows obs-text and commas', () => {
    expect(parseEntityTag('"a b"')).toBeUndefined();
    expect(parseEntityTag('"a\tb"')).toBeUndefined();
    expect(parseEntityTag('"a\u0001b"')).toBeUndefined();
    expect(parseEntityTag('"a"b"')).toBeUndefined();
    expect(parseEntityTag('"caf\u00e9"')?.opaque).toBe('"caf\u00e9"');
    expect(parseEntityTag('"a,b"')?.opaque).toBe('"a,b"');
    expect(parseEntityTag('"\u0100"')).toBeUndefined(); // beyond a byte: not obs-text
  });

  it('tolerates surrounding OWS, nothing else', () => {
    expect(parseEntityTag('  "x"\t')?.opaque).toBe('"x"');
    expect(parseEntityTag('"x" y')).toBeUndefined();
    expect(parseEntityTag('"x","y"')).toBeUndefined();
  });
});

describe('If-Match / If-None-Match = "*" / #entity-tag', () => {
  it('reads * alone', () => {
    expect(parseETagList('*')).toEqual({ kind: 'any' });
    expect(parseETagList('  * ')).toEqual({ kind: 'any' });
  });

  it('* in a list, or twice, is invalid', () => {
    expect(parseETagList('*, "a"')).toEqual({ kind: 'invalid' });
    expect(parseETagList('"a", *')).toEqual({ kind: 'invalid' });
    expect(parseETagList('**')).toEqual({ kind: 'invalid' });
  });

  it('splits on commas outside quotes only', () => {
    expect(tags('"a,b", "c"')).toEqual(['"a,b"', '"c"']);
    // A space is no etagc: this is not one tag "a, b", nor two.
    expect(parseETagList('"a, b"')).toEqual({ kind: 'invalid' });
  });

  it('accepts OWS around members and skips empty members (RFC 9110 §5.6.1)', () => {
    expect(tags(' "a" ,\t W/"b",,, "c" ')).toEqual(['"a"', 'W/"b"', '"c"']);
    expect(tags(', , "a"')).toEqual(['"a"']);
    expect(tags('')).toEqual([]);
    expect(tags(' , ')).toEqual([]);
  });

  it('rejects members without a comma between them', () => {
    expect(parseETagList('"a" "b"')).toEqual({ kind: 'invalid' });
    expect(parseETagList('"a""b"')).toEqual({ kind: 'invalid' });
  });

  it('rejects unquoted, unterminated and garbled members as a whole', () => {
    for (const bad of ['a', '"a', 'W/', 'W/a', '"a", b', '"a" x', '"a\u0000"', 'w/"a"', '"a"b']) {
      expect(parseETagList(bad), bad).toEqual({ kind: 'invalid' });
    }
  });

  it('is linear on hostile input', () => {
    const long = `${'"a",'.repeat(20_000)}"b"`;
    const started = performance.now();
    expect(tags(long)).toHaveLength(20_001);
    expect(parseETagList(`"${'a'.repeat(100_000)}`)).toEqual({ kind: 'invalid' });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('absent is undefined', () => {
    expect(parseETagList(undefined)).toBeUndefined();
  });
});

describe('comparison (RFC 9110 §8.8.3.2, the table of examples)', () => {
  const t = (v: string) => parseEntityTag(v)!;
  it.each([
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ])('%s vs %s: strong %s, weak %s', (a, b, strong, weak) => {
    expect(strongMatch(t(a), t(b))).toBe(strong);
    expect(weakMatch(t(a), t(b))).toBe(weak);
  });
});

describe('application-supplied tags', () => {
  it('keeps valid entity-tags and quotes bare opaque values', () => {
    expect(toEntityTag('"v3"')).toBe('"v3"');
    expect(toEntityTag('W/"v3"')).toBe('W/"v3"');
    expect(toEntityTag('v3')).toBe('"v3"');
    expect(toEntityTag('5f2b-1a')).toBe('"5f2b-1a"');
  });

  it('refuses what cannot be an entity-tag', () => {
    expect(() => toEntityTag('v 3')).toThrow(TypeError);
    expect(() => toEntityTag('v"3')).toThrow(TypeError);
    expect(() => toEntityTag('')).toThrow(TypeError);
  });
});

describe('encoding suffixes (one strong tag per representation)', () => {
  it('suffixes strong tags inside the quotes, keeps weak ones', () => {
    expect(encodingETag('"abc"', 'br')).toBe('"abc-br"');
    expect(encodingETag('"abc"', 'gzip')).toBe('"abc-gzip"');
    expect(encodingETag('W/"abc"', 'br')).toBe('W/"abc"');
    expect(encodingETag('not-a-tag', 'br')).toBe('not-a-tag');
  });

  it('strips a known suffix back to the identity tag', () => {
    const codings = ['br', 'gzip'];
    expect(stripEncodingSuffix(parseEntityTag('"abc-br"')!, codings).opaque).toBe('"abc"');
    expect(stripEncodingSuffix(parseEntityTag('"abc-gzip"')!, codings).opaque).toBe('"abc"');
    expect(stripEncodingSuffix(parseEntityTag('"abc-zstd"')!, codings).opaque).toBe('"abc-zstd"');
    expect(stripEncodingSuffix(parseEntityTag('"-br"')!, codings).opaque).toBe('"-br"');
    expect(stripEncodingSuffix(parseEntityTag('W/"abc-br"')!, codings).opaque).toBe('"abc-br"');
    expect(encodingSuffixOf(parseEntityTag('"abc-gzip"')!, codings)).toBe('gzip');
    expect(encodingSuffixOf(parseEntityTag('"abc"')!, codings)).toBeUndefined();
  });
});

describe('entityTag(): the format of the `etag` package', () => {
  it('gives the tags Express and koa-etag give, strong and weak', async () => {
    const { default: etag } = await import('etag');
    const { entityTag } = await import('../../src/conditional/index.js');
    for (const body of ['', 'a', 'é'.repeat(100), 'x'.repeat(100 * 1024)]) {
      const bytes = Buffer.from(body);
      expect(entityTag(bytes)).toBe(etag(body));
      expect(entityTag(bytes, true)).toBe(etag(body, { weak: true }));
    }
  });
});
