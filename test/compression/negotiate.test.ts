/**
 * Accept-Encoding (RFC 9110 §12.5.3): parsing and negotiation, on plain values.
 */
import { describe, expect, it } from 'vitest';
import { compressible, isEventStream } from '../../src/compression/compressible.js';
import {
  type Coding,
  negotiateEncoding,
  parseAcceptEncoding,
} from '../../src/compression/negotiate.js';

const BR_GZIP: Coding[] = ['br', 'gzip'];

describe('parseAcceptEncoding()', () => {
  it('reads codings, lower-cased, with q-values (default 1)', () => {
    expect(parseAcceptEncoding('gzip, BR;q=0.5 ,identity; q=0, *;Q=0.001')).toEqual([
      { coding: 'gzip', q: 1 },
      { coding: 'br', q: 0.5 },
      { coding: 'identity', q: 0 },
      { coding: '*', q: 0.001 },
    ]);
  });

  it('reads x-gzip as gzip (§8.4.1.3)', () => {
    expect(parseAcceptEncoding('x-gzip')).toEqual([{ coding: 'gzip', q: 1 }]);
  });

  it('skips empty members and names that break the grammar; a broken weight refuses its coding', () => {
    expect(
      parseAcceptEncoding(', gzip;q=2, br;q=0.1234, deflate;q=abc, zstd;q, compress;q=1.0, ,'),
    ).toEqual([
      { coding: 'gzip', q: 0 },
      { coding: 'br', q: 0 },
      { coding: 'deflate', q: 0 },
      { coding: 'zstd', q: 0 },
      { coding: 'compress', q: 1 },
    ]);
    expect(parseAcceptEncoding('gz ip, br')).toEqual([{ coding: 'br', q: 1 }]);
  });

  it('accepts the qvalue grammar exactly', () => {
    for (const q of ['0', '0.', '0.5', '0.125', '1', '1.', '1.000']) {
      expect(parseAcceptEncoding(`br;q=${q}`), q).toHaveLength(1);
    }
    for (const q of ['1.001', '0.0001', '-0', '.5', '2', '']) {
      expect(parseAcceptEncoding(`br;q=${q}`), q).toEqual([{ coding: 'br', q: 0 }]);
    }
  });

  it('ignores parameters other than q', () => {
    expect(parseAcceptEncoding('br;level=5;q=0.5')).toEqual([{ coding: 'br', q: 0.5 }]);
  });
});

describe('negotiateEncoding()', () => {
  it('no header: identity (a client that did not ask may not decode)', () => {
    expect(negotiateEncoding(undefined, BR_GZIP)).toBe('identity');
  });

  it('empty header: identity only', () => {
    expect(negotiateEncoding('', BR_GZIP)).toBe('identity');
  });

  it('picks the highest q', () => {
    expect(negotiateEncoding('gzip;q=1, br;q=0.5', BR_GZIP)).toBe('gzip');
    expect(negotiateEncoding('gzip;q=0.2, br;q=0.8', BR_GZIP)).toBe('br');
  });

  it("breaks ties by the server's preference: br before gzip", () => {
    expect(negotiateEncoding('gzip, deflate, br', BR_GZIP)).toBe('br');
    expect(negotiateEncoding('gzip;q=0.8, br;q=0.8', BR_GZIP)).toBe('br');
    expect(negotiateEncoding('gzip, br', ['gzip', 'br'])).toBe('gzip');
  });

  it('never picks q=0 or an unoffered coding', () => {
    expect(negotiateEncoding('br;q=0, gzip', BR_GZIP)).toBe('gzip');
    expect(negotiateEncoding('deflate', BR_GZIP)).toBe('identity');
    expect(negotiateEncoding('deflate', ['br', 'gzip', 'deflate'])).toBe('deflate');
    expect(negotiateEncoding('zstd, compress', BR_GZIP)).toBe('identity');
  });

  it('* stands for every coding not listed', () => {
    expect(negotiateEncoding('*', BR_GZIP)).toBe('br');
    expect(negotiateEncoding('br;q=0, *', BR_GZIP)).toBe('gzip');
    expect(negotiateEncoding('*;q=0.5, gzip', BR_GZIP)).toBe('gzip');
    expect(negotiateEncoding('*;q=0', BR_GZIP)).toBeUndefined();
    expect(negotiateEncoding('*;q=0, identity', BR_GZIP)).toBe('identity');
  });

  it('identity: acceptable unless refused, and wins with a higher q', () => {
    expect(negotiateEncoding('identity', BR_GZIP)).toBe('identity');
    expect(negotiateEncoding('gzip;q=0.5, identity', BR_GZIP)).toBe('identity');
    expect(negotiateEncoding('gzip, identity', BR_GZIP)).toBe('gzip');
    expect(negotiateEncoding('gzip, identity;q=0', BR_GZIP)).toBe('gzip');
  });

  it('nothing acceptable (identity;q=0 and no coding of ours): undefined', () => {
    expect(negotiateEncoding('identity;q=0', BR_GZIP)).toBeUndefined();
    expect(negotiateEncoding('zstd, identity;q=0', BR_GZIP)).toBeUndefined();
    expect(negotiateEncoding('identity;q=0, *;q=0', BR_GZIP)).toBeUndefined();
  });
});

describe('compressible()', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['text/html; charset=utf-8', true],
    ['application/problem+json', true],
    ['image/svg+xml', true],
    ['application/javascript', true],
    ['TEXT/CSS', true],
    ['image/png', false],
    ['image/webp', false],
    ['video/mp4', false],
    ['audio/mpeg', false],
    ['application/zip', false],
    ['application/gzip', false],
    ['application/x-7z-compressed', false],
    ['application/epub+zip', false],
    ['font/woff2', false],
    ['font/woff', false],
    ['', false],
  ])('%s: %s', (type, expected) => {
    expect(compressible(type)).toBe(expected);
  });

  it('knows Server-Sent Events', () => {
    expect(isEventStream('text/event-stream; charset=utf-8')).toBe(true);
    expect(isEventStream('text/plain')).toBe(false);
  });
});
