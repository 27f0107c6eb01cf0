/**
 * The cost of the migration chain, `npm run bench -- versioning`
 * (`BENCH_ROUNDS=5 BENCH_COUNT=5000`).
 *
 * A `POST /items` with a 1 KB JSON body that the handler echoes (a 1 KB JSON
 * answer), on Express and Koa, in process (real request and response objects,
 * the response written in full to a socket that swallows it; see
 * bench/in-process.ts): no network and no load generator competing for the
 * two cores, so the differences of a few microseconds are steady.
 *
 * The figure is the process's CPU time per request (`process.cpuUsage()`),
 * which other work on a shared machine disturbs far less than elapsed time.
 *
 * Cases, measured alternately for several rounds, medians reported:
 * - no versioning: the restwell core and `jsonBody()`;
 * - the newest version: `versioning()` (header strategy) over an API of ten
 *   changes, on a request of the newest version, which runs no migration;
 * - 1, 3 and 10 changes: a request of the oldest version of an API with that
 *   many changes, each renaming one member of every item of the body on the
 *   way in and back on the way out (the response parsed, migrated and
 *   serialised again).
 *
 * Then the chain alone, framework-free: `migrateResponse` on a parsed 1 KB
 * body, without the parse and the serialisation.
 */
import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import { jsonBody, type Middleware } from 'restwell';
import { expressAdapter } from 'restwell/express';
import { koaAdapter } from 'restwell/koa';
import {
  type ApiVersions,
  defineVersions,
  objectsAt,
  renameField,
  type VersionChange,
  versionChange,
  versioning,
} from 'restwell/versioning';
import { median, table } from './harness.js';
import { exchange } from './in-process.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const count = Number(process.env.BENCH_COUNT ?? 5000);
const silent = { error() {}, warn() {}, info() {}, debug() {} };

/** Eight items of ten members: about 1 KB of JSON. */
function body(version: number, changes: number): string {
  const items = Array.from({ length: 8 }, (_, i) => {
    const item: Record<string, unknown> = { id: `item_${i}` };
    for (let m = 0; m < 9; m++) {
      // Member m is named a<m> up to the version that renamed it, b<m> after.
      const renamed = m < changes && version > m + 1;
      item[`${renamed ? 'b' : 'a'}${m}`] = `value-${i}-${m}`;
    }
    return item;
  });
  return JSON.stringify({ data: items });
}

/** An API of `changes` changes: change k (version v<k+2>) renames a<k> to b<k>. */
function api(changes: number): ApiVersions {
  const list: VersionChange[] = [];
  for (let k = 0; k < changes; k++) {
    const from = `a${k % 9}`;
    const to = `b${k % 9}`;
    list.push(
      versionChange({
        description: `Items: \`${from}\` is renamed \`${to}\`.`,
        request: {
          paths: ['POST /items'],
          migrate: (req) => {
            for (const item of objectsAt(req.body, '/data/*')) renameField(item, from, to);
          },
        },
        response: {
          paths: ['POST /items'],
          migrate: (res) => {
            for (const item of objectsAt(res.body, '/data/*')) renameField(item, to, from);
          },
        },
      }),
    );
  }
  return defineVersions({
    versions: [
      { version: 'v1' },
      ...list.map((change, k) => ({ version: `v${k + 2}`, changes: [change] })),
    ],
    maxActive: changes + 1,
  });
}

interface Case {
  name: string;
  versioning: Middleware | undefined;
  /** The request's Api-Version, and its body. */
  version: string | undefined;
  body: string;
}

// Change counts above 9 rename the same nine members again: the work per change stays the same.
const cases: Case[] = [
  { name: 'no versioning', versioning: undefined, version: undefined, body: body(1, 0) },
  {
    name: 'newest version (no migration)',
    versioning: versioning(api(10), { strategy: 'header' }),
    version: 'v11',
    body: body(11, 9),
  },
  ...[1, 3, 10].map((n) => ({
    name: `${n} change${n === 1 ? '' : 's'}`,
    versioning: versioning(api(n), { strategy: 'header' }),
    version: 'v1',
    body: body(1, n),
  })),
];

function expressApp(c: Case): RequestListener {
  const app = express();
  app.set('etag', false);
  const rw = expressAdapter({ logger: silent });
  app.use(rw(...(c.versioning === undefined ? [jsonBody()] : [jsonBody(), c.versioning])));
  app.post('/items', (req, res) => {
    res.json(req.body);
  });
  return app as unknown as RequestListener;
}

function koaApp(c: Case): RequestListener {
  const app = new Koa();
  const rw = koaAdapter({ logger: silent });
  const router = new Router();
  router.post('/items', (ctx) => {
    ctx.body = (ctx.request as { body?: unknown }).body;
  });
  app.use(rw(...(c.versioning === undefined ? [jsonBody()] : [jsonBody(), c.versioning])));
  app.use(router.routes());
  return app.callback() as RequestListener;
}

async function overFrameworks(): Promise<void> {
  const rows: Array<Array<string | number>> = [];
  for (const [framework, build] of [
    ['express', expressApp],
    ['koa', koaApp],
  ] as const) {
    const apps = cases.map((c) => ({ c, app: build(c) }));
    const samples = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      // Each round starts at another case, so that a drift of the machine hits them alike.
      for (let i = 0; i < apps.length; i++) {
        const { c, app } = apps[(i + round) % apps.length]!;
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(c.body)),
          ...(c.version === undefined ? {} : { 'api-version': c.version }),
        };
        const send = () => exchange(app, 'POST', '/items', headers, c.body);
        for (let w = 0; w < 500; w++) await send();
        const start = process.cpuUsage();
        for (let n = 0; n < count; n++) await send();
        const used = process.cpuUsage(start);
        const micros = (used.user + used.system) / count;
        samples.set(c.name, [...(samples.get(c.name) ?? []), micros]);
      }
    }
    const base = median(samples.get('no versioning')!);
    for (const c of cases) {
      const us = median(samples.get(c.name)!);
      rows.push([
        framework,
        c.name,
        us.toFixed(2),
        (us - base).toFixed(2),
        `${((us / base - 1) * 100).toFixed(1)}%`,
      ]);
    }
  }
  console.log(
    `\n### POST /items, 1 KB JSON in and out, in process: CPU time per request (medians of ${rounds} alternating rounds of ${count} requests)\n`,
  );
  console.log(table(['framework', 'case', 'CPU µs/req', 'over no versioning µs', 'cost'], rows));
}

async function chainAlone(): Promise<void> {
  const rows: Array<Array<string | number>> = [];
  for (const n of [1, 3, 10]) {
    const versions = api(n);
    const oldest = versions.versions[0]!;
    const text = body(n + 1, n);
    const headers = { get: () => undefined, set() {}, delete() {} };
    const samples: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const iterations = count * 4;
      const start = process.cpuUsage();
      for (let i = 0; i < iterations; i++) {
        const response = {
          method: 'POST',
          path: '/items',
          status: 200,
          body: JSON.parse(text) as unknown,
          headers,
        };
        versions.migrateResponse(oldest, response);
      }
      const used = process.cpuUsage(start);
      samples.push((used.user + used.system) / iterations);
    }
    rows.push([n, median(samples).toFixed(2)]);
  }
  const parse = (() => {
    const text = body(1, 0);
    const samples: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const iterations = count * 4;
      const start = process.cpuUsage();
      for (let i = 0; i < iterations; i++) JSON.stringify(JSON.parse(text));
      const used = process.cpuUsage(start);
      samples.push((used.user + used.system) / iterations);
    }
    return median(samples);
  })();
  console.log(
    `\n### The response chain alone, framework-free: CPU µs (JSON.parse of the 1 KB body included; parse + stringify alone: ${parse.toFixed(2)} µs)\n`,
  );
  console.log(table(['changes', 'µs per response'], rows));
}

await overFrameworks();
await chainAlone();
