/**
 * Pagination (`restwell/pagination`): opaque cursors and keyset pages.
 *
 * - `createCursorCodec()`: cursors sealed with AES-256-GCM (or signed only),
 *   bound to the sort, filters and page size they were made for, with key
 *   rotation and an optional max age. Any bad cursor is a 400 `invalid-cursor`
 *   problem, never a 500.
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
