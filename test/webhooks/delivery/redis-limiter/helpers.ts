import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { services } from '../../../helpers/services.js';

/** A limiter key prefix no other run or suite uses. */
export function uniquePrefix(label: string): string {
  return `rw-test-limiter-${label}-${randomBytes(4).toString('hex')}`;
}

export function redis(): Redis {
  return new Redis(services.redisUrl, { maxRetriesPerRequest: null });
}

/** Deletes every limiter key under `prefix` (`{<prefix>:…}:…`; SCAN, never FLUSH). */
export async function cleanLimiterKeys(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) removed += await client.del(...keys);
  } while (cursor !== '0');
  return removed;
}

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
