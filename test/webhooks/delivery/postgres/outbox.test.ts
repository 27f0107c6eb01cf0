/**
 * The outbox on the real PostgreSQL: an event is dispatched if and only if
 * the transaction that wrote it commits; relays racing on one table dispatch
 * each row once per pass; a relay whose session dies between a dispatch and
 * its commit leaves the row for the next pass, and the engine's dispatch
 * dedupes the second dispatch.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { webhookDeliveryTables } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { recordingLogger } from '../bullmq/helpers.js';
import type { EventInput, WebhookEvent } from '../../../../src/webhooks/delivery/events.js';
import {
  OutboxRelay,
  startOutboxRelay,
  writeOutboxEvent,
} from '../../../../src/webhooks/delivery/outbox.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { PostgresEndpointStore } from '../../../../src/webhooks/delivery/postgres-endpoints.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { engine, receiver, until } from '../engine/helpers.js';
import { services, testSchema } from './pg.js';

const db = testSchema('outbox');
let tables = 0;

async function tablesOf(prefix = `t${++tables}`) {
  await db.migrate();
  await migrateWebhookDelivery(db.pool, { schema: db.schema, prefix });
  await db.pool.query(
    `CREATE TABLE IF NOT EXISTS ${db.schema}.${prefix}_payments (id text PRIMARY KEY)`,
  );
  return { schema: db.schema, prefix };
}

/** The application's own transaction: a business write and the outbox row, on one client. */
async function pay(
  pool: pg.Pool,
  where: { schema: string; prefix: string },
  id: string,
  outcome: 'commit' | 'rollback' = 'commit',
): Promise<WebhookEvent> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${where.schema}.${where.prefix}_payments (id) VALUES ($1)`, [
      id,
    ]);
    const event = await writeOutboxEvent(
      client,
      { type: 'payment.created', resource: { type: 'payment', id }, data: { id } },
      where,
    );
    await client.query(outcome === 'commit' ? 'COMMIT' : 'ROLLBACK');
    return event;
  } finally {
    client.release();
  }
}

/** A dispatch that records what it got. */
function recorder(wait = 0) {
  const got: WebhookEvent[] = [];
  return {
    got,
    delivery: {
      async dispatch(event: WebhookEvent) {
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        got.push(event);
        return { event, deliveries: [] };
      },
    } as never,
  };
}

async function outboxRows(where: { schema: string; prefix: string }) {
  const { rows } = await db.pool.query(
    `SELECT event_id, attempts, last_error FROM ${where.schema}.${where.prefix}_outbox ORDER BY seq`,
  );
  return rows as Array<{ event_id: string; attempts: number; last_error: string | null }>;
}

describe.runIf(services.postgres)('the outbox', () => {
  it('dispatches an event whose transaction committed, and never one that rolled back', async () => {
    const where = await tablesOf();
    const committed = await pay(db.pool, where, 'pay_1');
    await pay(db.pool, where, 'pay_2', 'rollback');
    const r = recorder();
    const relay = new OutboxRelay({ pool: db.pool, delivery: r.delivery, listen: false, ...where });
    expect(await relay.runOnce()).toBe(1);
    expect(r.got).toEqual([committed]);
    expect(await outboxRows(where)).toEqual([]);
    expect(await relay.runOnce()).toBe(0);
    expect(r.got).toHaveLength(1);
    // The rolled-back business write is gone too: the two were one transaction.
    const { rows } = await db.pool.query(`SELECT id FROM ${where.schema}.${where.prefix}_payments`);
    expect(rows.map((p) => p.id)).toEqual(['pay_1']);
  });

  it('an uncommitted row is not seen; it is relayed once its transaction commits', async () => {
    const where = await tablesOf();
    const client = await db.pool.connect();
    const r = recorder();
    const relay = new OutboxRelay({ pool: db.pool, delivery: r.delivery, listen: false, ...where });
    try {
      await client.query('BEGIN');
      await writeOutboxEvent(client, { id: 'evt_open', type: 'payment.created', data: {} }, where);
      expect(await relay.runOnce()).toBe(0);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await relay.runOnce()).toBe(1);
    expect(r.got.map((e) => e.id)).toEqual(['evt_open']);
  });

  it('two relays racing on one table dispatch every committed event exactly once', async () => {
    const where = await tablesOf();
    const ids: string[] = [];
    for (let n = 1; n <= 40; n++) ids.push((await pay(db.pool, where, `pay_${n}`)).id);
    const r = recorder(2);
    const relays = [db.newPool(3), db.newPool(3)].map(
      (pool) =>
        new OutboxRelay({ pool, delivery: r.delivery, listen: false, batchSize: 7, ...where }),
    );
    let total = 0;
    for (;;) {
      const counts = await Promise.all(relays.map((relay) => relay.runOnce()));
      total += counts[0]! + counts[1]!;
      if (counts[0] === 0 && counts[1] === 0) break;
    }
    expect(total).toBe(40);
    expect(r.got.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(new Set(r.got.map((e) => e.id)).size).toBe(40);
  });

  it('keeps a row whose dispatch failed, with a backoff, and relays it later', async () => {
    const where = await tablesOf();
    await pay(db.pool, where, 'pay_1');
    await pay(db.pool, where, 'pay_2');
    let fail = true;
    const got: string[] = [];
    const delivery = {
      async dispatch(event: WebhookEvent) {
        if (fail) throw new Error('queue unavailable');
        got.push(event.id);
        return { event, deliveries: [] };
      },
    } as never;
    const relay = new OutboxRelay({
      pool: db.pool,
      delivery,
      listen: false,
      retryDelayMs: 1,
      logger: silentLogger,
      ...where,
    });
    expect(await relay.runOnce()).toBe(0);
    const rows = await outboxRows(where);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ attempts: 1, last_error: 'Error: queue unavailable' });
    // The pass ended at the first failure: the second row was not tried.
    expect(rows[1]).toMatchObject({ attempts: 0 });
    fail = false;
    await until(async () => {
      await relay.runOnce();
      return got.length === 2;
    });
    expect(await outboxRows(where)).toEqual([]);
  });

  it('a relay whose session dies after a dispatch leaves the row; the engine dedupes the second dispatch', async () => {
    const where = await tablesOf('crash');
    const hooks = await receiver();
    const log = new PostgresDeliveryLog({ pool: db.pool, ...where });
    const endpointStore = new PostgresEndpointStore({ pool: db.pool, ...where });
    const { delivery } = engine({ log, endpointStore });
    try {
      await delivery.endpoints.create({ url: hooks.url });
      delivery.startWorker();
      const event = await pay(db.pool, where, 'pay_1');
      const relayPool = db.newPool(2);
      let crashed = false;
      const crashing = new OutboxRelay({
        pool: relayPool,
        listen: false,
        ...where,
        delivery: {
          async dispatch(e: EventInput) {
            const result = await delivery.dispatch(e);
            // The relay's process dies now: its session ends before it could commit.
            await db.pool.query(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND state = 'idle in transaction' AND query LIKE $1`,
              [`%crash_outbox%SKIP LOCKED%`],
            );
            crashed = true;
            return result;
          },
        },
      });
      await expect(crashing.runOnce()).rejects.toMatchObject({ status: 503 });
      expect(crashed).toBe(true);
      expect((await outboxRows(where)).map((r) => r.event_id)).toEqual([event.id]);
      const relay = new OutboxRelay({ pool: db.pool, delivery, listen: false, ...where });
      expect(await relay.runOnce()).toBe(1);
      expect(await outboxRows(where)).toEqual([]);
      await until(
        async () =>
          (await log.getDelivery(`${event.id}/${(await endpointStore.list())[0]!.id}`))?.status ===
          'delivered',
      );
      // Dispatched twice, delivered once.
      expect(hooks.requests.map((q) => q.json.id)).toEqual([event.id]);
      expect((await log.queryDeliveries({})).items).toHaveLength(1);
    } finally {
      await delivery.stop();
      await hooks.close();
    }
  });

  it('wakes on the commit notification instead of waiting for the next poll', async () => {
    const where = await tablesOf();
    const r = recorder();
    const relay = startOutboxRelay({
      pool: db.newPool(3),
      delivery: r.delivery,
      intervalMs: 600_000,
      ...where,
    });
    try {
      // The first pass (at start) finds nothing; the next poll is ten minutes away.
      await until(async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN "%${where.prefix}_outbox"'`,
        );
        return rows[0].n > 0;
      });
      const event = await pay(db.pool, where, 'pay_1');
      await until(() => r.got.length === 1, 5000);
      expect(r.got[0]?.id).toBe(event.id);
    } finally {
      await relay.stop();
    }
  });

  it('checks the event as dispatch() does, writing nothing for a bad one', async () => {
    const where = await tablesOf();
    const client = await db.pool.connect();
    try {
      const err = await writeOutboxEvent(
        client,
        { type: 'Bad Type', data: undefined },
        where,
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400 });
      expect((err as { errors: Array<{ pointer: string }> }).errors.map((e) => e.pointer)).toEqual([
        '/type',
        '/data',
      ]);
    } finally {
      client.release();
    }
    expect(await outboxRows(where)).toEqual([]);
    expect(() => new OutboxRelay({ pool: db.pool, delivery: {} as never })).toThrow(/"delivery"/);
    expect(
      () => new OutboxRelay({ pool: db.pool, delivery: recorder().delivery, batchSize: 0 }),
    ).toThrow(/"batchSize"/);
  });

  it('refuses, inside the transaction, an event larger than the engine takes', async () => {
    const where = await tablesOf();
    const client = await db.pool.connect();
    try {
      const data = { note: 'x'.repeat(2048) };
      const refused = await writeOutboxEvent(
        client,
        { type: 'payment.created', data },
        { ...where, maxEventBytes: 1024 },
      ).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 400 });
      expect(
        (refused as { errors: Array<{ pointer: string }> }).errors.map((e) => e.pointer),
      ).toEqual(['/data']);
      expect(await outboxRows(where)).toEqual([]);
      // Under the same bound, it is written.
      await writeOutboxEvent(
        client,
        { type: 'payment.created', data: { ok: 1 } },
        {
          ...where,
          maxEventBytes: 1024,
        },
      );
      expect(await outboxRows(where)).toHaveLength(1);
      await expect(
        writeOutboxEvent(client, { type: 'a.b', data: {} }, { ...where, maxEventBytes: 0 }),
      ).rejects.toThrow(/"maxEventBytes"/);
    } finally {
      client.release();
    }
  });

  it('parks a row dispatch refuses (a 4xx) and relays the rows after it in the same pass', async () => {
    const where = await tablesOf('poison');
    const log = new PostgresDeliveryLog({ pool: db.pool, ...where });
    const endpointStore = new PostgresEndpointStore({ pool: db.pool, ...where });
    // The engine takes events up to 2 KiB; the outbox took a larger one, which it always refuses.
    const { delivery } = engine({ log, endpointStore, maxEventBytes: 2048 });
    const { logger, lines } = recordingLogger();
    try {
      const first = await pay(db.pool, where, 'pay_1');
      const client = await db.pool.connect();
      let big: WebhookEvent;
      try {
        await client.query('BEGIN');
        big = await writeOutboxEvent(
          client,
          { type: 'payment.created', data: { memo: 'x'.repeat(5000) } },
          where,
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const third = await pay(db.pool, where, 'pay_3');
      const relay = new OutboxRelay({
        pool: db.pool,
        delivery,
        listen: false,
        logger,
        ...where,
      });
      // One pass: the refused row does not stop the one after it.
      expect(await relay.runOnce()).toBe(2);
      expect(await log.getEvent(first.id)).toBeDefined();
      expect(await log.getEvent(third.id)).toBeDefined();
      expect(await log.getEvent(big.id)).toBeUndefined();
      const { rows } = await db.pool.query(
        `SELECT event_id, attempts, last_error, available_at = 'infinity' AS parked
           FROM ${webhookDeliveryTables('test', where).outbox}`,
      );
      expect(rows).toEqual([
        {
          event_id: big.id,
          attempts: 1,
          last_error: expect.stringMatching(/^ValidationError/),
          parked: true,
        },
      ]);
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 'error',
          message: expect.stringMatching(/parked/),
          fields: expect.objectContaining({ eventId: big.id }),
        }),
      );
      // Never claimed again.
      expect(await relay.runOnce()).toBe(0);
      expect((await outboxRows(where))[0]).toMatchObject({ attempts: 1 });
    } finally {
      await delivery.stop();
    }
  });

  it('a long schema name still notifies: the channel fits pg_notify, and the relay wakes on it', async () => {
    const schema = `${db.schema}_${'l'.repeat(30)}`;
    const where = { schema, prefix: 'restwell_webhook_delivery' };
    await migrateWebhookDelivery(db.pool, where);
    try {
      const tables = webhookDeliveryTables('test', where);
      expect(Buffer.byteLength(tables.channel)).toBeLessThan(64);
      const r = recorder();
      const relay = startOutboxRelay({
        pool: db.newPool(3),
        delivery: r.delivery,
        intervalMs: 600_000,
        ...where,
      });
      try {
        await until(async () => {
          const { rows } = await db.pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1`,
            [`LISTEN "${tables.channel}"`],
          );
          return rows[0].n > 0;
        });
        const client = await db.pool.connect();
        let event: WebhookEvent;
        try {
          await client.query('BEGIN');
          event = await writeOutboxEvent(client, { type: 'payment.created', data: {} }, where);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        await until(() => r.got.length === 1, 5000);
        expect(r.got[0]?.id).toBe(event.id);
      } finally {
        await relay.stop();
      }
    } finally {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});
