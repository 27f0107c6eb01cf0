/**
 * The cost of the restwell core (context, trace id, problem details, JSON body
 * reader) over bare Express and bare Koa, as ratios from the same run.
 * `npm run bench -- core` (BENCH_SECONDS and BENCH_ROUNDS tune it).
 *
 * Bare and restwell servers are measured alternately for several rounds and
 * the medians compared, so that a burst of noise on the machine hits both.
 */
import { fileURLToPath } from 'node:url';
import { type LoadResult, measure, median, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/core.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const body = JSON.stringify({ amount: 1000, currency: 'EUR', userId: 'usr_ada' });

const rows: Array<Array<string | number>> = [];
for (const framework of ['express', 'koa'] as const) {
  for (const route of ['GET /v1/users', 'POST /v1/payments'] as const) {
    const [method, path] = route.split(' ') as ['GET' | 'POST', string];
    const kinds = [framework, `${framework}+restwell`];
    const handles = await Promise.all(kinds.map((k) => startServer(server, [k])));
    const results: LoadResult[][] = [[], []];
    try {
      for (let round = 0; round < rounds; round++) {
        for (const [i, handle] of handles.entries()) {
          results[i]!.push(
            await measure({
              url: `http://127.0.0.1:${handle.port}${path}`,
              method,
              duration,
              ...(method === 'POST' ? { body } : {}),
            }),
          );
        }
      }
    } finally {
      await Promise.all(handles.map((h) => h.stop()));
    }
    const [bare, withCore] = results.map((r) => ({
      rps: median(r.map((x) => x.requestsPerSec)),
      cpu: median(r.map((x) => x.cpuMicrosPerRequest ?? Number.NaN)),
      p99: median(r.map((x) => x.p99Ms)),
    })) as [{ rps: number; cpu: number; p99: number }, { rps: number; cpu: number; p99: number }];
    rows.push([
      framework,
      route,
      Math.round(bare.rps),
      Math.round(withCore.rps),
      `${((1 - withCore.rps / bare.rps) * 100).toFixed(1)}%`,
      bare.cpu,
      withCore.cpu,
      `${((withCore.cpu / bare.cpu - 1) * 100).toFixed(1)}%`,
      bare.p99,
      withCore.p99,
    ]);
  }
}

console.log(
  `\n### Core overhead (medians of ${rounds} alternating rounds of ${duration} s, 16 connections, loopback)\n`,
);
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
