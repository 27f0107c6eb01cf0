/**
 * Authentication cost per request against bare Express, side by side in one run with
 * express-jwt 8 (jsonwebtoken 9): JWT verification with HS256, RS256, ES256 and EdDSA
 * (express-jwt cannot verify EdDSA), and API keys on the memory store and on Redis.
 * `npm run bench -- auth` (BENCH_SECONDS, BENCH_ROUNDS, BENCH_RATE tune it).
 *
 * Over HTTP every case runs in one server process at the same fixed request rate, in turn,
 * for several rounds; the figure that compares them is the server's CPU time per request.
 * Then in process (`BENCH_HTTP=0` runs only this part): the same middlewares on real request
 * objects, one request after another, without the load generator.
 */
import { fileURLToPath } from 'node:url';
import { measure, median, startServer, table } from './harness.js';
import { expressRunner, perRequestMicros, type Runner } from './in-process.js';
import { authCases } from './servers/auth.js';

const server = fileURLToPath(new URL('./servers/auth.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
// Below what every case sustains on a small machine, so that all are measured at the same load.
const rate = Number(process.env.BENCH_RATE ?? 2000);

const cases = [
  'none',
  'restwell-core',
  'restwell-HS256',
  'express-jwt-HS256',
  'restwell-RS256',
  'express-jwt-RS256',
  'restwell-ES256',
  'express-jwt-ES256',
  'restwell-EdDSA',
  'api-key-memory',
  'api-key-redis',
] as const;

/** The peer each restwell case is compared with, when there is one. */
const peer: Partial<Record<(typeof cases)[number], string>> = {
  'restwell-HS256': 'express-jwt-HS256',
  'restwell-RS256': 'express-jwt-RS256',
  'restwell-ES256': 'express-jwt-ES256',
};

async function overHttp(): Promise<void> {
  const handle = await startServer(server, []);
  const results = new Map<
    string,
    { rps: number[]; cpu: number[]; p99: number[]; non2xx: number }
  >();
  try {
    const credentials = (await (
      await fetch(`http://127.0.0.1:${handle.port}/__credentials`)
    ).json()) as Record<string, Record<string, string>>;
    for (let round = 0; round < rounds; round++) {
      // Each round starts at another case, so that slow spells of a shared machine fall on all.
      const order = cases.map((_, i) => cases[(i + round * 3) % cases.length]!);
      for (const c of order) {
        const r = await measure({
          url: `http://127.0.0.1:${handle.port}/${c}/v1/users`,
          duration,
          headers: credentials[c] ?? {},
          overallRate: rate,
        });
        const entry = results.get(c) ?? { rps: [], cpu: [], p99: [], non2xx: 0 };
        entry.rps.push(r.requestsPerSec);
        entry.cpu.push(r.cpuMicrosPerRequest ?? Number.NaN);
        entry.p99.push(r.p99Ms);
        entry.non2xx += r.non2xx;
        results.set(c, entry);
      }
    }
  } finally {
    await handle.stop();
  }
  const cpu = (c: string) => median(results.get(c)!.cpu);
  const rows = cases.map((c) => {
    const e = results.get(c)!;
    const vs = peer[c];
    return [
      c,
      Math.round(median(e.rps)),
      cpu(c),
      c === 'none' ? '-' : (cpu(c) - cpu('none')).toFixed(1),
      vs === undefined ? '-' : `${(cpu(c) / cpu(vs)).toFixed(2)}×`,
      median(e.p99),
      e.non2xx,
    ];
  });
  console.log(
    `\n### Authentication over HTTP (one server process, ${rate} req/s for ${duration} s per case, ${rounds} rounds in turn, medians; 16 connections, Express 5, loopback)\n`,
  );
  console.log(
    table(
      [
        'case',
        'req/s',
        'CPU µs/req',
        'CPU µs/req over bare',
        'CPU vs express-jwt',
        'p99 ms',
        'non-2xx',
      ],
      rows,
    ),
  );
}

async function inProcess(): Promise<void> {
  const { cases: middlewares, credentials } = await authCases();
  const runner = (name: string): Runner => expressRunner(middlewares[name]);
  const groups: Array<{ label: string; names: string[] }> = [
    { label: 'HS256', names: ['restwell-HS256', 'express-jwt-HS256'] },
    { label: 'RS256', names: ['restwell-RS256', 'express-jwt-RS256'] },
    { label: 'ES256', names: ['restwell-ES256', 'express-jwt-ES256'] },
    { label: 'EdDSA', names: ['restwell-EdDSA'] },
    { label: 'API key', names: ['api-key-memory'] },
  ];
  const rows: Array<Array<string | number>> = [];
  for (const { label, names } of groups) {
    const headers = credentials[names[0]!]!;
    const micros = await perRequestMicros(
      Object.fromEntries(['none', 'restwell-core', ...names].map((n) => [n, runner(n)])),
      { headers, count: Number(process.env.BENCH_COUNT ?? 10_000), rounds: 5 },
    );
    for (const name of names) {
      const vs = peer[name as (typeof cases)[number]];
      rows.push([
        label,
        name,
        micros[name]!,
        (micros[name]! - micros.none!).toFixed(2),
        (micros[name]! - micros['restwell-core']!).toFixed(2),
        vs === undefined ? '-' : `${(micros[name]! / micros[vs]!).toFixed(2)}×`,
      ]);
    }
  }
  console.log(
    '\n### Authentication in process (Express 5, one request after another, 5 rounds in turn, medians)\n',
  );
  console.log(
    table(
      [
        'algorithm',
        'case',
        'µs/req',
        'over bare Express',
        'over the restwell core',
        'vs express-jwt',
      ],
      rows,
    ),
  );
}

if (process.env.BENCH_HTTP !== '0') await overHttp();
await inProcess();
