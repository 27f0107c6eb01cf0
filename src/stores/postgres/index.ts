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
import type { Pool, PoolClient } from 'pg';
import {
  checkOptions,
  invalidOption,
  StoreTimeoutError,
  StoreUnavailableError,
} from '../../core/errors.js';
import { assertTtl, type Store, type StoreOptions } from '../types.js';
import { type CancellableClient, cancelBackend } from './cancel.js';
import { checkTableName } from './identifier.js';

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions extends StoreOptions {
  /** Your `pg` Pool. The store never ends it. Required. */
  pool: Pool;
  /** Table name, optionally schema-qualified. @default 'restwell_store' */
  table?: string;
}

const OPTIONS = ['pool', 'table', 'prefix', 'timeoutMs'] as const;
const DEFAULT_TABLE = 'restwell_store';

/** The DDL of the store's table. */
export function storeTableSql(table = DEFAULT_TABLE): string {
  const t = checkTableName('postgres', table);
  const index = `${t.replace('.', '_')}_expires_at_idx`;
  return `CREATE TABLE IF NOT EXISTS ${t} (
  key        text PRIMARY KEY,
  value      text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at);
`;
}

/** Creates the store's table if it does not exist. Call it deliberately, from a migration step. */
export async function migrate(pool: Pool, options: { table?: string } = {}): Promise<void> {
  checkOptions('postgres', options, ['table']);
  await pool.query(storeTableSql(options.table));
}

/** How to call `migrate` for this table, for error messages. */
function migrateCall(table: string): string {
  return table === DEFAULT_TABLE ? 'migrate(pool)' : `migrate(pool, { table: '${table}' })`;
}

interface Rows {
  rowCount: number | null;
  rows: Array<Record<string, unknown>>;
}

/**
 * The Store on PostgreSQL through the application's own pg Pool: one statement per operation,
 * durable, never evicts. Needs its table (`migrate(pool)` or migrations/postgres).
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  /** A table never drops a live row: PostgresStore is a ledger. */
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
    checkOptions('postgres', options, OPTIONS);
    const {
      pool,
      table = DEFAULT_TABLE,
      prefix = 'rw:',
      timeoutMs = 1000,
    } = options ?? ({} as PostgresStoreOptions);
    if (
      pool === null ||
      typeof pool !== 'object' ||
      typeof (pool as Pool).query !== 'function' ||
      typeof (pool as Pool).connect !== 'function'
    ) {
      invalidOption('postgres', 'pool', 'a pg Pool', pool);
    }
    if (typeof prefix !== 'string') invalidOption('postgres', 'prefix', 'a string', prefix);
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)
      invalidOption('postgres', 'timeoutMs', 'a positive number', timeoutMs);
    const t = checkTableName('postgres', table);
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
      // A row an add/addOrGet/set is reviving right now is locked by it: SKIP
      // LOCKED passes over it instead of waiting and then deleting it. Without
      // that, the DELETE would wait for the revival to commit and then re-check
      // only its own WHERE on the new row version, `key IN (...)`, which still
      // holds: the revived lease would vanish and a third caller could claim
      // it. The outer `expires_at <= now()` makes the DELETE judge the row it
      // actually deletes, whatever the subquery saw.
      sweep: `DELETE FROM ${t} WHERE key IN (
                SELECT key FROM ${t} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
              AND expires_at <= now()`,
    };
  }

  /**
   * Runs one statement within `timeoutMs`, and makes a timeout mean that the
   * statement is over: it never lands after `StoreTimeoutError` is thrown.
   *
   * - Waiting for a connection counts. If the deadline passes first, the
   *   connection is handed back unused when it comes, and nothing is sent.
   * - A statement in flight at the deadline is cancelled on the server
   *   (`cancelBackend`), and the error is thrown once the server has ended it
   *   (cancelled, or finished just before the cancel reached it), which takes
   *   at most a further `timeoutMs`. Its connection is then closed rather than
   *   returned to the pool, so a cancel can never hit someone else's next
   *   statement on it.
   *
   * Why a cancel rather than `statement_timeout`: PostgreSQL takes that per
   * session or per transaction only. Set on a session, it would leak into the
   * application's own queries on a shared pool; `SET LOCAL` inside a
   * transaction costs three round trips instead of one. And the caller's
   * deadline includes the wait for a connection, which the server cannot see,
   * so a server-side limit of `timeoutMs` could still let a statement land
   * after the caller was told it timed out. The limit of a cancel: it needs the
   * server to be reachable. When it is not (the error is then thrown after the
   * second `timeoutMs` anyway), `statement_timeout` set on the pool
   * (`new pg.Pool({ statement_timeout })`) is the server-side backstop.
   */
  private query(operation: string, text: string, values: unknown[]): Promise<Rows> {
    return new Promise<Rows>((resolve, reject) => {
      let settled = false;
      let client: PoolClient | undefined;
      let statementOver: (() => void) | undefined;
      const over = new Promise<void>((r) => {
        statementOver = r;
      });
      const finish = (err: Error | undefined, result?: Rows) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === undefined) resolve(result!);
        else reject(err);
      };
      const timer = setTimeout(() => {
        const timeout = new StoreTimeoutError(operation, this.timeoutMs);
        if (client === undefined) return finish(timeout);
        settled = true; // the statement's own outcome no longer answers the caller
        const inFlight = client;
        const grace = new Promise<void>((r) => setTimeout(r, this.timeoutMs).unref());
        void Promise.race([
          cancelBackend(inFlight as unknown as CancellableClient, this.timeoutMs).then(() => over),
          grace,
        ]).then(() => {
          inFlight.release(true);
          reject(timeout);
        });
      }, this.timeoutMs);
      this.pool.connect().then(
        (connected) => {
          if (settled) {
            // Timed out while waiting for a connection: send nothing.
            connected.release();
            return;
          }
          client = connected;
          connected.query({ text, values }).then(
            (result) => {
              statementOver!();
              if (settled) return; // timed out: the timer's path releases it
              connected.release();
              finish(undefined, result as Rows);
            },
            (err: unknown) => {
              statementOver!();
              if (settled) return;
              // A connection whose statement failed is not reused (as pool.query does).
              connected.release(true);
              finish(this.failure(operation, err));
            },
          );
        },
        (err: unknown) => finish(this.failure(operation, err)),
      );
    });
  }

  private failure(operation: string, err: unknown): Error {
    return (err as { code?: string } | null)?.code === '42P01'
      ? new StoreUnavailableError(
          `The table ${this.table} does not exist: run ${migrateCall(this.table)} from 'restwell/postgres' (or its SQL) first.`,
          { cause: err },
        )
      : new StoreUnavailableError(`PostgreSQL ${operation} failed.`, { cause: err });
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

/** The longest TTL this store (and every other) accepts: ten years. */
export { MAX_TTL_MS } from '../types.js';
