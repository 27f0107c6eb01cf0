/**
 * Redis Cluster: a request's counters share the `{rl}` hash tag, so several
 * policies still run in one script on one slot. Starts a real three-node
 * cluster from the local redis-server binary (the test is skipped, loudly
 * under CI, when the binary is missing).
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { rateLimitBackend } from '../../src/rate-limit/backend.js';
import { byHeader, rateLimit } from '../../src/rate-limit/index.js';
import { adapters } from '../helpers/apps.js';
import { clusterAvailable, startCluster, type TestCluster } from '../helpers/cluster.js';
import { RedisStore } from '../../src/stores/redis/index.js';

describe.runIf(clusterAvailable)('rate limiting on a Redis Cluster', () => {
  let cluster: Cluster;
  let started: TestCluster | undefined;

  beforeAll(async () => {
    started = await startCluster();
    ({ cluster } = started);
  }, 60_000);

  afterAll(async () => {
    await started?.stop();
  });

  it('runs several policies in one atomic script, all-or-nothing', async () => {
    const backend = rateLimitBackend(new RedisStore({ client: cluster, prefix: 'c:' }));
    const now = 1_800_000_000_000;
    // Without a shared tag these three keys would hash to different slots and the script would fail.
    const checks = [
      {
        key: 'rl:{rl}:per-ip:203.0.113.9',
        algorithm: 'token-bucket' as const,
        limit: 5,
        windowMs: 60_000,
        burst: 5,
        cost: 1,
      },
      {
        key: 'rl:{rl}:per-key:abc',
        algorithm: 'sliding-window' as const,
        limit: 5,
        windowMs: 60_000,
        burst: 5,
        cost: 1,
      },
      {
        key: 'rl:{rl}:payments:203.0.113.9',
        algorithm: 'fixed-window' as const,
        limit: 2,
        windowMs: 60_000,
        burst: 2,
        cost: 1,
      },
    ];
    const allowed = [];
    for (let i = 0; i < 3; i++) {
      const r = await backend.consume(checks, now);
      allowed.push(r.outcomes.map((o) => o.allowed));
    }
    expect(allowed).toEqual([
      [true, true, true],
      [true, true, true],
      [true, true, false],
    ]);
    // The refused third request took nothing from the other two policies.
    const after = await backend.consume(checks.slice(0, 2), now);
    expect(after.outcomes.map((o) => o.remaining)).toEqual([2, 2]);
  });

  it('serves the middleware with its default hash tag', async () => {
    const listener = adapters[0]!.build({
      use: [
        rateLimit({
          store: new RedisStore({ client: cluster, prefix: 'mw:' }),
          timeoutMs: 2000,
          onStoreError: 'closed',
          policies: [
            { name: 'per-ip', limit: 10, windowMs: 60_000 },
            { name: 'per-key', limit: 10, windowMs: 60_000, key: byHeader() },
            { name: 'strict', limit: 1, windowMs: 60_000, algorithm: 'fixed-window' },
          ],
        }),
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
    });
    const ok = await request(listener).get('/x').set('x-api-key', 'k').expect(200);
    expect(ok.headers['ratelimit-policy']).toContain('"strict"');
    const refused = await request(listener).get('/x').set('x-api-key', 'k').expect(429);
    expect(refused.body.policy).toBe('strict');
  });

  /** Which master nodes hold keys matching `pattern`. */
  async function nodesHolding(pattern: string): Promise<number> {
    let holding = 0;
    for (const node of cluster.nodes('master')) {
      if ((await node.keys(pattern)).length > 0) holding++;
    }
    return holding;
  }

  for (const adapter of [adapters[0]!, adapters[2]!]) {
    it(`per-counter slots spread counters over the shards; one slot keeps them on one (${adapter.name})`, async () => {
      const run = Math.random().toString(36).slice(2, 8);
      for (const slots of ['one', 'per-counter'] as const) {
        const prefix = `spread-${slots}-${run}:`;
        const listener = adapter.build({
          use: [
            rateLimit({
              store: new RedisStore({ client: cluster, prefix }),
              slots,
              timeoutMs: 2000,
              onStoreError: 'closed',
              policies: [
                { name: 'per-ip', limit: 1000, windowMs: 60_000 },
                { name: 'per-key', limit: 5, windowMs: 60_000, key: byHeader() },
              ],
            }),
          ],
          routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
        });
        for (let i = 0; i < 24; i++) {
          await request(listener).get('/x').set('x-api-key', `key-${i}`).expect(200);
        }
        expect({ slots, nodes: await nodesHolding(`${prefix}*`) }).toEqual({
          slots,
          nodes: slots === 'one' ? 1 : 3,
        });
      }
    });

    it(`per-counter slots stay all-or-nothing under concurrency, never over the limit (${adapter.name})`, async () => {
      const run = Math.random().toString(36).slice(2, 8);
      const store = new RedisStore({ client: cluster, prefix: `race-${run}:` });
      const policies = [
        { name: 'wide', limit: 1000, windowMs: 60_000, algorithm: 'fixed-window' as const },
        { name: 'narrow', limit: 10, windowMs: 60_000 },
      ];
      const listener = adapter.build({
        use: [
          rateLimit({
            store,
            slots: 'per-counter',
            timeoutMs: 5000,
            onStoreError: 'closed',
            policies,
          }),
        ],
        routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
      });
      const statuses = await Promise.all(
        Array.from({ length: 40 }, () =>
          request(listener)
            .get('/x')
            .then((r) => r.status),
        ),
      );
      const admitted = statuses.filter((st) => st === 200).length;
      expect(statuses.every((st) => st === 200 || st === 429)).toBe(true);
      expect(admitted).toBeLessThanOrEqual(10);
      expect(admitted).toBeGreaterThanOrEqual(1);
      // Every refused request handed back what the wide policy took: it counts the admitted only.
      const backend = rateLimitBackend(store, { perCounter: true });
      const [wide] = (
        await backend.consume([
          {
            key: 'rl:{wide:127.0.0.1}',
            algorithm: 'fixed-window',
            limit: 1000,
            windowMs: 60_000,
            burst: 1000,
            cost: 0,
          },
        ])
      ).outcomes;
      expect(wide?.remaining).toBe(1000 - admitted);
    });
  }

  it('per-counter slots: a refusal hands back what every other policy took, on every algorithm', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    const backend = rateLimitBackend(
      new RedisStore({ client: cluster, prefix: `refund-${run}:` }),
      {
        perCounter: true,
      },
    );
    const now = 1_800_000_000_000;
    const checks = [
      {
        key: '{per-ip:203.0.113.9}',
        algorithm: 'token-bucket' as const,
        limit: 5,
        windowMs: 60_000,
        burst: 5,
        cost: 1,
      },
      {
        key: '{per-key:abc}',
        algorithm: 'sliding-window' as const,
        limit: 5,
        windowMs: 60_000,
        burst: 5,
        cost: 1,
      },
      {
        key: '{leaky:abc}',
        algorithm: 'leaky-bucket' as const,
        limit: 5,
        windowMs: 60_000,
        burst: 5,
        cost: 1,
      },
      {
        key: '{payments:203.0.113.9}',
        algorithm: 'fixed-window' as const,
        limit: 2,
        windowMs: 60_000,
        burst: 2,
        cost: 1,
      },
    ];
    // Each counter on a slot of its own: no script could hold two of them.
    const slots = await Promise.all(
      checks.map((c) => cluster.cluster('KEYSLOT', `refund-${run}:${c.key}`)),
    );
    expect(new Set(slots).size).toBe(checks.length);
    const allowed = [];
    for (let i = 0; i < 3; i++) {
      const r = await backend.consume(checks, now);
      allowed.push(r.outcomes.map((o) => o.allowed));
    }
    expect(allowed).toEqual([
      [true, true, true, true],
      [true, true, true, true],
      [true, true, true, false],
    ]);
    const after = await backend.consume(
      checks.slice(0, 3).map((c) => ({ ...c, cost: 0 })),
      now,
    );
    expect(after.outcomes.map((o) => o.remaining)).toEqual([3, 3, 4]);
  });
});
