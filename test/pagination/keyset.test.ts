import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type KeysetPageResult,
  type KeysetRequest,
  type KeysetSort,
  keysetArray,
  keysetCompare,
  keysetPage,
  keysetSort,
  keysetSql,
  type SortColumn,
} from '../../src/pagination/keyset.js';
import { services } from '../helpers/services.js';

/** mulberry32: a small seeded PRNG, so a failure replays from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  id: string;
  a: number | null;
  b: string | null;
  c: boolean | null;
}

const TEXTS = ['a', 'B', 'b', 'ab', 'é', '😀', '\uffff', ''];
const BIG = 2n ** 53n;

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

/** Rows with many ties and NULLs; ids of mixed digit counts, some beyond 2^53. */
function randomRows(rand: () => number, nulls: boolean): Row[] {
  const blank = () => nulls && rand() < 0.25;
  const n = Math.floor(rand() * 30);
  const ids = new Set<string>();
  while (ids.size < n) {
    ids.add(
      String(
        rand() < 0.5 ? BigInt(Math.floor(rand() * 200)) : BIG + BigInt(Math.floor(rand() * 200)),
      ),
    );
  }
  return [...ids].map((id) => ({
    id,
    a: blank() ? null : Math.floor(rand() * 3),
    b: blank() ? null : pick(rand, TEXTS),
    c: blank() ? null : rand() < 0.5,
  }));
}

/**
 * A random sort over 1-3 columns plus the id. With `nulls` false, the columns
 * are NOT NULL and often share one direction, so the row-value form is tried.
 */
function randomSort(rand: () => number, nulls: boolean): KeysetSort {
  const names = ['a', 'b', 'c'].sort(() => rand() - 0.5).slice(0, 1 + Math.floor(rand() * 3));
  const same = !nulls && rand() < 0.7;
  const one = rand() < 0.5 ? 'asc' : 'desc';
  const direction = () => (same ? one : rand() < 0.5 ? 'asc' : 'desc');
  const columns: SortColumn[] = names.map((column) => {
    const c: SortColumn = { column, direction: direction(), nullable: nulls };
    if (nulls && rand() < 0.5) c.nulls = rand() < 0.5 ? 'first' : 'last';
    return c;
  });
  return keysetSort(columns, { unique: { column: 'id', type: 'bigint', direction: direction() } });
}

/** One random scenario: rows, a sort over them, a page size. */
function scenario(rand: () => number) {
  const nulls = rand() < 0.7;
  const rows = randomRows(rand, nulls);
  return { rows, sort: randomSort(rand, nulls), limit: 1 + Math.floor(rand() * 6), nulls };
}

/** What the walks look at: any row with a string id. */
type Identified = { id: string };

type Fetch = (request: KeysetRequest) => Promise<KeysetPageResult<Identified>>;

const ids = (page: KeysetPageResult<Identified>) => page.items.map((r) => r.id);

/** Walks forward then backward and checks every promise of a walk. */
async function checkWalks(fetch: Fetch, expected: string[], limit: number): Promise<void> {
  const forward: KeysetPageResult<Identified>[] = [];
  let page = await fetch({ limit });
  forward.push(page);
  while (page.hasNext) {
    expect(page.next).toBeDefined();
    page = await fetch({ after: page.next, limit });
    forward.push(page);
    expect(forward.length).toBeLessThan(expected.length + 3);
  }
  expect(forward.flatMap(ids)).toEqual(expected);
  forward.forEach((p, i) => {
    expect(p.hasPrev).toBe(i > 0);
    expect(p.hasNext).toBe(i < forward.length - 1);
    if (i < forward.length - 1) expect(p.items.length).toBe(limit);
  });
  // A backward page is the exact inverse of the forward one.
  for (let i = 1; i < forward.length; i++) {
    const back = await fetch({ before: forward[i]?.prev, limit });
    expect(ids(back)).toEqual(ids(forward[i - 1] as KeysetPageResult<Identified>));
    expect(back.hasPrev).toBe(i - 1 > 0);
    expect(back.hasNext).toBe(true);
  }

  const backward: KeysetPageResult<Identified>[] = [];
  page = await fetch({ last: true, limit });
  backward.push(page);
  while (page.hasPrev) {
    page = await fetch({ before: page.prev, limit });
    backward.push(page);
    expect(backward.length).toBeLessThan(expected.length + 3);
  }
  expect(backward.reverse().flatMap(ids)).toEqual(expected);
  backward.forEach((p, i) => {
    expect(p.hasPrev).toBe(i > 0);
    expect(p.hasNext).toBe(i < backward.length - 1);
  });
}

/**
 * Walks forward while `churn` inserts and deletes rows between pages: the ids
 * seen move strictly forward in the order (so none repeats), and every row
 * that existed throughout is seen.
 */
async function checkChurn(
  fetch: Fetch,
  sort: KeysetSort,
  limit: number,
  initial: Row[],
  churn: () => Promise<string[]>,
): Promise<void> {
  const deleted = new Set<string>();
  const seen: Row[] = [];
  let page = await fetch({ limit });
  for (;;) {
    seen.push(...(page.items as Row[]));
    if (!page.hasNext) break;
    for (const id of await churn()) deleted.add(id);
    page = await fetch({ after: page.next, limit });
  }
  for (let i = 1; i < seen.length; i++) {
    const a = sort.columns.map((c) => (seen[i - 1] as Row)[c.key as keyof Row]);
    const b = sort.columns.map((c) => (seen[i] as Row)[c.key as keyof Row]);
    expect(keysetCompare(sort, a, b)).toBe(-1);
  }
  const ids = new Set(seen.map((r) => r.id));
  for (const row of initial) if (!deleted.has(row.id)) expect(ids.has(row.id)).toBe(true);
}

function randomPosition(
  rand: () => number,
  rows: Row[],
  sort: KeysetSort,
  nulls: boolean,
): unknown[] {
  const row = rows.length > 0 && rand() < 0.7 ? pick(rand, rows) : undefined;
  return sort.columns.map((c) => {
    if (row && rand() < 0.8) return row[c.key as keyof Row];
    if (c.key === 'id') return String(rand() < 0.5 ? BigInt(Math.floor(rand() * 200)) : BIG + 7n);
    if (nulls && rand() < 0.3) return null;
    if (c.key === 'a') return Math.floor(rand() * 3);
    if (c.key === 'b') return pick(rand, TEXTS);
    return rand() < 0.5;
  });
}

describe('keysetSort', () => {
  it('appends the unique column with the last direction, and PostgreSQL NULL defaults', () => {
    const s = keysetSort([{ column: 'created_at', direction: 'desc', nullable: true }], {
      unique: 'id',
    });
    expect(s.columns.map((c) => [c.column, c.direction, c.nulls])).toEqual([
      ['created_at', 'desc', 'first'],
      ['id', 'desc', 'first'],
    ]);
    expect(keysetSort([{ column: 'x' }, { column: 'id' }], { unique: 'id' }).columns).toHaveLength(
      2,
    );
    expect(keysetSort([{ column: 'u.name' }], { unique: 'u.id' }).columns[0]?.key).toBe('name');
  });

  it('refuses identifiers that are not SQL identifiers, and a missing unique column', () => {
    for (const column of ['a; DROP TABLE x', 'a b', '1a', '"a"', 'a.b.c', '']) {
      expect(() => keysetSort([{ column }], { unique: 'id' })).toThrow(TypeError);
    }
    expect(() => keysetSort([{ column: 'a' }], { unique: 'x y' })).toThrow(TypeError);
    expect(() => keysetSort([{ column: 'a' }], {} as never)).toThrow(/unique/);
    expect(() => keysetSort([{ column: 'a' }], { unique: 'id', uniq: 'x' } as never)).toThrow(
      /uniq/,
    );
    expect(() => keysetSort([{ column: 'id' }, { column: 'a' }], { unique: 'id' })).toThrow(/last/);
    expect(() => keysetSort([{ column: 'a', colum: 'b' } as never], { unique: 'id' })).toThrow(
      /colum/,
    );
  });
});

describe('keysetSql', () => {
  const sort = keysetSort([{ column: 'created_at', direction: 'desc' }], { unique: 'id' });

  it('uses a row-value comparison when the directions agree and no column is nullable', () => {
    expect(keysetSql(sort, { after: ['2024', 5], limit: 10, paramOffset: 2 })).toEqual({
      where: '(created_at, id) < ($3, $4)',
      orderBy: 'created_at DESC, id DESC',
      limit: 11,
      params: ['2024', 5],
    });
    expect(keysetSql(sort, { before: ['2024', 5], limit: 10 })).toMatchObject({
      where: '(created_at, id) > ($1, $2)',
      orderBy: 'created_at ASC, id ASC',
    });
    expect(keysetSql(sort, { limit: 3 })).toMatchObject({ where: 'TRUE', params: [] });
  });

  it('expands with NULL branches for nullable columns and mixed directions', () => {
    const mixed = keysetSort(
      [
        { column: 'a', nullable: true },
        { column: 'b', direction: 'desc' },
      ],
      {
        unique: { column: 'id', direction: 'asc' },
      },
    );
    expect(keysetSql(mixed, { after: [null, 'x', 1], limit: 1 }).where).toBe(
      '((a IS NULL AND b < $1) OR (a IS NULL AND b = $1 AND id > $2))',
    );
    expect(keysetSql(mixed, { after: [3, 'x', 1], limit: 1 }).where).toBe(
      '((a > $1 OR a IS NULL) OR (a = $1 AND b < $2) OR (a = $1 AND b = $2 AND id > $3))',
    );
  });

  it('refuses bad requests with a TypeError', () => {
    expect(() => keysetSql(sort, { limit: 0 })).toThrow(TypeError);
    expect(() => keysetSql(sort, { limit: 1.5 })).toThrow(TypeError);
    expect(() => keysetSql(sort, { after: [1], limit: 1 })).toThrow(/2 values/);
    expect(() => keysetSql(sort, { after: [null, 1], limit: 1 })).toThrow(/nullable/);
    expect(() => keysetSql(sort, { after: [1, 1], before: [1, 1], limit: 1 })).toThrow(/at most/);
  });
});

describe('keysetArray', () => {
  it('walks forward and backward over random data, every promise kept (seeded)', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const { rows, sort, limit } = scenario(rand);
      const expected = keysetArray(rows, sort, { limit: rows.length + 1 }).items.map((r) => r.id);
      expect(new Set(expected).size).toBe(rows.length);
      await checkWalks(async (r) => keysetArray(rows, sort, r), expected, limit);
    }
  });

  it('never skips or repeats a row that existed throughout, while rows come and go (seeded)', async () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rand = prng(seed * 31);
      const { rows, sort, limit, nulls } = scenario(rand);
      let live = [...rows];
      let next = 1000;
      const churn = async () => {
        const gone = live.filter(() => rand() < 0.15);
        live = live
          .filter((r) => !gone.includes(r))
          .concat(
            randomRows(rand, nulls)
              .slice(0, 3)
              .map((r) => ({ ...r, id: String(next++) })),
          );
        return gone.map((r) => r.id);
      };
      await checkChurn(async (r) => keysetArray(live, sort, r), sort, limit, rows, churn);
    }
  });

  it('orders bigint ids beyond 2^53 exactly, as strings or bigints', () => {
    const sort = keysetSort([], { unique: { column: 'id', type: 'bigint' } });
    const rows = [{ id: '9007199254740993' }, { id: 10n }, { id: '9007199254740992' }, { id: '9' }];
    const page = keysetArray(rows, sort, { after: ['9007199254740992'], limit: 5 });
    expect(page.items).toEqual([{ id: '9007199254740993' }]);
    expect(keysetArray(rows, sort, { limit: 5 }).items.map((r) => String(r.id))).toEqual([
      '9',
      '10',
      '9007199254740992',
      '9007199254740993',
    ]);
  });

  it('refuses a NULL in a column not declared nullable', () => {
    const sort = keysetSort([{ column: 'a' }], { unique: 'id' });
    expect(() => keysetArray([{ a: null, id: 1 }], sort, { limit: 1 })).toThrow(/nullable/);
  });
});

describe.runIf(services.postgres)('keysetSql on PostgreSQL', () => {
  const table = `keyset_${Math.random().toString(36).slice(2, 10)}`;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
    await pool.query(
      `CREATE TABLE ${table} (id bigint PRIMARY KEY, a integer, b text COLLATE "C", c boolean)`,
    );
  });

  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS ${table}`);
    await pool?.end();
  });

  async function load(rows: Row[]): Promise<Row[]> {
    await pool.query(`TRUNCATE ${table}`);
    if (rows.length > 0) {
      await pool.query(
        `INSERT INTO ${table} (id, a, b, c) SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::boolean[])`,
        [rows.map((r) => r.id), rows.map((r) => r.a), rows.map((r) => r.b), rows.map((r) => r.c)],
      );
    }
    return (await pool.query<Row>(`SELECT id, a, b, c FROM ${table}`)).rows;
  }

  function sqlFetch(sort: KeysetSort): Fetch {
    return async (request) => {
      const q = keysetSql(sort, { ...request, paramOffset: 1 });
      const { rows } = await pool.query<Row>(
        `SELECT id, a, b, c FROM ${table} WHERE id <> $1 AND ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
        [-1, ...q.params],
      );
      return keysetPage(rows, sort, request);
    };
  }

  it('pages like the array over random data: walks, inverses, random positions (seeded)', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rand = prng(seed * 7919);
      const made = scenario(rand);
      const { sort, limit } = made;
      const rows = await load(made.rows);
      const fetch = sqlFetch(sort);
      const all = await fetch({ limit: rows.length + 1 });
      const expected = ids(all);
      // The SQL ORDER BY and the array comparator agree on the whole order.
      expect(keysetArray(rows, sort, { limit: rows.length + 1 }).items.map((r) => r.id)).toEqual(
        expected,
      );
      await checkWalks(fetch, expected, limit);
      for (let k = 0; k < 15; k++) {
        const position = randomPosition(rand, rows, sort, made.nulls);
        const request: KeysetRequest =
          rand() < 0.5 ? { after: position, limit } : { before: position, limit };
        expect(await fetch(request)).toEqual(keysetArray(rows, sort, request));
      }
    }
  });

  it('never skips or repeats a row that existed throughout, while rows come and go (seeded)', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = prng(seed * 104729);
      const made = scenario(rand);
      const { sort, limit } = made;
      const rows = await load(made.rows);
      let next = 1000;
      const churn = async () => {
        const gone = rows.filter(() => rand() < 0.15).map((r) => r.id);
        await pool.query(`DELETE FROM ${table} WHERE id = ANY($1::bigint[])`, [gone]);
        const fresh = randomRows(rand, made.nulls).slice(0, 3);
        for (const r of fresh) {
          await pool.query(`INSERT INTO ${table} (id, a, b, c) VALUES ($1, $2, $3, $4)`, [
            String(next++),
            r.a,
            r.b,
            r.c,
          ]);
        }
        return gone;
      };
      await checkChurn(sqlFetch(sort), sort, limit, rows, churn);
    }
  });

  it('seeks past bigint ids beyond 2^53 given as strings or bigints', async () => {
    await load([
      { id: '9007199254740993', a: 1, b: null, c: null },
      { id: '9007199254740992', a: 1, b: null, c: null },
      { id: '10', a: 1, b: null, c: null },
    ]);
    const sort = keysetSort([{ column: 'a' }], { unique: { column: 'id', type: 'bigint' } });
    for (const id of ['9007199254740992', 9007199254740992n]) {
      const page = await sqlFetch(sort)({ after: [1, id], limit: 5 });
      expect(ids(page)).toEqual(['9007199254740993']);
    }
  });

  it('keeps microseconds: timestamptz read as text pages exactly through ties within one millisecond', async () => {
    const stamps = `${table}_ts`;
    await pool.query(`CREATE TABLE ${stamps} (id bigint PRIMARY KEY, at timestamptz NOT NULL)`);
    try {
      // 30 rows over 6 instants that differ only in microseconds, 5 rows each.
      await pool.query(
        `INSERT INTO ${stamps} SELECT i, timestamptz '2024-01-01 00:00:00.000001+00' + (i % 6) * interval '1 microsecond' FROM generate_series(1, 30) i`,
      );
      // pg parses timestamptz (OID 1184) into a Date, which keeps milliseconds
      // only; a position must carry the value exactly, so read it as text.
      const asText = {
        getTypeParser: (oid: number) => (oid === 1184 ? String : pg.types.getTypeParser(oid)),
      };
      const sort = keysetSort([{ column: 'at', direction: 'desc' }], {
        unique: { column: 'id', type: 'bigint', direction: 'asc' },
      });
      const fetch: Fetch = async (request) => {
        const q = keysetSql(sort, request);
        const { rows } = await pool.query<{ id: string; at: string }>({
          text: `SELECT id, at FROM ${stamps} WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
          values: q.params,
          types: asText,
        });
        return keysetPage(rows, sort, request);
      };
      const expected = (
        await pool.query<{ id: string }>(`SELECT id FROM ${stamps} ORDER BY at DESC, id ASC`)
      ).rows.map((r) => r.id);
      await checkWalks(fetch, expected, 4);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${stamps}`);
    }
  });
});
