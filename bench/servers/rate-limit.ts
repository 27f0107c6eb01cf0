/**
 * Benchmark server for rate limiting: `node --import tsx bench/servers/rate-limit.ts`.
 * Every case is mounted in this one process under its own prefix (`/<case>/v1/users`), so that
 * cases measured in turn share one heap and one JIT: `none`; restwell on `memory`, `memory-3`
 * (three policies), `redis`, `redis-3`; `express-rate-limit` (its memory store); `rlf-memory` and
 * `rlf-redis` (rate-limiter-flexible used directly as a middleware, as its documentation shows);
 * and on Koa 3: `koa-none`, `koa-ratelimit` (its memory driver) and `koa-memory` (restwell).
 * Limits are far above the load, so every request is admitted and the figures are the cost of
 * checking. `/__stats` reports the requests served and the commands sent to Redis (each one
 * round trip here: neither restwell nor rate-limiter-flexible pipelines).
 */
import type { RequestListener } from 'node:http';
import { serve } from './serve.js';
import express from 'express';
import Koa from 'koa';
import koaRateLimit from 'koa-ratelimit';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { MemoryStore } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { koaAdapter } from 'restwell/koa';
import { byHeader, byIp, type RateLimitPolicy, rateLimit } from 'restwell/rate-limit';
import { RedisStore } from 'restwell/redis';

const HUGE = 1_000_000_000;
let redis: Redis | undefined;
let redisCommands = 0;
const connect = () => {
  if (redis === undefined) {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    // Counts what this process sends, not the commands a script runs inside Redis.
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      redisCommands++;
      return send(...args);
    };
  }
  return redis;
};
const prefix = `bench-rl-${process.pid}:`;

const one: RateLimitPolicy[] = [{ name: 'per-ip', limit: HUGE, windowMs: 60_000, key: byIp() }];
const three: RateLimitPolicy[] = [
  ...one,
  { name: 'per-key', limit: HUGE, windowMs: 3_600_000, key: byHeader('x-api-key') },
  {
    name: 'route',
    limit: HUGE,
    windowMs: 60_000,
    route: ['/v1/users', '/:case/v1/users'],
  },
];

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const rw = expressAdapter();

function flexibleMiddleware(limiter: RateLimiterMemory | RateLimiterRedis): express.RequestHandler {
  return (req, res, next) => {
    limiter
      .consume(req.ip ?? 'unknown')
      .then(() => next())
      .catch(() => {
        res.status(429).send('Too Many Requests');
      });
  };
}

const cases: Record<string, express.RequestHandler | undefined> = {
  none: undefined,
  // The restwell core alone (context, trace id, problem details), which an app pays once for all modules.
  'restwell-core': rw(),
  'express-rate-limit': expressRateLimit({
    windowMs: 60_000,
    limit: HUGE,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
  }),
  'rlf-memory': flexibleMiddleware(new RateLimiterMemory({ points: HUGE, duration: 60 })),
  memory: rw(rateLimit({ store: new MemoryStore({ maxEntries: 100_000 }), policies: one })),
  'memory-3': rw(rateLimit({ store: new MemoryStore({ maxEntries: 100_000 }), policies: three })),
  'rlf-redis': flexibleMiddleware(
    new RateLimiterRedis({ storeClient: connect(), keyPrefix: prefix, points: HUGE, duration: 60 }),
  ),
  redis: rw(rateLimit({ store: new RedisStore({ client: connect(), prefix }), policies: one })),
  'redis-3': rw(
    rateLimit({ store: new RedisStore({ client: connect(), prefix }), policies: three }),
  ),
};

const users = JSON.stringify({
  data: Array.from({ length: 8 }, (_, i) => ({ id: `usr_${i}`, name: 'x'.repeat(80) })),
});
for (const [name, middleware] of Object.entries(cases)) {
  const router = express.Router();
  if (middleware) router.use(middleware);
  router.get('/v1/users', (_req, res) => {
    res.type('application/json').send(users);
  });
  app.use(`/${name}`, router);
}

// Koa: the same route, bare and behind each limiter, one Koa app per case (no router: the case
// is the path's first segment, dispatched below).
const koaRw = koaAdapter();
const koaCases: Record<string, Koa.Middleware | undefined> = {
  'koa-none': undefined,
  // Its memory driver, with its default X-RateLimit-* headers, as its documentation shows.
  'koa-ratelimit': koaRateLimit({
    driver: 'memory',
    db: new Map(),
    duration: 60_000,
    max: HUGE,
    id: (ctx) => ctx.ip,
  }),
  'koa-memory': koaRw(
    rateLimit({ store: new MemoryStore({ maxEntries: 100_000 }), policies: one }),
  ) as Koa.Middleware,
};
const koaListeners = new Map<string, RequestListener>();
for (const [name, middleware] of Object.entries(koaCases)) {
  const k = new Koa();
  if (middleware) k.use(middleware);
  k.use((ctx) => {
    ctx.type = 'application/json';
    ctx.body = users;
  });
  koaListeners.set(name, k.callback());
}
const expressListener = app as unknown as RequestListener;
const listener: RequestListener = (req, res) => {
  const url = req.url ?? '/';
  const koa = koaListeners.get(url.slice(1, url.indexOf('/', 1)));
  (koa ?? expressListener)(req, res);
};

serve(listener, { stats: () => ({ redisCommands }), close: () => redis?.quit() });
