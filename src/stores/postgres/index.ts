/**
 * PostgresStore: the Store contract on PostgreSQL through the user's own `pg`
 * Pool. Each operation is one SQL statement, atomic on its own (no
 * read-then-write races), with expiry judged by the database clock.
 *
 * Its table is created by an explicit migration, never silently: run
 * `migrate(pool)` from your deploy step, or paste `storeTableSql()` (also
 * shipped as `migrations/postgres/001_restwell_store.sql`) into your own
 * migration tool. Expired rows are invisible at once and removed by `sweep()`.
 *
 * Exported from `restwell/postgres`. pg is an optional peer dependency: this
 * file only uses the pool it is given.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { PostgresStore, migrate } from 'restwell/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);                    // once, at deploy time
 * const store = new PostgresStore({ pool });
 * setInterval(() => store.sweep(), 60_000).unref();
 * ```
 */
import type { Pool } from 'pg';
import { invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { assertTtl, bounded, type Store, type StoreOptions } from '../types.js';

export interface PostgresStoreOptions extends StoreOptions {
  /** Your `pg` Pool. The store never ends it. */
  pool: Pool;
  /** Table name, optionally schema-qualified. @default 'restwell_store' */
  table?: string;
}

const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}(\.[a-zA-Z_][a-zA-Z0-9_]{0,62})?$/;

function checkTable(table: unknown): string {
  if (typeof table !== 'string' || !IDENTIFIER.test(table)) {
    invalidOption(
      'postgres',
      'table',
      'a table name (letters, digits, _; optionally schema.table)',
      table,
    );
  }
  return table;
}

/** The DDL of the store's table. */
export function storeTableSql(table = 'restwell_store'): string {
  const t = checkTable(table);
  const index = `${t.replace('.', '_')}_expires_at_idx`;
  return `CREATE TABLE IF NOT EXISTS ${t} (
  key        text PRIMARY KEY,
  value      text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${index.includes('.') ? index.split('.')[1] : index} ON ${t} (expires_at);
`;
}

/** Creates the store's table if it does not exist. Call it deliberately, from a migration step. */
export async function migrate(pool: Pool, options: { table?: string } = {}): Promise<void> {
  await pool.query(storeTableSql(options.table));
}

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly evicts = false;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly table: string;
  private readonly pool: Pool;
  private readonly sql: Record<
    'get' | 'set' | 'add' | 'addOrGet' | 'cas' | 'cad' | 'del' | 'sweep',
    string
  >;

  constructor(options: PostgresStoreOptions) {
    const {
      pool,
      table = 'restwell_store',
      prefix = 'rw:',
      timeoutMs = 1000,
    } = options ?? ({} as PostgresStoreOptions);
    if (pool === null || typeof pool !== 'object' || typeof (pool as Pool).query !== 'function') {
      invalidOption('postgres', 'pool', 'a pg Pool', pool);
    }
    if (typeof prefix !== 'string') invalidOption('postgres', 'prefix', 'a string', prefix);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      invalidOption('postgres', 'timeoutMs', 'a positive number', timeoutMs);
    const t = checkTable(table);
    this.pool = pool;
    this.table = t;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    const ttl = `now() + ($3::double precision * interval '1 millisecond')`;
    this.sql = {
      get: `SELECT value FROM ${t} WHERE key = $1 AND expires_at > now()`,
      set: `INSERT INTO ${t} (key, value, expires_at) VALUES ($1, $2, ${ttl})
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      // An expired row counts as absent: the conflict branch only fires for it.
      add: `INSERT INTO ${t} AS s (key, value, expires_at) VALUES ($1, $2, ${ttl})
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
            WHERE s.expires_at <= now() RETURNING 1`,
      // The insert and the read of what it lost to, in one statement. `added` tells
      // the two apart; a row committed by a concurrent insert after this
      // statement's snapshot shows as neither, and is read again.
      addOrGet: `WITH ins AS (
              INSERT INTO ${t} AS s (key, value, expires_at) VALUES ($1, $2, ${ttl})
              ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
              WHERE s.expires_at <= now() RETURNING 1)
            SELECT EXISTS (SELECT 1 FROM ins) AS added,
                   (SELECT value FROM ${t} WHERE key = $1 AND expires_at > now()) AS current`,
      cas: `UPDATE ${t} SET value = $2, expires_at = now() + ($4::double precision * interval '1 millisecond')
            WHERE key = $1 AND value = $3 AND expires_at > now()`,
      cad: `DELETE FROM ${t} WHERE key = $1 AND value = $2 AND expires_at > now()`,
      del: `DELETE FROM ${t} WHERE key = $1 RETURNING expires_at > now() AS live`,
      sweep: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= now() LIMIT $1)`,
    };
  }

  private async query(
    operation: string,
    text: string,
    values: unknown[],
  ): Promise<{ rowCount: number | null; rows: Array<Record<string, unknown>> }> {
    // query_timeout makes pg abandon the query and free the client; the bound covers connecting too.
    return bounded(
      operation,
      this.timeoutMs,
      () => this.pool.query({ text, values, query_timeout: this.timeoutMs } as never),
      (err) =>
        (err as { code?: string }).code === '42P01'
          ? new StoreUnavailableError(
              `The table ${this.table} does not exist: run migrate(pool) from 'restwell/postgres' (or its SQL) first.`,
              { cause: err },
            )
          : new StoreUnavailableError(`PostgreSQL ${operation} failed.`, { cause: err }),
    );
  }

  async get(key: string): Promise<string | null> {
    const r = await this.query('get', this.sql.get, [this.prefix + key]);
    return (r.rows[0]?.value as string | undefined) ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs);
    await this.query('set', this.sql.set, [this.prefix + key, value, ttlMs]);
  }

  async add(key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs);
    const r = await this.query('add', this.sql.add, [this.prefix + key, value, ttlMs]);
    return r.rowCount === 1;
  }

  async addOrGet(key: string, value: string, ttlMs: number): Promise<string | null> {
    assertTtl(ttlMs);
    const r = await this.query('addOrGet', this.sql.addOrGet, [this.prefix + key, value, ttlMs]);
    const row = r.rows[0];
    if (row?.added === true) return null;
    if (typeof row?.current === 'string') return row.current;
    // Lost to an insert this statement's snapshot could not see: read it now.
    const again = await this.get(key);
    return again ?? (await this.addOrGet(key, value, ttlMs));
  }

  async compareAndSet(
    key: string,
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    assertTtl(ttlMs);
    const r = await this.query('compareAndSet', this.sql.cas, [
      this.prefix + key,
      value,
      expected,
      ttlMs,
    ]);
    return r.rowCount === 1;
  }

  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    const r = await this.query('compareAndDelete', this.sql.cad, [this.prefix + key, expected]);
    return r.rowCount === 1;
  }

  async delete(key: string): Promise<boolean> {
    const r = await this.query('delete', this.sql.del, [this.prefix + key]);
    return r.rows[0]?.live === true;
  }

  /** Deletes up to `limit` expired rows; returns how many. Run it periodically. */
  async sweep(limit = 1000): Promise<number> {
    const r = await this.query('sweep', this.sql.sweep, [limit]);
    return r.rowCount ?? 0;
  }
}
