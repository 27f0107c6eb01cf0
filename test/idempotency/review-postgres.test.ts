/**
 * The transactional mode when the connection dies under it: the transaction
 * rolls back, the caller gets an error, and the process survives.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateIdempotency, withIdempotency } from '../../src/idempotency/postgres.js';
import { services } from '../helpers/services.js';

const table = `restwell_idem_review_tx_${Math.random().toString(36).slice(2, 8)}`;

describe.runIf(services.postgres)('withIdempotency on a connection that dies', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
    await migrateIdempotency(pool, { table });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('rejects, destroys the connection, and a retry runs on a fresh one', async () => {
    const id = { scope: 'acct_1', key: 'k-dies', fingerprint: 'f' };
    let runs = 0;
    const outcome = withIdempotency(
      pool,
      id,
      async (tx) => {
        runs++;
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // Another session ends this one while fn is between statements, as a restart or
        // idle_in_transaction_session_timeout would.
        const killer = new pg.Client({ connectionString: services.databaseUrl });
        await killer.connect();
        try {
          await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        } finally {
          await killer.end();
        }
        // The next statement finds the connection gone.
        await new Promise((resolve) => setTimeout(resolve, 100));
        await tx.query('SELECT 1');
        return { status: 201 };
      },
      { table },
    );
    await expect(outcome).rejects.toThrow();
    // The pool (one connection) still serves: the dead client was not handed back.
    expect((await pool.query<{ x: number }>('SELECT 1 AS x')).rows[0]!.x).toBe(1);
    // The record rolled back with the work: a retry runs.
    const retry = await withIdempotency(pool, id, async () => ({ status: 201 }), { table });
    expect(retry.replayed).toBe(false);
    expect(runs).toBe(1);
  });
});
