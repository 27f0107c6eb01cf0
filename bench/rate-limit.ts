/**
 * Rate-limit cost per request against bare Express, side by side in one run
 * with express-rate-limit (memory store) and rate-limiter-flexible used
 * directly as a middleware, on memory and on Redis; and Redis round trips per
 * request, counted by the server process as the commands it sends.
 * Targets: less overhead than express-rate-limit on memory; one Redis round
 * trip per request whatever the number of policies. `npm run bench -- rate-limit`.
 */
import { fileURLToPath } from 'node:url';
import { measure, median, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/rate-limit.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
async function served(port: number): Promise<{ requests: number; redisCommands: number }> {
  const r = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await r.json()) as { requests: number; redisCommands: number };
}

const cases = [
  'none',
  'express-rate-limit',
  'rlf-memory',
  'memory',
  'memory-3',
  'rlf-redis',
  'redis',
  'redis-3',
] as const;
const results = new Map<
  string,
  { rps: number[]; cpu: number[]; p99: number[]; perRequest: number[] }
>();

for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    const handle = await startServer(server, [c]);
    try {
      const before = await served(handle.port);
      const r = await measure({
        url: `http://127.0.0.1:${handle.port}/v1/users`,
        duration,
        headers: { 'x-api-key': 'bench-key' },
      });
      const after = await served(handle.port);
      const commands = after.redisCommands - before.redisCommands;
      const count = after.requests - before.requests;
      const entry = results.get(c) ?? { rps: [], cpu: [], p99: [], perRequest: [] };
      entry.rps.push(r.requestsPerSec);
      entry.cpu.push(r.cpuMicrosPerRequest ?? Number.NaN);
      entry.p99.push(r.p99Ms);
      entry.perRequest.push(commands / Math.max(1, count));
      results.set(c, entry);
    } finally {
      await handle.stop();
    }
  }
}

const baseCpu = median(results.get('none')!.cpu);
const rows = cases.map((c) => {
  const e = results.get(c)!;
  const cpu = median(e.cpu);
  return [
    c,
    Math.round(median(e.rps)),
    cpu,
    c === 'none' ? '-' : (cpu - baseCpu).toFixed(1),
    median(e.p99),
    c.includes('redis') ? median(e.perRequest).toFixed(2) : '-',
  ];
});
console.log(
  `\n### Rate limiting (${duration} s per case, ${rounds} rounds, medians; 16 connections, Express 5, loopback)\n`,
);
console.log(
  table(
    ['case', 'req/s', 'CPU µs/req', 'CPU µs/req over bare', 'p99 ms', 'Redis round trips/req'],
    rows,
  ),
);
