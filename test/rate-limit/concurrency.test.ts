/**
 * No over-admission: 200 parallel requests against a limit of 50 admit
 * exactly 50, in one process on memory and on Redis, and across two server
 * processes sharing Redis.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters } from '../helpers/apps.js';
import { rawRequest } from '../helpers/raw.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
const prefix = `rl-conc-${run}:`;
let redis: Redis | undefined;
const servers: Server[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const s of servers) s.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (redis !== undefined) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
});

async function listen(listener: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** Fires all requests at once and counts the statuses. */
async function burst(ports: number[], count: number): Promise<Record<number, number>> {
  const statuses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      fetch(`http://127.0.0.1:${ports[i % ports.length]}/x`).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      }),
    ),
  );
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

const stores: Array<{ name: string; enabled: boolean; make(): Store }> = [
  { name: 'memory', enabled: true, make: () => new MemoryStore() },
  {
    name: 'redis',
    enabled: services.redis,
    make: () => {
      redis ??= new Redis(services.redisUrl);
      return new RedisStore({ client: redis, prefix });
    },
  },
];

for (const s of stores) {
  // The memory backend answers synchronously, so its requests cannot interleave: on memory this
  // proves the counting, not atomicity; the concurrency proof is Redis (and two processes below).
  const what = s.name === 'memory' ? 'memory (counting only: no interleaving)' : s.name;
  describe.runIf(s.enabled)(`200 parallel requests against a limit of 50 on ${what}`, () => {
    it.each(['token-bucket', 'sliding-window', 'fixed-window'] as const)(
      '%s admits exactly 50',
      async (algorithm) => {
        const listener = adapters[0]!.build({
          use: [
            rateLimit({
              store: s.make(),
              name: `conc-${algorithm}`,
              algorithm,
              limit: 50,
              windowMs: 3_600_000,
              key: () => `shared-${run}`,
              timeoutMs: 5000,
              onStoreError: 'closed',
            }),
          ],
          routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
        });
        const counts = await burst([await listen(listener)], 200);
        expect(counts).toEqual({ 200: 50, 429: 150 });
      },
    );
  });
}

async function startProcess(env: Record<string, string> = {}): Promise<number> {
  const script = join(import.meta.dirname, '..', 'fixtures', 'rate-limit', 'server.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: {
      ...process.env,
      REDIS_URL: services.redisUrl,
      PREFIX: `${prefix}proc:`,
      LIMIT: '50',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return (JSON.parse(line) as { port: number }).port;
}

describe.runIf(services.redis)('across two processes sharing Redis', () => {
  it('200 parallel requests split between two servers admit exactly 50', async () => {
    const ports = await Promise.all([startProcess(), startProcess()]);
    const counts = await burst(ports, 200);
    expect(counts).toEqual({ 200: 50, 429: 150 });
  });
});

describe.runIf(services.redis)('a route limit across two processes sharing Redis', () => {
  it('admits exactly the limit, however the path is spelled', async () => {
    const env = { PREFIX: `${prefix}pay:`, PAYMENTS: '10' };
    const ports = await Promise.all([startProcess(env), startProcess(env)]);
    // The spellings that reach the handler of POST /v1/payments in Express (see routes.test.ts).
    const targets = [
      '/v1/payments',
      '/v1/payments/',
      '/V1/PAYMENTS',
      'http://x/v1/payments',
      '/v1/payments?x',
    ];
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        rawRequest(ports[i % 2]!, { method: 'POST', path: targets[i % targets.length]! }).then(
          (r) => r.status,
        ),
      ),
    );
    const counts: Record<number, number> = {};
    for (const st of statuses) counts[st] = (counts[st] ?? 0) + 1;
    expect(counts).toEqual({ 201: 10, 429: 90 });
  });
});

describe.runIf(services.redis)('Redis round trips', () => {
  it('one command per request, whatever the number of policies', async () => {
    const client = new Redis(services.redisUrl);
    let sent = 0;
    const send = client.sendCommand.bind(client);
    client.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      sent++;
      return send(...args);
    };
    await client.ping();
    sent = 0;
    const listener = adapters[0]!.build({
      use: [
        rateLimit({
          store: new RedisStore({ client, prefix }),
          policies: [
            { name: 'rt-ip', limit: 100, windowMs: 60_000 },
            {
              name: 'rt-key',
              limit: 100,
              windowMs: 60_000,
              algorithm: 'sliding-window',
              key: () => 'k',
            },
            {
              name: 'rt-route',
              limit: 100,
              windowMs: 60_000,
              algorithm: 'fixed-window',
              key: () => 'r',
            },
          ],
        }),
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
    });
    const port = await listen(listener);
    for (let i = 0; i < 10; i++)
      await fetch(`http://127.0.0.1:${port}/x`).then((r) => r.arrayBuffer());
    expect(sent).toBe(10);
    await client.quit();
  });
});
