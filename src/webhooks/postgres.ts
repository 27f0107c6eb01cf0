/**
 * The seed's safety net on PostgreSQL: a unique constraint on the event id,
 * inside the application's own transaction. {@link withWebhookEvent} records
 * the id and runs the application's writes in one transaction, so they commit
 * together or not at all; a concurrent duplicate's INSERT waits on the unique
 * index for the first transaction, then finds its row (a duplicate) or, if it
 * rolled back, processes the event itself. {@link upsertIfNewer} is the
 * ordering rule as one statement for the application's own tables.
 *
 * pg is an optional peer dependency: this file only uses the pool it is given.
 */
import type { Pool, PoolClient } from 'pg';
import { invalidOption } from '../core/errors.js';
import { checkTableName } from '../stores/postgres/identifier.js';
import { WebhookInFlightError } from './errors.js';
import { isPrintableId } from './verify.js';

const DEFAULT_TABLE = 'restwell_webhook_events';

/** The DDL of the webhook events table (also `migrations/postgres/004_restwell_webhook_events.sql`). */
export function webhookEventsTableSql(table = DEFAULT_TABLE): string {
  const t = checkTableName('webhooks', table);
  return `CREATE TABLE IF NOT EXISTS ${t} (
  source       text NOT NULL,
  event_id     text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS ${t.replace('.', '_')}_processed_at_idx ON ${t} (processed_at);
`;
}

/** Creates the webhook events table if it does not exist. Call it deliberately, from a migration step. */
export async function migrateWebhookEvents(
  pool: Pool,
  options: { table?: string } = {},
): Promise<void> {
  await pool.query(webhookEventsTableSql(options.table));
}

/** Which event a transaction records. */
export interface WebhookEventKey {
  /** The event's id (`webhook-id`, the payload's `id`). */
  id: string;
  /** Which sender it came from, when one table serves several. @default 'default' */
  source?: string;
}

/** Options of {@link withWebhookEvent}. */
export interface WithWebhookEventOptions {
  /** @default 'restwell_webhook_events' */
  table?: string;
  /**
   * How long a duplicate waits for the first delivery's transaction before it
   * gets `WebhookInFlightError` (409) instead. Bounds the claim only: `fn`'s own
   * statements keep the session's `lock_timeout`. @default 5000
   */
  lockTimeoutMs?: number;
}

/** What {@link withWebhookEvent} did. */
export type WebhookEventOutcome<T> =
  | { readonly processed: true; readonly result: T }
  /** The event id was recorded already: `fn` did not run. */
  | { readonly processed: false };

/**
 * Runs `fn` in a transaction that also records the event id, exactly once per
 * (source, id): a duplicate returns `{ processed: false }` without running
 * `fn`. If `fn` throws, everything rolls back, the record too, so the sender's
 * retry processes the event again.
 *
 * @example
 * ```ts
 * const outcome = await withWebhookEvent(pool, { id: webhook.id }, async (tx) => {
 *   await tx.query('UPDATE payments SET status = $1 WHERE id = $2', [event.status, event.paymentId]);
 * });
 * ```
 */
export async function withWebhookEvent<T>(
  pool: Pool,
  event: WebhookEventKey,
  fn: (tx: PoolClient) => Promise<T>,
  options: WithWebhookEventOptions = {},
): Promise<WebhookEventOutcome<T>> {
  const table = checkTableName('webhooks', options.table ?? DEFAULT_TABLE);
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs <= 0)
    invalidOption('webhooks', 'lockTimeoutMs', 'a positive integer', lockTimeoutMs);
  const id = event?.id;
  if (typeof id !== 'string' || !isPrintableId(id))
    invalidOption('webhooks', 'id', 'an event id of 1 to 256 printable ASCII characters', id);
  const source = event.source ?? 'default';
  if (typeof source !== 'string' || source.length === 0 || source.length > 128)
    invalidOption('webhooks', 'source', 'a non-empty string of at most 128 characters', source);
  const client = await pool.connect();
  // A checked-out client's 'error' events are ours (the pool listens to idle ones only):
  // unheard, a connection dying while `fn` awaits something else ends the process.
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  let claiming = true;
  const rollback = () =>
    client.query('ROLLBACK').catch((err: Error) => {
      broken ??= err;
    });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const begun = (await client.query(
          `BEGIN; SHOW lock_timeout; SET LOCAL lock_timeout = ${lockTimeoutMs}`,
        )) as unknown as Array<{ rows: Array<{ lock_timeout: string }> }>;
        const sessionLockTimeout = begun[1]?.rows[0]?.lock_timeout ?? '0';
        const inserted = await client.query(
          `INSERT INTO ${table} (source, event_id) VALUES ($1, $2) ON CONFLICT (source, event_id) DO NOTHING`,
          [source, id],
        );
        if (inserted.rowCount === 0) {
          await client.query('ROLLBACK');
          return { processed: false };
        }
        await client.query("SELECT set_config('lock_timeout', $1, true)", [sessionLockTimeout]);
        break;
      } catch (err) {
        await rollback();
        const code = (err as { code?: string }).code;
        // 40001 under REPEATABLE READ or SERIALIZABLE: the first transaction committed after
        // this one's snapshot. A second attempt, with a fresh snapshot, sees its row.
        if (code === '40001' && attempt === 1) continue;
        // 55P03 lock_not_available: the first delivery's transaction is still open.
        if (code === '55P03' || code === '40001') throw new WebhookInFlightError(1);
        throw err;
      }
    }
    claiming = false;
    const result = await fn(client);
    await client.query('COMMIT');
    return { processed: true, result };
  } catch (err) {
    if (!claiming) await rollback();
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** Deletes event ids recorded more than `olderThanMs` ago (at most `limit`); returns how many. */
export async function sweepWebhookEvents(
  pool: Pool,
  olderThanMs: number,
  options: { table?: string; limit?: number } = {},
): Promise<number> {
  const table = checkTableName('webhooks', options.table ?? DEFAULT_TABLE);
  // A non-positive age would delete the ids of events whose retries are still coming.
  if (typeof olderThanMs !== 'number' || !Number.isFinite(olderThanMs) || olderThanMs <= 0)
    invalidOption('webhooks', 'olderThanMs', 'a positive number of milliseconds', olderThanMs);
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit <= 0)
    invalidOption('webhooks', 'limit', 'a positive integer', limit);
  const r = await pool.query(
    `DELETE FROM ${table} WHERE (source, event_id) IN (
       SELECT source, event_id FROM ${table}
       WHERE processed_at < now() - ($1::double precision * interval '1 millisecond') LIMIT $2)`,
    [olderThanMs, limit],
  );
  return r.rowCount ?? 0;
}

/** Options of {@link upsertIfNewer}. */
export interface UpsertIfNewerOptions {
  /** The table, optionally schema-qualified. It needs a unique constraint on `key`'s column. */
  table: string;
  /** The column identifying the row, and its value. */
  key: { column: string; value: unknown };
  /** The column holding the position of the event that last wrote the row, and this event's. */
  position: { column: string; value: unknown };
  /** The other columns this event writes, by name. */
  set: Readonly<Record<string, unknown>>;
}

const COLUMN = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;

function column(option: string, name: unknown): string {
  if (typeof name !== 'string' || !COLUMN.test(name))
    invalidOption('webhooks', option, 'a column name (letters, digits, _)', name);
  return name;
}

/**
 * Inserts the row, or updates it only when this event's position is newer
 * than the stored one, in one statement (`INSERT ... ON CONFLICT DO UPDATE ...
 * WHERE stored IS NULL OR stored < incoming`): atomic, so concurrent deliveries
 * of one resource leave the newest state whatever order they commit in. A row
 * the application created without a position (NULL) takes the first event
 * (`NULL < x` is not true in SQL, and would refuse every event for ever). A
 * time goes in a `timestamptz` column, so that offsets compare as instants; a
 * text column would compare `+05:30` and `Z` as strings. `true` when the row
 * was written. Run it on a pool or inside `withWebhookEvent`'s transaction.
 *
 * @example
 * ```ts
 * await upsertIfNewer(tx, {
 *   table: 'payments',
 *   key: { column: 'id', value: event.data.id },
 *   position: { column: 'event_sequence', value: event.sequence },
 *   set: { status: event.data.status },
 * });
 * ```
 */
export async function upsertIfNewer(
  db: Pick<Pool | PoolClient, 'query'>,
  options: UpsertIfNewerOptions,
): Promise<boolean> {
  const table = checkTableName('webhooks', options?.table);
  const keyColumn = column('key.column', options.key?.column);
  const positionColumn = column('position.column', options.position?.column);
  const names = Object.keys(options.set ?? {}).map((name) => column('set', name));
  if (names.includes(keyColumn) || names.includes(positionColumn))
    invalidOption('webhooks', 'set', 'columns other than the key and the position', names);
  // SQL compares nothing with NULL: a NULL key would insert a row per event, and
  // a NULL incoming position would never be newer than anything.
  if (options.key.value === undefined || options.key.value === null)
    invalidOption('webhooks', 'key.value', 'a value (not null or undefined)', options.key.value);
  if (options.position.value === undefined || options.position.value === null)
    invalidOption(
      'webhooks',
      'position.value',
      "the event's sequence or time (not null or undefined)",
      options.position.value,
    );
  const columns = [keyColumn, positionColumn, ...names];
  const values = [options.key.value, options.position.value, ...names.map((n) => options.set[n])];
  const updates = [positionColumn, ...names].map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  const r = await db.query(
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (${keyColumn}) DO UPDATE SET ${updates}
     WHERE ${table}.${positionColumn} IS NULL OR ${table}.${positionColumn} < EXCLUDED.${positionColumn}`,
    values,
  );
  return (r.rowCount ?? 0) > 0;
}
