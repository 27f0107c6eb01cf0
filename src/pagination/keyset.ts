/**
 * Keyset (seek) pagination: the core, with no HTTP and no cursor encoding.
 *
 * A position is a plain array of the sort columns' values (the unique
 * tie-breaker last). The same request gives the same page from PostgreSQL
 * (`keysetSql` + `keysetPage`) and from an in-memory array (`keysetArray`):
 * NULLs, duplicate sort values and mixed directions included.
 *
 * Why a unique tie-breaker is required: with a non-unique sort key, rows that
 * tie on it have no defined order, so a page boundary inside a run of ties
 * skips or repeats rows. Appending a unique column makes the order total.
 *
 * Positions must carry values exactly. `pg` parses `timestamptz` and
 * `timestamp` into a Date, which keeps milliseconds only, so a position taken
 * from one breaks ties inside a millisecond (rows skipped or repeated): read
 * such columns as text, with a `types` parser returning strings for OIDs 1184
 * and 1114 on the query; PostgreSQL then compares the text placeholder as a
 * timestamp, exactly. `int8` arrives as a string: declare `type: 'bigint'`.
 *
 * @example With plain `pg` (the caller's own filter takes $1, so `paramOffset: 1`):
 * ```ts
 * const sort = keysetSort([{ column: 'created_at', direction: 'desc' }], { unique: 'id' });
 * const request = { after: position, limit: 20 };
 * const q = keysetSql(sort, { ...request, paramOffset: 1 });
 * const { rows } = await pool.query(
 *   `SELECT * FROM users WHERE tenant_id = $1 AND ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
 *   [tenantId, ...q.params],
 * );
 * const page = keysetPage(rows, sort, request); // { items, hasNext, hasPrev, next, prev }
 * ```
 *
 * @example With kysely's `sql` raw fragments (kysely numbers the parameters
 * itself, so build the fragment from `q.params` with `sql.raw` for the
 * trusted, validated identifiers and `sql` placeholders for the values):
 * ```ts
 * const q = keysetSql(sort, request);
 * // Replace each $n of q.where by the matching value as a kysely parameter.
 * const parts = q.where.split(/\$(\d+)/);
 * const where = sql.join(
 *   parts.map((p, i) => (i % 2 === 0 ? sql.raw(p) : sql`${q.params[Number(p) - 1]}`)),
 *   sql.raw(''),
 * );
 * const rows = await db
 *   .selectFrom('users')
 *   .selectAll()
 *   .where(where)
 *   .orderBy(sql.raw(q.orderBy))
 *   .limit(q.limit)
 *   .execute();
 * const page = keysetPage(rows, sort, request);
 * ```
 *
 * @module
 */

import { checkOptions } from '../core/errors.js';
import { instantOf } from './params.js';

/** The direction of one sort column. */
export type SortDirection = 'asc' | 'desc';

/** Where NULLs sort in one column. */
export type NullsOrder = 'first' | 'last';

/** One column of a sort, as the caller writes it. */
export interface SortColumn {
  /**
   * The SQL column, `name` or `table.name`: letters, digits and `_`, not
   * starting with a digit. It is interpolated into the SQL unquoted (so
   * PostgreSQL folds it to lower case), which is why it is validated; values
   * are always bind parameters.
   */
  column: string;
  /** Default `'asc'`. */
  direction?: SortDirection;
  /**
   * Where NULLs go. Default PostgreSQL's: `'last'` for `asc`, `'first'` for
   * `desc`. Only meaningful with `nullable: true`.
   */
  nulls?: NullsOrder;
  /**
   * Whether the column can hold NULL. Default `false`, which lets `keysetSql`
   * use a row-value comparison (index-friendly); a NULL in a position or in a
   * row for a column not declared nullable throws a TypeError rather than
   * silently dropping rows.
   */
  nullable?: boolean;
  /** The property of a row that holds this column. Default: `column` after its last `.`. */
  key?: string;
  /**
   * How `keysetArray` compares values. Default `'auto'`: numbers and bigints
   * numerically, strings by code point (PostgreSQL's `COLLATE "C"`: use that
   * collation on the column for the array and SQL orders to agree), Dates by
   * time, booleans false before true; a value of any other kind (a plain
   * object, a cursor's `{ $ts }`) in a position or a row throws a TypeError.
   * `'bigint'`: integers given as strings, numbers or bigints (`pg` returns
   * int8 as strings) compared exactly; any other value in a position or a row
   * throws a TypeError.
   * `'timestamp'`: instants given as Dates, RFC 3339 strings or PostgreSQL's
   * text form, compared as instants to the microsecond, whatever their
   * offsets (`2026-01-01T01:00:00+01:00` equals `2026-01-01T00:00:00Z`), as a
   * `timestamptz` column orders them; anything else throws a TypeError.
   */
  type?: 'auto' | 'bigint' | 'timestamp';
}

/** One resolved column of a `KeysetSort`: every default applied. */
export interface ResolvedSortColumn {
  readonly column: string;
  readonly direction: SortDirection;
  readonly nulls: NullsOrder;
  readonly nullable: boolean;
  readonly key: string;
  readonly type: 'auto' | 'bigint' | 'timestamp';
}

/** A validated sort whose last column is unique: build it with `keysetSort`. */
export interface KeysetSort {
  readonly columns: readonly ResolvedSortColumn[];
}

/** Options of `keysetSort`. */
export interface KeysetSortOptions {
  /**
   * The unique, NOT NULL tie-breaker (required): a column name, or a column
   * description. Appended when it is not already the last column. Its
   * direction defaults to the last column's direction, so that a sort whose
   * columns agree keeps the row-value comparison.
   */
  unique: string | Omit<SortColumn, 'nullable' | 'nulls'>;
}

/** A page request: at most one of `after`, `before` and `last`. */
export interface KeysetRequest {
  /** The rows strictly after this position (the `next` of the previous page). */
  after?: readonly unknown[];
  /** The rows strictly before this position (the `prev` of the following page). */
  before?: readonly unknown[];
  /** The last page of the whole order (walking backward from the end). Default `false`. */
  last?: boolean;
  /** The page size: an integer from 1. */
  limit: number;
}

/** Options of `keysetSql`: a request plus the parameter numbering. */
export interface KeysetSqlRequest extends KeysetRequest {
  /**
   * How many parameters the caller's own query uses before these: the first
   * placeholder is `$(paramOffset + 1)`. Default `0`.
   */
  paramOffset?: number;
}

/** What `keysetSql` builds, to put into `WHERE ... ORDER BY ... LIMIT ...`. */
export interface KeysetQuery {
  /** A boolean SQL expression (`TRUE` without a position), to AND with the caller's filter. */
  where: string;
  /** The ORDER BY list, reversed for a backward request. */
  orderBy: string;
  /** `limit + 1`: the extra row tells whether another page exists. */
  limit: number;
  /** The values for the placeholders in `where`, in order. */
  params: unknown[];
}

/** One page, always in the sort's order. */
export interface KeysetPageResult<Row> {
  items: Row[];
  /** Whether rows exist after this page. */
  hasNext: boolean;
  /** Whether rows exist before this page. */
  hasPrev: boolean;
  /** The `after` position of the next page, when `hasNext` and the page is not empty. */
  next: unknown[] | undefined;
  /** The `before` position of the previous page, when `hasPrev` and the page is not empty. */
  prev: unknown[] | undefined;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const KNOWN_COLUMN = ['column', 'direction', 'nulls', 'nullable', 'key', 'type'];

function fail(message: string): never {
  throw new TypeError(`restwell/pagination: ${message}`);
}

function resolveColumn(input: SortColumn, where: string, unique: boolean): ResolvedSortColumn {
  if (input === null || typeof input !== 'object') fail(`${where} must be an object.`);
  for (const name of Object.keys(input)) {
    if (!KNOWN_COLUMN.includes(name)) fail(`${where} has an unknown option "${name}".`);
  }
  const { column } = input;
  if (typeof column !== 'string' || !IDENTIFIER.test(column)) {
    fail(`${where}.column must be an SQL identifier (name or table.name of letters, digits, _).`);
  }
  const direction = input.direction ?? 'asc';
  if (direction !== 'asc' && direction !== 'desc') fail(`${where}.direction must be asc or desc.`);
  const nulls = input.nulls ?? (direction === 'asc' ? 'last' : 'first');
  if (nulls !== 'first' && nulls !== 'last') fail(`${where}.nulls must be first or last.`);
  const nullable = input.nullable ?? false;
  if (typeof nullable !== 'boolean') fail(`${where}.nullable must be a boolean.`);
  if (unique && nullable) fail(`${where}: the unique column must be NOT NULL.`);
  const key = input.key ?? column.slice(column.lastIndexOf('.') + 1);
  if (typeof key !== 'string' || key === '') fail(`${where}.key must be a non-empty string.`);
  const type = input.type ?? 'auto';
  if (type !== 'auto' && type !== 'bigint' && type !== 'timestamp')
    fail(`${where}.type must be auto, bigint or timestamp.`);
  return Object.freeze({ column, direction, nulls, nullable, key, type });
}

/**
 * Validates a sort and appends the unique tie-breaker (`options.unique`) when
 * it is not already the last column. Throws a TypeError naming the bad column
 * or option.
 */
export function keysetSort(columns: readonly SortColumn[], options: KeysetSortOptions): KeysetSort {
  if (!Array.isArray(columns)) fail('the sort must be an array of columns.');
  checkOptions('pagination', options, ['unique']);
  if (options === null || typeof options !== 'object' || options.unique === undefined) {
    fail('option "unique" is required: a unique, NOT NULL tie-breaker column such as "id".');
  }
  const resolved = columns.map((c, i) => resolveColumn(c, `sort[${i}]`, false));
  const u = typeof options.unique === 'string' ? { column: options.unique } : options.unique;
  const lastDirection = resolved[resolved.length - 1]?.direction ?? 'asc';
  const unique = resolveColumn({ direction: lastDirection, ...u }, 'option "unique"', true);
  const seen = new Set<string>();
  for (const c of resolved) {
    if (seen.has(c.column)) fail(`column "${c.column}" appears twice in the sort.`);
    seen.add(c.column);
  }
  const tail = resolved[resolved.length - 1];
  if (tail?.column === unique.column) {
    if (tail.nullable) fail('the unique column must be NOT NULL.');
  } else {
    if (seen.has(unique.column)) fail(`the unique column "${unique.column}" must be last.`);
    resolved.push(unique);
  }
  return Object.freeze({ columns: Object.freeze(resolved) });
}

function reversed(sort: KeysetSort): ResolvedSortColumn[] {
  return sort.columns.map((c) => ({
    ...c,
    direction: c.direction === 'asc' ? 'desc' : 'asc',
    nulls: c.nulls === 'first' ? 'last' : 'first',
  }));
}

function checkRequest(sort: KeysetSort, request: KeysetRequest): void {
  if (request === null || typeof request !== 'object') fail('the request must be an object.');
  const { limit } = request;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    fail('"limit" must be an integer from 1.');
  }
  const given = [request.after, request.before].filter((p) => p !== undefined).length;
  if (given + (request.last ? 1 : 0) > 1) fail('give at most one of "after", "before" and "last".');
  const position = request.after ?? request.before;
  if (position !== undefined) checkPosition(sort, position);
}

const INTEGER_TEXT = /^-?\d{1,1000}$/;

/**
 * Whether a value of a `type: 'bigint'` column is an integer: a bigint, a safe
 * integer, or its decimal text. Anything else would make `BigInt()` throw a
 * SyntaxError or RangeError (or read `''` and `true` as numbers) in
 * `keysetArray`, and PostgreSQL fail the query with 22P02.
 */
function isInteger(v: unknown): boolean {
  return (
    typeof v === 'bigint' ||
    (typeof v === 'number' && Number.isSafeInteger(v)) ||
    (typeof v === 'string' && INTEGER_TEXT.test(v))
  );
}

/**
 * Whether a value of a `type: 'auto'` column is one `compareValues` orders
 * (and `pg` sends as a scalar): any other object, such as a cursor's
 * `{ $ts }` or a plain object, would be compared as `[object Object]` by the
 * array side and sent as JSON text to PostgreSQL, which rejects it.
 */
function isScalar(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return true;
    default:
      return v instanceof Date && !Number.isNaN(v.getTime());
  }
}

const EXPECTED_VALUE = {
  auto: 'a string, number, bigint, boolean or valid Date',
  bigint: "an integer (type: 'bigint')",
  timestamp:
    "an instant: a valid Date, an RFC 3339 string or PostgreSQL's text form (type: 'timestamp')",
} as const;

function checkValue(c: ResolvedSortColumn, v: unknown, what: string): void {
  if (v === null) return;
  const ok =
    c.type === 'bigint'
      ? isInteger(v)
      : c.type === 'timestamp'
        ? instantOf(v) !== undefined
        : isScalar(v);
  if (!ok) fail(`${what} for "${c.column}" must be ${EXPECTED_VALUE[c.type]}.`);
}

function checkPosition(sort: KeysetSort, position: readonly unknown[]): void {
  if (!Array.isArray(position) || position.length !== sort.columns.length) {
    fail(`a position must be an array of ${sort.columns.length} values.`);
  }
  sort.columns.forEach((c, i) => {
    const v = position[i];
    if (v === undefined || (v === null && !c.nullable)) {
      fail(`the position's value for "${c.column}" is missing (declare nullable: true for NULLs).`);
    }
    checkValue(c, v, "the position's value");
  });
}

function orderBy(columns: readonly ResolvedSortColumn[]): string {
  return columns
    .map((c) => {
      const nulls = c.nullable ? ` NULLS ${c.nulls === 'first' ? 'FIRST' : 'LAST'}` : '';
      return `${c.column} ${c.direction === 'asc' ? 'ASC' : 'DESC'}${nulls}`;
    })
    .join(', ');
}

/**
 * Builds the parameterized WHERE, ORDER BY and LIMIT of one page for
 * PostgreSQL. Run the query, then give its rows (in the order returned) to
 * `keysetPage` with the same sort and request.
 *
 * The WHERE is a row-value comparison `(a, b) > ($1, $2)` when every column
 * has the same direction and none is nullable, so that a matching composite
 * index is used; otherwise the expanded form
 * `a > $1 OR (a = $1 AND b > $2) ...`, where a nullable column's terms use
 * `IS NULL` / `IS NOT NULL` as its NULLS FIRST/LAST order requires. A backward
 * request (`before`, `last`) reverses the ORDER BY; `keysetPage` reverses the
 * rows back.
 */
export function keysetSql(sort: KeysetSort, request: KeysetSqlRequest): KeysetQuery {
  checkRequest(sort, request);
  const offset = request.paramOffset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) fail('"paramOffset" must be an integer from 0.');
  const backward = request.before !== undefined || request.last === true;
  const columns = backward ? reversed(sort) : [...sort.columns];
  const position = request.after ?? request.before;
  const query: KeysetQuery = {
    where: 'TRUE',
    orderBy: orderBy(columns),
    limit: request.limit + 1,
    params: [],
  };
  if (position === undefined) return query;

  // One placeholder per non-NULL value, reused wherever the value appears.
  const ref: string[] = [];
  columns.forEach((_, i) => {
    const v = position[i];
    if (v !== null) {
      query.params.push(v);
      ref[i] = `$${offset + query.params.length}`;
    }
  });

  const first = columns[0] as ResolvedSortColumn;
  if (columns.every((c) => c.direction === first.direction && !c.nullable)) {
    const op = first.direction === 'asc' ? '>' : '<';
    if (columns.length === 1) query.where = `${first.column} ${op} ${ref[0]}`;
    else query.where = `(${columns.map((c) => c.column).join(', ')}) ${op} (${ref.join(', ')})`;
    return query;
  }

  // c strictly after the position's value in this column's order, or null
  // when nothing can be (the value is NULL and NULLs come last).
  const after = (c: ResolvedSortColumn, i: number): string | null => {
    const op = c.direction === 'asc' ? '>' : '<';
    if (position[i] === null) return c.nulls === 'first' ? `${c.column} IS NOT NULL` : null;
    if (c.nullable && c.nulls === 'last')
      return `(${c.column} ${op} ${ref[i]} OR ${c.column} IS NULL)`;
    return `${c.column} ${op} ${ref[i]}`;
  };
  const equal = (c: ResolvedSortColumn, i: number): string =>
    position[i] === null ? `${c.column} IS NULL` : `${c.column} = ${ref[i]}`;

  const terms: string[] = [];
  columns.forEach((c, i) => {
    const gt = after(c, i);
    if (gt === null) return;
    const prefix = columns.slice(0, i).map(equal);
    terms.push(prefix.length === 0 ? gt : `(${[...prefix, gt].join(' AND ')})`);
  });
  query.where =
    terms.length === 0
      ? 'FALSE'
      : terms.length === 1
        ? (terms[0] as string)
        : `(${terms.join(' OR ')})`;
  return query;
}

/** The position of a row: its values of the sort's columns, the unique one last. */
export function keysetPosition(sort: KeysetSort, row: object): unknown[] {
  return sort.columns.map((c) => {
    const v = (row as Record<string, unknown>)[c.key];
    if (v === undefined || (v === null && !c.nullable)) {
      fail(`a row has no value for "${c.key}" (declare nullable: true for NULLs).`);
    }
    checkValue(c, v, "a row's value");
    return v;
  });
}

/**
 * Turns the rows of a `keysetSql` query (up to `limit + 1`, in the order the
 * query returned them) into a page in the sort's order: trims the extra row,
 * reverses a backward page, and sets `hasNext` / `hasPrev` exactly from the
 * extra row (in the direction of travel) and from the request's position (on
 * the other side: a position means rows were there). `next` and `prev` are
 * the positions of the last and first items, set only when `hasNext` /
 * `hasPrev` and the page is not empty (on an empty page past either end, link
 * to the first or last page instead).
 */
export function keysetPage<Row extends object>(
  rows: readonly Row[],
  sort: KeysetSort,
  request: KeysetRequest,
): KeysetPageResult<Row> {
  checkRequest(sort, request);
  const backward = request.before !== undefined || request.last === true;
  const more = rows.length > request.limit;
  const items = rows.slice(0, request.limit);
  if (backward) items.reverse();
  const hasNext = backward ? request.before !== undefined : more;
  const hasPrev = backward ? more : request.after !== undefined;
  const head = items[0];
  const tail = items[items.length - 1];
  return {
    items,
    hasNext,
    hasPrev,
    next: hasNext && tail !== undefined ? keysetPosition(sort, tail) : undefined,
    prev: hasPrev && head !== undefined ? keysetPosition(sort, head) : undefined,
  };
}

function codePointCompare(a: string, b: string): number {
  // UTF-16 code-unit order differs from code-point (UTF-8 byte, COLLATE "C")
  // order only past a surrogate, so compare code points from the first difference.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const cx = a.codePointAt(i) as number;
      const cy = b.codePointAt(i) as number;
      return cx < cy ? -1 : cx > cy ? 1 : 0;
    }
  }
  return a.length - b.length;
}

function compareValues(c: ResolvedSortColumn, a: unknown, b: unknown): number {
  if (a === null || b === null) {
    if (a === b) return 0;
    // NULL placement is absolute: it does not flip with the direction.
    return (a === null) === (c.nulls === 'first') ? -1 : 1;
  }
  let r: number;
  if (c.type === 'bigint') {
    const x = BigInt(a as string | number | bigint);
    const y = BigInt(b as string | number | bigint);
    r = x < y ? -1 : x > y ? 1 : 0;
  } else if (c.type === 'timestamp') {
    // Checked instants (checkValue): exact microseconds, offsets applied.
    const x = instantOf(a) as bigint;
    const y = instantOf(b) as bigint;
    r = x < y ? -1 : x > y ? 1 : 0;
  } else if (typeof a === 'string' && typeof b === 'string') {
    r = codePointCompare(a, b);
  } else if (a instanceof Date && b instanceof Date) {
    r = a.getTime() - b.getTime();
  } else {
    const x = a as number;
    const y = b as number;
    r = x < y ? -1 : x > y ? 1 : 0;
  }
  return c.direction === 'asc' ? r : -r;
}

/**
 * Compares two positions in the sort's order, NULLs placed exactly as the
 * SQL's ORDER BY places them: negative when `a` comes first, 0 when equal.
 */
export function keysetCompare(
  sort: KeysetSort,
  a: readonly unknown[],
  b: readonly unknown[],
): number {
  for (let i = 0; i < sort.columns.length; i++) {
    const r = compareValues(sort.columns[i] as ResolvedSortColumn, a[i], b[i]);
    if (r !== 0) return r < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * The page `keysetSql` + `keysetPage` would give, over an in-memory array
 * (the memory store, tests): the same rows, order, `hasNext`, `hasPrev`,
 * `next` and `prev`. O(N log N) per call: it sorts a copy of `rows`.
 */
export function keysetArray<Row extends object>(
  rows: readonly Row[],
  sort: KeysetSort,
  request: KeysetRequest,
): KeysetPageResult<Row> {
  checkRequest(sort, request);
  const keyed = rows.map((row) => ({ row, at: keysetPosition(sort, row) }));
  keyed.sort((x, y) => keysetCompare(sort, x.at, y.at));
  let travel = keyed;
  if (request.after !== undefined) {
    const p = request.after;
    travel = keyed.filter((k) => keysetCompare(sort, k.at, p) > 0);
  } else if (request.before !== undefined) {
    const p = request.before;
    travel = keyed.filter((k) => keysetCompare(sort, k.at, p) < 0).reverse();
  } else if (request.last === true) {
    travel = keyed.reverse();
  }
  return keysetPage(
    travel.slice(0, request.limit + 1).map((k) => k.row),
    sort,
    request,
  );
}
