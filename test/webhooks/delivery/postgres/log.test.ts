/**
 * The DeliveryLog contract, run on MemoryDeliveryLog and on PostgresDeliveryLog
 * (each case on tables of its own), then what only the PostgreSQL log has to
 * prove: concurrent updates from several pools, cursors across processes and
 * logs, a sweep that skips locked rows, and a missing table as a 503.
 */
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError, ValidationError } from '../../../../src/core/errors.js';
import { InvalidCursorError } from '../../../../src/pagination/errors.js';
import type { WebhookEvent } from '../../../../src/webhooks/delivery/events.js';
import {
  type AttemptRecord,
  type DeliveryLog,
  type DeliveryRecord,
  MemoryDeliveryLog,
  type MemoryDeliveryLogOptions,
} from '../../../../src/webhooks/delivery/log.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { services, testSchema } from './pg.js';

const db = testSchema('log');
const START = Date.parse('2025-06-01T12:00:00Z');
const DAY = 86_400_000;
let tables = 0;

/** A PostgreSQL log on tables of its own in this file's schema. */
async function pgLog(options: MemoryDeliveryLogOptions & { prefix?: string } = {}) {
  await db.migrate();
  const prefix = options.prefix ?? `t${++tables}`;
  await migrateWebhookDelivery(db.pool, { schema: db.schema, prefix });
  return new PostgresDeliveryLog({ pool: db.pool, schema: db.schema, ...options, prefix });
}

const cases: Array<{
  name: string;
  enabled: boolean;
  make: (options?: MemoryDeliveryLogOptions) => Promise<DeliveryLog>;
}> = [
  { name: 'memory', enabled: true, make: async (o) => new MemoryDeliveryLog(o) },
  { name: 'postgres', enabled: services.postgres, make: (o) => pgLog(o) },
];

function attempt(n: number, at: number, extra: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    deliveryId: `evt_${n}/ep_1`,
    eventId: `evt_${n}`,
    eventType: 'payment.succeeded',
    endpointId: 'ep_1',
    generation: 0,
    attempt: 1,
    at,
    durationMs: n,
    ok: n % 2 === 0,
    ...(n % 2 === 0 ? { status: 200 } : { status: 500, failure: 'http-status' }),
    ...extra,
  };
}

function delivery(id: string, extra: Partial<DeliveryRecord> = {}): DeliveryRecord {
  const eventId = id.split('/')[0]!;
  return {
    id,
    eventId,
    eventType: 'payment.succeeded',
    eventCreatedAt: START,
    endpointId: 'ep_1',
    status: 'pending',
    generation: 0,
    attempts: 0,
    totalAttempts: 0,
    createdAt: START,
    updatedAt: START,
    ...extra,
  };
}

function event(id: string, extra: Partial<WebhookEvent> = {}): WebhookEvent {
  return { id, type: 'a.b', createdAt: new Date(START).toISOString(), data: {}, ...extra };
}

describe.each(cases)('$name delivery log: the contract', ({ enabled, make }) => {
  it.runIf(enabled)('keeps the first event stored under an id, every field as given', async () => {
    const log = await make();
    const first = event('evt_1', {
      sequence: 3,
      resource: { type: 'payment', id: 'pay_1' },
      data: { z: 1, a: [1.5, 'é', null, { nested: true }], nul: 'a\u0000b' },
      test: true,
    });
    await log.putEvent(first);
    await log.putEvent(event('evt_1', { type: 'c.d', data: { other: true } }));
    const stored = await log.getEvent('evt_1');
    expect(stored).toEqual(first);
    // Member order is kept: the body a receiver gets is the JSON the application wrote.
    expect(Object.keys(stored!.data as object)).toEqual(['z', 'a', 'nul']);
    expect(await log.getEvent('evt_none')).toBeUndefined();
  });

  it.runIf(enabled)('inserts a delivery once and round-trips every field', async () => {
    const log = await make();
    const full = delivery('evt_1/ep_1/v2', {
      version: 'v2',
      status: 'dead',
      generation: 2,
      attempts: 25,
      totalAttempts: 30,
      nextAttemptAt: START + 1234,
      deadReason: 'exhausted',
      lastStatus: 503,
      lastFailure: 'http-status',
      test: true,
      updatedAt: START + 99,
    });
    expect(await log.insertDelivery(full)).toBe(true);
    expect(await log.insertDelivery({ ...full, status: 'pending' })).toBe(false);
    expect(await log.getDelivery(full.id)).toEqual(full);
    const minimal = delivery('evt_2/ep_1');
    await log.insertDelivery(minimal);
    expect(await log.getDelivery(minimal.id)).toEqual(minimal);
    expect(await log.getDelivery('evt_none/ep_1')).toBeUndefined();
  });

  it.runIf(enabled)(
    'keeps every dead reason and attempt failure, payload and aborted among them, and selects them',
    async () => {
      const log = await make();
      const reasons = ['exhausted', 'fast-failure', 'payload'] as const;
      for (const [n, deadReason] of reasons.entries())
        await log.insertDelivery(
          delivery(`evt_${n}/ep_1`, {
            status: 'dead',
            deadReason,
            lastFailure: deadReason === 'payload' ? 'payload' : 'http-status',
          }),
        );
      const failures = ['payload', 'aborted', 'timeout', 'connection-refused', 'dns', 'tls'];
      for (const [n, failure] of failures.entries()) {
        const { status: _status, ...unanswered } = attempt(2 * n + 1, START + n, { failure });
        await log.recordAttempt(unanswered);
      }
      const dead = await log.queryDeliveries({ status: 'dead' });
      expect(dead.items.map((d) => d.deadReason).sort()).toEqual([...reasons].sort());
      expect((await log.getDelivery('evt_2/ep_1'))?.deadReason).toBe('payload');
      const page = await log.queryAttempts({ ok: false });
      expect(page.items.map((a) => a.failure).sort()).toEqual([...failures].sort());
      expect(page.items.every((a) => !('status' in a))).toBe(true);
      expect((await log.endpointStats('ep_1', 0)).dead).toBe(3);
    },
  );

  it.runIf(enabled)(
    'reads an id that is not a string (a malformed job) as no record, not a fault',
    async () => {
      const log = await make();
      const bad = [undefined, null, 42, {}] as unknown as string[];
      for (const id of bad) {
        expect(await log.getDelivery(id)).toBeUndefined();
        expect(await log.getEvent(id)).toBeUndefined();
        expect(await log.updateDelivery(id, (d) => d)).toBeUndefined();
      }
    },
  );

  it.runIf(enabled)(
    'updates a delivery from its current state; none for an unknown id',
    async () => {
      const log = await make();
      await log.insertDelivery(delivery('evt_1/ep_1'));
      const seen: DeliveryRecord[] = [];
      const updated = await log.updateDelivery('evt_1/ep_1', (d) => {
        seen.push(d);
        const { nextAttemptAt: _, ...rest } = d;
        return { ...rest, status: 'retrying', attempts: d.attempts + 1, lastStatus: 500 };
      });
      expect(seen).toHaveLength(1);
      expect(updated).toMatchObject({ status: 'retrying', attempts: 1, lastStatus: 500 });
      expect(await log.getDelivery('evt_1/ep_1')).toEqual(updated);
      expect(await log.updateDelivery('evt_none/ep_1', (d) => d)).toBeUndefined();
    },
  );

  it.runIf(enabled)('pages attempts newest first with cursors bound to the query', async () => {
    const log = await make();
    for (let n = 1; n <= 7; n++) await log.recordAttempt(attempt(n, START + n));
    // Two attempts at one instant: the later recorded comes first, and paging splits none.
    await log.recordAttempt(attempt(8, START + 7));
    const first = await log.queryAttempts({ endpointId: 'ep_1', limit: 3 });
    expect(first.items.map((a) => a.eventId)).toEqual(['evt_8', 'evt_7', 'evt_6']);
    const second = await log.queryAttempts({
      endpointId: 'ep_1',
      limit: 3,
      cursor: first.nextCursor!,
    });
    expect(second.items.map((a) => a.eventId)).toEqual(['evt_5', 'evt_4', 'evt_3']);
    const third = await log.queryAttempts({
      endpointId: 'ep_1',
      limit: 3,
      cursor: second.nextCursor!,
    });
    expect(third.items.map((a) => a.eventId)).toEqual(['evt_2', 'evt_1']);
    expect(third.nextCursor).toBeUndefined();
    expect(first.items[0]).toEqual(attempt(8, START + 7));
    expect((await log.queryAttempts({ ok: false })).items.map((a) => a.status)).toEqual([
      500, 500, 500, 500,
    ]);
    expect((await log.queryAttempts({ status: 200 })).items).toHaveLength(4);
    expect((await log.queryAttempts({ from: START + 3, to: START + 5 })).items).toHaveLength(2);
    expect((await log.queryAttempts({ eventId: 'evt_3' })).items).toHaveLength(1);
    expect((await log.queryAttempts({ deliveryId: 'evt_4/ep_1' })).items).toHaveLength(1);
    expect((await log.queryAttempts({ endpointId: 'ep_2' })).items).toEqual([]);
    // An exact page: no cursor to an empty one.
    expect((await log.queryAttempts({ limit: 8 })).nextCursor).toBeUndefined();
  });

  it.runIf(enabled)(
    'selects attempts by event type, and binds the types to the cursor',
    async () => {
      const log = await make();
      for (let n = 1; n <= 6; n++) {
        await log.recordAttempt(
          attempt(n, START + n, { eventType: n <= 4 ? 'payment.created' : 'refund.created' }),
        );
      }
      const created = await log.queryAttempts({ types: ['payment.created'], limit: 3 });
      expect(created.items.map((a) => a.eventId)).toEqual(['evt_4', 'evt_3', 'evt_2']);
      const rest = await log.queryAttempts({
        types: ['payment.created'],
        limit: 3,
        cursor: created.nextCursor!,
      });
      expect(rest.items.map((a) => a.eventId)).toEqual(['evt_1']);
      const both = await log.queryAttempts({ types: ['payment.created', 'refund.created'] });
      expect(both.items).toHaveLength(6);
      // A cursor of one selection is no cursor of another.
      await expect(
        log.queryAttempts({ types: ['refund.created'], limit: 3, cursor: created.nextCursor! }),
      ).rejects.toMatchObject({ status: 400 });
    },
  );

  it.runIf(enabled)(
    'pages deliveries by endpoint, event, type, status, time and test',
    async () => {
      const log = await make();
      for (let n = 1; n <= 6; n++) {
        await log.insertDelivery(
          delivery(`evt_${n}/ep_${n % 2}`, {
            endpointId: `ep_${n % 2}`,
            eventType: n <= 3 ? 'payment.created' : 'payment.succeeded',
            eventCreatedAt: START + n,
            status: n % 3 === 0 ? 'dead' : 'delivered',
            createdAt: START + n,
            ...(n === 6 ? { test: true } : {}),
          }),
        );
      }
      const ids = async (q: Parameters<DeliveryLog['queryDeliveries']>[0]) =>
        (await log.queryDeliveries(q)).items.map((d) => d.eventId);
      expect(await ids({})).toEqual(['evt_6', 'evt_5', 'evt_4', 'evt_3', 'evt_2', 'evt_1']);
      expect(await ids({ endpointId: 'ep_1' })).toEqual(['evt_5', 'evt_3', 'evt_1']);
      expect(await ids({ status: 'dead' })).toEqual(['evt_6', 'evt_3']);
      expect(await ids({ status: ['dead', 'delivered'], includeTests: false })).toHaveLength(5);
      expect(await ids({ types: ['payment.created'] })).toEqual(['evt_3', 'evt_2', 'evt_1']);
      expect(await ids({ eventIds: ['evt_2', 'evt_5', 'evt_9'] })).toEqual(['evt_5', 'evt_2']);
      expect(await ids({ from: START + 2, to: START + 4 })).toEqual(['evt_3', 'evt_2']);
      const page = await log.queryDeliveries({ status: 'delivered', limit: 2 });
      expect(page.items.map((d) => d.eventId)).toEqual(['evt_5', 'evt_4']);
      const next = await log.queryDeliveries({
        status: 'delivered',
        limit: 2,
        cursor: page.nextCursor!,
      });
      expect(next.items.map((d) => d.eventId)).toEqual(['evt_2', 'evt_1']);
      expect(next.nextCursor).toBeUndefined();
    },
  );

  it.runIf(enabled)(
    'refuses a cursor of another query, or no cursor at all, with a 400',
    async () => {
      const log = await make();
      for (let n = 1; n <= 3; n++) await log.recordAttempt(attempt(n, START + n));
      const { nextCursor } = await log.queryAttempts({ limit: 1 });
      expect(nextCursor).toBeDefined();
      await expect(
        log.queryAttempts({ ok: true, limit: 1, cursor: nextCursor! }),
      ).rejects.toBeInstanceOf(InvalidCursorError);
      // The page size is part of the query.
      await expect(log.queryAttempts({ limit: 2, cursor: nextCursor! })).rejects.toBeInstanceOf(
        InvalidCursorError,
      );
      // An attempts cursor is not a deliveries cursor.
      await expect(log.queryDeliveries({ limit: 1, cursor: nextCursor! })).rejects.toMatchObject({
        status: 400,
      });
      const tampered = `${nextCursor!.slice(0, -2)}${nextCursor!.endsWith('AA') ? 'BB' : 'AA'}`;
      for (const cursor of ['not-a-cursor', '', tampered, 'x'.repeat(5000)]) {
        await expect(log.queryAttempts({ limit: 1, cursor })).rejects.toMatchObject({
          status: 400,
        });
      }
    },
  );

  it.runIf(enabled)('refuses malformed queries with a 400 listing the field', async () => {
    const log = await make();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ limit: 0 }, '/limit'],
      [{ limit: 501 }, '/limit'],
      [{ from: Number.NaN }, '/from'],
      [{ to: 'tomorrow' }, '/to'],
    ];
    for (const [query, pointer] of bad) {
      const err = await log.queryAttempts(query as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).errors[0]?.pointer).toBe(pointer);
      await expect(log.queryDeliveries(query as never)).rejects.toBeInstanceOf(ValidationError);
    }
  });

  it.runIf(enabled)('computes success and nearest-rank p50/p99 latency per endpoint', async () => {
    const log = await make();
    for (let n = 1; n <= 100; n++) await log.recordAttempt(attempt(n, START));
    await log.recordAttempt(attempt(500, START, { endpointId: 'ep_2' }));
    await log.insertDelivery(delivery('evt_1/ep_1', { status: 'dead' }));
    await log.insertDelivery(delivery('evt_2/ep_1', { status: 'held' }));
    await log.insertDelivery(delivery('evt_3/ep_1', { status: 'retrying' }));
    await log.insertDelivery(delivery('evt_4/ep_1', { status: 'pending' }));
    await log.insertDelivery(delivery('evt_5/ep_1', { status: 'delivered' }));
    expect(await log.endpointStats('ep_1', START)).toEqual({
      attempts: 100,
      succeeded: 50,
      p50Ms: 50,
      p99Ms: 99,
      dead: 1,
      held: 1,
      pending: 2,
    });
    expect(await log.endpointStats('ep_1', START + 1)).toMatchObject({ attempts: 0, succeeded: 0 });
    expect(await log.endpointStats('ep_1', START + 1)).not.toHaveProperty('p50Ms');
  });

  it.runIf(enabled)(
    'sweeps attempts and finished deliveries past retention, dead letters past theirs',
    async () => {
      const log = await make({ retentionMs: 7 * DAY, deadRetentionMs: 30 * DAY });
      await log.putEvent(event('evt_1'));
      await log.putEvent(event('evt_2'));
      await log.putEvent(event('evt_3'));
      await log.insertDelivery(delivery('evt_1/ep_1', { status: 'delivered' }));
      await log.insertDelivery(delivery('evt_2/ep_1', { status: 'dead' }));
      // Work still to do is never swept, nor the event it needs.
      await log.insertDelivery(delivery('evt_3/ep_1', { status: 'retrying' }));
      await log.recordAttempt(attempt(1, START));
      await log.recordAttempt(attempt(2, START + 7 * DAY));
      expect(await log.sweep(START + 7 * DAY + 1)).toEqual({
        attempts: 1,
        deliveries: 1,
        events: 1,
      });
      expect(await log.getEvent('evt_1')).toBeUndefined();
      expect(await log.getEvent('evt_2')).toBeDefined();
      expect(await log.getDelivery('evt_2/ep_1')).toBeDefined();
      expect((await log.queryAttempts()).items.map((a) => a.eventId)).toEqual(['evt_2']);
      expect(await log.sweep(START + 30 * DAY + 1)).toEqual({
        attempts: 1,
        deliveries: 1,
        events: 1,
      });
      expect(await log.getEvent('evt_2')).toBeUndefined();
      expect(await log.getDelivery('evt_3/ep_1')).toBeDefined();
      expect(await log.getEvent('evt_3')).toBeDefined();
    },
  );
});

describe.runIf(services.postgres)('PostgresDeliveryLog', () => {
  it('loses no update when workers on several pools update one delivery at once', async () => {
    const log = await pgLog({ prefix: 'race' });
    const others = [db.newPool(5), db.newPool(5)].map(
      (pool) => new PostgresDeliveryLog({ pool, schema: db.schema, prefix: 'race' }),
    );
    await log.insertDelivery(delivery('evt_1/ep_1'));
    const logs = [log, ...others];
    let calls = 0;
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        logs[i % logs.length]!.updateDelivery('evt_1/ep_1', (d) => {
          calls++;
          return { ...d, totalAttempts: d.totalAttempts + 1 };
        }),
      ),
    );
    // `change` ran once per update, each on the state the previous one left.
    expect(calls).toBe(30);
    expect((await log.getDelivery('evt_1/ep_1'))?.totalAttempts).toBe(30);
  });

  it('a generation check in `change` settles once when a replay races a worker', async () => {
    const log = await pgLog({ prefix: 'settle' });
    await log.insertDelivery(delivery('evt_1/ep_1', { status: 'retrying' }));
    const other = new PostgresDeliveryLog({
      pool: db.newPool(2),
      schema: db.schema,
      prefix: 'settle',
    });
    let applied = false;
    // The worker's settle (as delivery.ts does it) and a replay's restart, at once.
    const [settled] = await Promise.all([
      log.updateDelivery('evt_1/ep_1', (d) => {
        if (d.generation !== 0) return { ...d, totalAttempts: d.totalAttempts + 1 };
        applied = true;
        return { ...d, status: 'delivered', totalAttempts: d.totalAttempts + 1 };
      }),
      other.updateDelivery('evt_1/ep_1', (d) => ({
        ...d,
        status: 'pending',
        generation: d.generation + 1,
        attempts: 0,
      })),
    ]);
    const final = await log.getDelivery('evt_1/ep_1');
    expect(final?.totalAttempts).toBe(1);
    // Whichever went first, the decision recorded by `change` is what was written.
    if (applied) expect(settled?.status).toBe('delivered');
    else expect(final).toMatchObject({ status: 'pending', generation: 1 });
    expect(final?.generation).toBe(1);
  });

  it('what `change` throws is thrown as it is, and nothing is written', async () => {
    const log = await pgLog();
    await log.insertDelivery(delivery('evt_1/ep_1'));
    const boom = new RangeError('no');
    await expect(
      log.updateDelivery('evt_1/ep_1', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await log.getDelivery('evt_1/ep_1'))?.status).toBe('pending');
  });

  it("opens its cursors in another process on the same tables, and refuses another log's", async () => {
    const log = await pgLog({ prefix: 'cur' });
    for (let n = 1; n <= 3; n++) await log.recordAttempt(attempt(n, START + n));
    const { nextCursor } = await log.queryAttempts({ limit: 1 });
    const elsewhere = new PostgresDeliveryLog({
      pool: db.newPool(2),
      schema: db.schema,
      prefix: 'cur',
    });
    const page = await elsewhere.queryAttempts({ limit: 1, cursor: nextCursor! });
    expect(page.items.map((a) => a.eventId)).toEqual(['evt_2']);
    // Another log (other tables, its own key), a memory log, a log with configured keys.
    const another = await pgLog({ prefix: 'cur2' });
    await expect(another.queryAttempts({ limit: 1, cursor: nextCursor! })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    const memory = new MemoryDeliveryLog();
    for (let n = 1; n <= 3; n++) await memory.recordAttempt(attempt(n, START + n));
    const memoryCursor = (await memory.queryAttempts({ limit: 1 })).nextCursor!;
    await expect(log.queryAttempts({ limit: 1, cursor: memoryCursor })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    const keyed = new PostgresDeliveryLog({
      pool: db.pool,
      schema: db.schema,
      prefix: 'cur',
      cursorSecrets: 'k'.repeat(32),
    });
    const keyedCursor = (await keyed.queryAttempts({ limit: 1 })).nextCursor!;
    await expect(log.queryAttempts({ limit: 1, cursor: keyedCursor })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    expect((await keyed.queryAttempts({ limit: 1, cursor: keyedCursor })).items).toHaveLength(1);
    expect(() => new PostgresDeliveryLog({ pool: db.pool, cursorSecrets: 'short' })).toThrow(
      TypeError,
    );
  });

  it('refuses, with a 400 and not a driver error, filters PostgreSQL would not take', async () => {
    const log = await pgLog();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ status: 'teapot' }, '/status'],
      [{ ok: 'yes' }, '/ok'],
      [{ endpointId: 'ep_\u0000' }, '/endpointId'],
      [{ endpointId: 42 }, '/endpointId'],
    ];
    for (const [query, pointer] of bad) {
      const err = await log.queryAttempts(query as never).catch((e: unknown) => e);
      expect((err as ValidationError).errors?.[0]?.pointer).toBe(pointer);
      expect((err as ValidationError).status).toBe(400);
    }
    for (const query of [
      { status: 'lost' },
      { eventIds: 'evt_1' },
      { types: [1] },
      { includeTests: 1 },
    ]) {
      await expect(log.queryDeliveries(query as never)).rejects.toMatchObject({ status: 400 });
    }
    expect(await log.getDelivery('evt_\u0000')).toBeUndefined();
    expect(await log.getEvent('evt_\u0000')).toBeUndefined();
  });

  it('stores a response excerpt holding U+0000, which a text column refuses', async () => {
    const log = await pgLog();
    await log.recordAttempt(attempt(1, START, { responseExcerpt: 'a\u0000b', message: '\u0000' }));
    const [stored] = (await log.queryAttempts()).items;
    expect(stored).toMatchObject({ responseExcerpt: 'a\uFFFDb', message: '\uFFFD' });
  });

  it('sweeps past a delivery another transaction holds, without waiting for it', async () => {
    const log = await pgLog({ prefix: 'locked', retentionMs: DAY, deadRetentionMs: DAY });
    await log.insertDelivery(delivery('evt_1/ep_1', { status: 'delivered' }));
    await log.insertDelivery(delivery('evt_2/ep_1', { status: 'dead' }));
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT 1 FROM ${log.tables.deliveries} WHERE id = $1 FOR UPDATE`, [
        'evt_1/ep_1',
      ]);
      expect(await log.sweep(START + 2 * DAY)).toMatchObject({ deliveries: 1 });
      expect(await log.getDelivery('evt_1/ep_1')).toBeDefined();
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await log.sweep(START + 2 * DAY)).toMatchObject({ deliveries: 1 });
    expect(await log.getDelivery('evt_1/ep_1')).toBeUndefined();
  });

  it('sweeps in batches until nothing past retention is left', async () => {
    await pgLog({ prefix: 'batch' });
    const log = new PostgresDeliveryLog({
      pool: db.pool,
      schema: db.schema,
      prefix: 'batch',
      retentionMs: DAY,
      sweepBatchSize: 2,
    });
    for (let n = 1; n <= 5; n++) await log.recordAttempt(attempt(n, START));
    expect(await log.sweep(START + 2 * DAY)).toEqual({ attempts: 5, deliveries: 0, events: 0 });
  });

  it('is a 503 naming the migration when its tables do not exist', async () => {
    await db.migrate();
    const log = new PostgresDeliveryLog({ pool: db.pool, schema: db.schema, prefix: 'never_made' });
    const err = await log.getDelivery('evt_1/ep_1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).status).toBe(503);
    expect((err as Error).message).toMatch(/migrateWebhookDelivery/);
  });

  it('refuses bad options at construction, naming the option', () => {
    expect(() => new PostgresDeliveryLog({ pool: {} as never })).toThrow(/"pool"/);
    expect(() => new PostgresDeliveryLog({ pool: db.pool, prefix: 'x; DROP' })).toThrow(/"prefix"/);
    expect(() => new PostgresDeliveryLog({ pool: db.pool, schema: '1x' })).toThrow(/"schema"/);
    expect(() => new PostgresDeliveryLog({ pool: db.pool, timeoutMs: 0 })).toThrow(/"timeoutMs"/);
    // It is the server's statement_timeout, an int: a larger one would fail every transaction.
    expect(() => new PostgresDeliveryLog({ pool: db.pool, timeoutMs: 2 ** 31 })).toThrow(
      /"timeoutMs"/,
    );
    expect(
      () => new PostgresDeliveryLog({ pool: db.pool, retentionMs: DAY, deadRetentionMs: 1 }),
    ).toThrow(/deadRetentionMs/);
    expect(() => new PostgresDeliveryLog({ pool: db.pool, tabel: 'x' } as never)).toThrow(/tabel/);
  });

  it('a checkout that timed out on a saturated pool gives its client back when it comes', async () => {
    const log = await pgLog();
    await log.insertDelivery(delivery('evt_1/ep_1'));
    const small = db.newPool(1);
    const tight = new PostgresDeliveryLog({
      pool: small,
      schema: db.schema,
      prefix: log.tables.prefix,
      timeoutMs: 200,
    });
    const held = await small.connect();
    const err = await tight.updateDelivery('evt_1/ep_1', (d) => d).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503 });
    held.release();
    // The timed-out checkout got the client on release, and gave it back: the pool still serves.
    const updated = await tight.updateDelivery('evt_1/ep_1', (d) => ({ ...d, attempts: 1 }));
    expect(updated?.attempts).toBe(1);
    expect(small.totalCount - small.idleCount).toBe(0);
  });
});
