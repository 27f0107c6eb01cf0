/**
 * Idempotency cost: a first POST (a new key per request) and a replay (one key
 * again and again), on memory and Redis, against the same route without the
 * middleware; and store round trips per request (targets: 2 for a first
 * request, 1 for a replay). `npm run bench -- idempotency`.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { measure, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/idempotency.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 3);
const body = JSON.stringify({ amount: 1000, currency: 'EUR', userId: 'usr_ada' });

async function counters(port: number): Promise<{ operations: number; requests: number }> {
  const r = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await r.json()) as { operations: number; requests: number };
}

const rows: Array<Array<string | number>> = [];
const base = await startServer(server, ['none']);
let baseline: Awaited<ReturnType<typeof measure>>;
try {
  baseline = await measure({
    url: `http://127.0.0.1:${base.port}/v1/payments`,
    method: 'POST',
    body,
    duration,
  });
  rows.push([
    'none',
    'POST',
    Math.round(baseline.requestsPerSec),
    baseline.cpuMicrosPerRequest ?? Number.NaN,
    '-',
    baseline.p99Ms,
    '-',
  ]);
} finally {
  await base.stop();
}

for (const kind of ['memory', 'redis']) {
  const handle = await startServer(server, [kind]);
  try {
    const url = `http://127.0.0.1:${handle.port}/v1/payments`;
    for (const mode of ['first request', 'replay'] as const) {
      const replayKey = randomUUID();
      const before = await counters(handle.port);
      const result = await measure({
        url,
        method: 'POST',
        body,
        duration,
        setupRequest: (req) => ({
          ...req,
          headers: {
            ...req.headers,
            'idempotency-key': mode === 'replay' ? replayKey : randomUUID(),
          },
        }),
      });
      const after = await counters(handle.port);
      const perRequest =
        (after.operations - before.operations) / Math.max(1, after.requests - before.requests);
      const cpu = result.cpuMicrosPerRequest ?? Number.NaN;
      rows.push([
        kind,
        mode,
        Math.round(result.requestsPerSec),
        cpu,
        `${((cpu / (baseline.cpuMicrosPerRequest ?? cpu) - 1) * 100).toFixed(1)}%`,
        result.p99Ms,
        perRequest.toFixed(2),
      ]);
    }
  } finally {
    await handle.stop();
  }
}

console.log(`\n### Idempotency (${duration} s per case, 16 connections, Express, loopback)\n`);
console.log(
  table(
    ['store', 'request', 'req/s', 'CPU µs/req', 'CPU vs no middleware', 'p99 ms', 'store ops/req'],
    rows,
  ),
);
