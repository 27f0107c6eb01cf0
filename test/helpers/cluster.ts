/**
 * A real three-node Redis Cluster of the test's own, from the local
 * redis-server and redis-cli binaries, on free ports below Linux's ephemeral
 * range. Never the shared Redis.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
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

/** Whether this machine can start a cluster; under CI it must. */
export const clusterAvailable = server !== undefined && cli !== undefined;
if (!clusterAvailable && ciRequiresServers(process.env)) {
  throw new Error('redis-server and redis-cli are required under CI for the Redis Cluster tests');
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
 * below the ephemeral range (32768+) so that no client socket takes one between
 * the check and the server's bind.
 */
async function freeClusterPorts(): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 2_700);
    const ports = [base, base + 1, base + 2];
    const checks = await Promise.all(ports.flatMap((p) => [isFree(p), isFree(p + 10_000)]));
    if (checks.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a Redis Cluster');
}

export interface TestCluster {
  ports: number[];
  /** The node processes, in the order of `ports` (for SIGSTOP and SIGCONT). */
  nodes: ChildProcess[];
  cluster: Cluster;
  stop(): Promise<void>;
}

async function startOnce(): Promise<TestCluster> {
  const ports = await freeClusterPorts();
  const dir = mkdtempSync(join(tmpdir(), 'restwell-cluster-'));
  const nodes = ports.map((port) =>
    spawn(
      server!,
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'],
        ...['--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir],
        ...['--save', '', '--appendonly', 'no'],
      ],
      { stdio: 'ignore' },
    ),
  );
  let cluster: Cluster | undefined;
  const stop = async () => {
    await cluster?.quit().catch(() => {});
    for (const node of nodes) node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
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
        ...['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`)],
        ...['--cluster-replicas', '0', '--cluster-yes'],
      ],
      { stdio: 'pipe' },
    );
    cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
    for (let i = 0; i < 100; i++) {
      const info = await cluster.cluster('INFO').catch(() => '');
      if (String(info).includes('cluster_state:ok')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ports, nodes, cluster, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts a cluster, trying other ports when one was taken between the check and the bind. */
export async function startCluster(): Promise<TestCluster> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce();
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
