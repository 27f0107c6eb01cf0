/**
 * The cost of the restwell core (context, trace id, problem details, JSON body
 * reader) over bare Express and bare Koa, as ratios from the same run.
 * `npm run bench -- core` (BENCH_SECONDS and BENCH_ROUNDS tune it).
 *
 * Bare and restwell servers are measured alternately for several rounds and
 * the medians compared, so that a burst of noise on the machine hits both.
 * Then the same apps in process (`BENCH_HTTP=0` runs only this part): real
 * request and response objects, the response written in full to a socket that
 * swallows it, one request after another, without the load generator that
 * competes for the two cores over HTTP.
 */
import type { RequestListener } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type LoadResult, measure, median, startServer, table } from './harness.js';
import { exchange } from './in-process.js';
import { expressApp, koaApp } from './servers/core.js';

const server = fileURLToPath(new URL('./servers/core.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const body = JSON.stringify({ amount: 1000, currency: 'EUR', userId: 'usr_ada' });

async function overHttp(): Promise<void> {
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
}

async function inProcess(): Promise<void> {
  const apps: Record<string, RequestListener> = {
    express: expressApp(false) as unknown as RequestListener,
    'express+restwell': expressApp(true) as unknown as RequestListener,
    koa: koaApp(false),
    'koa+restwell': koaApp(true),
  };
  const count = Number(process.env.BENCH_COUNT ?? 20_000);
  const inRounds = rounds + 2;
  const rows: Array<Array<string | number>> = [];
  for (const route of ['GET /v1/users', 'POST /v1/payments'] as const) {
    const [method, url] = route.split(' ') as [string, string];
    const headers: Record<string, string> =
      method === 'POST'
        ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
        : { accept: 'application/json' };
    const samples = new Map<string, number[]>();
    for (let round = 0; round < inRounds; round++) {
      for (const [name, app] of Object.entries(apps)) {
        const send = () =>
          exchange(app, method, url, headers, method === 'POST' ? body : undefined);
        for (let i = 0; i < 1000; i++) await send();
        const start = process.hrtime.bigint();
        for (let i = 0; i < count; i++) await send();
        samples.set(name, [
          ...(samples.get(name) ?? []),
          Number(process.hrtime.bigint() - start) / count / 1000,
        ]);
      }
    }
    for (const framework of ['express', 'koa']) {
      const bare = median(samples.get(framework)!);
      const withCore = median(samples.get(`${framework}+restwell`)!);
      rows.push([
        framework,
        route,
        bare.toFixed(2),
        withCore.toFixed(2),
        (withCore - bare).toFixed(2),
        `${((withCore / bare - 1) * 100).toFixed(1)}%`,
      ]);
    }
  }
  console.log(
    `\n### Core overhead in process (medians of ${inRounds} alternating rounds of ${count} requests)\n`,
  );
  console.log(
    table(['framework', 'route', 'bare µs/req', 'restwell µs/req', 'over bare µs', 'cost'], rows),
  );
}

if (process.env.BENCH_HTTP !== '0') await overHttp();
await inProcess();
