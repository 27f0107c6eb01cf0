/**
 * Redis Cluster: a request's counters share the `{rl}` hash tag, so several
 * policies still run in one script on one slot. Starts a real three-node
 * cluster from the local redis-server binary (the test is skipped, loudly
 * under CI, when the binary is missing).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { rateLimitBackend } from '../../src/rate-limit/backend.js';
import { byHeader, rateLimit } from '../../src/rate-limit/index.js';
import { adapters } from '../helpers/apps.js';
import { ciRequiresServers } from '../setup/services.js';
import { RedisStore } from '../../src/stores/redis/index.js';

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const path = join(dir, binary);
    if (existsSync(path)) return path;
  }
  return undefined;
}

const server = which('redis-server');
const cli = which('redis-cli');
const available = server !== undefined && cli !== undefined;
if (!available && ciRequiresServers(process.env)) {
  throw new Error('redis-server and redis-cli are required under CI for the Redis Cluster test');
}

/** Whether nothing listens on `port` of the loopback address. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Three consecutive ports, each free with its cluster bus port (port + 10000),
 * below Linux's ephemeral range (32768+) so that no client socket takes one
 * between the check and the server's bind.
 */
async function freeClusterPorts(): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 2_700);
    const ports = [base, base + 1, base + 2];
    const checks = await Promise.all(ports.flatMap((p) => [isFree(p), isFree(p + 10_000)]));
    if (checks.every(Boolean)) return ports;
  }
  throw new Error('no free ports for the Redis Cluster test');
}

describe.runIf(available)('rate limiting on a Redis Cluster', () => {
  let ports: number[] = [];
  const nodes: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'restwell-cluster-'));
  let cluster: Cluster;

  beforeAll(async () => {
    ports = await freeClusterPorts();
    for (const port of ports) {
      const node = spawn(
        server!,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      nodes.push(node);
    }
    // Wait for every node to accept connections, then join them into one cluster.
    // A shared, loaded machine may take seconds to start three servers.
    for (const port of ports) {
      for (let i = 0; i < 400; i++) {
        try {
          execFileSync(cli!, ['-p', String(port), 'ping'], { stdio: 'pipe' });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    execFileSync(
      cli!,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'pipe' },
    );
    cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
    for (let i = 0; i < 100; i++) {
      const info = await cluster.cluster('INFO').catch(() => '');
      if (String(info).includes('cluster_state:ok')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);

  afterAll(async () => {
    await cluster?.quit().catch(() => {});
    for (const node of nodes) node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
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
