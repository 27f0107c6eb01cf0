import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/core/link.js';
import { createCursorCodec } from '../../src/pagination/cursor.js';
import { type KeysetPaginator, keysetPagination } from '../../src/pagination/keyset-pages.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';

interface Row {
  id: string;
  created_at: string;
  rank: number | null;
  name: string;
}

const TABLE = `restwell_pages_${process.pid}`;
// timestamptz and timestamp as text: a Date would keep milliseconds only.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 1184 || oid === 1114 ? (v: string) => v : pg.types.getTypeParser(oid, format),
};

describe.runIf(services.postgres)('keysetPagination on PostgreSQL', () => {
  let pool: pg.Pool;
  let rows: Row[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool.query(
      `CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, rank int, name text COLLATE "C" NOT NULL)`,
    );
    // 300 rows: microsecond timestamps with ties, ids beyond 2^53, NULL ranks.
    await pool.query(
      `INSERT INTO ${TABLE}
       SELECT 9007199254740000 + g,
              timestamptz '2026-01-01 00:00:00Z' + (g / 4) * interval '1 second' + (g % 3) * interval '1 microsecond',
              CASE WHEN g % 5 = 0 THEN NULL ELSE g % 7 END,
              (ARRAY['Ada','Alan','Grace','é','😀'])[1 + g % 5]
       FROM generate_series(1, 300) g`,
    );
    const all = await pool.query({ text: `SELECT * FROM ${TABLE}`, types });
    // The in-memory side reads timestamps as the same text, normalised to RFC 3339 for sorting.
    rows = all.rows.map((r: Row) => ({ ...r }));
  });

  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool?.end();
  });

  function pagesFor(): KeysetPaginator {
    return keysetPagination({
      cursors: createCursorCodec({ secrets: ['s'.repeat(32)] }),
      sortable: {
        createdAt: { column: 'created_at', key: 'created_at' },
        rank: { column: 'rank', nullable: true },
        name: { column: 'name' },
      },
      unique: { column: 'id', type: 'bigint' },
      defaultSort: '-createdAt',
      window: { field: 'createdAt' },
      maxLimit: 300,
    });
  }

  const adapter = adapters[0];
  function apps() {
    const pages = pagesFor();
    const sqlApp = adapter!.build({
      routes: [
        {
          method: 'get',
          path: '/rows',
          use: [pages],
          handler: async ({ context }) => {
            const page = pages.request(context);
            const q = pages.sql(page);
            const res = await pool.query({
              text: `SELECT * FROM ${TABLE} WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
              values: q.params,
              types,
            });
            return { body: pages.respond(context, pages.result(res.rows as Row[], page)) };
          },
        },
      ],
    });
    return { sqlApp, pages };
  }

  async function walkIds(app: ReturnType<typeof apps>['sqlApp'], url: string, rel: string) {
    const ids: string[] = [];
    let next: string | undefined = url;
    for (let i = 0; next !== undefined && i < 400; i++) {
      const res: request.Response = await request(app).get(next).expect(200);
      const page = res.body.data.map((r: Row) => r.id);
      ids.push(...(rel === 'prev' ? page.reverse() : page));
      next = parseLinkHeader(res.headers.link).find((l) => l.rel.includes(rel))?.href;
    }
    return rel === 'prev' ? ids.reverse() : ids;
  }

  it.each([
    ['-createdAt', ''],
    ['createdAt', '&since=2026-01-01T00:00:10.000001Z&until=2026-01-01T00:00:40Z'],
    ['rank,-name', ''],
    ['-rank,createdAt', '&since=2026-01-01T00:00:05Z'],
    ['name,-createdAt', '&until=2026-01-01T01:00:30+01:00'],
  ])(
    'sort %s%s gives the same rows as the array, both ways, microseconds and bigints exact',
    async (sort, window) => {
      const { sqlApp, pages } = apps();
      const url = `/rows?sort=${sort}&limit=13${window.replaceAll('+', '%2B')}`;
      const forward = await walkIds(sqlApp, url, 'next');
      expect(new Set(forward).size).toBe(forward.length);

      // The same request answered from the array.
      const ctx = {
        request: {
          path: '/rows',
          query: new URLSearchParams(`sort=${sort}&limit=300${window.replaceAll('+', '%2B')}`),
        },
        state: {},
      } as unknown as Parameters<KeysetPaginator['request']>[0];
      const expected = pages.array(rows, pages.request(ctx)).items.map((r) => r.id);
      expect(forward).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);

      const first = await request(sqlApp).get(url).expect(200);
      const last = parseLinkHeader(first.headers.link).find((l) => l.rel.includes('last'))?.href;
      const backward = await walkIds(sqlApp, last as string, 'prev');
      expect(backward).toEqual(expected);
    },
  );
});
