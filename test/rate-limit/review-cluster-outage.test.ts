/**
 * `slots: 'per-counter'` when one shard of a real three-node Redis Cluster
 * stops answering (its process paused): the request takes the outage path
 * (let through, or 503), never a 429, and the counter on the shard that did
 * answer is handed back, so the outage costs the client nothing there.
 */
import type { ChildProcess } from 'node:child_process';
import type { Cluster } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/rate-limit/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { adapters } from '../helpers/apps.js';
import { clusterAvailable, startCluster, type TestCluster } from '../helpers/cluster.js';

describe.runIf(clusterAvailable)('per-counter slots when one shard stops answering', () => {
  let ports: number[] = [];
  let nodes: ChildProcess[] = [];
  let cluster: Cluster;
  let started: TestCluster | undefined;

  beforeAll(async () => {
    started = await startCluster();
    ({ ports, nodes, cluster } = started);
  }, 60_000);

  afterAll(async () => {
    await started?.stop();
  });

  /** The port of the master that serves `key`. */
  async function portOf(key: string): Promise<number> {
    const slot = Number(await cluster.cluster('KEYSLOT', key));
    const ranges = (await cluster.cluster('SLOTS')) as unknown as Array<
      [number, number, [string, number]]
    >;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    return Number(range?.[2][1]);
  }

  it.each(['open', 'closed'] as const)(
    'fails %s and hands back what the answering shard took',
    async (onStoreError) => {
      const prefix = `rl-review-${onStoreError}-${Math.random().toString(36).slice(2, 8)}:`;
      // Two policy names whose counters live on different shards.
      let names: [string, string] | undefined;
      for (let i = 0; names === undefined && i < 100; i++) {
        const a = `a${i}`;
        for (let j = 0; j < 100; j++) {
          const b = `b${j}`;
          if ((await portOf(`rl:{${a}:k}`)) !== (await portOf(`rl:{${b}:k}`))) {
            names = [a, b];
            break;
          }
        }
      }
      const [a, b] = names as [string, string];
      const keyA = `${prefix}rl:{${a}:k}`;
      const keyB = `${prefix}rl:{${b}:k}`;
      const listener = adapters[0]!.build({
        use: [
          rateLimit({
            store: new RedisStore({ client: cluster, prefix }),
            slots: 'per-counter',
            timeoutMs: 300,
            onStoreError,
            policies: [
              { name: a, limit: 5, windowMs: 60_000, key: () => 'k' },
              { name: b, limit: 5, windowMs: 60_000, key: () => 'k' },
            ],
          }),
        ],
        routes: [{ method: 'get', path: '/x', handler: () => ({ body: {} }) }],
      });
      await request(listener).get('/x').expect(200);
      const before = await cluster.get(keyA);
      expect(before).not.toBeNull();
      const paused = nodes[ports.indexOf(await portOf(keyB))]!;
      paused.kill('SIGSTOP');
      try {
        const res = await request(listener).get('/x');
        expect(res.status).toBe(onStoreError === 'open' ? 200 : 503);
        // The shard that answered was handed back its unit.
        expect(await cluster.get(keyA)).toBe(before);
      } finally {
        paused.kill('SIGCONT');
      }
      // Back up: counting resumes on both shards.
      await request(listener).get('/x').expect(200);
    },
    20_000,
  );
});
