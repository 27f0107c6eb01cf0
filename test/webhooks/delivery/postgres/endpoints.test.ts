/**
 * The EndpointStore contract on MemoryEndpointStore and PostgresEndpointStore,
 * the endpoint service on top of the PostgreSQL store, and concurrent writes
 * from several pools.
 */
import { describe, expect, it } from 'vitest';
import {
  type EndpointRecord,
  type EndpointStore,
  MemoryEndpointStore,
  WebhookEndpoints,
} from '../../../../src/webhooks/delivery/endpoints.js';
import { PostgresEndpointStore } from '../../../../src/webhooks/delivery/postgres-endpoints.js';
import { migrateWebhookDelivery } from '../../../../src/webhooks/delivery/postgres-schema.js';
import { services, testSchema } from './pg.js';

const db = testSchema('endpoints');
const START = Date.parse('2025-06-01T12:00:00Z');
let tables = 0;

async function pgStore(prefix = `t${++tables}`) {
  await db.migrate();
  await migrateWebhookDelivery(db.pool, { schema: db.schema, prefix });
  return new PostgresEndpointStore({ pool: db.pool, schema: db.schema, prefix });
}

const cases: Array<{ name: string; enabled: boolean; make: () => Promise<EndpointStore> }> = [
  { name: 'memory', enabled: true, make: async () => new MemoryEndpointStore() },
  { name: 'postgres', enabled: services.postgres, make: () => pgStore() },
];

function record(id: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id,
    url: 'https://shop.example/hooks',
    eventTypes: ['payment.*'],
    versions: [],
    payload: 'fat',
    concurrency: 3,
    secrets: [{ secret: `whsec_${id}`, createdAt: START }],
    createdAt: START,
    updatedAt: START,
    ...extra,
  };
}

describe.each(cases)('$name endpoint store: the contract', ({ enabled, make }) => {
  it.runIf(enabled)('inserts once and round-trips every field', async () => {
    const store = await make();
    const full = record('ep_full', {
      description: 'Shop — é',
      versions: ['2025-06-01', '2024-01-01'],
      payload: 'thin',
      concurrency: 7,
      rateLimitPerSecond: 50,
      secrets: [
        { secret: 'whsec_new', createdAt: START + 5 },
        { secret: 'whsec_old', createdAt: START, expiresAt: START + 10 },
      ],
      disabled: { by: 'health', reason: 'failing', at: START + 1 },
      metadata: { team: 'payments', nul: 'a\u0000b' },
    });
    expect(await store.insert(full)).toBe(true);
    expect(await store.insert({ ...full, url: 'https://other.example/' })).toBe(false);
    expect(await store.get('ep_full')).toEqual(full);
    const minimal = record('ep_min');
    await store.insert(minimal);
    expect(await store.get('ep_min')).toEqual(minimal);
    expect(await store.get('ep_none')).toBeUndefined();
  });

  it.runIf(enabled)('lists every endpoint in the order registered', async () => {
    const store = await make();
    await store.insert(record('ep_b', { createdAt: START }));
    await store.insert(record('ep_a', { createdAt: START + 1 }));
    await store.insert(record('ep_c', { createdAt: START + 2 }));
    expect((await store.list()).map((r) => r.id)).toEqual(['ep_b', 'ep_a', 'ep_c']);
  });

  it.runIf(enabled)('updates from the current record, and deletes', async () => {
    const store = await make();
    await store.insert(record('ep_1'));
    let calls = 0;
    const updated = await store.update('ep_1', (r) => {
      calls++;
      const { description: _, ...rest } = r;
      return { ...rest, concurrency: r.concurrency + 1, updatedAt: START + 1 };
    });
    expect(calls).toBe(1);
    expect(updated).toMatchObject({ concurrency: 4, updatedAt: START + 1 });
    expect(await store.get('ep_1')).toEqual(updated);
    expect(await store.update('ep_none', (r) => r)).toBeUndefined();
    expect(await store.delete('ep_1')).toBe(true);
    expect(await store.delete('ep_1')).toBe(false);
    expect(await store.get('ep_1')).toBeUndefined();
  });

  it.runIf(enabled)(
    'gives back frozen records that share nothing with what was stored',
    async () => {
      const store = await make();
      const given = record('ep_1');
      await store.insert(given);
      const read = (await store.get('ep_1'))!;
      expect(Object.isFrozen(read)).toBe(true);
      expect(Object.isFrozen(read.secrets)).toBe(true);
      expect(read.secrets).not.toBe(given.secrets);
    },
  );
});

describe.runIf(services.postgres)('PostgresEndpointStore', () => {
  it('keeps the secrets in a column of their own, apart from the rest of the record', async () => {
    const store = await pgStore();
    await store.insert(record('ep_1'));
    const { rows } = await db.pool.query(
      `SELECT record::text AS record, secrets::text AS secrets FROM ${store.tables.endpoints}`,
    );
    expect(rows[0].record).not.toContain('whsec_ep_1');
    expect(rows[0].secrets).toContain('whsec_ep_1');
  });

  it('under the endpoint service: two rotations at once from two pools lose neither secret', async () => {
    const store = await pgStore('rotate');
    const other = new PostgresEndpointStore({
      pool: db.newPool(3),
      schema: db.schema,
      prefix: 'rotate',
    });
    const service = (s: EndpointStore) =>
      new WebhookEndpoints({ store: s, allowHttp: true, now: () => START });
    const { endpoint, secret } = await service(store).create({ url: 'https://shop.example/h' });
    const [a, b] = await Promise.all([
      service(store).rotateSecret(endpoint.id),
      service(other).rotateSecret(endpoint.id),
    ]);
    const stored = (await store.get(endpoint.id))!;
    expect(stored.secrets.map((s) => s.secret).sort()).toEqual([a.secret, b.secret, secret].sort());
  });

  it('twenty updates at once from two pools: each sees the one before, none is lost', async () => {
    const store = await pgStore('toggle');
    const other = new PostgresEndpointStore({
      pool: db.newPool(3),
      schema: db.schema,
      prefix: 'toggle',
    });
    await store.insert(record('ep_1'));
    let writes = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? store : other).update('ep_1', (r) => {
          writes++;
          return { ...r, concurrency: r.concurrency + 1 };
        }),
      ),
    );
    expect(writes).toBe(20);
    expect((await store.get('ep_1'))?.concurrency).toBe(23);
  });

  it('what `change` throws is thrown as it is, and nothing is written', async () => {
    const store = await pgStore();
    await store.insert(record('ep_1'));
    const boom = new Error('refused');
    await expect(
      store.update('ep_1', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await store.get('ep_1'))?.concurrency).toBe(3);
  });

  it('an id PostgreSQL cannot hold (U+0000) is no endpoint, not a driver error', async () => {
    const store = await pgStore();
    expect(await store.get('ep_\u0000')).toBeUndefined();
    expect(await store.update('ep_\u0000', (r) => r)).toBeUndefined();
    expect(await store.delete('ep_\u0000')).toBe(false);
  });

  it('refuses bad options at construction, naming the option', () => {
    expect(() => new PostgresEndpointStore({ pool: undefined as never })).toThrow(/"pool"/);
    expect(() => new PostgresEndpointStore({ pool: db.pool, prefix: '' })).toThrow(/"prefix"/);
    expect(() => new PostgresEndpointStore({ pool: db.pool, table: 'x' } as never)).toThrow(
      /table/,
    );
  });
});
