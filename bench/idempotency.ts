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
import type { RequestListener } from 'node:http';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler } from 'express';
import { jsonBody, MemoryStore, silentLogger } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { idempotency } from 'restwell/idempotency';
import { measure, median, type ServerHandle, startServer, table } from './harness.js';
import { exchange } from './in-process.js';
import { nodeIdempotency } from './servers/idempotency-peers.js';

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
  'restwell-redis-pipelined',
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

/**
 * A key whose second request is a replay: the handler ran once, the answers match. A slow spell of a
 * shared machine can fail one attempt (a store timeout), so three fresh keys are tried.
 */
async function checkedReplayKey(c: string, port: number): Promise<string> {
  const seen: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const key = randomUUID();
    const before = await stats(port);
    const first = await post(port, key);
    // express-idempotency stores the response after sending it: until then it answers 409.
    let second = await post(port, key);
    for (let i = 0; i < 50 && second.status === 409; i++) {
      await new Promise((r) => setTimeout(r, 20));
      second = await post(port, key);
    }
    const after = await stats(port);
    const runs = after.executions - before.executions;
    if (first.status === 201 && second.status === 201 && second.text === first.text && runs === 1) {
      return key;
    }
    seen.push(`${first.status}/${second.status}, ${runs} runs`);
  }
  throw new Error(`${c}: the second request with one key was not a replay (${seen.join('; ')})`);
}

async function overHttp(): Promise<void> {
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
        let replayKey: string = randomUUID();
        if (mode === 'replay') replayKey = await checkedReplayKey(c, port);
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
    const store = c.includes('redis') ? 'redis' : 'memory';
    const ours = restwellCpu(store, mode) - baseCpu;
    return [
      c === 'none' ? 'none' : c.replace(/-(memory|redis)/, ''),
      c === 'none' ? '-' : store,
      c === 'none' ? 'POST' : mode,
      Math.round(median(e.rps)),
      cpu,
      c === 'none' ? '-' : (cpu - baseCpu).toFixed(1),
      c === 'none' || c.startsWith('restwell')
        ? '-'
        : `${(ours / (cpu - baseCpu)).toFixed(2)}×${
            store === 'redis'
              ? ` (pipelined ${((median(results.get(`restwell-redis-pipelined|${mode}`)?.cpu ?? [Number.NaN]) - baseCpu) / (cpu - baseCpu)).toFixed(2)}×)`
              : ''
          }`,
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
}

// In process: the same route and middlewares on real Express objects, without the network and the
// load generator, where differences of a few µs stand out of the noise of a shared machine.
async function inProcess(): Promise<void> {
  const rw = expressAdapter({ logger: silentLogger });
  const nic = await nodeIdempotency(undefined, 'in-process:', { operations: 0 });
  const runners: Record<string, (key: string) => Promise<void>> = {
    none: postRunner(),
    restwell: postRunner(
      rw(
        idempotency({
          store: new MemoryStore({ maxEntries: 2_000_000, evict: false }),
          anonymous: 'ip',
        }),
      ) as RequestHandler,
    ),
    nic: postRunner(nic.middleware),
  };
  const count = 8_000;
  const samples = new Map<string, number[]>();
  for (const mode of ['first request', 'replay'] as const) {
    for (let round = 0; round < rounds + 2; round++) {
      for (const [name, run] of Object.entries(runners)) {
        const replayKey = randomUUID();
        const key = () => (mode === 'replay' ? replayKey : randomUUID());
        for (let i = 0; i < 500; i++) await run(key());
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) await run(key());
        const micros = Number(process.hrtime.bigint() - start) / count / 1000;
        samples.set(`${name}|${mode}`, [...(samples.get(`${name}|${mode}`) ?? []), micros]);
      }
    }
  }
  const rows = (['first request', 'replay'] as const).flatMap((mode) => {
    const bare = median(samples.get(`none|${mode}`)!);
    return Object.keys(runners).map((name) => {
      const us = median(samples.get(`${name}|${mode}`)!);
      return [name, mode, us, name === 'none' ? '-' : (us - bare).toFixed(2)];
    });
  });
  console.log(
    `\n### Idempotency in process (memory stores, Express 5, ${count} requests per case, ${rounds + 2} rounds in turn, medians)\n`,
  );
  console.log(table(['case', 'request', 'µs/req', 'µs/req over bare'], rows));
}

/** `POST /v1/payments` through a real Express app behind `middleware`, on an unconnected socket. */
function postRunner(middleware?: RequestHandler): (key: string) => Promise<void> {
  const app = express();
  app.set('etag', false);
  app.use(expressAdapter({ logger: silentLogger })(jsonBody()) as RequestHandler);
  const handler: RequestHandler = (req, res) => {
    res.status(201).json({ id: 'pay_1', ...req.body });
  };
  if (middleware) app.post('/v1/payments', middleware, handler);
  else app.post('/v1/payments', handler);
  const listener = app as unknown as RequestListener;
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  };
  // The run ends when the final answer is written, through whatever interceptors are installed.
  return (key) =>
    exchange(listener, 'POST', '/v1/payments', { ...headers, 'idempotency-key': key }, body);
}

if (process.env.BENCH_HTTP !== '0') await overHttp();
await inProcess();
