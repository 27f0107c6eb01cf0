/**
 * Offset against keyset pagination on real PostgreSQL, over 1 000 000 rows,
 * at pages 1, 1 000, 10 000 and 50 000 of 20 rows.
 * `npm run bench -- pagination` (`DATABASE_URL`, default
 * postgres://postgres@127.0.0.1:5432/test; `BENCH_PAGE_REPEATS=21` timed
 * repetitions per point, fewer when a point has used `BENCH_PAGE_BUDGET_MS=6000`;
 * `BENCH_PAGES_DROP=1` drops the table at the end).
 *
 * The table `restwell_bench_pages` is seeded by one `INSERT ... SELECT
 * generate_series` and kept for the next run: a run reuses it when its
 * comment names this shape and it holds exactly 1 000 000 rows, and rebuilds
 * it otherwise. Rows are written in `created_at` order (an append-only table)
 * with 99 991 distinct timestamps, so runs of 10 or 11 rows tie on
 * `created_at`; the timestamps carry microseconds and the ids are not in
 * `created_at` order (ids from several writers), so a page boundary inside a
 * run of ties is only right if the tie-breaker is compared exactly.
 *
 * Sort: `created_at DESC, id DESC`, served by the index on (created_at, id)
 * scanned backward. Offset: `OFFSET (page - 1) * 20 LIMIT 20`. Keyset:
 * `keysetSql` after the position of the page's predecessor (the row at offset
 * (page - 1) * 20 - 1, read once before the timing), `LIMIT 21` (the extra row
 * gives `hasNext`), then `keysetPage`. Each repetition times one round trip of
 * the offset page and five of the keyset page, on one connection; `created_at` is read as text, as
 * docs/pagination.md asks, so the position keeps its microseconds.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { keysetPage, keysetSort, keysetSql } from 'restwell/pagination';
import { median, table } from './harness.js';

// `restwell` must be the built package, as users run it: bench/run.ts runs
// every bench under bench/tsconfig.json, which has no source paths.
const measured = fileURLToPath(import.meta.resolve('restwell/pagination'));
if (!measured.includes('/dist/')) {
  console.error(
    `restwell/pagination resolves to ${measured}, not the built package: run it with npm run bench -- pagination.`,
  );
  process.exit(1);
}

const TABLE = 'restwell_bench_pages';
const ROWS = 1_000_000;
const DISTINCT_TIMESTAMPS = 99_991;
const PAGE_SIZE = 20;
const PAGES = [1, 1_000, 10_000, 50_000];
/** Stored as the table's comment: a run reuses only a table of this exact shape. */
const SHAPE = `restwell bench pages v1: ${ROWS} rows, ${DISTINCT_TIMESTAMPS} timestamps`;
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const repeats = Number(process.env.BENCH_PAGE_REPEATS ?? 21);
const budgetMs = Number(process.env.BENCH_PAGE_BUDGET_MS ?? 6000);
const minRepeats = Math.min(5, repeats);
const WARMUP = 2;
/** The keyset page is timed this many times per offset page: it is cheap, and its median is what the goal is judged on. */
const KEYSET_PER_REPEAT = 5;

interface Row {
  id: string;
  created_at: string;
  name: string;
  payload: string;
}

// pg parses timestamptz (OID 1184) into a Date, which keeps milliseconds only:
// read it as text so that a position is exact.
const asText = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 1184 ? String : pg.types.getTypeParser(oid, format),
};

const sort = keysetSort([{ column: 'created_at', direction: 'desc' }], {
  unique: { column: 'id', type: 'bigint' },
});
const COLUMNS = 'id, created_at, name, payload';

console.log(`Measuring ${relative(process.cwd(), measured)}.`);

const client = new pg.Client({ connectionString: databaseUrl });
await client.connect();

async function seed(): Promise<void> {
  // Two runs at once must not both rebuild the table.
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [TABLE]);
  try {
    const found = await client.query<{ comment: string | null }>(
      'SELECT obj_description(to_regclass($1), $2) AS comment',
      [TABLE, 'pg_class'],
    );
    if (found.rows[0]?.comment === SHAPE) {
      const counted = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE}`);
      if (Number(counted.rows[0]?.n) === ROWS) {
        console.log(`Reusing ${TABLE} (${ROWS} rows).`);
        return;
      }
    }
    const started = performance.now();
    await client.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await client.query(
      `CREATE TABLE ${TABLE} (
         id bigint PRIMARY KEY,
         created_at timestamptz NOT NULL,
         name text NOT NULL,
         payload text NOT NULL
       )`,
    );
    // g is the write order. created_at rises with g, DISTINCT_TIMESTAMPS values
    // 25.920123 s apart (microseconds included); id is a permutation of g
    // (48271 is invertible modulo the prime 1000003), so ids within a run of
    // ties are not in write order.
    await client.query(
      `INSERT INTO ${TABLE} (id, created_at, name, payload)
       SELECT (g::bigint * 48271) % 1000003,
              timestamptz '2026-01-01 00:00:00+00'
                + ((g - 1)::bigint * ${DISTINCT_TIMESTAMPS} / ${ROWS}) * interval '25.920123 seconds',
              'customer ' || g,
              md5(g::text) || md5((g * 3)::text)
       FROM generate_series(1, ${ROWS}) AS g`,
    );
    await client.query(`CREATE INDEX ${TABLE}_created_at_id ON ${TABLE} (created_at, id)`);
    // VACUUM sets hint bits and the visibility map, as on a settled table; ANALYZE gives the planner its statistics.
    await client.query(`VACUUM (ANALYZE) ${TABLE}`);
    await client.query(`COMMENT ON TABLE ${TABLE} IS '${SHAPE}'`);
    const seconds = (performance.now() - started) / 1000;
    console.log(`Seeded ${TABLE}: ${ROWS} rows in ${seconds.toFixed(1)} s.`);
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [TABLE]);
  }
}

interface Point {
  page: number;
  offsetSql: string;
  keysetText: string;
  keysetValues: unknown[];
  request: { after?: unknown[]; limit: number };
  tieSplit: boolean;
}

async function point(page: number): Promise<Point> {
  const offset = (page - 1) * PAGE_SIZE;
  const offsetSql = `SELECT ${COLUMNS} FROM ${TABLE} ORDER BY created_at DESC, id DESC OFFSET ${offset} LIMIT ${PAGE_SIZE}`;
  let after: unknown[] | undefined;
  let tieSplit = false;
  if (offset > 0) {
    // The predecessor and the page's first row, read once, outside the timing.
    const edge = await client.query<Row>({
      text: `SELECT id, created_at FROM ${TABLE} ORDER BY created_at DESC, id DESC OFFSET ${offset - 1} LIMIT 2`,
      types: asText,
    });
    const [last, first] = edge.rows;
    if (last === undefined || first === undefined) throw new Error(`page ${page} is past the end`);
    after = [last.created_at, last.id];
    tieSplit = last.created_at === first.created_at;
  }
  const request = after === undefined ? { limit: PAGE_SIZE } : { after, limit: PAGE_SIZE };
  const q = keysetSql(sort, request);
  const keysetText = `SELECT ${COLUMNS} FROM ${TABLE} WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`;
  return { page, offsetSql, keysetText, keysetValues: q.params, request, tieSplit };
}

async function runOffset(p: Point): Promise<Row[]> {
  return (await client.query<Row>({ text: p.offsetSql, types: asText })).rows;
}

async function runKeyset(p: Point): Promise<Row[]> {
  const { rows } = await client.query<Row>({
    text: p.keysetText,
    values: p.keysetValues,
    types: asText,
  });
  const page = keysetPage(rows, sort, p.request);
  // Page 50 000 is the last: 1 000 000 rows make 50 000 pages of 20.
  if (page.hasNext !== p.page < ROWS / PAGE_SIZE || page.hasPrev !== p.page > 1) {
    throw new Error(`keyset page ${p.page}: hasNext ${page.hasNext}, hasPrev ${page.hasPrev}`);
  }
  return page.items;
}

function check(p: Point, offsetRows: Row[], keysetRows: Row[]): void {
  const a = offsetRows.map((r) => r.id).join(',');
  const b = keysetRows.map((r) => r.id).join(',');
  if (offsetRows.length !== PAGE_SIZE || a !== b) {
    throw new Error(`page ${p.page}: keyset ids [${b}] differ from offset ids [${a}]`);
  }
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function p95(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)] ?? Number.NaN;
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}

interface Explained {
  plan: string;
  rowsScanned: number;
  hit: number;
  read: number;
  planningMs: number;
  executionMs: number;
}

async function explain(text: string, values: unknown[]): Promise<Explained> {
  // TIMING OFF: per-node clocks would cost more than the 1 000 000-row scan itself.
  const { rows } = await client.query<{
    'QUERY PLAN': [{ Plan: PlanNode; 'Planning Time': number; 'Execution Time': number }];
  }>(`EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ${text}`, values);
  const top = rows[0]?.['QUERY PLAN'][0];
  if (top === undefined) throw new Error('EXPLAIN returned no plan');
  const names: string[] = [];
  let rowsScanned = 0;
  const walk = (node: PlanNode): void => {
    const scan = node['Node Type'].endsWith('Scan');
    const backward = node['Scan Direction'] === 'Backward' ? ' Backward' : '';
    names.push(
      node['Index Name']
        ? `${node['Node Type']}${backward} on ${node['Index Name']}`
        : node['Node Type'],
    );
    if (scan) rowsScanned += node['Actual Rows'] * node['Actual Loops'];
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(top.Plan);
  return {
    plan: names.join(' → '),
    rowsScanned,
    hit: top.Plan['Shared Hit Blocks'],
    read: top.Plan['Shared Read Blocks'],
    planningMs: top['Planning Time'],
    executionMs: top['Execution Time'],
  };
}

try {
  await seed();
  const points: Point[] = [];
  for (const page of PAGES) points.push(await point(page));
  const results: Array<{ p: Point; offset: number[]; keyset: number[] }> = [];
  for (const p of points) {
    // Correctness first: the keyset page is the offset page, row for row.
    check(p, await runOffset(p), await runKeyset(p));
    for (let i = 0; i < WARMUP; i++) {
      await runOffset(p);
      await runKeyset(p);
    }
    const offset: number[] = [];
    const keyset: number[] = [];
    const started = performance.now();
    while (
      offset.length < repeats &&
      (offset.length < minRepeats || performance.now() - started < budgetMs)
    ) {
      offset.push(await timed(() => runOffset(p)));
      for (let k = 0; k < KEYSET_PER_REPEAT; k++) keyset.push(await timed(() => runKeyset(p)));
    }
    results.push({ p, offset, keyset });
  }

  const keysetFirst = median(results[0]?.keyset ?? []);
  console.log(
    `\nPage size ${PAGE_SIZE}, ORDER BY created_at DESC, id DESC over ${ROWS} rows; ` +
      'round trip on one connection, ms (median and p95 of the timed repetitions, after warm-up).\n',
  );
  console.log(
    table(
      [
        'page',
        'rows skipped by OFFSET',
        'repetitions (offset, keyset)',
        'offset median ms',
        'offset p95 ms',
        'keyset median ms',
        'keyset p95 ms',
        'offset / keyset',
        'keyset / keyset page 1',
        'boundary inside a run of ties',
        'same ids',
      ],
      results.map(({ p, offset, keyset }) => [
        p.page,
        (p.page - 1) * PAGE_SIZE,
        `${offset.length}, ${keyset.length}`,
        median(offset),
        p95(offset),
        median(keyset),
        p95(keyset),
        `${(median(offset) / median(keyset)).toFixed(1)}×`,
        `${(median(keyset) / keysetFirst).toFixed(2)}×`,
        p.page === 1 ? '-' : p.tieSplit ? 'yes' : 'no',
        'yes',
      ]),
    ),
  );

  console.log(
    '\nEXPLAIN (ANALYZE, BUFFERS, TIMING OFF) of each query: rows produced by the scan, ' +
      'shared buffers (8 KB pages) hit and read, server planning and execution time.\n',
  );
  const explained: Array<Array<string | number>> = [];
  for (const p of points) {
    for (const [kind, text, values] of [
      ['offset', p.offsetSql, []],
      ['keyset', p.keysetText, p.keysetValues],
    ] as const) {
      const e = await explain(text, [...values]);
      explained.push([
        p.page,
        kind,
        e.plan,
        e.rowsScanned,
        e.hit,
        e.read,
        e.planningMs,
        e.executionMs,
      ]);
    }
  }
  console.log(
    table(
      [
        'page',
        'query',
        'plan',
        'rows scanned',
        'buffers hit',
        'buffers read',
        'planning ms',
        'execution ms',
      ],
      explained,
    ),
  );

  const worst = Math.max(...results.map((r) => median(r.keyset) / keysetFirst));
  const holds = worst <= 2;
  console.log(
    `\nGoal (keyset within 2× of page 1 at every depth): ${holds ? 'holds' : 'does not hold'} ` +
      `(worst ${worst.toFixed(2)}×).`,
  );
  console.log(
    process.env.BENCH_PAGES_DROP === '1'
      ? `Dropping ${TABLE}.`
      : `${TABLE} is left for the next run (DROP TABLE ${TABLE}; removes it).`,
  );
  if (process.env.BENCH_PAGES_DROP === '1') await client.query(`DROP TABLE ${TABLE}`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await client.end();
}
