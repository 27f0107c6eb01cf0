/**
 * `PostgresApiKeyStore`: API key records in a PostgreSQL table, through the
 * application's own `pg` Pool. One statement per operation, each atomic on
 * its own: `INSERT ... ON CONFLICT DO NOTHING` creates, `UPDATE ...
 * COALESCE(revoked_at, $2)` revokes once.
 *
 * The table is created by an explicit migration, never silently: run
 * `migrateApiKeys(pool)` from a deploy step, or apply
 * `migrations/postgres/005_restwell_api_keys.sql` (the same SQL as
 * `apiKeyTableSql()`) with your migration tool.
 *
 * Each statement is bounded by `timeoutMs`: past it the request is answered
 * 503, and the statement, if it still runs, is left to finish (a read, or an
 * idempotent revocation). Set `statement_timeout` on the pool as the
 * server-side bound.
 *
 * Exported from `restwell/auth/postgres`. pg is an optional peer dependency:
 * this file only uses the pool it is given.
 */
import type { Pool } from 'pg';
import { checkOptions, invalidOption, StoreUnavailableError } from '../core/errors.js';
import { checkTableName } from '../stores/postgres/identifier.js';
import { bounded } from '../stores/types.js';
import type { ApiKeyRecord, ApiKeyStore } from './api-keys.js';

const DEFAULT_TABLE = 'restwell_api_keys';

/** The DDL of the API key table (also shipped as migrations/postgres/005_restwell_api_keys.sql). */
export function apiKeyTableSql(table = DEFAULT_TABLE): string {
  const t = checkTableName('auth', table);
  const index = `${t.replace('.', '_')}_subject_idx`;
  return `CREATE TABLE IF NOT EXISTS ${t} (
  id          text PRIMARY KEY,
  hash        text NOT NULL,
  subject     text NOT NULL,
  name        text,
  roles       text[] NOT NULL DEFAULT '{}',
  scopes      text[] NOT NULL DEFAULT '{}',
  tenant      text,
  allowed_ips text[],
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS ${index} ON ${t} (subject);
`;
}

/** Creates the API key table if it does not exist. Call it deliberately, from a migration step. */
export async function migrateApiKeys(pool: Pool, options: { table?: string } = {}): Promise<void> {
  checkOptions('auth', options, ['table']);
  await pool.query(apiKeyTableSql(options.table));
}

/** Options of {@link PostgresApiKeyStore}. */
export interface PostgresApiKeyStoreOptions {
  /** Your `pg` Pool. The store never ends it. Required. */
  pool: Pool;
  /** Table name, optionally schema-qualified. @default 'restwell_api_keys' */
  table?: string;
  /** Longest time one statement may take. @default 1000 */
  timeoutMs?: number;
}

interface Row {
  id: string;
  hash: string;
  subject: string;
  name: string | null;
  roles: string[];
  scopes: string[];
  tenant: string | null;
  allowed_ips: string[] | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS =
  'id, hash, subject, name, roles, scopes, tenant, allowed_ips, created_at, expires_at, revoked_at';

function fromRow(row: Row): ApiKeyRecord {
  return {
    id: row.id,
    hash: row.hash,
    subject: row.subject,
    ...(row.name === null ? {} : { name: row.name }),
    roles: row.roles,
    scopes: row.scopes,
    ...(row.tenant === null ? {} : { tenant: row.tenant }),
    ...(row.allowed_ips === null ? {} : { allowedIps: row.allowed_ips }),
    createdAt: row.created_at.getTime(),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at.getTime() }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at.getTime() }),
  };
}

/**
 * API key records in PostgreSQL: durable, shared by every process, one
 * statement per operation. Needs its table (`migrateApiKeys(pool)`).
 *
 * @example
 * ```ts
 * await migrateApiKeys(pool);                 // once, at deploy time
 * const store = new PostgresApiKeyStore({ pool });
 * ```
 */
export class PostgresApiKeyStore implements ApiKeyStore {
  readonly kind = 'postgres';
  readonly table: string;
  readonly timeoutMs: number;
  private readonly pool: Pool;
  private readonly sql: Record<'get' | 'create' | 'revoke' | 'delete', string>;

  constructor(options: PostgresApiKeyStoreOptions) {
    checkOptions('auth PostgresApiKeyStore', options, ['pool', 'table', 'timeoutMs']);
    const {
      pool,
      table = DEFAULT_TABLE,
      timeoutMs = 1000,
    } = options ?? ({} as PostgresApiKeyStoreOptions);
    if (pool === null || typeof pool !== 'object' || typeof (pool as Pool).query !== 'function') {
      invalidOption('auth PostgresApiKeyStore', 'pool', 'a pg Pool', pool);
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      invalidOption('auth PostgresApiKeyStore', 'timeoutMs', 'a positive integer', timeoutMs);
    }
    const t = checkTableName('auth PostgresApiKeyStore', table);
    this.pool = pool;
    this.table = t;
    this.timeoutMs = timeoutMs;
    this.sql = {
      get: `SELECT ${COLUMNS} FROM ${t} WHERE id = $1`,
      create: `INSERT INTO ${t} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (id) DO NOTHING`,
      revoke: `UPDATE ${t} SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`,
      delete: `DELETE FROM ${t} WHERE id = $1`,
    };
  }

  private run(operation: string, text: string, values: unknown[]) {
    return bounded(
      operation,
      this.timeoutMs,
      () => this.pool.query<Row>(text, values),
      (err) =>
        (err as { code?: string } | null)?.code === '42P01'
          ? new StoreUnavailableError(
              `The table ${this.table} does not exist: run migrateApiKeys(pool) from 'restwell/auth/postgres' (or its SQL) first.`,
              { cause: err },
            )
          : new StoreUnavailableError(`PostgreSQL ${operation} failed.`, { cause: err }),
    );
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const result = await this.run('apiKeyGet', this.sql.get, [id]);
    const row = result.rows[0];
    return row === undefined ? null : fromRow(row);
  }

  async create(record: ApiKeyRecord): Promise<boolean> {
    const date = (ms: number | undefined) => (ms === undefined ? null : new Date(ms));
    const result = await this.run('apiKeyCreate', this.sql.create, [
      record.id,
      record.hash,
      record.subject,
      record.name ?? null,
      record.roles,
      record.scopes,
      record.tenant ?? null,
      record.allowedIps ?? null,
      new Date(record.createdAt),
      date(record.expiresAt),
      date(record.revokedAt),
    ]);
    return result.rowCount === 1;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    const result = await this.run('apiKeyRevoke', this.sql.revoke, [id, new Date(at)]);
    return result.rowCount === 1;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.run('apiKeyDelete', this.sql.delete, [id]);
    return result.rowCount === 1;
  }
}
