import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
} from '../../src/idempotency/errors.js';
import {
  migrateIdempotency,
  sweepIdempotency,
  withIdempotency,
} from '../../src/idempotency/postgres.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
const table = `restwell_idem_tx_${run}`;
const payments = `payments_tx_${run}`;

describe.runIf(services.postgres)('transactional idempotency on PostgreSQL', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 25 });
    await migrateIdempotency(pool, { table });
    await pool.query(
      `CREATE TABLE ${payments} (id serial PRIMARY KEY, key text NOT NULL, amount int NOT NULL)`,
    );
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}; DROP TABLE IF EXISTS ${payments}`);
    await pool.end();
  });

  const charge = (key: string, amount: number) => async (tx: pg.PoolClient) => {
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO ${payments} (key, amount) VALUES ($1, $2) RETURNING id`,
      [key, amount],
    );
    return { status: 201, body: { id: rows[0]!.id, amount } };
  };
  const count = async (key: string) =>
    Number(
      (await pool.query(`SELECT count(*) AS n FROM ${payments} WHERE key = $1`, [key])).rows[0].n,
    );

  it('commits the record with the application write, and replays the stored result', async () => {
    const id = { scope: 'acct_1', key: 'k1', fingerprint: 'fp-a' };
    const first = await withIdempotency(pool, id, charge('k1', 100), { table });
    expect(first.replayed).toBe(false);
    const again = await withIdempotency(pool, id, charge('k1', 100), { table });
    expect(again).toEqual({ result: first.result, replayed: true });
    expect(await count('k1')).toBe(1);
  });

  it('rolls back both writes together when the work fails, so a retry runs', async () => {
    const id = { scope: 'acct_1', key: 'k2', fingerprint: 'fp-a' };
    await expect(
      withIdempotency(
        pool,
        id,
        async (tx) => {
          await charge('k2', 100)(tx);
          throw new Error('ledger unavailable');
        },
        { table },
      ),
    ).rejects.toThrow('ledger unavailable');
    expect(await count('k2')).toBe(0);
    expect((await pool.query(`SELECT 1 FROM ${table} WHERE key = 'k2'`)).rowCount).toBe(0);
    const retry = await withIdempotency(pool, id, charge('k2', 100), { table });
    expect(retry.replayed).toBe(false);
    expect(await count('k2')).toBe(1);
  });

  it('refuses the same key with another fingerprint', async () => {
    await withIdempotency(
      pool,
      { scope: 'acct_1', key: 'k3', fingerprint: 'fp-a' },
      charge('k3', 1),
      { table },
    );
    await expect(
      withIdempotency(pool, { scope: 'acct_1', key: 'k3', fingerprint: 'fp-b' }, charge('k3', 2), {
        table,
      }),
    ).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(await count('k3')).toBe(1);
  });

  it('keeps scopes apart', async () => {
    await withIdempotency(
      pool,
      { scope: 'acct_1', key: 'k4', fingerprint: 'fp' },
      charge('k4', 1),
      { table },
    );
    const other = await withIdempotency(
      pool,
      { scope: 'acct_2', key: 'k4', fingerprint: 'fp' },
      charge('k4', 1),
      { table },
    );
    expect(other.replayed).toBe(false);
    expect(await count('k4')).toBe(2);
  });

  it('runs the work once for 20 concurrent duplicates; the others replay its result', async () => {
    const id = { scope: 'acct_1', key: 'k5', fingerprint: 'fp' };
    const slowCharge = async (tx: pg.PoolClient) => {
      const r = await charge('k5', 7)(tx);
      await new Promise((res) => setTimeout(res, 100));
      return r;
    };
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => withIdempotency(pool, id, slowCharge, { table })),
    );
    expect(await count('k5')).toBe(1);
    expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
    // jsonb may reorder keys: compare values, not serialisations.
    const executed = outcomes.find((o) => !o.replayed)!;
    for (const o of outcomes) expect(o.result).toEqual(executed.result);
  });

  it('answers 409 in flight when a duplicate waits longer than lockTimeoutMs', async () => {
    const id = { scope: 'acct_1', key: 'k6', fingerprint: 'fp' };
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = withIdempotency(
      pool,
      id,
      async (tx) => {
        await gate;
        return charge('k6', 1)(tx);
      },
      { table },
    );
    await new Promise((r) => setTimeout(r, 100));
    await expect(
      withIdempotency(pool, id, charge('k6', 1), { table, lockTimeoutMs: 100 }),
    ).rejects.toBeInstanceOf(IdempotencyKeyInFlightError);
    release();
    expect((await first).replayed).toBe(false);
    expect(await count('k6')).toBe(1);
  });

  it("applies lockTimeoutMs to the claim only: the application's own lock waits are not 409", async () => {
    const { rows } = await pool.query<{ id: number }>(
      `INSERT INTO ${payments} (key, amount) VALUES ('locked', 1) RETURNING id`,
    );
    const rowId = rows[0]!.id;
    // Another transaction holds the row the work needs, for longer than the claim may wait.
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT id FROM ${payments} WHERE id = $1 FOR UPDATE`, [rowId]);
    let waiting = false;
    const outcome = withIdempotency(
      pool,
      { scope: 'acct_1', key: 'k7', fingerprint: 'fp' },
      async (tx) => {
        waiting = true;
        await tx.query(`SELECT id FROM ${payments} WHERE id = $1 FOR UPDATE`, [rowId]);
        return { status: 200 };
      },
      { table, lockTimeoutMs: 50 },
    );
    while (!waiting) await new Promise((r) => setTimeout(r, 10));
    // Well past the claim's lock timeout, with the work still blocked on the row.
    await new Promise((r) => setTimeout(r, 300));
    await holder.query('COMMIT');
    holder.release();
    await expect(outcome).resolves.toEqual({ result: { status: 200 }, replayed: false });
  });

  it("rethrows the application's own lock timeout as itself, not as 409 in flight", async () => {
    const { rows } = await pool.query<{ id: number }>(
      `INSERT INTO ${payments} (key, amount) VALUES ('locked-2', 1) RETURNING id`,
    );
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT id FROM ${payments} WHERE id = $1 FOR UPDATE`, [rows[0]!.id]);
    try {
      const failure = await withIdempotency(
        pool,
        { scope: 'acct_1', key: 'k8', fingerprint: 'fp' },
        async (tx) => {
          await tx.query('SET LOCAL lock_timeout = 50');
          await tx.query(`SELECT id FROM ${payments} WHERE id = $1 FOR UPDATE`, [rows[0]!.id]);
          return { status: 200 };
        },
        { table },
      ).catch((err: unknown) => err);
      expect(failure).not.toBeInstanceOf(IdempotencyKeyInFlightError);
      expect((failure as { code?: string }).code).toBe('55P03');
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    // Rolled back with the work: the key is free again.
    expect((await pool.query(`SELECT 1 FROM ${table} WHERE key = 'k8'`)).rowCount).toBe(0);
  });

  it('keeps a lock_timeout the application set on the session', async () => {
    const seen = await withIdempotency(
      pool,
      { scope: 'acct_1', key: 'k9', fingerprint: 'fp' },
      async (tx) =>
        (await tx.query<{ lock_timeout: string }>('SHOW lock_timeout')).rows[0]!.lock_timeout,
      { table, lockTimeoutMs: 1234 },
    );
    expect(seen.result).not.toBe('1234ms');
  });

  it('sweeps old records', async () => {
    await pool.query(`UPDATE ${table} SET created_at = now() - interval '2 days' WHERE key = 'k1'`);
    expect(await sweepIdempotency(pool, 86_400_000, { table })).toBe(1);
  });
});
