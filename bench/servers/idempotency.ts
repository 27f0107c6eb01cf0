/**
 * Benchmark server for idempotency: `node --import tsx bench/servers/idempotency.ts <case>`
 * with case `none` (the route without the middleware), `memory` or `redis`.
 * `/__stats` reports the requests served and the store operations so far.
 */
import { serve } from './serve.js';
import express from 'express';
import { Redis } from 'ioredis';
import { jsonBody, MemoryStore, type Store } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { idempotency } from 'restwell/idempotency';
import { RedisStore } from 'restwell/redis';

const which = process.argv[2] ?? 'none';
let operations = 0;
/** Counts every store call: one call is one round trip on a networked store. */
function counted(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        operations++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

let redis: Redis | undefined;
let store: Store | undefined;
if (which === 'memory') store = counted(new MemoryStore({ maxEntries: 1_000_000, evict: false }));
if (which === 'redis') {
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  store = counted(new RedisStore({ client: redis, prefix: `bench-idem-${process.pid}:` }));
}

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const rw = expressAdapter();
app.use(rw(jsonBody()));
const handler = (req: express.Request, res: express.Response) => {
  res.status(201).json({ id: 'pay_1', ...req.body });
};
if (store) app.post('/v1/payments', rw(idempotency({ store, anonymous: 'ip' })), handler);
else app.post('/v1/payments', handler);

serve(app, { stats: () => ({ operations }), close: () => redis?.quit() });
