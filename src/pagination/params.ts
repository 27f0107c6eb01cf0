/**
 * Query parameters of a list request, read strictly: each reader gives the
 * value or an issue, and the paginators gather every issue into one 400
 * problem, so a client fixes all of its parameters at once.
 *
 * @module
 */

import type { ValidationIssue } from '../core/errors.js';

/** Longest parameter value echoed back in an issue's detail. */
const ECHO_LIMIT = 40;

/** A parameter value for a detail message: quoted, cut short, control characters escaped. */
export function echo(value: string): string {
  const cut = value.length > ECHO_LIMIT ? `${value.slice(0, ECHO_LIMIT)}…` : value;
  return JSON.stringify(cut);
}

/** A query issue for `ValidationError`. */
export function queryIssue(name: string, detail: string): ValidationIssue {
  return { in: 'query', pointer: `/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`, detail };
}

/**
 * The one value of parameter `name`, `undefined` when absent; a repeated
 * parameter is an issue, since which copy the client meant is unknown.
 */
export function single(
  query: URLSearchParams,
  name: string,
  issues: ValidationIssue[],
): string | undefined {
  const all = query.getAll(name);
  if (all.length > 1) {
    issues.push(queryIssue(name, `Give ${name} once; it was given ${all.length} times.`));
    return undefined;
  }
  return all[0];
}

/** An integer in decimal digits from `min` to `max`, or an issue. */
export function readInteger(
  raw: string,
  name: string,
  min: number,
  max: number,
  issues: ValidationIssue[],
): number | undefined {
  // Digits only: `Number()` would take "1e3", " 20", "0x10" and "".
  const n = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    issues.push(
      queryIssue(name, `${name} must be an integer from ${min} to ${max}; got ${echo(raw)}.`),
    );
    return undefined;
  }
  return n;
}

/** One field of a parsed `sort` parameter. */
export interface SortTerm {
  field: string;
  direction: 'asc' | 'desc';
}

/**
 * A `sort` parameter: fields separated by commas, each descending when
 * prefixed by `-` (the JSON:API convention, `?sort=-createdAt,name`). Every
 * field must be in `allowed`, none may repeat, at most `maxFields`.
 */
export function readSort(
  raw: string,
  name: string,
  allowed: readonly string[],
  maxFields: number,
  issues: ValidationIssue[],
): SortTerm[] | undefined {
  const parts = raw.split(',');
  const before = issues.length;
  if (parts.length > maxFields) {
    issues.push(
      queryIssue(name, `${name} takes at most ${maxFields} fields; got ${parts.length}.`),
    );
    return undefined;
  }
  const terms: SortTerm[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const descending = part.startsWith('-');
    const field = descending ? part.slice(1) : part;
    if (field === '') {
      issues.push(
        queryIssue(name, `${name} has an empty field; write fields like -createdAt,name.`),
      );
      continue;
    }
    if (!allowed.includes(field)) {
      issues.push(
        queryIssue(
          name,
          `${name} cannot use ${echo(field)}; sortable fields: ${allowed.join(', ')}.`,
        ),
      );
      continue;
    }
    if (seen.has(field)) {
      issues.push(queryIssue(name, `${name} names ${field} twice.`));
      continue;
    }
    seen.add(field);
    terms.push({ field, direction: descending ? 'desc' : 'asc' });
  }
  return issues.length === before ? terms : undefined;
}

/** The canonical spelling of a sort, as cursors are bound to it. */
export function formatSort(terms: readonly SortTerm[]): string {
  return terms.map((t) => (t.direction === 'desc' ? `-${t.field}` : t.field)).join(',');
}

/** An instant read from RFC 3339, exact to the microsecond. */
export interface Instant {
  /** Microseconds since 1970-01-01T00:00:00Z. */
  micros: bigint;
  /** The instant in UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`: what PostgreSQL reads exactly. */
  iso: string;
}

// RFC 3339 §5.6 date-time: full-date "T" full-time, time-offset Z or ±hh:mm.
// "t" and "z" are allowed too (§5.6 note); a space for "T" is not (that is ISO 8601's, not RFC 3339's).
// time-secfrac is "." 1*DIGIT: any number of digits, those past the sixth zeros (see parseInstant).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 date-time as an exact instant, or `undefined` when it is not
 * one. Fractions finer than a microsecond must be zeros (PostgreSQL keeps
 * microseconds; rounding would move a half-open bound). A leap second (`:60`)
 * is refused: neither JavaScript nor PostgreSQL represents it.
 */
export function parseInstant(value: string): Instant | undefined {
  const m = RFC3339.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', , sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  // setUTCFullYear, not Date.UTC: Date.UTC maps the years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCDate() !== day) return undefined; // 30 February rolls into March
  date.setUTCHours(hour, minute, second, 0);
  if (frac.length > 6 && !/^0+$/.test(frac.slice(6))) return undefined;
  if (sign !== undefined && (Number(oh) > 23 || Number(om) > 59)) return undefined;
  const offsetMinutes =
    sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const micros =
    BigInt(date.getTime() - offsetMinutes * 60_000) * 1000n +
    BigInt(frac.padEnd(6, '0').slice(0, 6));
  return { micros, iso: formatInstant(micros) };
}

/** Microseconds since the epoch in UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function formatInstant(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const rest = micros - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  return `${iso.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/**
 * The instant of a row's value: a Date, or a string PostgreSQL or
 * `toISOString()` wrote (RFC 3339, or PostgreSQL's text form with a space
 * and a short offset). `undefined` for anything else.
 */
export function instantOf(value: unknown): bigint | undefined {
  if (value instanceof Date) {
    const t = value.getTime();
    return Number.isNaN(t) ? undefined : BigInt(t) * 1000n;
  }
  if (typeof value !== 'string') return undefined;
  // PostgreSQL's text output: "2026-01-02 03:04:05.123456+00" (offset hours only, or hh:mm).
  const normalised = value
    .replace(/^(\d{4}-\d{2}-\d{2}) /, '$1T')
    .replace(/([+-]\d{2})$/, '$1:00')
    .replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  // Before a zone adopted standard time, a session in it writes local mean
  // time, offset to the second ("1850-01-01 05:53:28+05:53:28" in Asia/Kolkata),
  // which RFC 3339 cannot: read the offset's seconds apart.
  const lmt = /([+-]\d{2}:\d{2}):([0-5]\d)$/.exec(normalised);
  if (lmt !== null) {
    const [, offset, seconds] = lmt as unknown as [string, string, string];
    const at = parseInstant(`${normalised.slice(0, lmt.index)}${offset}`)?.micros;
    const sign = offset.startsWith('-') ? -1n : 1n;
    return at === undefined ? undefined : at - sign * BigInt(seconds) * 1_000_000n;
  }
  return parseInstant(normalised)?.micros;
}
