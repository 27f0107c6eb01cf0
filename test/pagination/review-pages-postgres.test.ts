import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/core/context.js';
import { ValidationError } from '../../src/core/errors.js';
import { createCursorCodec } from '../../src/pagination/cursor.js';
import { type KeysetPaginator, keysetPagination } from '../../src/pagination/keyset-pages.js';
import { adapters } from '../helpers/apps.js';
import { services } from '../helpers/services.js';

interface Row {
  id: number;
  at: string;
}

const TABLE = `restwell_review_pages_${process.pid}`;
// timestamptz as PostgreSQL's own text: a Date would keep milliseconds only.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 1184 ? (v: string) => v : pg.types.getTypeParser(oid, format),
};

/** Instants at and around the bounds the tests ask for, to the microsecond. */
const INSTANTS = [
  '0999-05-31T23:59:59.999999Z',
  '0999-06-01T00:00:00Z',
  '0999-06-01T00:00:00.000001Z',
  '1850-01-01T00:00:00Z',
  '2026-03-01T04:29:59.999999Z',
  '2026-03-01T04:30:00Z',
  '2026-03-01T04:30:00.000001Z',
  '2026-03-01T04:30:00.000002Z',
  '2026-03-01T04:30:00.000003Z',
  '2026-03-01T04:30:00.000004Z',
];

function contextFor(url: string): Context {
  const [path, search = ''] = url.split('?') as [string, string?];
  return { request: { path, query: new URLSearchParams(search) }, state: {} } as unknown as Context;
}

describe.runIf(services.postgres)('keysetPagination time windows on PostgreSQL', () => {
  let pool: pg.Pool;
  let kolkata: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
    // A session time zone with a half-hour offset, and local mean time (to the second) before 1880.
    kolkata = new pg.Pool({
      connectionString: services.databaseUrl,
      max: 1,
      options: '-c timezone=Asia/Kolkata',
    });
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, at timestamptz NOT NULL)`);
    for (const [i, at] of INSTANTS.entries()) {
      await pool.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [i + 1, at]);
    }
  });

  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await pool?.end();
    await kolkata?.end();
  });

  function pagesFor(): KeysetPaginator {
    return keysetPagination({
      cursors: createCursorCodec({ secrets: ['w'.repeat(32)] }),
      sortable: { at: { column: 'at' } },
      unique: 'id',
      defaultSort: 'at',
      window: { field: 'at' },
      maxLimit: 100,
    });
  }

  function appOn(db: () => pg.Pool, pages: KeysetPaginator) {
    return adapters[0]!.build({
      routes: [
        {
          method: 'get',
          path: '/rows',
          use: [pages],
          handler: async ({ context }) => {
            const page = pages.request(context);
            const q = pages.sql(page);
            const res = await db().query({
              text: `SELECT id, at FROM ${TABLE} WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
              values: q.params,
              types,
            });
            return { body: pages.respond(context, pages.result(res.rows as Row[], page)) };
          },
        },
      ],
    });
  }

  it.each([
    'since=0000-01-01T00:00:00Z',
    'since=0001-01-01T00:00:00%2B00:01',
    'until=9999-12-31T23:59:59-01:00',
    'until=0000-06-01T00:00:00Z',
  ])('refuses %s, which PostgreSQL cannot read, with a 400 and not a 500', async (query) => {
    const pages = pagesFor();
    const res = await request(appOn(() => pool, pages))
      .get(`/rows?${query}`)
      .expect(400)
      .expect('content-type', /application\/problem\+json/);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ in: 'query', pointer: `/${query.slice(0, 5)}` }),
    ]);
    // The array answers the same request the same way.
    expect(() => pages.request(contextFor(`/rows?${query}`))).toThrow(ValidationError);
    expect(res.body.errors[0].detail).toContain('0001 to 9999');
  });

  it.each([
    ['since=2026-03-01T10:00:00.000001%2B05:30&until=2026-03-01T04:30:00.000003-00:00', [7, 8]],
    ['since=2026-03-01t04:30:00z&until=2026-03-01T04:30:00.000001Z', [6]],
    ['since=2026-02-28T22:59:59.999999-05:30&until=2026-03-01T04:30:00.000000000Z', [5]],
    ['since=0999-06-01T00:00:00Z&until=0999-06-01T05:30:00.000002%2B05:30', [2, 3]],
    ['since=1850-01-01T05:53:00%2B05:53&until=1850-01-01T00:00:00.000001Z', [4]],
    ['since=1849-12-31T23:59:59Z&until=1850-01-01T00:00:01Z', [4]],
  ])(
    '%s gives rows %j, [since, until) to the microsecond, the same from SQL and the array in any session time zone',
    async (query, ids) => {
      for (const db of [pool, kolkata]) {
        const pages = pagesFor();
        const res = await request(appOn(() => db, pages))
          .get(`/rows?${query}&limit=100`)
          .expect(200);
        expect(res.body.data.map((r: Row) => r.id)).toEqual(ids);
        // The array over every row, as this session's text writes them.
        const all = await db.query({ text: `SELECT id, at FROM ${TABLE}`, types });
        const page = pages.request(contextFor(`/rows?${query}&limit=100`));
        expect(pages.array(all.rows as Row[], page).items.map((r) => r.id)).toEqual(ids);
      }
    },
  );
});
