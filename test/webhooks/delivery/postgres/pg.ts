/**
 * A schema of its own per test file on the real PostgreSQL server, migrated
 * with migrateWebhookDelivery() and dropped at the end.
 */
import pg from 'pg';
import { afterAll } from 'vitest';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { services } from '../../../helpers/services.js';

export { services };

/** A pool and a fresh schema, migrated; both dropped after the file's tests. */
export function testSchema(name: string) {
  const schema = `restwell_wh_${name}_${Math.random().toString(36).slice(2, 8)}`;
  const pools: pg.Pool[] = [];
  let migrated: Promise<void> | undefined;
  const pool = (max = 10) => {
    const p = new pg.Pool({ connectionString: services.databaseUrl, max });
    // An idle client's error (the server closing it) is not a test failure.
    p.on('error', () => {});
    pools.push(p);
    return p;
  };
  const main = services.postgres ? pool() : (undefined as unknown as pg.Pool);
  afterAll(async () => {
    if (!services.postgres) return;
    await main.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    for (const p of pools) await p.end();
  });
  return {
    schema,
    pool: main,
    /** Another pool on the same database: a second process's view. */
    newPool: pool,
    async migrate() {
      migrated ??= migrateWebhookDelivery(main, { schema });
      await migrated;
    },
  };
}
