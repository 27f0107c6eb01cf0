/**
 * Transactional idempotency on PostgreSQL: the idempotency record and the
 * application's own writes commit in one transaction, or roll back together.
 * A unique constraint on (scope, key) does the rest: a concurrent duplicate's
 * INSERT waits for the first transaction, then either sees its committed
 * result (and replays it) or, if it rolled back, runs itself.
 *
 * Exported from `restwell/idempotency/postgres`. pg is an optional peer
 * dependency: this file only uses the pool it is given.
 *
 * @example
 * ```ts
 * import { withIdempotency } from 'restwell/idempotency/postgres';
 *
 * const { result, replayed } = await withIdempotency(pool, { scope: user.id, key, fingerprint }, async (tx) => {
 *   const { rows } = await tx.query('INSERT INTO payments (amount) VALUES ($1) RETURNING id', [amount]);
 *   await tx.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, user.id]);
 *   return { status: 201, body: { id: rows[0].id, amount } };
 * });
 * ```
 */
import type { Pool, PoolClient } from 'pg';
import { invalidOption } from '../core/errors.js';
import { checkTableName } from '../stores/postgres/identifier.js';
import { IdempotencyKeyInFlightError, IdempotencyKeyReusedError } from './errors.js';

/** The DDL of the transactional idempotency table. */
export function idempotencyTableSql(table = 'restwell_idempotency'): string {
  const t = checkTableName('idempotency', table);
  return `CREATE TABLE IF NOT EXISTS ${t} (
  scope        text NOT NULL,
  key          text NOT NULL,
  fingerprint  text NOT NULL,
  result       jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS ${t.replace('.', '_')}_created_at_idx ON ${t} (created_at);
`;
}

/** Creates the table if it does not exist. Call it deliberately, from a migration step. */
export async function migrateIdempotency(
  pool: Pool,
  options: { table?: string } = {},
): Promise<void> {
  await pool.query(idempotencyTableSql(options.table));
}

/** Which key a transactional request claims: its scope, its key and its request fingerprint. */
export interface TransactionalKey {
  /** Whose key it is: the principal or account id. */
  scope: string;
  /** The client's Idempotency-Key. */
  key: string;
  /** A fingerprint of the request (same key, different fingerprint → 422). */
  fingerprint: string;
}

/** Options of {@link withIdempotency}. */
export interface WithIdempotencyOptions {
  /** @default 'restwell_idempotency' */
  table?: string;
  /**
   * How long a duplicate waits for the first request's transaction before it
   * gets 409 `idempotency-key-in-flight` instead. It bounds the claim only: the
   * statements of `fn` run under the session's own `lock_timeout`, and their
   * lock timeouts are rethrown as they are. @default 5000
   */
  lockTimeoutMs?: number;
}

/** What {@link withIdempotency} returns: the work's result, or the recorded one on a replay. */
export interface TransactionalOutcome<T> {
  /** What `fn` returned: now, or when the key was first used. */
  result: T;
  /** True when `fn` did not run and the stored result was returned. */
  replayed: boolean;
}

/**
 * Runs `fn` inside a transaction that also records the key, exactly once per
 * (scope, key). `fn`'s result must be JSON-serialisable: it is stored and
 * returned to retries. If `fn` throws, everything rolls back, the record too,
 * so a retry runs again.
 */
export async function withIdempotency<T>(
  pool: Pool,
  id: TransactionalKey,
  fn: (tx: PoolClient) => Promise<T>,
  options: WithIdempotencyOptions = {},
): Promise<TransactionalOutcome<T>> {
  const table = checkTableName('idempotency', options.table ?? 'restwell_idempotency');
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs <= 0) {
    invalidOption('idempotency', 'lockTimeoutMs', 'a positive integer', lockTimeoutMs);
  }
  const client = await pool.connect();
  // While a client is checked out, its 'error' events are ours to handle (the pool
  // listens only to idle clients): a connection that dies while `fn` awaits something
  // else (a restart, a failover, idle_in_transaction_session_timeout) emits one, and
  // with no listener that is an uncaught exception that ends the process. The error
  // is kept so that the dead connection is destroyed, not returned to the pool.
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  let claiming = true;
  try {
    // A session at REPEATABLE READ or SERIALIZABLE (default_transaction_isolation)
    // cannot see a duplicate that committed after its snapshot was taken: the INSERT
    // fails with 40001 instead of conflicting. That is the first request finishing,
    // not an error: a second transaction, with a fresh snapshot, sees its row and
    // replays it. Once more 40001 is answered 409, as a lock timeout is.
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await claim(client, table, id, lockTimeoutMs);
        if (outcome.replayed) return outcome as TransactionalOutcome<T>;
        break;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken ??= rollbackError;
        });
        const code = (err as { code?: string }).code;
        if (code === '40001' && attempt === 1) continue;
        // 55P03 lock_not_available: the first request is still running.
        if (code === '55P03' || code === '40001') throw new IdempotencyKeyInFlightError(1);
        throw err;
      }
    }
    claiming = false;
    const result = await fn(client);
    await client.query(`UPDATE ${table} SET result = $3 WHERE scope = $1 AND key = $2`, [
      id.scope,
      id.key,
      JSON.stringify(result ?? null),
    ]);
    await client.query('COMMIT');
    return { result, replayed: false };
  } catch (err) {
    // The claim's own failures were rolled back and mapped above; these are `fn`'s and
    // the record's, rethrown as they are (a 55P03 from `fn`'s statements is the
    // application's, never a 409).
    if (!claiming) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        // A connection that cannot roll back must not serve the next checkout.
        broken ??= rollbackError;
      });
    }
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * Begins the transaction and claims the key: `{ replayed: false }` with the
 * transaction open and the key held, or the stored result with the transaction
 * ended. Throws the claim's own errors (the caller rolls back).
 */
async function claim(
  client: PoolClient,
  table: string,
  id: TransactionalKey,
  lockTimeoutMs: number,
): Promise<{ replayed: false } | TransactionalOutcome<unknown>> {
  // The lock timeout is for the claim alone: an application statement in `fn` that
  // waits on a lock of its own must keep the session's setting, or its timeout
  // would surface as 409 "in flight". One round trip begins, reads the setting
  // and sets the claim's; the setting is put back right after the claim.
  const begun = (await client.query(
    `BEGIN; SHOW lock_timeout; SET LOCAL lock_timeout = ${lockTimeoutMs}`,
  )) as unknown as Array<{ rows: Array<{ lock_timeout: string }> }>;
  const sessionLockTimeout = begun[1]?.rows[0]?.lock_timeout ?? '0';
  // Waits for a concurrent transaction holding the same (scope, key), then
  // conflicts with its committed row or inserts if it rolled back.
  const inserted = await client.query(
    `INSERT INTO ${table} (scope, key, fingerprint) VALUES ($1, $2, $3) ON CONFLICT (scope, key) DO NOTHING`,
    [id.scope, id.key, id.fingerprint],
  );
  if (inserted.rowCount === 0) {
    const { rows } = await client.query<{ fingerprint: string; result: unknown }>(
      `SELECT fingerprint, result FROM ${table} WHERE scope = $1 AND key = $2`,
      [id.scope, id.key],
    );
    await client.query('ROLLBACK');
    const row = rows[0];
    if (row === undefined || row.fingerprint !== id.fingerprint)
      throw new IdempotencyKeyReusedError();
    return { result: row.result, replayed: true };
  }
  await client.query("SELECT set_config('lock_timeout', $1, true)", [sessionLockTimeout]);
  return { replayed: false };
}

/** Deletes records older than `olderThanMs` (at most `limit`); returns how many. */
export async function sweepIdempotency(
  pool: Pool,
  olderThanMs: number,
  options: { table?: string; limit?: number } = {},
): Promise<number> {
  const table = checkTableName('idempotency', options.table ?? 'restwell_idempotency');
  // A negative or NaN age would delete every record, the fresh ones too: the ledger
  // would forget keys whose retries are still coming.
  if (typeof olderThanMs !== 'number' || !Number.isFinite(olderThanMs) || olderThanMs <= 0)
    invalidOption('idempotency', 'olderThanMs', 'a positive number of milliseconds', olderThanMs);
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit <= 0)
    invalidOption('idempotency', 'limit', 'a positive integer', limit);
  const r = await pool.query(
    `DELETE FROM ${table} WHERE (scope, key) IN (
       SELECT scope, key FROM ${table} WHERE created_at < now() - ($1::double precision * interval '1 millisecond') LIMIT $2)`,
    [olderThanMs, limit],
  );
  return r.rowCount ?? 0;
}
