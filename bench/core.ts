/**
 * The cost of the restwell core (context, trace id, problem details, JSON body
 * reader) over bare Express and bare Koa, as ratios from the same run.
 * `npx tsx bench/core.ts` (or `npm run bench`).
 */
import { fileURLToPath } from 'node:url';
import { measure, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/core.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 5);
const body = JSON.stringify({ amount: 1000, currency: 'EUR', userId: 'usr_ada' });

const rows: Array<Array<string | number>> = [];
for (const framework of ['express', 'koa'] as const) {
  for (const route of ['GET /v1/users', 'POST /v1/payments'] as const) {
    const [method, path] = route.split(' ') as ['GET' | 'POST', string];
    const results = [];
    for (const kind of [framework, `${framework}+restwell`]) {
      const handle = await startServer(server, [kind]);
      try {
        results.push(
          await measure({
            url: `http://127.0.0.1:${handle.port}${path}`,
            method,
            duration,
            ...(method === 'POST' ? { body } : {}),
          }),
        );
      } finally {
        await handle.stop();
      }
    }
    const [bare, withCore] = results as [(typeof results)[number], (typeof results)[number]];
    const bareCpu = bare.cpuMicrosPerRequest ?? Number.NaN;
    const coreCpu = withCore.cpuMicrosPerRequest ?? Number.NaN;
    rows.push([
      framework,
      route,
      Math.round(bare.requestsPerSec),
      Math.round(withCore.requestsPerSec),
      `${((1 - withCore.requestsPerSec / bare.requestsPerSec) * 100).toFixed(1)}%`,
      bareCpu,
      coreCpu,
      `${((coreCpu / bareCpu - 1) * 100).toFixed(1)}%`,
      bare.p99Ms,
      withCore.p99Ms,
    ]);
  }
}

console.log(`\n### Core overhead (${duration} s per case, 16 connections, loopback)\n`);
console.log(
  table(
    [
      'framework',
      'route',
      'bare req/s',
      'restwell req/s',
      'throughput cost',
      'bare CPU µs/req',
      'restwell CPU µs/req',
      'CPU cost',
      'bare p99 ms',
      'restwell p99 ms',
    ],
    rows,
  ),
);
console.log(
  "\nOn two cores the load generator competes with the server, so req/s is bounded by the client; server CPU time per request is the figure that isolates restwell's cost.",
);
