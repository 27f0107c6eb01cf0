/**
 * Rate-limit cost per request against bare Express, side by side in one run
 * with express-rate-limit (memory store) and rate-limiter-flexible used
 * directly as a middleware, on memory and on Redis (restwell's token bucket
 * against RateLimiterRedis); against bare Koa beside koa-ratelimit (memory
 * driver); and Redis round trips per request, counted by the server process
 * as the commands it sends.
 * Targets: less overhead than express-rate-limit on memory; one Redis round
 * trip per request whatever the number of policies. `npm run bench -- rate-limit`.
 */
import { fileURLToPath } from 'node:url';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import type { RequestHandler } from 'express';
import Koa from 'koa';
import koaRateLimit from 'koa-ratelimit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { MemoryStore } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { koaAdapter } from 'restwell/koa';
import { byHeader, byIp, rateLimit } from 'restwell/rate-limit';
import { measure, median, startServer, table } from './harness.js';
import { expressRunner, perRequestMicros, type Runner } from './in-process.js';

const server = fileURLToPath(new URL('./servers/rate-limit.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 6);
// Below what every case sustains on a small machine, so that all are measured at the same load.
const rate = Number(process.env.BENCH_RATE ?? 3000);
async function served(port: number): Promise<{ requests: number; redisCommands: number }> {
  const r = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await r.json()) as { requests: number; redisCommands: number };
}

const cases = [
  'none',
  'restwell-core',
  'express-rate-limit',
  'rlf-memory',
  'memory',
  'memory-3',
  'rlf-redis',
  'redis',
  'redis-3',
  'koa-none',
  'koa-ratelimit',
  'koa-memory',
] as const;
const results = new Map<
  string,
  { rps: number[]; cpu: number[]; p99: number[]; perRequest: number[] }
>();

const handle = await startServer(server, []);
try {
  for (let round = 0; round < rounds; round++) {
    // Each round starts at another case, so that slow spells of a shared machine fall on all of them.
    const order = cases.map((_, i) => cases[(i + round * 3) % cases.length]!);
    for (const c of order) {
      const before = await served(handle.port);
      const r = await measure({
        url: `http://127.0.0.1:${handle.port}/${c}/v1/users`,
        duration,
        headers: { 'x-api-key': 'bench-key' },
        overallRate: rate,
      });
      const after = await served(handle.port);
      const entry = results.get(c) ?? { rps: [], cpu: [], p99: [], perRequest: [] };
      entry.rps.push(r.requestsPerSec);
      entry.cpu.push(r.cpuMicrosPerRequest ?? Number.NaN);
      entry.p99.push(r.p99Ms);
      entry.perRequest.push(
        (after.redisCommands - before.redisCommands) /
          Math.max(1, after.requests - before.requests),
      );
      results.set(c, entry);
    }
  }
} finally {
  await handle.stop();
}

const cpuOf = (c: string) => median(results.get(c)!.cpu);
// Each case against the bare app of its own framework.
const bare = (c: string) => (c.startsWith('koa-') ? 'koa-none' : 'none');
const over = (c: string) => cpuOf(c) - cpuOf(bare(c));
const rows = cases.map((c) => {
  const e = results.get(c)!;
  return [
    c,
    Math.round(median(e.rps)),
    cpuOf(c),
    c === bare(c) ? '-' : over(c).toFixed(1),
    median(e.p99),
    c.includes('redis') ? median(e.perRequest).toFixed(2) : '-',
  ];
});
console.log(
  `\n### Rate limiting (one server process, ${rate} req/s for ${duration} s per case, ${rounds} rounds in turn, medians; 16 connections, Express 5 and Koa 3, loopback)\n`,
);
console.log(
  table(
    ['case', 'req/s', 'CPU µs/req', 'CPU µs/req over bare', 'p99 ms', 'Redis round trips/req'],
    rows,
  ),
);
// Total CPU per request, and CPU over bare when both are above the noise (a small or negative
// difference makes that ratio meaningless).
const ratio = (a: string, b: string) => {
  const total = `${(cpuOf(a) / cpuOf(b)).toFixed(2)}× in total`;
  return over(a) > 1 && over(b) > 1
    ? `${total}, ${(over(a) / over(b)).toFixed(2)}× over bare`
    : total;
};
console.log(
  `\nCPU per request, restwell / peer: Koa memory (koa-memory / koa-ratelimit) ${ratio('koa-memory', 'koa-ratelimit')}; Redis token bucket (redis / rlf-redis) ${ratio('redis', 'rlf-redis')}; Express memory (memory / express-rate-limit) ${ratio('memory', 'express-rate-limit')}.`,
);

// In process: the same middlewares, without the network and the load generator.
const HUGE = 1_000_000_000;
const rw = expressAdapter();
const flexible = new RateLimiterMemory({ points: HUGE, duration: 60 });
const micros = await perRequestMicros(
  {
    none: expressRunner(),
    'restwell-core': expressRunner(rw() as RequestHandler),
    'express-rate-limit': expressRunner(
      expressRateLimit({
        windowMs: 60_000,
        limit: HUGE,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        validate: false,
      }),
    ),
    'rlf-memory': expressRunner((req, _res, next) => {
      flexible.consume(req.ip ?? 'unknown').then(() => next());
    }),
    memory: expressRunner(
      rw(
        rateLimit({
          store: new MemoryStore({ maxEntries: 100_000 }),
          policies: [{ name: 'per-ip', limit: HUGE, windowMs: 60_000, key: byIp() }],
        }),
      ) as RequestHandler,
    ),
    'memory-3': expressRunner(
      rw(
        rateLimit({
          store: new MemoryStore({ maxEntries: 100_000 }),
          policies: [
            { name: 'per-ip', limit: HUGE, windowMs: 60_000, key: byIp() },
            { name: 'per-key', limit: HUGE, windowMs: 3_600_000, key: byHeader('x-api-key') },
            {
              name: 'route',
              limit: HUGE,
              windowMs: 60_000,
              route: '/v1/users',
            },
          ],
        }),
      ) as RequestHandler,
    ),
  },
  { headers: { 'x-api-key': 'bench-key' } },
);
console.log(
  '\n### Rate limiting in process (Express 5, 30,000 requests per case, 5 rounds in turn, medians)\n',
);
console.log(
  table(
    ['case', 'µs/req', 'µs/req over bare Express'],
    Object.entries(micros).map(([name, us]) => [
      name,
      us,
      name === 'none' ? '-' : (us - (micros.none ?? 0)).toFixed(2),
    ]),
  ),
);

/** A Koa 3 app with `middleware` in front of the handler, which resolves the run (as expressRunner). */
function koaRunner(middleware?: Koa.Middleware): Runner {
  const app = new Koa();
  let done: () => void = () => {};
  if (middleware) app.use(middleware);
  app.use((ctx) => {
    ctx.body = '';
    done();
  });
  const listener = app.callback();
  return (req, res) =>
    new Promise<void>((resolve) => {
      done = resolve;
      listener(req, res);
    });
}
const koaRw = koaAdapter();
const koaMicros = await perRequestMicros(
  {
    'koa-none': koaRunner(),
    'koa-restwell-core': koaRunner(koaRw() as Koa.Middleware),
    'koa-ratelimit': koaRunner(
      koaRateLimit({
        driver: 'memory',
        db: new Map(),
        duration: 60_000,
        max: HUGE,
        id: (ctx) => ctx.ip,
      }),
    ),
    'koa-memory': koaRunner(
      koaRw(
        rateLimit({
          store: new MemoryStore({ maxEntries: 100_000 }),
          policies: [{ name: 'per-ip', limit: HUGE, windowMs: 60_000, key: byIp() }],
        }),
      ) as Koa.Middleware,
    ),
  },
  { headers: { 'x-api-key': 'bench-key' } },
);
console.log(
  '\n### Rate limiting in process (Koa 3, 30,000 requests per case, 5 rounds in turn, medians)\n',
);
console.log(
  table(
    ['case', 'µs/req', 'µs/req over bare Koa'],
    Object.entries(koaMicros).map(([name, us]) => [
      name,
      us,
      name === 'koa-none' ? '-' : (us - (koaMicros['koa-none'] ?? 0)).toFixed(2),
    ]),
  ),
);
