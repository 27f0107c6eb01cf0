/**
 * `type: 'timestamp'` sort columns: instants written with different offsets (and as Dates, and in
 * PostgreSQL's text form) are ordered as instants, to the microsecond, in memory exactly as a
 * `timestamptz` column orders them in PostgreSQL, pages and positions included.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { keysetArray, keysetSort, keysetSql } from '../../src/pagination/keyset.js';
import { services } from '../helpers/services.js';

const rows = [
  { id: 1, at: '2026-01-01T01:00:00+01:00' }, // 00:00:00Z
  { id: 2, at: '2026-01-01T00:30:00Z' },
  { id: 3, at: '2025-12-31T20:00:00.000001-04:00' }, // 00:00:00.000001Z
  { id: 4, at: '2026-01-01 00:15:00+00' }, // PostgreSQL's text form
  { id: 5, at: new Date('2026-01-01T00:10:00Z') },
  { id: 6, at: '2026-01-01T00:00:00-00:00' }, // 00:00:00Z, ties with 1
];
const byInstant = [1, 6, 3, 5, 4, 2];

describe("keyset columns of type 'timestamp'", () => {
  it('orders mixed offsets as instants, where text order would not', () => {
    const sort = keysetSort([{ column: 'at', type: 'timestamp' }], { unique: 'id' });
    const page = keysetArray(rows, sort, { limit: 10 });
    expect(page.items.map((r) => r.id)).toEqual(byInstant);
    const asText = keysetSort([{ column: 'at' }], { unique: 'id' });
    const textRows = rows.map((r) => ({ ...r, at: String(r.at) }));
    expect(keysetArray(textRows, asText, { limit: 10 }).items.map((r) => r.id)).not.toEqual(
      byInstant,
    );
  });

  it('pages from a position written in another offset, descending too', () => {
    const sort = keysetSort([{ column: 'at', type: 'timestamp', direction: 'desc' }], {
      unique: 'id',
    });
    const first = keysetArray(rows, sort, { limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual([2, 4]);
    const next = keysetArray(rows, sort, { limit: 10, after: ['2026-01-01T02:15:00+02:00', 4] });
    expect(next.items.map((r) => r.id)).toEqual([5, 3, 6, 1]);
  });

  it('refuses a value that is no instant, naming the column', () => {
    const sort = keysetSort([{ column: 'at', type: 'timestamp' }], { unique: 'id' });
    expect(() => keysetArray([{ id: 1, at: 'yesterday' }], sort, { limit: 1 })).toThrow(
      /"at" must be an instant/,
    );
    expect(() => keysetArray([{ id: 1, at: '2026-02-30T00:00:00Z' }], sort, { limit: 1 })).toThrow(
      TypeError,
    );
    expect(() =>
      keysetSort([{ column: 'at', type: 'date' as 'timestamp' }], { unique: 'id' }),
    ).toThrow(/auto, bigint or timestamp/);
  });

  it.runIf(services.postgres)('gives the order of a timestamptz column in PostgreSQL', async () => {
    const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
    const table = `restwell_ts_type_${process.pid}`;
    try {
      await pool.query(`CREATE TEMP TABLE ${table} (id int PRIMARY KEY, at timestamptz NOT NULL)`);
      for (const r of rows) {
        await pool.query(`INSERT INTO ${table} VALUES ($1, $2)`, [
          r.id,
          r.at instanceof Date ? r.at.toISOString() : r.at,
        ]);
      }
      for (const direction of ['asc', 'desc'] as const) {
        const sort = keysetSort([{ column: 'at', type: 'timestamp', direction }], { unique: 'id' });
        const q = keysetSql(sort, { limit: 10 });
        const sql = await pool.query<{ id: number }>(
          `SELECT id FROM ${table} WHERE ${q.where} ORDER BY ${q.orderBy} LIMIT ${q.limit}`,
          q.params,
        );
        const memory = keysetArray(rows, sort, { limit: 10 }).items.map((r) => r.id);
        expect(sql.rows.map((r) => r.id)).toEqual(memory);
      }
    } finally {
      await pool.end();
    }
  });
});
