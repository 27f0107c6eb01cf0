import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { services } from '../../../helpers/services.js';

/** A breaker key prefix no other run or suite uses. */
export function uniquePrefix(label: string): string {
  return `rw-test-breaker-${label}-${randomBytes(4).toString('hex')}`;
}

export function redis(): Redis {
  return new Redis(services.redisUrl, { maxRetriesPerRequest: null });
}

/** Deletes every key under `prefix` (`{<prefix>:…}:…`; SCAN, never FLUSH). */
export async function cleanBreakerKeys(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) removed += await client.del(...keys);
  } while (cursor !== '0');
  return removed;
}

/** Redis's own clock, in ms: what the shared breaker reads. */
export async function redisNow(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A loopback port nothing listens on (taken, then given back). */
export async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/** A TCP proxy from `port` to the shared Redis: Redis "comes back" on that port. */
export async function proxyTo(port: number): Promise<() => Promise<void>> {
  const target = new URL(services.redisUrl);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
}
