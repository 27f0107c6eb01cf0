/**
 * `slots: 'per-counter'` when one shard of a real three-node Redis Cluster
 * stops answering (its process paused): the request takes the outage path
 * (let through, or 503), never a 429, and the counter on the shard that did
 * answer is handed back, so the outage costs the client nothing there.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/rate-limit/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { adapters } from '../helpers/apps.js';
import { ciRequiresServers } from '../setup/services.js';

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

describe.runIf(available)('per-counter slots when one shard stops answering', () => {
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
