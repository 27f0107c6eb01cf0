/**
 * Pagination (`restwell/pagination`): opaque cursors and keyset pages.
 *
 * - `createCursorCodec()`: cursors sealed with AES-256-GCM (or signed only),
 *   bound to the sort, filters and page size they were made for, with key
 *   rotation and an optional max age. Any bad cursor is a 400 `invalid-cursor`
 *   problem, never a 500.
 * - `keysetPagination()`: cursor pages over HTTP (`limit`, `sort` on an
 *   allowlist, `cursor`, an optional `since`/`until` window), one 400 listing
 *   every bad parameter, `Link` headers and body links; `offsetPagination()`
 *   for small internal lists, with the same shape.
 * - `keysetSort()`, `keysetSql()`, `keysetPage()`: keyset pages on PostgreSQL
 *   (parameterized WHERE / ORDER BY / LIMIT + 1, right with ties, NULLs and
 *   mixed directions, forward and backward), and `keysetArray()` with the same
 *   semantics over arrays.
 *
 * Exported from `restwell/pagination`. See docs/pagination.md.
 *
 * @example
 * ```ts
 * import { createCursorCodec } from 'restwell/pagination';
 *
 * const cursors = createCursorCodec({ secrets: [process.env.CURSOR_SECRET!] });
 * const next = cursors.encode([last.createdAt, last.id], { sort: '-createdAt', limit: 20 });
 * const [createdAt, id] = cursors.decode(next, { sort: '-createdAt', limit: 20 });
 * ```
 */
export {
  type CursorCodec,
  type CursorCodecOptions,
  type CursorPayload,
  type CursorSecret,
  type CursorTimestamp,
  type CursorValue,
  createCursorCodec,
} from './cursor.js';
export { InvalidCursorError, type InvalidCursorReason } from './errors.js';
export {
  type KeysetPageBody,
  type KeysetPageRequest,
  type KeysetPaginationOptions,
  type KeysetPaginator,
  type KeysetParamNames,
  keysetPagination,
  type OffsetPageRequestShape,
  type SortableField,
} from './keyset-pages.js';
export type { PageLinks, PageRelation } from './links.js';
export {
  type OffsetPageBody,
  type OffsetPageRequest,
  type OffsetPageResult,
  type OffsetPaginationOptions,
  type OffsetPaginator,
  offsetPagination,
} from './offset-pages.js';
export type { Instant } from './params.js';
export {
  type KeysetPageResult,
  type KeysetQuery,
  type KeysetRequest,
  type KeysetSort,
  type KeysetSortOptions,
  type KeysetSqlRequest,
  keysetArray,
  keysetCompare,
  keysetPage,
  keysetPosition,
  keysetSort,
  keysetSql,
  type NullsOrder,
  type ResolvedSortColumn,
  type SortColumn,
  type SortDirection,
} from './keyset.js';
