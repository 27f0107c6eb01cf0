/**
 * `keysetPagination()`: cursor pages over HTTP. Reads `limit`, `sort`,
 * `cursor` (and `since`/`until` for a time window) from the query, refuses
 * every bad one in one 400 problem, turns a cursor back into a keyset
 * position, and writes the page: `Link` header, body links and cursors.
 *
 * @module
 */

import type { Context, Middleware, Next } from '../core/context.js';
import { responseBlind } from '../core/context.js';
import {
  checkOptions,
  invalidOption,
  ValidationError,
  type ValidationIssue,
} from '../core/errors.js';
import type { CursorCodec, CursorValue } from './cursor.js';
import { InvalidCursorError } from './errors.js';
import {
  type KeysetPageResult,
  type KeysetQuery,
  type KeysetSort,
  type KeysetSortOptions,
  keysetArray,
  keysetPage,
  keysetSort,
  keysetSql,
  type SortColumn,
} from './keyset.js';
import {
  checkBaseUrl,
  linkPath,
  type PageLinks,
  pageHref,
  withParams,
  writeLinkHeader,
} from './links.js';
import {
  formatSort,
  type Instant,
  instantOf,
  parseInstant,
  queryIssue,
  readInteger,
  readSort,
  type SortTerm,
  single,
} from './params.js';

/** The shape `offsetPagination()` keeps on `ctx.state.page` (see offset-pages.ts). */
export interface OffsetPageRequestShape {
  readonly kind: 'offset';
  readonly offset: number;
  readonly limit: number;
  readonly total: boolean;
}

/** A field clients may sort by: its column, everything of a `SortColumn` but the direction. */
export type SortableField = Omit<SortColumn, 'direction'>;

/** Names of the query parameters a keyset paginator reads. */
export interface KeysetParamNames {
  /** @default 'cursor' */
  cursor?: string;
  /** @default 'limit' */
  limit?: string;
  /** @default 'sort' */
  sort?: string;
  /** @default 'since' */
  since?: string;
  /** @default 'until' */
  until?: string;
  /** @default 'total' */
  total?: string;
}

/** Options of {@link keysetPagination}. */
export interface KeysetPaginationOptions {
  /** The codec cursors are sealed with (`createCursorCodec()`). Required. */
  cursors: CursorCodec;
  /**
   * The fields clients may sort by, by the name they use in `?sort=`, each
   * with its column. A field not listed is refused (400). Required.
   */
  sortable: Readonly<Record<string, SortableField>>;
  /** The unique, NOT NULL tie-breaker appended to every sort (see `keysetSort`). Required. */
  unique: KeysetSortOptions['unique'];
  /** The sort when the client gives none, in `?sort=` syntax, e.g. `-createdAt`. Required. */
  defaultSort: string;
  /** Most fields in one `?sort=`. @default 3 */
  maxSortFields?: number;
  /** `limit` when the client gives none. @default 20 */
  defaultLimit?: number;
  /** The largest `limit` a client may ask for. @default 100 */
  maxLimit?: number;
  /**
   * The query parameters that filter the list (`status`, `userId`): a cursor
   * is bound to their values, so one made for `status=open` is refused for
   * `status=closed`. Parameters not named here are neither bound nor read.
   * @default []
   */
  filters?: readonly string[];
  /**
   * A time window over one sortable field holding instants (a `timestamptz`
   * column, or RFC 3339 strings in an array): `?since=` includes its instant,
   * `?until=` excludes its own (half-open, `[since, until)`), both RFC 3339
   * date-times; ties at one instant are paged by the cursor like any other.
   * @default undefined (no window)
   */
  window?: { field: string };
  /**
   * Let clients ask for the total count with `?total=true`. Counting is
   * O(N) (a `count(*)` scans every matching row), which is why it is off by
   * default and only computed when asked: see `KeysetPageRequest.total`.
   * @default false
   */
  total?: boolean;
  /**
   * Write absolute links under this base (`https://api.example.com`, or with
   * a path prefix). Unset, links are relative to the request's path, which
   * RFC 8288 §3.2 resolves against the request's URL.
   * @default undefined (relative links)
   */
  baseUrl?: string;
  /** Names of the query parameters. @default cursor, limit, sort, since, until, total */
  params?: KeysetParamNames;
}

/** The page a client asked for, read from the query: what to give `sql()` or `array()`. */
export interface KeysetPageRequest {
  readonly kind: 'keyset';
  /** The resolved sort, tie-breaker last. */
  readonly sort: KeysetSort;
  /** The sort in its canonical `?sort=` spelling, e.g. `-createdAt,name`. */
  readonly sortParam: string;
  readonly limit: number;
  /** Rows strictly after this position (from a `next` cursor). */
  readonly after?: readonly unknown[];
  /** Rows strictly before this position (from a `prev` cursor). */
  readonly before?: readonly unknown[];
  /** The last page of the order (from a `last` cursor). */
  readonly last?: boolean;
  /** The time window, when configured and given: `since` included, `until` excluded. */
  readonly since?: Instant;
  readonly until?: Instant;
  /** Whether the client asked for the total count (only with the `total` option). */
  readonly total: boolean;
  /** The filter parameters' values as the cursor binds them. */
  readonly filters: Readonly<Record<string, readonly string[]>>;
}

/** What `respond()` returns: the body of a page. */
export interface KeysetPageBody<Row> {
  data: Row[];
  pagination: {
    limit: number;
    hasNext: boolean;
    hasPrev: boolean;
    /** The `cursor` of the next page, `null` on the last. */
    nextCursor: string | null;
    /** The `cursor` of the previous page, `null` on the first. */
    prevCursor: string | null;
    /** The total count, when the handler gave one. */
    total?: number;
  };
  links: PageLinks;
}

/** A keyset paginator: a middleware, and the functions a handler calls. */
export interface KeysetPaginator extends Middleware {
  /**
   * The page the request asks for. The middleware reads it once and keeps it
   * on `ctx.state.page`; called without the middleware, reads it now. Throws
   * `ValidationError` (400, every bad parameter) or `InvalidCursorError`.
   */
  request(ctx: Context): KeysetPageRequest;
  /**
   * The SQL for the page, to AND into the caller's WHERE: the keyset
   * condition and the time window, `ORDER BY` and `LIMIT` (limit + 1).
   * Values are bind parameters numbered from `$(paramOffset + 1)`.
   */
  sql(request: KeysetPageRequest, paramOffset?: number): KeysetQuery;
  /** The page from the rows `sql()` selected, in the order they came. */
  result<Row extends object>(
    rows: readonly Row[],
    request: KeysetPageRequest,
  ): KeysetPageResult<Row>;
  /** The same page over a whole in-memory array: window, sort and position applied. */
  array<Row extends object>(
    rows: readonly Row[],
    request: KeysetPageRequest,
  ): KeysetPageResult<Row>;
  /** The page's links and cursors, with the `Link` header written. */
  links(
    ctx: Context,
    result: KeysetPageResult<object>,
  ): { links: PageLinks; nextCursor: string | null; prevCursor: string | null };
  /**
   * Writes the `Link` header and gives the body:
   * `{ data, pagination: { limit, hasNext, hasPrev, nextCursor, prevCursor, total? }, links }`.
   */
  respond<Row extends object>(
    ctx: Context,
    result: KeysetPageResult<Row>,
    extra?: { total?: number },
  ): KeysetPageBody<Row>;
}

const KNOWN = [
  'cursors',
  'sortable',
  'unique',
  'defaultSort',
  'maxSortFields',
  'defaultLimit',
  'maxLimit',
  'filters',
  'window',
  'total',
  'baseUrl',
  'params',
];

/** The first payload value of a cursor: where the page lies from its position. */
const AFTER = 'a';
const BEFORE = 'b';
const LAST = 'l';

/**
 * The window's bounds PostgreSQL reads in `Instant.iso` form: years 0001 to
 * 9999 in UTC. RFC 3339 allows year 0000, and an offset can move 0001 or 9999
 * past either end, which `timestamptz` refuses (22008) or cannot parse.
 */
const FIRST_BOUND = (parseInstant('0001-01-01T00:00:00Z') as Instant).micros;
const LAST_BOUND = (parseInstant('9999-12-31T23:59:59.999999Z') as Instant).micros;

/** Most distinct sorts kept resolved; clients choose sorts, so the cache is bounded. */
const SORT_CACHE_LIMIT = 256;

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalidOption('pagination', name, 'an integer from 1', value);
  }
  return value;
}

function paramName(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') {
    invalidOption('pagination', `params.${name}`, 'a non-empty string', value);
  }
  return value;
}

/**
 * Cursor pagination over HTTP, on top of the keyset core and a cursor codec.
 *
 * @example Express, over PostgreSQL:
 * ```ts
 * const userPages = keysetPagination({
 *   cursors,
 *   sortable: { createdAt: { column: 'created_at' }, name: { column: 'name' } },
 *   unique: 'id',
 *   defaultSort: '-createdAt',
 * });
 * app.get('/v1/users', rw(userPages), async (req, res) => {
 *   const ctx = contextOf(req);
 *   const page = userPages.request(ctx);
 *   const q = userPages.sql(page);
 *   const { rows } = await pool.query(
 *     `SELECT * FROM users WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
 *     q.params,
 *   );
 *   res.json(userPages.respond(ctx, userPages.result(rows, page)));
 * });
 * ```
 */
export function keysetPagination(options: KeysetPaginationOptions): KeysetPaginator {
  checkOptions('pagination', options, KNOWN);
  if (options === undefined) invalidOption('pagination', 'options', 'an object', options);
  const { cursors } = options;
  if (
    cursors === null ||
    typeof cursors !== 'object' ||
    typeof cursors.encode !== 'function' ||
    typeof cursors.decode !== 'function'
  ) {
    invalidOption('pagination', 'cursors', 'a cursor codec from createCursorCodec()', cursors);
  }
  const sortable = options.sortable;
  if (sortable === null || typeof sortable !== 'object' || Object.keys(sortable).length === 0) {
    invalidOption('pagination', 'sortable', 'an object naming at least one field', sortable);
  }
  const fieldNames = Object.keys(sortable);
  for (const name of fieldNames) {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
      invalidOption('pagination', `sortable`, 'field names of letters, digits, _ and .', name);
    }
  }
  const maxSortFields = positiveInteger('maxSortFields', options.maxSortFields, 3);
  const defaultLimit = positiveInteger('defaultLimit', options.defaultLimit, 20);
  const maxLimit = positiveInteger('maxLimit', options.maxLimit, 100);
  if (defaultLimit > maxLimit) {
    invalidOption('pagination', 'defaultLimit', `at most maxLimit (${maxLimit})`, defaultLimit);
  }
  const filters = options.filters ?? [];
  if (!Array.isArray(filters) || filters.some((f) => typeof f !== 'string' || f === '')) {
    invalidOption('pagination', 'filters', 'an array of query parameter names', filters);
  }
  const names = options.params ?? {};
  checkOptions('pagination', names, ['cursor', 'limit', 'sort', 'since', 'until', 'total']);
  const P = {
    cursor: paramName(names.cursor, 'cursor', 'cursor'),
    limit: paramName(names.limit, 'limit', 'limit'),
    sort: paramName(names.sort, 'sort', 'sort'),
    since: paramName(names.since, 'since', 'since'),
    until: paramName(names.until, 'until', 'until'),
    total: paramName(names.total, 'total', 'total'),
  };
  const own = new Set(Object.values(P));
  if (own.size !== Object.keys(P).length) {
    invalidOption('pagination', 'params', 'distinct names', Object.values(P).join(', '));
  }
  for (const f of filters) {
    if (own.has(f))
      invalidOption('pagination', 'filters', `names other than ${[...own].join(', ')}`, f);
  }
  const totalAllowed = options.total ?? false;
  if (typeof totalAllowed !== 'boolean')
    invalidOption('pagination', 'total', 'a boolean', totalAllowed);
  const baseUrl = checkBaseUrl('pagination', options.baseUrl);

  const sorts = new Map<string, KeysetSort>();
  const resolveSort = (terms: readonly SortTerm[]): KeysetSort => {
    const canonical = formatSort(terms);
    let sort = sorts.get(canonical);
    if (sort === undefined) {
      sort = keysetSort(
        terms.map((t) => ({ ...(sortable[t.field] as SortableField), direction: t.direction })),
        { unique: options.unique },
      );
      if (sorts.size >= SORT_CACHE_LIMIT) sorts.clear();
      sorts.set(canonical, sort);
    }
    return sort;
  };

  // The default sort is the application's: a bad one is a configuration error now.
  const defaultIssues: ValidationIssue[] = [];
  const defaultTerms =
    typeof options.defaultSort === 'string'
      ? readSort(options.defaultSort, 'defaultSort', fieldNames, maxSortFields, defaultIssues)
      : undefined;
  if (defaultTerms === undefined) {
    invalidOption(
      'pagination',
      'defaultSort',
      `a sort of sortable fields (${fieldNames.join(', ')}), such as -${fieldNames[0]}`,
      options.defaultSort,
    );
  }
  resolveSort(defaultTerms); // validates every column and the tie-breaker now
  for (const name of fieldNames) resolveSort([{ field: name, direction: 'asc' }]);

  let windowField: SortableField | undefined;
  if (options.window !== undefined) {
    checkOptions('pagination', options.window, ['field']);
    windowField = sortable[options.window.field];
    if (windowField === undefined) {
      invalidOption(
        'pagination',
        'window.field',
        `one of the sortable fields (${fieldNames.join(', ')})`,
        options.window.field,
      );
    }
  }

  const uniqueColumn = typeof options.unique === 'string' ? options.unique : options.unique?.column;
  /**
   * `keysetSort` refuses a column twice, and the unique column before other
   * columns: with fields the client chose, that is the client's error (400).
   */
  const sortFits = (terms: readonly SortTerm[], issues: ValidationIssue[]): boolean => {
    const before = issues.length;
    const fieldOf = new Map<string, string>();
    terms.forEach((term, i) => {
      const { column } = sortable[term.field] as SortableField;
      const other = fieldOf.get(column);
      if (other !== undefined) {
        issues.push(
          queryIssue(
            P.sort,
            `${P.sort} names ${other} and ${term.field}, which sort by the same column; give one of them.`,
          ),
        );
      }
      fieldOf.set(column, term.field);
      if (column === uniqueColumn && i < terms.length - 1) {
        issues.push(
          queryIssue(
            P.sort,
            `${P.sort} has fields after ${term.field}, which is unique, so they cannot change the order; put ${term.field} last.`,
          ),
        );
      }
    });
    return issues.length === before;
  };

  const requests = new WeakSet<KeysetPageRequest>();

  function read(ctx: Context): KeysetPageRequest {
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    const limitRaw = single(query, P.limit, issues);
    const limit =
      limitRaw === undefined ? defaultLimit : readInteger(limitRaw, P.limit, 1, maxLimit, issues);
    const sortRaw = single(query, P.sort, issues);
    let terms =
      sortRaw === undefined
        ? defaultTerms
        : readSort(sortRaw, P.sort, fieldNames, maxSortFields, issues);
    if (terms !== undefined && !sortFits(terms, issues)) terms = undefined;
    let since: Instant | undefined;
    let until: Instant | undefined;
    if (windowField !== undefined) {
      const instant = (name: string): Instant | undefined => {
        const raw = single(query, name, issues);
        if (raw === undefined) return undefined;
        const at = parseInstant(raw);
        if (at === undefined || at.micros < FIRST_BOUND || at.micros > LAST_BOUND) {
          issues.push(
            queryIssue(
              name,
              `${name} must be an RFC 3339 date-time from 0001 to 9999 (in UTC) such as 2026-01-31T09:30:00Z, to the microsecond at most.`,
            ),
          );
          return undefined;
        }
        return at;
      };
      since = instant(P.since);
      until = instant(P.until);
      if (since !== undefined && until !== undefined && since.micros >= until.micros) {
        issues.push(
          queryIssue(
            P.until,
            `${P.until} must be later than ${P.since}: the window is [since, until).`,
          ),
        );
      }
    }
    let total = false;
    if (totalAllowed) {
      const raw = single(query, P.total, issues);
      if (raw !== undefined && raw !== 'true' && raw !== 'false') {
        issues.push(queryIssue(P.total, `${P.total} must be true or false.`));
      }
      total = raw === 'true';
    }
    const cursorRaw = single(query, P.cursor, issues);
    // Own members whatever the name: assigning `__proto__` would set the
    // prototype instead, and the cursor would not be bound to that filter.
    const filterValues: Record<string, readonly string[]> = Object.fromEntries(
      filters.map((f) => [f, query.getAll(f)]),
    );

    if (issues.length > 0 || limit === undefined || terms === undefined) {
      // The cursor's binding needs the other parameters; its seal does not.
      if (cursorRaw !== undefined) {
        try {
          cursors.decode(cursorRaw, null);
        } catch (err) {
          if (err instanceof InvalidCursorError && err.reason !== 'mismatch') {
            issues.push(queryIssue(P.cursor, err.detail ?? 'The cursor is not valid.'));
          }
        }
      }
      throw new ValidationError(issues);
    }

    const sort = resolveSort(terms);
    const sortParam = formatSort(terms);
    const base = {
      kind: 'keyset' as const,
      sort,
      sortParam,
      limit,
      total,
      filters: filterValues,
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
    };
    let request: KeysetPageRequest = base;
    if (cursorRaw !== undefined) {
      const payload = cursors.decode(cursorRaw, bindingOf(base, ctx));
      const [marker, ...position] = payload;
      if (marker === LAST && position.length === 0) request = { ...base, last: true };
      else if ((marker === AFTER || marker === BEFORE) && position.length === sort.columns.length) {
        request = marker === AFTER ? { ...base, after: position } : { ...base, before: position };
      } else throw new InvalidCursorError('malformed');
      // Authentic, but made under another configuration of the list (a column
      // since declared bigint or NOT NULL): a position the sort cannot use is
      // the cursor's fault, not a TypeError (500) later in sql() or array().
      try {
        keysetSql(sort, positionOf(request));
      } catch (cause) {
        throw new InvalidCursorError('malformed', { cause });
      }
    }
    requests.add(request);
    return request;
  }

  /**
   * What a cursor is bound to. The path, as the links write it, is there too:
   * it names the list (two lists may share a codec, a sort and a size) and
   * holds filters of its own (`/v1/accounts/:id/payments`).
   */
  function bindingOf(
    r: Pick<KeysetPageRequest, 'sortParam' | 'limit' | 'filters' | 'since' | 'until'>,
    ctx: Context,
  ) {
    return {
      path: linkPath(ctx.request.path),
      sort: r.sortParam,
      limit: r.limit,
      filters: r.filters,
      since: r.since?.iso ?? null,
      until: r.until?.iso ?? null,
    };
  }

  function checkRequest(request: KeysetPageRequest): void {
    if (!requests.has(request)) {
      throw new TypeError(
        'restwell/pagination: pass the request this paginator read (paginator.request(ctx)).',
      );
    }
  }

  function inWindow(request: KeysetPageRequest, row: object): boolean {
    if (windowField === undefined || (request.since === undefined && request.until === undefined))
      return true;
    const key =
      windowField.key ?? windowField.column.slice(windowField.column.lastIndexOf('.') + 1);
    const at = instantOf((row as Record<string, unknown>)[key]);
    if (at === undefined) return false;
    if (request.since !== undefined && at < request.since.micros) return false;
    if (request.until !== undefined && at >= request.until.micros) return false;
    return true;
  }

  function cursor(payload: unknown[], request: KeysetPageRequest, ctx: Context): string {
    return cursors.encode(payload as CursorValue[], bindingOf(request, ctx));
  }

  const paginator = responseBlind(async (ctx: Context, next: Next) => {
    ctx.state.page = read(ctx);
    await next();
  }) as KeysetPaginator;

  paginator.request = (ctx) => {
    const kept = ctx.state.page;
    if (kept !== undefined && kept.kind === 'keyset' && requests.has(kept)) return kept;
    const request = read(ctx);
    ctx.state.page = request;
    return request;
  };

  paginator.sql = (request, paramOffset = 0) => {
    checkRequest(request);
    const q = keysetSql(request.sort, { ...positionOf(request), paramOffset });
    if (windowField === undefined) return q;
    const conditions: string[] = [];
    const params = [...q.params];
    if (request.since !== undefined) {
      params.push(request.since.iso);
      conditions.push(`${windowField.column} >= $${paramOffset + params.length}`);
    }
    if (request.until !== undefined) {
      params.push(request.until.iso);
      conditions.push(`${windowField.column} < $${paramOffset + params.length}`);
    }
    if (conditions.length === 0) return q;
    return { ...q, where: `(${[...conditions, q.where].join(' AND ')})`, params };
  };

  paginator.result = (rows, request) => {
    checkRequest(request);
    return keysetPage(rows, request.sort, positionOf(request));
  };

  paginator.array = (rows, request) => {
    checkRequest(request);
    const within = windowField === undefined ? rows : rows.filter((row) => inWindow(request, row));
    return keysetArray(within, request.sort, positionOf(request));
  };

  paginator.links = (ctx, result) => {
    const request = paginator.request(ctx);
    const query = ctx.request.query;
    const href = (c: string | undefined) =>
      pageHref(ctx, baseUrl, withParams(query, { [P.cursor]: c }));
    const nextCursor =
      result.next === undefined ? null : cursor([AFTER, ...result.next], request, ctx);
    const prevCursor =
      result.prev === undefined ? null : cursor([BEFORE, ...result.prev], request, ctx);
    const lastCursor = cursor([LAST], request, ctx);
    const links: PageLinks = {
      self: pageHref(ctx, baseUrl, query),
      first: href(undefined),
    };
    // An empty page past an end (its rows deleted since): the first page holds
    // every row from the position on, the last page every row up to it.
    if (prevCursor !== null) links.prev = href(prevCursor);
    else if (result.hasPrev) links.prev = href(lastCursor);
    if (nextCursor !== null) links.next = href(nextCursor);
    else if (result.hasNext) links.next = href(undefined);
    links.last = href(lastCursor);
    writeLinkHeader(ctx, links);
    return { links, nextCursor, prevCursor };
  };

  paginator.respond = (ctx, result, extra = {}) => {
    const request = paginator.request(ctx);
    const { links, nextCursor, prevCursor } = paginator.links(ctx, result);
    const total = extra.total;
    if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
      throw new TypeError('restwell/pagination: total must be an integer from 0.');
    }
    return {
      data: result.items,
      pagination: {
        limit: request.limit,
        hasNext: result.hasNext,
        hasPrev: result.hasPrev,
        nextCursor,
        prevCursor,
        ...(total === undefined ? {} : { total }),
      },
      links,
    };
  };

  return paginator;
}

function positionOf(request: KeysetPageRequest) {
  return {
    limit: request.limit,
    ...(request.after === undefined ? {} : { after: request.after }),
    ...(request.before === undefined ? {} : { before: request.before }),
    ...(request.last === true ? { last: true } : {}),
  };
}
