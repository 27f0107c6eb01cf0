/**
 * HTTP-date (RFC 9110 §5.6.7). Recipients must accept all three formats; senders
 * generate only IMF-fixdate.
 *
 * ```
 * IMF-fixdate  = day-name "," SP date1 SP time-of-day SP GMT   ; Sun, 06 Nov 1994 08:49:37 GMT
 * rfc850-date  = day-name-l "," SP date2 SP time-of-day SP GMT ; Sunday, 06-Nov-94 08:49:37 GMT
 * asctime-date = day-name SP date3 SP time-of-day SP year      ; Sun Nov  6 08:49:37 1994
 * ```
 *
 * Anything else (an ISO date, a number, `Sun, 06 Nov 1994`, trailing garbage) is
 * not an HTTP-date, and a conditional header carrying one is ignored (§13.1.3,
 * §13.1.4), never an error.
 */

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_L = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850 = new RegExp(`^${DAY_L}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

function build(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): Date | undefined {
  // time-of-day allows a leap second (60); a Date cannot hold one, so it is the last second of the minute.
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  const date = new Date(ms);
  // Reject dates that Date.UTC would roll over (31 Feb, day 00).
  if (date.getUTCDate() !== day || date.getUTCMonth() !== month) return undefined;
  // Date.UTC maps years 0-99 to 1900-1999; HTTP-dates carry full years (or a resolved rfc850 one).
  if (date.getUTCFullYear() !== year) date.setUTCFullYear(year);
  return date;
}

/**
 * Parses an HTTP-date. `undefined` when the value is not one of the three
 * formats. `now` resolves the two-digit year of an rfc850-date.
 */
export function parseHttpDate(
  value: string | undefined,
  now: number = Date.now(),
): Date | undefined {
  if (value === undefined || value.length < 24 || value.length > 40) return undefined;
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m !== null) {
    return build(
      Number(m[3]),
      MONTHS[m[2]!]!,
      Number(m[1]),
      Number(m[4]),
      Number(m[5]),
      Number(m[6]),
    );
  }
  m = ASCTIME.exec(v);
  if (m !== null) {
    return build(
      Number(m[6]),
      MONTHS[m[1]!]!,
      Number(m[2]!.trim()),
      Number(m[3]),
      Number(m[4]),
      Number(m[5]),
    );
  }
  m = RFC850.exec(v);
  if (m !== null) {
    // §5.6.7: a two-digit year more than 50 years in the future is the most
    // recent past year with the same last two digits.
    const thisYear = new Date(now).getUTCFullYear();
    const yy = Number(m[3]);
    let year = Math.floor(thisYear / 100) * 100 + yy;
    if (year > thisYear + 50) year -= 100;
    else if (year <= thisYear - 50) year += 100;
    return build(year, MONTHS[m[2]!]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  return undefined;
}

/** Formats a date as IMF-fixdate, the only format senders generate. */
export function formatHttpDate(date: Date): string {
  return date.toUTCString();
}

/**
 * Seconds since the epoch, the resolution of an HTTP-date: a `Last-Modified`
 * of 12:00:00.750 and an `If-Modified-Since` of 12:00:00 are the same second.
 */
export function httpSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
