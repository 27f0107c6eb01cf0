/**
 * The transactional mode when the connection dies under it: the transaction
 * rolls back, the caller gets an error, and the process survives.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  migrateIdempotency,
  sweepIdempotency,
  withIdempotency,
} from '../../src/idempotency/postgres.js';
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

describe.runIf(services.postgres).each(['repeatable read', 'serializable'])(
  'withIdempotency in a session at %s',
  (isolation) => {
    let pool: pg.Pool;
    const isoTable = `${table}_${isolation.split(' ')[0]}`;
    beforeAll(async () => {
      pool = new pg.Pool({
        connectionString: services.databaseUrl,
        max: 4,
        options: `-c default_transaction_isolation=${isolation.replace(' ', '\\ ')}`,
      });
      await migrateIdempotency(pool, { table: isoTable });
    });
    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS ${isoTable}`);
      await pool.end();
    });

    it('replays to a concurrent duplicate instead of failing with 40001', async () => {
      const id = { scope: 'acct_1', key: `k-${isolation}`, fingerprint: 'f' };
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let runs = 0;
      let waiting!: () => void;
      const firstHolds = new Promise<void>((resolve) => {
        waiting = resolve;
      });
      const first = withIdempotency(
        pool,
        id,
        async () => {
          runs++;
          waiting();
          await gate;
          return { n: 1 };
        },
        { table: isoTable },
      );
      await firstHolds;
      // The duplicate's snapshot is taken while the first still holds the key.
      const second = withIdempotency(
        pool,
        id,
        async () => {
          runs++;
          return { n: 2 };
        },
        { table: isoTable },
      );
      // Its INSERT waits on the first's row lock, which the first's commit then releases.
      const waitingOnLock = async () => {
        for (;;) {
          const { rows } = await pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO %'",
          );
          if (rows[0]!.n > 0) return;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      await waitingOnLock();
      release();
      expect(await first).toEqual({ result: { n: 1 }, replayed: false });
      expect(await second).toEqual({ result: { n: 1 }, replayed: true });
      expect(runs).toBe(1);
    });
  },
);

describe('sweepIdempotency', () => {
  it('refuses an age that would delete every record, before any query', async () => {
    const pool = {
      query: () => {
        throw new Error('must not be called');
      },
    } as unknown as pg.Pool;
    for (const age of [-1, 0, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(sweepIdempotency(pool, age)).rejects.toThrow(/option "olderThanMs"/);
    }
    await expect(sweepIdempotency(pool, 1000, { limit: 0 })).rejects.toThrow(/option "limit"/);
  });
});
