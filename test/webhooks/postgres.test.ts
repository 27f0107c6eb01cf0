/**
 * The PostgreSQL safety net on a real server: a unique constraint on the
 * event id inside the application's transaction (50 concurrent deliveries,
 * one processed; a failure rolls the record back with the writes), and
 * upsertIfNewer under concurrent, reordered deliveries.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookInFlightError } from '../../src/webhooks/errors.js';
import {
  migrateWebhookEvents,
  sweepWebhookEvents,
  upsertIfNewer,
  webhookEventsTableSql,
  withWebhookEvent,
} from '../../src/webhooks/postgres.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
const events = `restwell_webhook_events_${run}`;
const payments = `restwell_webhook_payments_${run}`;

it('ships the DDL as a migration file', () => {
  const file = readFileSync(
    join(
      import.meta.dirname,
      '..',
      '..',
      'migrations',
      'postgres',
      '004_restwell_webhook_events.sql',
    ),
    'utf8',
  );
  const statements = file
    .split('\n')
    .filter((line) => !line.startsWith('--'))
    .join('\n');
  expect(statements).toBe(webhookEventsTableSql());
});

describe.runIf(services.postgres)('withWebhookEvent', () => {
  const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 20 });
  beforeAll(async () => {
    await migrateWebhookEvents(pool, { table: events });
    await pool.query(
      `CREATE TABLE ${payments} (id text PRIMARY KEY, status text NOT NULL, event_sequence bigint NOT NULL, credited integer NOT NULL DEFAULT 0)`,
    );
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${events}`);
    await pool.query(`DROP TABLE IF EXISTS ${payments}`);
    await pool.end();
  });

  it('runs the work exactly once for 50 concurrent deliveries of one event', async () => {
    await pool.query(
      `INSERT INTO ${payments} (id, status, event_sequence) VALUES ('pay_once', 'pending', 0)`,
    );
    let runs = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () =>
        withWebhookEvent(
          pool,
          { id: 'evt_once' },
          async (tx) => {
            runs++;
            await sleep(20);
            await tx.query(
              `UPDATE ${payments} SET credited = credited + 100 WHERE id = 'pay_once'`,
            );
            return 'done';
          },
          { table: events, lockTimeoutMs: 10_000 },
        ),
      ),
    );
    expect(runs).toBe(1);
    expect(outcomes.filter((o) => o.processed)).toEqual([{ processed: true, result: 'done' }]);
    const { rows } = await pool.query(`SELECT credited FROM ${payments} WHERE id = 'pay_once'`);
    expect(rows[0].credited).toBe(100);
  });

  it('rolls the record back with the writes when the work fails, so the retry processes it', async () => {
    await expect(
      withWebhookEvent(
        pool,
        { id: 'evt_fail' },
        async () => {
          throw new Error('downstream');
        },
        { table: events },
      ),
    ).rejects.toThrow('downstream');
    const retry = await withWebhookEvent(pool, { id: 'evt_fail' }, async () => 1, {
      table: events,
    });
    expect(retry).toEqual({ processed: true, result: 1 });
    expect(
      await withWebhookEvent(pool, { id: 'evt_fail' }, async () => 2, { table: events }),
    ).toEqual({
      processed: false,
    });
  });

  it('keeps sources apart', async () => {
    expect(
      (
        await withWebhookEvent(pool, { id: 'evt_src', source: 'stripe' }, async () => 1, {
          table: events,
        })
      ).processed,
    ).toBe(true);
    expect(
      (
        await withWebhookEvent(pool, { id: 'evt_src', source: 'github' }, async () => 1, {
          table: events,
        })
      ).processed,
    ).toBe(true);
  });

  it('answers 409 in flight when the first transaction holds the id past lockTimeoutMs', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = withWebhookEvent(pool, { id: 'evt_slow' }, () => held, { table: events });
    await sleep(100);
    await expect(
      withWebhookEvent(pool, { id: 'evt_slow' }, async () => 1, {
        table: events,
        lockTimeoutMs: 50,
      }),
    ).rejects.toBeInstanceOf(WebhookInFlightError);
    release();
    expect((await first).processed).toBe(true);
  });

  it('refuses bad ids and options before touching the database', async () => {
    await expect(withWebhookEvent(pool, { id: '' }, async () => 1)).rejects.toThrow(TypeError);
    await expect(withWebhookEvent(pool, { id: 'a b' }, async () => 1)).rejects.toThrow(TypeError);
    await expect(
      withWebhookEvent(pool, { id: 'x' }, async () => 1, { table: 'x; DROP' }),
    ).rejects.toThrow(TypeError);
  });

  it('sweeps ids older than the retry window only', async () => {
    await pool.query(
      `INSERT INTO ${events} (source, event_id, processed_at) VALUES ('default', 'evt_old', now() - interval '4 days')`,
    );
    expect(await sweepWebhookEvents(pool, 72 * 3600 * 1000, { table: events })).toBe(1);
    expect(
      (await withWebhookEvent(pool, { id: 'evt_once' }, async () => 1, { table: events }))
        .processed,
    ).toBe(false);
    await expect(sweepWebhookEvents(pool, 0, { table: events })).rejects.toThrow(TypeError);
  });

  it('upsertIfNewer keeps the newest state under 40 concurrent shuffled deliveries', async () => {
    const sequences = Array.from({ length: 40 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    const written = await Promise.all(
      sequences.map((seq) =>
        upsertIfNewer(pool, {
          table: payments,
          key: { column: 'id', value: 'pay_race' },
          position: { column: 'event_sequence', value: seq },
          set: { status: `s${seq}` },
        }),
      ),
    );
    const { rows } = await pool.query(
      `SELECT status, event_sequence FROM ${payments} WHERE id = 'pay_race'`,
    );
    expect(rows[0]).toEqual({ status: 's40', event_sequence: '40' });
    expect(written[sequences.indexOf(40)]).toBe(true);
  });

  it('upsertIfNewer: payment.created after payment.success changes nothing', async () => {
    const apply = (seq: number, status: string) =>
      upsertIfNewer(pool, {
        table: payments,
        key: { column: 'id', value: 'pay_seed' },
        position: { column: 'event_sequence', value: seq },
        set: { status },
      });
    expect(await apply(2, 'succeeded')).toBe(true);
    expect(await apply(1, 'pending')).toBe(false);
    expect(await apply(2, 'succeeded')).toBe(false);
    const { rows } = await pool.query(`SELECT status FROM ${payments} WHERE id = 'pay_seed'`);
    expect(rows[0].status).toBe('succeeded');
  });

  it('upsertIfNewer applies the first event to a row created without a position', async () => {
    const table = `${payments}_nullable`;
    await pool.query(
      `CREATE TABLE ${table} (id text PRIMARY KEY, status text NOT NULL, event_sequence bigint)`,
    );
    try {
      // The application created the row itself, before any event arrived.
      await pool.query(`INSERT INTO ${table} (id, status) VALUES ('pay_app', 'new')`);
      const apply = (seq: number, status: string) =>
        upsertIfNewer(pool, {
          table,
          key: { column: 'id', value: 'pay_app' },
          position: { column: 'event_sequence', value: seq },
          set: { status },
        });
      expect(await apply(1, 'pending')).toBe(true);
      expect(await apply(1, 'again')).toBe(false);
      expect(await apply(2, 'succeeded')).toBe(true);
      const { rows } = await pool.query(`SELECT status FROM ${table} WHERE id = 'pay_app'`);
      expect(rows[0].status).toBe('succeeded');
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('upsertIfNewer compares created_at in different offsets as instants in a timestamptz column', async () => {
    const table = `${payments}_times`;
    await pool.query(
      `CREATE TABLE ${table} (id text PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL)`,
    );
    try {
      const apply = (at: string, status: string) =>
        upsertIfNewer(pool, {
          table,
          key: { column: 'id', value: 'pay_t' },
          position: { column: 'created_at', value: at },
          set: { status },
        });
      expect(await apply('2026-01-01T10:00:00Z', 'utc')).toBe(true);
      expect(await apply('2026-01-01T15:30:00+05:30', 'same instant')).toBe(false);
      expect(await apply('2026-01-01T02:00:00-08:00', 'same instant')).toBe(false);
      expect(await apply('2026-01-01T09:00:00.000001-01:00', 'later')).toBe(true);
      const { rows } = await pool.query(`SELECT status FROM ${table} WHERE id = 'pay_t'`);
      expect(rows[0].status).toBe('later');
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('upsertIfNewer refuses a null or missing key or position before touching the database', async () => {
    const base = {
      table: payments,
      key: { column: 'id', value: 'pay_null' as unknown },
      position: { column: 'event_sequence', value: 1 as unknown },
      set: { status: 'x' },
    };
    for (const value of [null, undefined]) {
      await expect(
        upsertIfNewer(pool, { ...base, position: { column: 'event_sequence', value } }),
      ).rejects.toThrow(/position\.value/);
      await expect(upsertIfNewer(pool, { ...base, key: { column: 'id', value } })).rejects.toThrow(
        /key\.value/,
      );
    }
  });

  it('withWebhookEvent records ids holding quotes, backslashes and SQL as plain values', async () => {
    const id = `evt_${run}_');DROP/**/TABLE/**/${payments};--\\`;
    let runs = 0;
    const deliver = () =>
      withWebhookEvent(
        pool,
        { id },
        async () => {
          runs++;
        },
        { table: events },
      );
    expect((await deliver()).processed).toBe(true);
    expect((await deliver()).processed).toBe(false);
    expect(runs).toBe(1);
    const { rows } = await pool.query(`SELECT event_id FROM ${events} WHERE event_id = $1`, [id]);
    expect(rows).toEqual([{ event_id: id }]);
    await expect(pool.query(`SELECT 1 FROM ${payments} LIMIT 1`)).resolves.toBeDefined();
  });

  it('upsertIfNewer refuses identifiers it cannot quote safely', async () => {
    const base = {
      table: payments,
      key: { column: 'id', value: 'x' },
      position: { column: 'event_sequence', value: 1 },
    };
    await expect(upsertIfNewer(pool, { ...base, set: { 'status; --': 'x' } })).rejects.toThrow(
      TypeError,
    );
    await expect(upsertIfNewer(pool, { ...base, set: { id: 'x' } })).rejects.toThrow(TypeError);
    await expect(upsertIfNewer(pool, { ...base, table: 'a b', set: {} })).rejects.toThrow(
      TypeError,
    );
  });
});
