/**
 * How the example's lists page: cursors (opaque, sealed, bound to the sort,
 * the filters and the page size), sorts on an allowlist (`?sort=-createdAt,name`),
 * and for payments a time window (`?since=...&until=...`). Framework-free: the
 * Express and Koa apps mount the same paginators.
 */
import { randomBytes } from 'node:crypto';
import { type Context, ValidationError } from 'restwell';
import { createCursorCodec, type KeysetPaginator, keysetPagination } from 'restwell/pagination';

/**
 * The paginators of the example API. `cursorSecret` seals cursors: every
 * process that serves the API needs the same one (set CURSOR_SECRET), or a
 * cursor made by one is refused by another. Without one, a random secret is
 * drawn, which is fine for a single demo process.
 */
export function createPaginators(cursorSecret: string = randomBytes(32).toString('base64url')) {
  const cursors = createCursorCodec({ secrets: [cursorSecret], maxAgeMs: 24 * 3_600_000 });
  const users = keysetPagination({
    cursors,
    sortable: {
      createdAt: { column: 'created_at', key: 'createdAt' },
      name: { column: 'name' },
      // The same field as v2 names it: a v2 client sorts by the member it reads (`fullName`).
      fullName: { column: 'name', key: 'name' },
      email: { column: 'email' },
    },
    unique: 'id',
    defaultSort: 'createdAt',
    maxLimit: 50,
    // Counting is O(N): allowed here because the list is small and held in memory.
    total: true,
  });
  const payments = keysetPagination({
    cursors,
    sortable: {
      createdAt: { column: 'created_at', key: 'createdAt' },
      amount: { column: 'amount' },
    },
    unique: 'id',
    defaultSort: '-createdAt',
    maxLimit: 50,
    // ?userId=usr_ada lists one user's payments; a cursor made for one user is refused for another.
    filters: ['userId'],
    // ?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z: payments in [since, until).
    window: { field: 'createdAt' },
  });
  return { users, payments };
}

export type Paginators = ReturnType<typeof createPaginators>;

/**
 * One page of an in-memory list, as the response body, each row as `present` shows it; writes
 * the Link header.
 */
export function pageOf<Row extends object, Shown>(
  pages: KeysetPaginator,
  ctx: Context,
  rows: readonly Row[],
  present: (row: Row) => Shown,
) {
  const page = pages.request(ctx);
  const body = pages.respond(
    ctx,
    pages.array(rows, page),
    page.total ? { total: rows.length } : {},
  );
  return { ...body, data: body.data.map(present) };
}

/** A filter the list takes at most once (`?userId=`): given twice it is a 400, never ignored. */
export function oneFilter(ctx: Context, name: string): string | undefined {
  const values = ctx.request.query.getAll(name);
  if (values.length > 1) {
    throw new ValidationError([
      {
        in: 'query',
        pointer: `/${name}`,
        detail: `Give ${name} once; it was given ${values.length} times.`,
      },
    ]);
  }
  return values[0];
}
