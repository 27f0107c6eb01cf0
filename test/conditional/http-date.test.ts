/**
 * HTTP-date (RFC 9110 §5.6.7): the three formats recipients must accept, and
 * everything else refused.
 */
import { describe, expect, it } from 'vitest';
import { formatHttpDate, httpSeconds, parseHttpDate } from '../../src/conditional/http-date.js';

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('the three formats of §5.6.7', () => {
  it('IMF-fixdate', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')?.getTime()).toBe(NOV_6_1994);
  });

  it('obsolete rfc850-date', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')?.getTime()).toBe(NOV_6_1994);
  });

  it('obsolete asctime-date, with a space-padded day', () => {
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')?.getTime()).toBe(NOV_6_1994);
    expect(parseHttpDate('Thu Nov 24 08:49:37 1994')?.getTime()).toBe(
      Date.UTC(1994, 10, 24, 8, 49, 37),
    );
  });

  it('round-trips what formatHttpDate writes (IMF-fixdate)', () => {
    const date = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));
    expect(formatHttpDate(date)).toBe('Wed, 01 May 2024 12:00:00 GMT');
    expect(parseHttpDate(formatHttpDate(date))?.getTime()).toBe(date.getTime());
  });
});

describe('two-digit years (rfc850)', () => {
  const now = Date.UTC(2026, 0, 1);
  it('reads a year up to 50 years ahead as the future, later ones as the past century', () => {
    expect(parseHttpDate('Monday, 01-Jan-30 00:00:00 GMT', now)?.getUTCFullYear()).toBe(2030);
    expect(parseHttpDate('Monday, 01-Jan-76 00:00:00 GMT', now)?.getUTCFullYear()).toBe(2076);
    expect(parseHttpDate('Monday, 01-Jan-77 00:00:00 GMT', now)?.getUTCFullYear()).toBe(1977);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now)?.getUTCFullYear()).toBe(1994);
  });
});

describe('anything else is not an HTTP-date', () => {
  it.each([
    '',
    'yesterday',
    '1714564800',
    '2024-05-01T12:00:00Z',
    'Wed, 01 May 2024',
    'Wed, 01 May 2024 12:00:00',
    'Wed, 01 May 2024 12:00:00 UTC',
    'Wed, 01 May 2024 12:00:00 GMT junk',
    'wed, 01 May 2024 12:00:00 GMT',
    'Wed, 1 May 2024 12:00:00 GMT',
    'Wed, 01 may 2024 12:00:00 GMT',
    'Wed, 31 Feb 2024 12:00:00 GMT',
    'Wed, 00 May 2024 12:00:00 GMT',
    'Wed, 01 May 2024 24:00:00 GMT',
    'Wed, 01 May 2024 12:60:00 GMT',
    'Wed, 01 May 2024 12:00:00 GMT, Thu, 02 May 2024 12:00:00 GMT',
  ])('%j', (value) => {
    expect(parseHttpDate(value)).toBeUndefined();
  });

  it('undefined is undefined', () => {
    expect(parseHttpDate(undefined)).toBeUndefined();
  });
});

describe('resolution', () => {
  it('compares whole seconds, like the format', () => {
    expect(httpSeconds(new Date(NOV_6_1994 + 999))).toBe(httpSeconds(new Date(NOV_6_1994)));
  });

  it('reads a leap second as the last second of its minute', () => {
    expect(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT')?.getTime()).toBe(
      Date.UTC(2016, 11, 31, 23, 59, 59),
    );
  });
});
