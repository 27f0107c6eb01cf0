import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { cleanKeys, uniquePrefixOf } from '../redis-keys.js';

export { closedPort, proxyTo } from '../../../helpers/outage.js';
export { redis } from '../redis-keys.js';

/** A limiter key prefix no other run or suite uses. */
export const uniquePrefix = (label: string): string => uniquePrefixOf('limiter', label);

/** Deletes every limiter key under `prefix` (`{<prefix>:…}:…`; SCAN, never FLUSH). */
export const cleanLimiterKeys = (client: Redis, prefix: string): Promise<number> =>
  cleanKeys(client, prefix);

/**
 * A real HTTP receiver that holds each request `holdMs` before answering 200,
 * and counts the requests open at once: the highest count is what an endpoint's
 * concurrency limit promises to bound.
 */
export async function holdingReceiver(holdMs: number) {
  let open = 0;
  let maxOpen = 0;
  const agents: string[] = [];
  const ids: string[] = [];
  const server = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    agents.push(String(req.headers['user-agent']));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        ids.push(String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string }).id));
      } catch {}
      setTimeout(() => {
        open--;
        res.writeHead(200).end();
      }, holdMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    get maxOpen() {
      return maxOpen;
    },
    agents,
    ids,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
