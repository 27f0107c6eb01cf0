/**
 * `PostgresEndpointStore`: the durable {@link EndpointStore}, shared by every
 * process on the same table (`migrateWebhookDelivery(pool)` creates it).
 * `update` locks the row (`SELECT … FOR UPDATE` in a transaction) and calls
 * `change` exactly once on what it read, so two concurrent rotations, or a
 * disable racing an enable, never lose a write.
 *
 * **The table holds signing secrets.** Each endpoint's secrets are stored as
 * given (the engine must sign with them, so they cannot be hashed), in a
 * `secrets` column of their own, apart from the rest of the record: protect
 * the table as you protect any secret (access to the database role, backups,
 * replicas), and grant a read-only or reporting role the other columns only
 * (`GRANT SELECT (id, record, created_at, updated_at) ON … TO reporting`).
 * Encryption at rest (the disk, the backups, or a column encrypted by your
 * KMS) is the operator's to set up; this store neither does it nor prevents it.
 *
 * pg is an optional peer dependency: this file only uses the pool it is given.
 */
import type { Pool } from 'pg';
import { checkOptions } from '../../core/errors.js';
import type { EndpointRecord, EndpointSecret, EndpointStore } from './endpoints.js';
import {
  callerCode,
  checkPool,
  checkTimeout,
  inTransaction,
  runQuery,
  type WebhookDeliveryTables,
  type WebhookDeliveryTablesOptions,
  webhookDeliveryTables,
} from './postgres-schema.js';

/** Options of {@link PostgresEndpointStore}. */
export interface PostgresEndpointStoreOptions extends WebhookDeliveryTablesOptions {
  /** Your `pg` Pool. The store never ends it. Required. */
  pool: Pool;
  /** Longest time one statement, or one lock wait, may take. @default 5000 */
  timeoutMs?: number;
}

interface Row {
  record: Omit<EndpointRecord, 'secrets'>;
  secrets: EndpointSecret[];
}

function fromRow(row: Row): EndpointRecord {
  const record = { ...row.record, secrets: row.secrets } as EndpointRecord;
  Object.freeze(record.eventTypes);
  Object.freeze(record.versions);
  Object.freeze(record.secrets);
  return Object.freeze(record);
}

/** The record without its secrets, and the secrets: two columns. */
function split(record: EndpointRecord): [string, string] {
  const { secrets, ...rest } = record;
  return [JSON.stringify(rest), JSON.stringify(secrets)];
}

/** The durable {@link EndpointStore} on PostgreSQL; see the module comment. */
export class PostgresEndpointStore implements EndpointStore {
  readonly timeoutMs: number;
  readonly tables: WebhookDeliveryTables;
  private readonly pool: Pool;

  constructor(options: PostgresEndpointStoreOptions) {
    const module = 'webhooks PostgresEndpointStore';
    checkOptions(module, options, ['pool', 'schema', 'prefix', 'timeoutMs']);
    const o = options ?? ({} as PostgresEndpointStoreOptions);
    this.pool = checkPool(module, o.pool);
    this.tables = webhookDeliveryTables(module, o);
    this.timeoutMs = checkTimeout(module, o.timeoutMs ?? 5000);
  }

  async insert(record: EndpointRecord): Promise<boolean> {
    const [rest, secrets] = split(record);
    const result = await runQuery(
      this.pool,
      this.timeoutMs,
      'endpointInsert',
      `INSERT INTO ${this.tables.endpoints} (id, record, secrets, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
      [record.id, rest, secrets, new Date(record.createdAt), new Date(record.updatedAt)],
    );
    return result.rowCount === 1;
  }

  async get(id: string): Promise<EndpointRecord | undefined> {
    if (typeof id !== 'string' || id.includes('\u0000')) return undefined;
    const { rows } = await runQuery<Row>(
      this.pool,
      this.timeoutMs,
      'endpointGet',
      `SELECT record, secrets FROM ${this.tables.endpoints} WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  /** Every endpoint, oldest first (as registered). */
  async list(): Promise<readonly EndpointRecord[]> {
    const { rows } = await runQuery<Row>(
      this.pool,
      this.timeoutMs,
      'endpointList',
      `SELECT record, secrets FROM ${this.tables.endpoints} ORDER BY created_at, id`,
    );
    return rows.map(fromRow);
  }

  async update(
    id: string,
    change: (current: EndpointRecord) => EndpointRecord,
  ): Promise<EndpointRecord | undefined> {
    if (typeof id !== 'string' || id.includes('\u0000')) return undefined;
    const t = this.tables.endpoints;
    return inTransaction(this.pool, this.timeoutMs, 'endpointUpdate', async (tx) => {
      const { rows } = await tx.query<Row>(
        `SELECT record, secrets FROM ${t} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (rows[0] === undefined) return undefined;
      const current = fromRow(rows[0]);
      // The id is the row's: a `change` that returns another id does not move the row.
      const next = { ...callerCode(() => change(current)), id };
      const [rest, secrets] = split(next);
      const updated = await tx.query<Row>(
        `UPDATE ${t} SET record = $2, secrets = $3, updated_at = $4 WHERE id = $1
         RETURNING record, secrets`,
        [id, rest, secrets, new Date(next.updatedAt)],
      );
      return fromRow(updated.rows[0]!);
    });
  }

  async delete(id: string): Promise<boolean> {
    if (typeof id !== 'string' || id.includes('\u0000')) return false;
    const result = await runQuery(
      this.pool,
      this.timeoutMs,
      'endpointDelete',
      `DELETE FROM ${this.tables.endpoints} WHERE id = $1`,
      [id],
    );
    return result.rowCount === 1;
  }
}
