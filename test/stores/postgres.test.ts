/**
 * PostgresStore against the real server: what a concurrent sweep and a timed
 * out statement must not do, proven by holding locks in another connection
 * so that the interleaving is the same on every run.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreTimeoutError, StoreUnavailableError } from '../../src/core/errors.js';
import { checkTableName } from '../../src/stores/postgres/identifier.js';
import { migrate, PostgresStore, storeTableSql } from '../../src/stores/postgres/index.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds or `limitMs` passes; answers whether it held. */
async function until(check: () => Promise<boolean>, limitMs = 5000): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(20);
  }
  return false;
}

describe.runIf(services.postgres)('PostgresStore on a real server', () => {
  const table = `restwell_store_pgtest_${run}`;
  let pool: pg.Pool;
  let observer: pg.Pool;
  let lockers: pg.Pool;
  const clients: pg.PoolClient[] = [];

  /** Statements on this table, other than `except`'s, that are running: waiting on a lock or not. */
  const running = async (except: number[], waitingOnLock?: boolean) => {
    const r = await observer.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE state = 'active' AND query LIKE $1 AND pid <> ALL($2::int[]) AND pid <> pg_backend_pid()
          AND ($3::boolean IS NULL OR (wait_event_type = 'Lock') = $3)`,
      [`%${table}%`, except, waitingOnLock ?? null],
    );
    return (r.rows[0] as { n: number }).n;
  };
  const pidOf = async (c: pg.PoolClient) =>
    ((await c.query('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number }).pid;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 5 });
    observer = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
    lockers = new pg.Pool({ connectionString: services.databaseUrl, max: 4 });
    await migrate(pool, { table });
  });
  afterAll(async () => {
    for (const c of clients) c.release();
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await observer.end();
    await lockers.end();
  });

  async function held(): Promise<pg.PoolClient> {
    const c = await lockers.connect();
    clients.push(c);
    return c;
  }

  describe('sweep()', () => {
    it('leaves alone a row that a concurrent add has just revived', async () => {
      const store = new PostgresStore({ pool, table, prefix: 'sweep:' });
      await pool.query(
        `INSERT INTO ${table} VALUES ('sweep:lease', 'first', now() - interval '1 hour')`,
      );
      // A second caller re-claims the expired lease, in a transaction held open.
      const tx = await held();
      const txPid = await pidOf(tx);
      await tx.query('BEGIN');
      const txPool = {
        query: (c: pg.QueryConfig) => tx.query(c),
        connect: async () => ({ query: (c: pg.QueryConfig) => tx.query(c), release() {} }),
      } as unknown as pg.Pool;
      const inTx = new PostgresStore({ pool: txPool, table, prefix: 'sweep:' });
      expect(await inTx.add('lease', 'second', 60_000)).toBe(true);

      // The sweep runs meanwhile: it must not wait for that transaction and then delete its row.
      let swept: number | undefined;
      const sweeping = store.sweep().then((n) => {
        swept = n;
      });
      await until(async () => swept !== undefined || (await running([txPid], true)) > 0);
      await tx.query('COMMIT');
      await sweeping;

      expect(swept).toBe(0);
      expect(await store.get('lease')).toBe('second');
      // Hence a third caller cannot claim it too.
      expect(await store.add('lease', 'third', 60_000)).toBe(false);
    });

    it('deletes expired rows and only those', async () => {
      const store = new PostgresStore({ pool, table, prefix: 'sweep2:' });
      await pool.query(
        `INSERT INTO ${table} VALUES ('sweep2:old', 'x', now() - interval '1 second'),
                                     ('sweep2:live', 'x', now() + interval '1 hour')`,
      );
      expect(await store.sweep(10_000)).toBeGreaterThanOrEqual(1);
      const r = await pool.query(`SELECT key FROM ${table} WHERE key LIKE 'sweep2:%'`);
      expect(r.rows.map((x) => x.key)).toEqual(['sweep2:live']);
    });
  });

  describe('a timed-out write does not land afterwards', () => {
    it('when its statement was blocked behind a row lock', async () => {
      const store = new PostgresStore({ pool, table, prefix: 'lock:', timeoutMs: 300 });
      await store.set('k', 'before', 60_000);
      const locker = await held();
      const lockerPid = await pidOf(locker);
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${table} WHERE key = 'lock:k' FOR UPDATE`);

      await expect(store.set('k', 'after', 60_000)).rejects.toBeInstanceOf(StoreTimeoutError);
      // The store cancels it on the server: wait until nothing is blocked behind the lock.
      await until(async () => (await running([lockerPid], true)) === 0);
      await locker.query('COMMIT');
      // Whatever was still queued behind the lock would run now: let it finish.
      await until(async () => (await running([lockerPid])) === 0);

      expect(await store.get('k')).toBe('before');
    });

    it('when it was still waiting for a connection from the pool', async () => {
      const small = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
      try {
        const store = new PostgresStore({ pool: small, table, prefix: 'queue:', timeoutMs: 200 });
        const only = await small.connect();
        await expect(store.set('k', 'late', 60_000)).rejects.toBeInstanceOf(StoreTimeoutError);
        only.release();
        // The pool hands its connection to waiters in order: the timed-out
        // write's turn comes before this read, which sees whether it ran.
        const r = await small.query(`SELECT value FROM ${table} WHERE key = 'queue:k'`);
        expect(r.rows).toEqual([]);
        // The connection was handed back, not lost.
        expect(await store.add('k', 'fresh', 60_000)).toBe(true);
      } finally {
        await small.end();
      }
    });

    it('and the pool keeps working after a cancelled statement', async () => {
      const store = new PostgresStore({ pool, table, prefix: 'after:', timeoutMs: 300 });
      await store.set('k', 'v', 60_000);
      const locker = await held();
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${table} WHERE key = 'after:k' FOR UPDATE`);
      await expect(store.delete('k')).rejects.toBeInstanceOf(StoreTimeoutError);
      await locker.query('COMMIT');
      for (let i = 0; i < 10; i++) await store.set(`n${i}`, 'v', 60_000);
      expect(await store.get('k')).toBe('v');
    });
  });

  describe('configuration', () => {
    it('names migrate(pool, { table }) when a custom table is missing', async () => {
      const missing = new PostgresStore({ pool, table: `missing_${run}` });
      await expect(missing.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(missing.get('k')).rejects.toThrow(
        `run migrate(pool, { table: 'missing_${run}' }) from 'restwell/postgres'`,
      );
    });

    it('names migrate(pool) for the default table', () => {
      // Built only: whether the default table exists on the shared server is not this test's business.
      const store = new PostgresStore({ pool });
      expect(store.table).toBe('restwell_store');
      expect(storeTableSql()).toContain('CREATE TABLE IF NOT EXISTS restwell_store ');
    });

    it('rejects an unknown option with the nearest name, never showing the pool', async () => {
      expect(() => new PostgresStore({ pool, tabel: 'x' } as never)).toThrow(
        /^restwell\/postgres: unknown option "tabel"\. Did you mean "table"\?/,
      );
      expect(() => new PostgresStore({ pool: { query: 'x' } as never })).toThrow(
        /^restwell\/postgres: option "pool" must be a pg Pool, got an object\.$/,
      );
      expect(() => new PostgresStore({ pool, timeoutMs: Number.NaN })).toThrow(/timeoutMs/);
      await expect(migrate(pool, { tabel: 'x' } as never)).rejects.toThrow(/Did you mean "table"/);
    });
  });
});

describe('checkTableName', () => {
  it.each(['restwell_store', 'app.restwell_store', '_t1', 'A'.repeat(63)])('accepts %s', (t) => {
    expect(checkTableName('postgres', t)).toBe(t);
  });

  it.each(['x; DROP TABLE users', '1table', 'a.b.c', '"quoted"', '', 'A'.repeat(64), 42, null])(
    'rejects %s, naming the module and the option',
    (t) => {
      expect(() => checkTableName('idempotency', t)).toThrow(TypeError);
      expect(() => checkTableName('idempotency', t)).toThrow(
        /^restwell\/idempotency: option "table" must be a table name/,
      );
    },
  );
});
