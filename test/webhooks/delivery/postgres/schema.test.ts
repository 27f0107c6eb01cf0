/** The shipped migration is the SQL migrateWebhookDelivery() runs, and that SQL is safe to rerun. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  migrateWebhookDelivery,
  webhookDeliveryTableSql,
  webhookDeliveryTables,
} from '../../../../src/webhooks/delivery/postgres-schema.js';
import { PostgresDeliveryLog } from '../../../../src/webhooks/delivery/postgres-log.js';
import { services, testSchema } from './pg.js';

const db = testSchema('schema');

describe('the shipped migration', () => {
  it('is the SQL migrateWebhookDelivery() runs', () => {
    const file = readFileSync(
      new URL('../../../../migrations/postgres/006_restwell_webhook_delivery.sql', import.meta.url),
      'utf8',
    );
    const statements = (sql: string) =>
      sql
        .split('\n')
        .filter((l) => !l.startsWith('--'))
        .join('\n')
        .trim();
    expect(statements(file)).toBe(statements(webhookDeliveryTableSql()));
  });

  it('names are checked, and no index name is longer than PostgreSQL keeps', () => {
    expect(() => webhookDeliveryTableSql({ prefix: 'x; DROP TABLE users' })).toThrow(/"prefix"/);
    expect(() => webhookDeliveryTableSql({ schema: 'a.b' })).toThrow(/"schema"/);
    expect(() => webhookDeliveryTableSql({ prefix: 'p'.repeat(31) })).toThrow(/"prefix"/);
    expect(() => webhookDeliveryTableSql({ table: 'x' } as never)).toThrow(/table/);
    const sql = webhookDeliveryTableSql({ schema: 's'.repeat(63), prefix: 'p'.repeat(30) });
    for (const [, name] of sql.matchAll(/CREATE INDEX IF NOT EXISTS (\S+)/g))
      expect(name!.length).toBeLessThanOrEqual(63);
    expect(webhookDeliveryTables('webhooks', { schema: 'Ops', prefix: 'WH' }).channel).toBe(
      'ops_wh_outbox',
    );
  });
});

describe.runIf(services.postgres)('migrateWebhookDelivery', () => {
  it('creates the schema and the tables, and runs again as a no-op', async () => {
    await migrateWebhookDelivery(db.pool, { schema: db.schema });
    await migrateWebhookDelivery(db.pool, { schema: db.schema });
    // A second prefix in the same schema: index names of their own, no clash.
    await migrateWebhookDelivery(db.pool, { schema: db.schema, prefix: 'other' });
    const { rows } = await db.pool.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
      [db.schema],
    );
    expect(rows.map((r) => r.table_name)).toEqual(
      ['attempts', 'deliveries', 'endpoints', 'events', 'meta', 'outbox']
        .flatMap((t) => [`other_${t}`, `restwell_webhook_delivery_${t}`])
        .sort(),
    );
  });

  it('takes a schema named as a reserved word, and folds a mixed-case one as PostgreSQL folds it', async () => {
    // Identifier characters only, yet `table` is reserved: unquoted, every statement would fail.
    const reserved = { schema: 'table', prefix: `rw_${Math.random().toString(36).slice(2, 8)}` };
    const mixed = `${db.schema}_Mixed`;
    try {
      await migrateWebhookDelivery(db.pool, reserved);
      const log = new PostgresDeliveryLog({ pool: db.pool, ...reserved });
      await log.putEvent({
        id: 'evt_1',
        type: 'payment.created',
        createdAt: new Date(0).toISOString(),
        data: {},
      } as never);
      expect(await log.getEvent('evt_1')).toMatchObject({ id: 'evt_1' });
      await migrateWebhookDelivery(db.pool, { schema: mixed });
      const { rows } = await db.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1',
        [mixed.toLowerCase()],
      );
      expect(rows[0]!.n).toBe(6);
    } finally {
      await db.pool.query(
        `DROP TABLE IF EXISTS ${['events', 'deliveries', 'attempts', 'endpoints', 'outbox', 'meta'].map((t) => `"table".${reserved.prefix}_${t}`).join(', ')}`,
      );
      // Dropped once empty: without CASCADE, so that nothing but this test's tables goes.
      await db.pool.query('DROP SCHEMA IF EXISTS "table"').catch(() => {});
      await db.pool.query(`DROP SCHEMA IF EXISTS "${mixed.toLowerCase()}" CASCADE`);
    }
  });
});
