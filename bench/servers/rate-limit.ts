/**
 * Benchmark server for rate limiting: `node --import tsx bench/servers/rate-limit.ts <case>`.
 * Cases: `none`; restwell on `memory`, `memory-3` (three policies), `redis`, `redis-3`;
 * `express-rate-limit` (its memory store); `rlf-memory` and `rlf-redis` (rate-limiter-flexible
 * used directly as a middleware, as its documentation shows). Limits are far above the load, so
 * every request is admitted and the figures are the cost of checking.
 * `/__stats` reports the requests served and the commands sent to Redis
 * (each one round trip here: neither restwell nor rate-limiter-flexible pipelines).
 */
import { serve } from './serve.js';
import express from 'express';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { MemoryStore } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { byHeader, byIp, type RateLimitPolicy, rateLimit } from 'restwell/rate-limit';
import { RedisStore } from 'restwell/redis';

const which = process.argv[2] ?? 'none';
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
  { name: 'route', limit: HUGE, windowMs: 60_000, when: (ctx) => ctx.request.path === '/v1/users' },
];

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const rw = expressAdapter();

switch (which) {
  case 'memory':
  case 'memory-3':
    app.use(
      rw(
        rateLimit({
          store: new MemoryStore({ maxEntries: 100_000 }),
          policies: which === 'memory' ? one : three,
        }),
      ),
    );
    break;
  case 'redis':
  case 'redis-3':
    app.use(
      rw(
        rateLimit({
          store: new RedisStore({ client: connect(), prefix }),
          policies: which === 'redis' ? one : three,
        }),
      ),
    );
    break;
  case 'express-rate-limit':
    app.use(
      expressRateLimit({
        windowMs: 60_000,
        limit: HUGE,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
      }),
    );
    break;
  case 'rlf-memory':
  case 'rlf-redis': {
    const limiter =
      which === 'rlf-memory'
        ? new RateLimiterMemory({ points: HUGE, duration: 60 })
        : new RateLimiterRedis({
            storeClient: connect(),
            keyPrefix: prefix,
            points: HUGE,
            duration: 60,
          });
    app.use((req, res, next) => {
      limiter
        .consume(req.ip ?? 'unknown')
        .then(() => next())
        .catch(() => {
          res.status(429).send('Too Many Requests');
        });
    });
    break;
  }
  case 'none':
    break;
  default:
    throw new Error(`unknown case ${which}`);
}

const users = JSON.stringify({
  data: Array.from({ length: 8 }, (_, i) => ({ id: `usr_${i}`, name: 'x'.repeat(80) })),
});
app.get('/v1/users', (_req, res) => {
  res.type('application/json').send(users);
});

serve(app, { stats: () => ({ redisCommands }), close: () => redis?.quit() });
