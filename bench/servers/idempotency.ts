/**
 * Benchmark server for idempotency: `node --import tsx bench/servers/idempotency.ts <case>`, one
 * case per process (express-idempotency keeps one service per process):
 * - `none`: the route without any idempotency middleware;
 * - `restwell-memory`, `restwell-redis`: `idempotency()` on MemoryStore (ledger mode) or RedisStore;
 *   `restwell-redis-pipelined`: the same on an ioredis client with `enableAutoPipelining` (commands
 *   issued in one tick go out in one write, as node-redis does by default);
 * - `nic-memory`, `nic-redis`: `@node-idempotency/core` with its memory or redis storage adapter
 *   (see ./idempotency-peers.ts for the Express middleware around it);
 * - `ei-memory`, `ei-redis`: express-idempotency with its in-memory adapter or
 *   express-idempotency-redis-adapter.
 * Every case serves the same Express 5 route, `POST /v1/payments`, after `jsonBody()` (restwell's
 * body parser, so that the parsing cost is the same for all). `/__stats` reports the requests
 * served, the handler's executions (a replay runs none) and the store operations (each one round
 * trip on Redis).
 */
import { serve } from './serve.js';
import express from 'express';
import { Redis } from 'ioredis';
import { jsonBody, MemoryStore, type Store } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { idempotency } from 'restwell/idempotency';
import { RedisStore } from 'restwell/redis';
import { counted, expressIdempotency, nodeIdempotency, TTL_MS } from './idempotency-peers.js';

const which = process.argv[2] ?? 'none';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench-idem-${process.pid}:`;
const stats = { operations: 0, executions: 0 };

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const rw = expressAdapter();
app.use(rw(jsonBody()));
let isReplay: (req: express.Request) => boolean = () => false;
const handler = (req: express.Request, res: express.Response) => {
  if (isReplay(req)) return;
  stats.executions++;
  res.status(201).json({ id: 'pay_1', ...req.body });
};

let close: () => unknown = () => {};
switch (which) {
  case 'none':
    app.post('/v1/payments', handler);
    break;
  case 'restwell-memory':
  case 'restwell-redis':
  case 'restwell-redis-pipelined': {
    let store: Store;
    if (which !== 'restwell-memory') {
      const redis = new Redis(redisUrl, {
        enableAutoPipelining: which === 'restwell-redis-pipelined',
      });
      close = () => redis.quit();
      store = new RedisStore({ client: redis, prefix });
    } else store = new MemoryStore({ maxEntries: 1_000_000, evict: false });
    app.post(
      '/v1/payments',
      rw(idempotency({ store: counted(store, stats), ttlMs: TTL_MS, anonymous: 'ip' })),
      handler,
    );
    break;
  }
  case 'nic-memory':
  case 'nic-redis': {
    const peer = await nodeIdempotency(which === 'nic-redis' ? redisUrl : undefined, prefix, stats);
    close = peer.close;
    app.post('/v1/payments', peer.middleware, handler);
    break;
  }
  case 'ei-memory':
  case 'ei-redis': {
    const peer = await expressIdempotency(
      which === 'ei-redis' ? redisUrl : undefined,
      prefix,
      stats,
    );
    close = peer.close;
    isReplay = peer.isReplay;
    app.post('/v1/payments', peer.middleware, handler);
    break;
  }
  default:
    throw new Error(`unknown case ${which}`);
}

serve(app, { stats: () => ({ ...stats }), close });
