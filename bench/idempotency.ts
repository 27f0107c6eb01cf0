/**
 * Idempotency cost: a first POST (a new key per request) and a replay (one key again and again) on
 * Express 5, against the same route without any middleware, for restwell and two peers on the same
 * kind of store: `@node-idempotency/core` (memory and redis storage adapters) and
 * express-idempotency (its in-memory adapter and express-idempotency-redis-adapter). Every case
 * runs in its own server process (all started at once, idle while another is measured); the cases
 * are measured in turn for several rounds, each round starting at another case, at a fixed request
 * rate that every case sustains, and the medians reported. Before a replay is timed, its key is
 * sent twice and the second answer checked to be a replay (the handler did not run again, same
 * body); during the timing the handler's executions are counted (0 for replays, one per request
 * for first requests). Store operations per request are counted on the server (one round trip
 * each on Redis). `npm run bench -- idempotency`.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { measure, median, type ServerHandle, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/idempotency.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
// Below what every case sustains on a small machine, so that all are measured at the same load.
const rate = Number(process.env.BENCH_RATE ?? 1500);
const body = JSON.stringify({ amount: 1000, currency: 'EUR', userId: 'usr_ada' });

const cases = [
  'none',
  'restwell-memory',
  'nic-memory',
  'ei-memory',
  'restwell-redis',
  'nic-redis',
  'ei-redis',
] as const;
const only = process.env.BENCH_CASES?.split(',');
const chosen: Array<(typeof cases)[number]> = cases.filter(
  (c) => c === 'none' || !only || only.includes(c),
);
type Mode = 'first request' | 'replay';
type Run = { c: (typeof cases)[number]; mode: Mode };
const runs: Run[] = chosen.flatMap<Run>((c) =>
  c === 'none'
    ? [{ c, mode: 'first request' as Mode }]
    : (['first request', 'replay'] as const).map((mode) => ({ c, mode })),
);

interface Stats {
  requests: number;
  operations: number;
  executions: number;
}
async function stats(port: number): Promise<Stats> {
  const r = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await r.json()) as Stats;
}
async function post(port: number, key: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body,
  });
  return { status: r.status, text: await r.text() };
}

const handles = new Map<string, ServerHandle>();
const results = new Map<
  string,
  { rps: number[]; cpu: number[]; p99: number[]; ops: number[]; executions: number[] }
>();
try {
  // One after another: starting them all at once can outlast the start timeout on a busy machine.
  for (const c of chosen) handles.set(c, await startServer(server, [c]));
  for (let round = 0; round < rounds; round++) {
    const order = runs.map((_, i) => runs[(i + round * 3) % runs.length]!);
    for (const { c, mode } of order) {
      const { port } = handles.get(c)!;
      const replayKey = randomUUID();
      if (mode === 'replay') {
        // A replay must be one: the second answer comes from the record, not from the handler.
        const before = await stats(port);
        const first = await post(port, replayKey);
        const second = await post(port, replayKey);
        const after = await stats(port);
        if (
          first.status !== 201 ||
          second.status !== 201 ||
          second.text !== first.text ||
          after.executions - before.executions !== 1
        ) {
          throw new Error(`${c}: the second request with one key was not a replay`);
        }
      }
      const before = await stats(port);
      const r = await measure({
        url: `http://127.0.0.1:${port}/v1/payments`,
        method: 'POST',
        body,
        duration,
        overallRate: rate,
        setupRequest: (req) => ({
          ...req,
          headers: {
            ...req.headers,
            'idempotency-key': mode === 'replay' ? replayKey : randomUUID(),
          },
        }),
      });
      const after = await stats(port);
      const served = Math.max(1, after.requests - before.requests);
      const entry = results.get(`${c}|${mode}`) ?? {
        rps: [],
        cpu: [],
        p99: [],
        ops: [],
        executions: [],
      };
      entry.rps.push(r.requestsPerSec);
      entry.cpu.push(r.cpuMicrosPerRequest ?? Number.NaN);
      entry.p99.push(r.p99Ms);
      entry.ops.push((after.operations - before.operations) / served);
      entry.executions.push((after.executions - before.executions) / served);
      if (r.non2xx > 0) throw new Error(`${c} ${mode}: ${r.non2xx} answers were not 2xx`);
      results.set(`${c}|${mode}`, entry);
    }
  }
} finally {
  await Promise.all([...handles.values()].map((h) => h.stop()));
}

const baseCpu = median(results.get('none|first request')!.cpu);
const restwellCpu = (store: string, mode: Mode) =>
  median(results.get(`restwell-${store}|${mode}`)?.cpu ?? [Number.NaN]);
const rows = runs.map(({ c, mode }) => {
  const e = results.get(`${c}|${mode}`)!;
  const cpu = median(e.cpu);
  const store = c.endsWith('redis') ? 'redis' : 'memory';
  const ours = restwellCpu(store, mode) - baseCpu;
  return [
    c === 'none' ? 'none' : c.replace(/-(memory|redis)$/, ''),
    c === 'none' ? '-' : store,
    c === 'none' ? 'POST' : mode,
    Math.round(median(e.rps)),
    cpu,
    c === 'none' ? '-' : (cpu - baseCpu).toFixed(1),
    c === 'none' || c.startsWith('restwell') ? '-' : `${(ours / (cpu - baseCpu)).toFixed(2)}×`,
    median(e.p99),
    c === 'none' ? '-' : median(e.ops).toFixed(2),
    median(e.executions).toFixed(2),
  ];
});
console.log(
  `\n### Idempotency (one process per case, ${rate} req/s for ${duration} s per case, ${rounds} rounds in turn, medians; 16 connections, Express 5, loopback)\n`,
);
console.log(
  table(
    [
      'library',
      'store',
      'request',
      'req/s',
      'CPU µs/req',
      'CPU µs/req over bare',
      'restwell / this (over bare)',
      'p99 ms',
      'store ops/req',
      'handler runs/req',
    ],
    rows,
  ),
);
