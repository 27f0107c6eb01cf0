/**
 * The example's stores (examples/shared/stores.ts): two memory stores by
 * default, the records one a ledger; on Redis, a server whose maxmemory-policy
 * would evict idempotency records is refused at start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createStores } from '../../examples/shared/stores.js';
import { services } from '../helpers/services.js';

describe('the example stores', () => {
  it('keep counters in a store that may evict and records in one that never does', async () => {
    const stores = await createStores({});
    try {
      expect(stores.counters).not.toBe(stores.records);
      expect(stores.counters.evicts).toBe(true);
      expect(stores.records.evicts).toBe(false);
    } finally {
      await stores.close();
    }
  });

  it.runIf(services.redis)('run on a Redis with maxmemory-policy noeviction', async () => {
    const probe = new Redis(services.redisUrl, { lazyConnect: true });
    await probe.connect();
    const [, policy] = (await probe.config('GET', 'maxmemory-policy')) as [string, string];
    await probe.quit();
    // The shared test server is configured so; the example uses it as is.
    expect(policy).toBe('noeviction');
    const stores = await createStores({ REDIS_URL: services.redisUrl });
    try {
      expect(stores.records.kind).toBe('redis');
    } finally {
      await stores.close();
    }
  });
});

const redisServer = (process.env.PATH ?? '')
  .split(':')
  .map((dir) => join(dir, 'redis-server'))
  .find((p) => existsSync(p));

describe.runIf(redisServer !== undefined)('on a Redis that evicts', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('the example refuses to start, naming the policy', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    child = spawn(
      redisServer!,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'allkeys-lru',
      ],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        const done = (up: boolean) => {
          socket.destroy();
          resolve(up);
        };
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(createStores({ REDIS_URL: url })).rejects.toThrow(
      /maxmemory-policy allkeys-lru.*noeviction/s,
    );
  });
});
