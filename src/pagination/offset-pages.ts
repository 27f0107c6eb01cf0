/**
 * `offsetPagination()`: numbered pages for small internal lists, with the
 * same links and body as cursor pages. `OFFSET n` reads and discards n rows,
 * so a deep page costs O(n) (bench/README.md measures it): a maximum offset
 * bounds what a client can make the database do.
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
import type { OffsetPageRequestShape } from './keyset-pages.js';
import { checkBaseUrl, type PageLinks, pageHref, withParams, writeLinkHeader } from './links.js';
import { queryIssue, readInteger, single } from './params.js';

/** Options of {@link offsetPagination}. */
export interface OffsetPaginationOptions {
  /**
   * Which parameters: `'offset'` reads `?offset=40&limit=20`, `'page'` reads
   * `?page=3&size=20` (pages from 1).
   * @default 'offset'
   */
  style?: 'offset' | 'page';
  /** The page size when the client gives none. @default 20 */
  defaultLimit?: number;
  /** The largest page size. @default 100 */
  maxLimit?: number;
  /** The largest offset a client may ask for (for `'page'`, of the page's first row). @default 10000 */
  maxOffset?: number;
  /** Let clients ask for the total count with `?total=true` (O(N)). @default false */
  total?: boolean;
  /** Absolute links under this base; unset, relative ones. @default undefined */
  baseUrl?: string;
  /**
   * Names of the query parameters.
   * @default offset, limit (style 'offset'); page, size (style 'page'); total
   */
  params?: { offset?: string; limit?: string; page?: string; size?: string; total?: string };
}

/** The page a client asked for. */
export interface OffsetPageRequest extends OffsetPageRequestShape {
  readonly kind: 'offset';
  /** Rows to skip. */
  readonly offset: number;
  /** The page size. */
  readonly limit: number;
  /** The page number from 1 (`offset / limit + 1` for style `'offset'`, when it divides). */
  readonly page: number | undefined;
  /** Whether the client asked for the total count (only with the `total` option). */
  readonly total: boolean;
}

/** One offset page. */
export interface OffsetPageResult<Row> {
  items: Row[];
  hasNext: boolean;
  hasPrev: boolean;
}

/** What `respond()` returns. */
export interface OffsetPageBody<Row> {
  data: Row[];
  pagination: {
    offset: number;
    limit: number;
    page?: number;
    hasNext: boolean;
    hasPrev: boolean;
    total?: number;
  };
  links: PageLinks;
}

/** An offset paginator: a middleware, and the functions a handler calls. */
export interface OffsetPaginator extends Middleware {
  /** The page the request asks for; throws `ValidationError` (400) listing every bad parameter. */
  request(ctx: Context): OffsetPageRequest;
  /** `LIMIT` (limit + 1: the extra row says whether a next page exists) and `OFFSET`. */
  sql(request: OffsetPageRequest): { limit: number; offset: number };
  /** The page from the rows a `LIMIT sql().limit OFFSET sql().offset` query gave. */
  result<Row>(rows: readonly Row[], request: OffsetPageRequest): OffsetPageResult<Row>;
  /** The page of a whole in-memory array, already in order. */
  array<Row>(rows: readonly Row[], request: OffsetPageRequest): OffsetPageResult<Row>;
  /** The page's links, with the `Link` header written; `last` only when `total` is known. */
  links(ctx: Context, result: OffsetPageResult<unknown>, total?: number): PageLinks;
  /** Writes the `Link` header and gives `{ data, pagination, links }`. */
  respond<Row>(
    ctx: Context,
    result: OffsetPageResult<Row>,
    extra?: { total?: number },
  ): OffsetPageBody<Row>;
}

function positiveInteger(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalidOption('pagination', name, `an integer from ${min}`, value);
  }
  return value;
}

/**
 * Offset pagination over HTTP.
 *
 * @example
 * ```ts
 * const auditPages = offsetPagination({ style: 'page', maxLimit: 50 });
 * router.get('/internal/audit', rw(auditPages), async (ctx) => {
 *   const page = auditPages.request(ctx);
 *   const { limit, offset } = auditPages.sql(page);
 *   const { rows } = await pool.query('SELECT * FROM audit ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2', [limit, offset]);
 *   ctx.body = auditPages.respond(ctx, auditPages.result(rows, page));
 * });
 * ```
 */
export function offsetPagination(options: OffsetPaginationOptions = {}): OffsetPaginator {
  checkOptions('pagination', options, [
    'style',
    'defaultLimit',
    'maxLimit',
    'maxOffset',
    'total',
    'baseUrl',
    'params',
  ]);
  const style = options.style ?? 'offset';
  if (style !== 'offset' && style !== 'page')
    invalidOption('pagination', 'style', "'offset' or 'page'", style);
  const defaultLimit = positiveInteger('defaultLimit', options.defaultLimit, 20);
  const maxLimit = positiveInteger('maxLimit', options.maxLimit, 100);
  if (defaultLimit > maxLimit) {
    invalidOption('pagination', 'defaultLimit', `at most maxLimit (${maxLimit})`, defaultLimit);
  }
  const maxOffset = positiveInteger('maxOffset', options.maxOffset, 10_000, 0);
  const totalAllowed = options.total ?? false;
  if (typeof totalAllowed !== 'boolean')
    invalidOption('pagination', 'total', 'a boolean', totalAllowed);
  const baseUrl = checkBaseUrl('pagination', options.baseUrl);
  const names = options.params ?? {};
  checkOptions('pagination', names, ['offset', 'limit', 'page', 'size', 'total']);
  for (const [k, v] of Object.entries(names)) {
    if (typeof v !== 'string' || v === '')
      invalidOption('pagination', `params.${k}`, 'a non-empty string', v);
  }
  const P = {
    offset: names.offset ?? 'offset',
    limit: names.limit ?? 'limit',
    page: names.page ?? 'page',
    size: names.size ?? 'size',
    total: names.total ?? 'total',
  };
  // Two parameters read from one name would each take the other's value.
  const readNames = style === 'page' ? [P.page, P.size, P.total] : [P.offset, P.limit, P.total];
  if (new Set(readNames).size !== readNames.length) {
    invalidOption('pagination', 'params', 'distinct names', readNames.join(', '));
  }
  const sizeParam = style === 'page' ? P.size : P.limit;
  const requests = new WeakSet<OffsetPageRequest>();

  function read(ctx: Context): OffsetPageRequest {
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    const sizeRaw = single(query, sizeParam, issues);
    const limit =
      sizeRaw === undefined ? defaultLimit : readInteger(sizeRaw, sizeParam, 1, maxLimit, issues);
    let offset: number | undefined = 0;
    let page: number | undefined;
    if (style === 'page') {
      const raw = single(query, P.page, issues);
      const maxPage = Math.floor(maxOffset / (limit ?? defaultLimit)) + 1;
      page = raw === undefined ? 1 : readInteger(raw, P.page, 1, maxPage, issues);
      offset = page === undefined || limit === undefined ? undefined : (page - 1) * limit;
    } else {
      const raw = single(query, P.offset, issues);
      offset = raw === undefined ? 0 : readInteger(raw, P.offset, 0, maxOffset, issues);
      page =
        offset !== undefined && limit !== undefined && offset % limit === 0
          ? offset / limit + 1
          : undefined;
    }
    let total = false;
    if (totalAllowed) {
      const raw = single(query, P.total, issues);
      if (raw !== undefined && raw !== 'true' && raw !== 'false') {
        issues.push(queryIssue(P.total, `${P.total} must be true or false.`));
      }
      total = raw === 'true';
    }
    if (issues.length > 0 || limit === undefined || offset === undefined) {
      throw new ValidationError(issues);
    }
    const request: OffsetPageRequest = { kind: 'offset', offset, limit, page, total };
    requests.add(request);
    return request;
  }

  function checkRequest(request: OffsetPageRequest): void {
    if (!requests.has(request)) {
      throw new TypeError(
        'restwell/pagination: pass the request this paginator read (paginator.request(ctx)).',
      );
    }
  }

  /** The query for the page starting at `offset`. */
  function at(ctx: Context, offset: number, limit: number): string {
    const set =
      style === 'page'
        ? { [P.page]: offset === 0 ? undefined : String(offset / limit + 1) }
        : { [P.offset]: offset === 0 ? undefined : String(offset) };
    return pageHref(ctx, baseUrl, withParams(ctx.request.query, set));
  }

  const paginator = responseBlind(async (ctx: Context, next: Next) => {
    ctx.state.page = read(ctx);
    await next();
  }) as OffsetPaginator;

  paginator.request = (ctx) => {
    const kept = ctx.state.page;
    if (kept !== undefined && kept.kind === 'offset' && requests.has(kept as OffsetPageRequest)) {
      return kept as OffsetPageRequest;
    }
    const request = read(ctx);
    ctx.state.page = request;
    return request;
  };

  paginator.sql = (request) => {
    checkRequest(request);
    return { limit: request.limit + 1, offset: request.offset };
  };

  paginator.result = (rows, request) => {
    checkRequest(request);
    return {
      items: rows.slice(0, request.limit),
      hasNext: rows.length > request.limit,
      hasPrev: request.offset > 0,
    };
  };

  paginator.array = (rows, request) =>
    paginator.result(rows.slice(request.offset, request.offset + request.limit + 1), request);

  paginator.links = (ctx, result, total) => {
    const { offset, limit } = paginator.request(ctx);
    const links: PageLinks = {
      self: pageHref(ctx, baseUrl, ctx.request.query),
      first: at(ctx, 0, limit),
    };
    // In page style a page starts at a multiple of the size; in offset style
    // the previous page may start before 0 and is clamped to the first rows.
    if (result.hasPrev) links.prev = at(ctx, Math.max(0, offset - limit), limit);
    if (result.hasNext && offset + limit <= maxOffset) links.next = at(ctx, offset + limit, limit);
    if (total !== undefined) {
      const lastOffset = Math.max(0, Math.floor((total - 1) / limit) * limit);
      if (lastOffset <= maxOffset) links.last = at(ctx, lastOffset, limit);
    }
    writeLinkHeader(ctx, links);
    return links;
  };

  paginator.respond = (ctx, result, extra = {}) => {
    const request = paginator.request(ctx);
    const total = extra.total;
    if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
      throw new TypeError('restwell/pagination: total must be an integer from 0.');
    }
    return {
      data: result.items,
      pagination: {
        offset: request.offset,
        limit: request.limit,
        ...(request.page === undefined ? {} : { page: request.page }),
        hasNext: result.hasNext,
        hasPrev: result.hasPrev,
        ...(total === undefined ? {} : { total }),
      },
      links: paginator.links(ctx, result, total),
    };
  };

  return paginator;
}
