/**
 * An audit log in a PostgreSQL table, shared by every process. Each append
 * takes a transaction-scoped advisory lock on its log, reads the head, and
 * inserts the next record: appends to one log are serialized across
 * processes, so the chain never forks. The record is stored as the exact
 * canonical JSON text that was hashed (jsonb would reorder and renormalise
 * it), plus its log, sequence number and hash as columns for queries.
 *
 * @module
 */

import type { Pool } from 'pg';
import { invalidOption } from '../core/errors.js';
import { checkTableName } from '../stores/postgres/identifier.js';
import {
  type AuditSink,
  type ChainedRecord,
  type ChainHead,
  chainAll,
  recordText,
} from './chain.js';

/** The DDL of the audit table (migrations/postgres/003_restwell_audit.sql). */
export function auditTableSql(table = 'restwell_audit'): string {
  const t = checkTableName('audit', table);
  return `CREATE TABLE IF NOT EXISTS ${t} (
  log        text NOT NULL,
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  record     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (log, seq)
);
`;
}

/** Creates the audit table if it does not exist. Call it deliberately, from a migration step. */
export async function migrateAudit(pool: Pool, options: { table?: string } = {}): Promise<void> {
  await pool.query(auditTableSql(options.table));
}

/** Appends audit records to a PostgreSQL table (see the module's comment). */
export function postgresSink(pool: Pool, options: { table?: string } = {}): AuditSink {
  if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function') {
    invalidOption('audit', 'pool', 'a pg Pool', pool);
  }
  const table = checkTableName('audit', options.table ?? 'restwell_audit');

  /** One transaction: lock the log, read its head, insert every record, commit. */
  async function appendRecords(
    log: string,
    makers: ReadonlyArray<(head: ChainHead | undefined) => ChainedRecord>,
  ): Promise<ChainedRecord[]> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `${table}:${log}`,
      ]);
      // Ordered by the bigint column: by an alias of its text, "9" would sort after "10".
      const { rows } = await client.query<{ head_seq: string; hash: string }>(
        `SELECT seq::text AS head_seq, hash FROM ${table} WHERE log = $1 ORDER BY seq DESC LIMIT 1`,
        [log],
      );
      const last = rows[0];
      const records = chainAll(
        last === undefined ? undefined : { seq: Number(last.head_seq), hash: last.hash },
        makers,
      );
      const values: unknown[] = [];
      const tuples = records.map((r) => {
        values.push(log, r.seq, r.hash, recordText(r));
        const n = values.length;
        return `($${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
      });
      await client.query(
        `INSERT INTO ${table} (log, seq, hash, record) VALUES ${tuples.join(', ')}`,
        values,
      );
      await client.query('COMMIT');
      return records;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  return {
    name: 'postgres',
    async append(log, make) {
      const [record] = await appendRecords(log, [make]);
      return record as ChainedRecord;
    },
    appendMany: (log, makers) => appendRecords(log, makers),
  };
}

/**
 * The stored text of every record of a log in the table, by sequence number,
 * read a page at a time (for `verifyAuditStream()`, in constant memory).
 */
export async function* streamPostgresLog(
  pool: Pool,
  log: string,
  options: { table?: string } = {},
): AsyncGenerator<string> {
  const table = checkTableName('audit', options.table ?? 'restwell_audit');
  // Keyset pages; the first has no lower bound, so that no row is passed over.
  let after: string | null = null;
  for (;;) {
    const { rows }: { rows: Array<{ seq_text: string; record: string }> } = await pool.query(
      `SELECT seq::text AS seq_text, record FROM ${table}
        WHERE log = $1 AND ($2::bigint IS NULL OR seq > $2::bigint) ORDER BY seq LIMIT 1000`,
      [log, after],
    );
    for (const row of rows) yield row.record;
    if (rows.length < 1000) return;
    after = (rows[rows.length - 1] as { seq_text: string }).seq_text;
  }
}

/** Every record of a log in the table, by sequence number (for `verifyAuditLog()`). */
export async function readPostgresLog(
  pool: Pool,
  log: string,
  options: { table?: string } = {},
): Promise<ChainedRecord[]> {
  const out: ChainedRecord[] = [];
  for await (const text of streamPostgresLog(pool, log, options)) {
    out.push(JSON.parse(text) as ChainedRecord);
  }
  return out;
}
