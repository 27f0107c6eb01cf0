/**
 * Redis Cluster: an endpoint's two keys share the `{<prefix>:<endpointId>}`
 * hash tag, so each script runs on one slot, and endpoints spread over the
 * nodes. Starts a real three-node cluster from the local redis-server binary
 * (the test is skipped, loudly under CI, when the binary is missing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisEndpointLimiter } from '../../../../src/webhooks/delivery/redis-limiter.js';
import { clusterAvailable, startCluster, type TestCluster } from '../../../helpers/cluster.js';

describe.runIf(clusterAvailable)('redisEndpointLimiter on a Redis Cluster', () => {
  let started: TestCluster | undefined;

  beforeAll(async () => {
    started = await startCluster();
  }, 60_000);

  afterAll(async () => {
    await started?.stop();
  });

  it('acquires, refuses and releases per endpoint, whichever node holds its slot', async () => {
    const cluster = started!.cluster;
    const limiter = redisEndpointLimiter({ client: cluster, prefix: 'limits' });
    const endpoints = Array.from({ length: 12 }, (_, i) => `ep_${i}`);
    const slots = new Set<number>();
    for (const id of endpoints) {
      slots.add(Number(await cluster.call('CLUSTER', 'KEYSLOT', `{limits:${id}}:leases`)));
      const first = await limiter.tryAcquire(id, { concurrency: 1, rateLimitPerSecond: 10 });
      expect(first.ok).toBe(true);
      expect((await limiter.tryAcquire(id, { concurrency: 1 })).ok).toBe(false);
      if (first.ok) await limiter.release(id, undefined, first.lease);
      expect(await limiter.inFlight(id)).toBe(0);
    }
    // Twelve endpoints, more than one slot: the scripts ran on several nodes' keys.
    expect(slots.size).toBeGreaterThan(1);
  });
});
