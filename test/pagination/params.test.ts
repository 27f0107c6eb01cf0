import { describe, expect, it } from 'vitest';
import { formatInstant, instantOf, parseInstant } from '../../src/pagination/params.js';

describe('parseInstant (RFC 3339 §5.6 date-time)', () => {
  it.each([
    ['2026-01-31T09:30:00Z', '2026-01-31T09:30:00.000000Z'],
    ['2026-01-31t09:30:00z', '2026-01-31T09:30:00.000000Z'],
    ['2026-01-31T09:30:00.5Z', '2026-01-31T09:30:00.500000Z'],
    ['2026-01-31T09:30:00.123456Z', '2026-01-31T09:30:00.123456Z'],
    ['2026-01-31T09:30:00.123456000Z', '2026-01-31T09:30:00.123456Z'],
    ['2026-01-31T10:30:00+01:00', '2026-01-31T09:30:00.000000Z'],
    ['2026-01-31T00:15:00-09:45', '2026-01-31T10:00:00.000000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000000Z'],
    ['0099-12-31T23:59:59.999999Z', '0099-12-31T23:59:59.999999Z'],
    ['1969-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999Z'],
  ])('reads %s as %s', (input, iso) => {
    expect(parseInstant(input)?.iso).toBe(iso);
  });

  it.each([
    '2026-01-31',
    '2026-01-31 09:30:00Z',
    '2026-01-31T09:30Z',
    '2026-01-31T09:30:00',
    '2026-01-31T09:30:00+0100',
    '2026-13-01T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-31T24:00:00Z',
    '2026-01-31T23:60:00Z',
    '2026-01-31T23:59:60Z',
    '2026-01-31T00:00:00+24:00',
    '2026-01-31T00:00:00.1234567Z',
    '2026-01-31T00:00:00.Z',
    '+2026-01-31T00:00:00Z',
    '２０２６-01-31T00:00:00Z',
    '',
  ])('refuses %j', (input) => {
    expect(parseInstant(input)).toBeUndefined();
  });

  it('orders instants exactly, to the microsecond', () => {
    const a = parseInstant('2026-01-31T09:30:00.000001Z')?.micros as bigint;
    const b = parseInstant('2026-01-31T09:30:00.000002Z')?.micros as bigint;
    expect(b - a).toBe(1n);
    expect(formatInstant(a)).toBe('2026-01-31T09:30:00.000001Z');
    expect(formatInstant(-1n)).toBe('1969-12-31T23:59:59.999999Z');
  });

  it('reads rows written by PostgreSQL as text, by toISOString and as Dates', () => {
    const at = parseInstant('2026-01-31T09:30:00.000001Z')?.micros;
    expect(instantOf('2026-01-31 09:30:00.000001+00')).toBe(at);
    expect(instantOf('2026-01-31 10:30:00.000001+01')).toBe(at);
    expect(instantOf('2026-01-31 05:00:00.000001-04:30')).toBe(at);
    expect(instantOf(new Date('2026-01-31T09:30:00.000Z'))).toBe((at as bigint) - 1n);
    expect(instantOf(new Date(Number.NaN))).toBeUndefined();
    expect(instantOf(42)).toBeUndefined();
    expect(instantOf(null)).toBeUndefined();
  });
});
