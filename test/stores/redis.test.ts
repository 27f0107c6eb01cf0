/**
 * RedisStore and the server behind it: a ledger only while Redis keeps its
 * keys. The eviction-policy check runs against servers this file starts on
 * free ports (never reconfiguring the shared one), and reads the shared
 * server's policy, which CONFIG GET allows.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreFullError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { assertLedger } from '../../src/stores/types.js';
import { services } from '../helpers/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Line {
  level: 'warn' | 'info' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

function recorder(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  return {
    lines,
    error: (message, fields) => lines.push({ level: 'error', message, fields }),
    warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
    info: (message, fields) => lines.push({ level: 'info', message, fields }),
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A redis-server of this test's own, without persistence, on a free port. */
async function ownRedis(args: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: 'ignore' },
  );
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50 });
  probe.on('error', () => {});
  await probe.connect().catch(() => {});
  for (let i = 0; i < 200 && probe.status !== 'ready'; i++) await sleep(25);
  probe.disconnect();
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Waits for the background policy check to have logged something, or for 5 s. */
async function logged(logger: { lines: Line[] }, count = 1): Promise<void> {
  for (let i = 0; i < 250 && logger.lines.length < count; i++) await sleep(20);
}

describe('RedisStore', () => {
  const cleanups: Array<() => unknown> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  function client(url: string): Redis {
    const c = new Redis(url, { maxRetriesPerRequest: 1 });
    cleanups.push(() => c.quit().catch(() => c.disconnect()));
    return c;
  }

  describe('evicts', () => {
    const fake = { defineCommand() {} } as unknown as Redis;

    it('is false by default: a ledger, which assertLedger accepts', () => {
      const store = new RedisStore({ client: fake });
      expect(store.evicts).toBe(false);
      expect(() => assertLedger('idempotency', store)).not.toThrow();
    });

    it('is true when declared, and assertLedger then refuses the store', () => {
      const store = new RedisStore({ client: fake, evicts: true });
      expect(store.evicts).toBe(true);
      expect(() => assertLedger('idempotency', store)).toThrow(TypeError);
      expect(() => assertLedger('idempotency', store)).toThrow(
        /^restwell\/idempotency: option "store" must be a store that never drops a live key, got a RedisStore created with evicts: true/,
      );
    });
  });

  describe.runIf(services.redis)(
    "checks the server's maxmemory-policy once, when relied on as a ledger",
    () => {
      it('warns once, naming the policy, when the server may evict', async () => {
        const server = await ownRedis(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const c = client(server.url);
        const store = new RedisStore({ client: c, logger });
        const other = new RedisStore({ client: c, logger, prefix: 'other:' });
        assertLedger('idempotency', store);
        assertLedger('idempotency', other);
        await store.set('k', 'v', 10_000);
        await logged(logger);
        for (let i = 0; i < 5; i++) await store.get('k');
        await other.get('k');
        await sleep(50);
        expect(logger.lines).toHaveLength(1);
        expect(logger.lines[0]).toMatchObject({
          level: 'warn',
          fields: { code: 'redis-may-evict', maxmemoryPolicy: ['allkeys-lru'] },
        });
        expect(logger.lines[0]!.message).toMatch(/^restwell\/redis: .*"allkeys-lru".*noeviction/);
      });

      it('warns about volatile-* policies too: every key it writes has a TTL', async () => {
        const server = await ownRedis(['--maxmemory-policy', 'volatile-ttl']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const store = new RedisStore({ client: client(server.url), logger });
        assertLedger('idempotency', store);
        await store.get('k');
        await logged(logger);
        expect(logger.lines).toMatchObject([
          { level: 'warn', fields: { code: 'redis-may-evict' } },
        ]);
      });

      it('says nothing when the store is declared a cache (evicts: true)', async () => {
        const server = await ownRedis(['--maxmemory-policy', 'allkeys-lru']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const c = client(server.url);
        const store = new RedisStore({ client: c, logger, evicts: true });
        await store.set('k', 'v', 10_000);
        // A later ledger store on the same client does check: this read orders after its CONFIG GET.
        const ledger = new RedisStore({ client: c, logger });
        assertLedger('idempotency', ledger);
        await ledger.get('k');
        await logged(logger);
        expect(logger.lines).toHaveLength(1);
      });

      it('logs one info line when CONFIG is disabled', async () => {
        const server = await ownRedis(['--rename-command', 'CONFIG', '""']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const store = new RedisStore({ client: client(server.url), logger });
        assertLedger('idempotency', store);
        await store.set('k', 'v', 10_000);
        await logged(logger);
        await store.get('k');
        await sleep(50);
        expect(logger.lines).toMatchObject([
          { level: 'info', fields: { code: 'redis-policy-unknown' } },
        ]);
      });

      it('says nothing on the shared server, which runs with noeviction', async () => {
        const c = client(services.redisUrl);
        const [, policy] = (await c.config('GET', 'maxmemory-policy')) as [string, string];
        const logger = recorder();
        const store = new RedisStore({ client: c, logger, prefix: `noevict:${Date.now()}:` });
        assertLedger('idempotency', store);
        await store.get('k');
        // The check was sent after that GET on the same connection: this PING answers after it.
        await c.ping();
        await sleep(20);
        expect(logger.lines).toEqual(
          policy === 'noeviction' ? [] : [expect.objectContaining({ level: 'warn' })],
        );
      });

      it('adds no round trip to an operation: the check runs beside the first one', async () => {
        const server = await ownRedis(['--maxmemory-policy', 'allkeys-lru']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const c = client(server.url);
        await c.ping(); // connected, so the handshake's commands are not recorded
        const sent: string[] = [];
        const send = c.sendCommand.bind(c);
        c.sendCommand = ((command: { name: string }) => {
          sent.push(command.name);
          return send(command as never);
        }) as typeof c.sendCommand;
        const store = new RedisStore({ client: c, logger });
        assertLedger('idempotency', store);
        await store.get('k');
        await store.get('k');
        await logged(logger);
        // The first GET is sent before CONFIG, and the second one is not held back for it.
        expect(sent).toEqual(['get', 'config', 'get']);
      });

      it('sends nothing more for a store that no module relies on as a ledger (counters)', async () => {
        const server = await ownRedis(['--maxmemory-policy', 'allkeys-lru']);
        cleanups.push(() => server.stop());
        const logger = recorder();
        const c = client(server.url);
        await c.ping();
        const sent: string[] = [];
        const send = c.sendCommand.bind(c);
        c.sendCommand = ((command: { name: string }) => {
          sent.push(command.name);
          return send(command as never);
        }) as typeof c.sendCommand;
        const store = new RedisStore({ client: c, logger });
        await store.set('k', 'v', 10_000);
        await store.get('k');
        await c.ping();
        expect(sent).toEqual(['set', 'get', 'ping']);
        expect(logger.lines).toEqual([]);
      });
    },
  );

  describe.runIf(services.redis)('on a server at maxmemory with noeviction', () => {
    it('fails a write with StoreFullError, as a full ledger does, and keeps serving reads', async () => {
      const server = await ownRedis(['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction']);
      cleanups.push(() => server.stop());
      const store = new RedisStore({ client: client(server.url), logger: recorder() });
      const big = 'x'.repeat(100_000);
      let failure: unknown;
      for (let i = 0; i < 100 && failure === undefined; i++) {
        await store.set(`k${i}`, big, 60_000).catch((err: unknown) => {
          failure = err;
        });
      }
      expect(failure).toBeInstanceOf(StoreFullError);
      expect(failure).toMatchObject({ status: 503, code: 'store-full' });
      expect(await store.get('k0')).toBe(big);
      await expect(store.addOrGet('another', big, 60_000)).rejects.toBeInstanceOf(StoreFullError);
    });
  });

  describe('validates its options', () => {
    const fake = { defineCommand() {} } as unknown as Redis;
    it.each([
      [{ client: fake, timeoutMs: 0 }, /^restwell\/redis: option "timeoutMs"/],
      [{ client: fake, evicts: 'yes' }, /^restwell\/redis: option "evicts"/],
      [{ client: fake, logger: console.log }, /^restwell\/redis: option "logger"/],
      [{ client: { url: 'redis://:secret@host' } }, /option "client" .* got an object\.$/],
      [
        { client: fake, prefx: 'a:' },
        /^restwell\/redis: unknown option "prefx"\. Did you mean "prefix"\?/,
      ],
      [{ client: fake, evict: true }, /Did you mean "evicts"\?/],
    ])('throws a TypeError naming the option (%#)', (options, message) => {
      expect(() => new RedisStore(options as never)).toThrow(TypeError);
      expect(() => new RedisStore(options as never)).toThrow(message);
      expect(() => new RedisStore(options as never)).not.toThrow(/secret/);
    });
  });
});
