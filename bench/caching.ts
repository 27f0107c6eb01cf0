/**
 * ETags and compression against their peers, `npm run bench -- caching`
 * (`BENCH_SECONDS=2 BENCH_ROUNDS=3 BENCH_RATE=800 BENCH_COMPRESSION_RATE=200`).
 * Every case lives in one server process under its own prefix
 * (bench/servers/caching.ts) and is measured in turn, each round starting at
 * another case, at a fixed request rate every case sustains: CPU per request
 * then compares the work each case does.
 *
 * 1. ETags on a 200 (1 KB and 100 KB JSON): bare Express and Koa, Express's
 *    built-in ETag, koa-etag, restwell `conditional()` hashing the body or
 *    taking the handler's ETag; and, to say where restwell's cost goes, the
 *    restwell core alone and the core holding the response back.
 * 2. Revalidation answered 304 after hashing the body (Express built-in,
 *    koa-etag + koa-conditional-get, restwell) and from `load` before the handler.
 * 3. Compression of a 100 KB JSON list, brotli and gzip: the `compression`
 *    package (Express), koa-compress, restwell `compression()`, all at their
 *    defaults (brotli quality 4, gzip level 6).
 * 4. In process: the ETag hash alone, and zlib at each setting (the figures
 *    that chose brotli quality 4).
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import etagOf from 'etag';
import { type LoadResult, measure, median, startServer, table } from './harness.js';

const server = fileURLToPath(new URL('./servers/caching.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const rate = Number(process.env.BENCH_RATE ?? 800);
// Compressing 100 KB costs 1 to 2 ms of CPU: a rate every case sustains on one core.
const compressionRate = Number(process.env.BENCH_COMPRESSION_RATE ?? 200);
const connections = 8;

/** One request on loopback; the raw (still encoded) bytes, status and headers. */
function fetchRaw(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  bytes: Buffer;
  headers: Record<string, string | string[] | undefined>;
}> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes: Buffer.concat(chunks),
          headers: res.headers,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** CPU µs per call of `fn` (repeated for at least 400 ms) and the length of what it returns. */
function perCall(fn: () => { length: number }): { micros: number; bytes: number } {
  let bytes = fn().length; // warm
  const started = process.cpuUsage();
  const wall = performance.now();
  let n = 0;
  while (n < 5 || performance.now() - wall < 400) {
    bytes = fn().length;
    n++;
  }
  const used = process.cpuUsage(started);
  return { micros: (used.user + used.system) / n, bytes };
}

interface Case {
  key: string;
  path: string;
  headers: Record<string, string>;
  rate: number;
  /** What the answer must be, checked once before measuring. */
  expect: { status: number; encoding?: string };
}

const SIZES = ['1k', '100k'] as const;
const ON_200 = [
  'express',
  'express-etag',
  'restwell-core',
  'restwell-capture',
  'restwell-etag',
  'restwell-supplied',
  'koa',
  'koa-etag',
  'koa-restwell-etag',
] as const;
const ON_304 = ['express-etag', 'restwell-etag', 'restwell-load', 'koa-etag', 'koa-restwell-etag'];
const COMPRESSING = [
  'express',
  'compression',
  'restwell-compression',
  'koa',
  'koa-compress',
  'koa-restwell-compression',
] as const;

const handle = await startServer(server, []);
const { port } = handle;
const samples = new Map<string, LoadResult[]>();
const cases: Case[] = [];
let list: Buffer | undefined;
const bytesOf = new Map<string, number>();
try {
  for (const size of SIZES) {
    for (const c of ON_200) {
      cases.push({
        key: `200/${c}/${size}`,
        path: `/${c}/body/${size}`,
        headers: {},
        rate,
        expect: { status: 200 },
      });
    }
    for (const c of ON_304) {
      const path = `/${c}/body/${size}`;
      const tag = (await fetchRaw(port, path)).headers.etag;
      if (typeof tag !== 'string') throw new Error(`${path} sent no ETag`);
      cases.push({
        key: `304/${c}/${size}`,
        path,
        headers: { 'if-none-match': tag },
        rate,
        expect: { status: 304 },
      });
    }
  }
  for (const coding of ['br', 'gzip']) {
    for (const c of COMPRESSING) {
      const bare = c === 'express' || c === 'koa';
      cases.push({
        key: `${coding}/${c}`,
        path: `/${c}/body/100k`,
        headers: { 'accept-encoding': coding },
        rate: compressionRate,
        expect: bare ? { status: 200 } : { status: 200, encoding: coding },
      });
    }
  }
  for (const c of cases) {
    const res = await fetchRaw(port, c.path, c.headers);
    if (res.status !== c.expect.status || res.headers['content-encoding'] !== c.expect.encoding) {
      throw new Error(
        `${c.key}: expected ${c.expect.status} ${c.expect.encoding ?? 'identity'}, got ${res.status} ${String(res.headers['content-encoding'] ?? 'identity')}`,
      );
    }
    bytesOf.set(c.key, res.bytes.length);
    if (c.key === '200/express/100k') list = res.bytes;
  }
  for (let round = 0; round < rounds; round++) {
    // Each round starts at another case, so that slow spells of a shared machine fall on all of them.
    const shift = Math.floor((round * cases.length) / Math.max(1, rounds));
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + shift) % cases.length]!;
      const r = await measure({
        url: `http://127.0.0.1:${port}${c.path}`,
        headers: c.headers,
        duration,
        connections,
        overallRate: c.rate,
      });
      samples.set(c.key, [...(samples.get(c.key) ?? []), r]);
    }
  }
} finally {
  await handle.stop();
}

function summary(key: string): { rps: number; cpu: number; p99: number } {
  const all = samples.get(key)!;
  return {
    rps: median(all.map((r) => r.requestsPerSec)),
    cpu: median(all.map((r) => r.cpuMicrosPerRequest ?? Number.NaN)),
    p99: median(all.map((r) => r.p99Ms)),
  };
}
const label = (size: string) => size.toUpperCase().replace('K', ' KB');
const over = (value: number, base: number) => `${(value - base).toFixed(1)} µs`;
const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}×`;

console.log(
  `\n### ETags on a 200 (medians of ${rounds} rounds, ${duration} s per case, ${rate} req/s, ${connections} connections, loopback)\n`,
);
const rows200: Array<Array<string | number>> = [];
for (const size of SIZES) {
  for (const c of ON_200) {
    const r = summary(`200/${c}/${size}`);
    const bare = summary(`200/${c.startsWith('koa') ? 'koa' : 'express'}/${size}`);
    rows200.push([
      label(size),
      c,
      Math.round(r.rps),
      r.cpu,
      c === 'express' || c === 'koa' ? '-' : over(r.cpu, bare.cpu),
      r.p99,
    ]);
  }
}
console.log(
  table(['body', 'case', 'req/s', 'CPU µs/req', 'over bare framework', 'p99 ms'], rows200),
);

console.log('\n### Revalidation with a matching If-None-Match (answer: 304)\n');
const rows304: Array<Array<string | number>> = [];
for (const size of SIZES) {
  for (const c of ON_304) {
    const r = summary(`304/${c}/${size}`);
    const peer = c.startsWith('koa') ? 'koa-etag' : 'express-etag';
    rows304.push([
      label(size),
      c,
      Math.round(r.rps),
      r.cpu,
      c === peer ? '-' : ratio(r.cpu, summary(`304/${peer}/${size}`).cpu),
      r.p99,
    ]);
  }
}
console.log(table(['body', 'case', 'req/s', 'CPU µs/req', 'CPU vs the peer', 'p99 ms'], rows304));

console.log(
  `\n### Compression of a ${((list?.length ?? 0) / 1024).toFixed(0)} KB JSON list (${compressionRate} req/s, defaults: brotli 4, gzip 6)\n`,
);
const rowsZ: Array<Array<string | number>> = [];
for (const coding of ['br', 'gzip']) {
  for (const c of COMPRESSING) {
    const r = summary(`${coding}/${c}`);
    const koa = c.startsWith('koa');
    const bare = summary(`${coding}/${koa ? 'koa' : 'express'}`);
    const peer = koa ? 'koa-compress' : 'compression';
    const own = c === 'express' || c === 'koa';
    rowsZ.push([
      own ? 'identity' : coding,
      c,
      bytesOf.get(`${coding}/${c}`) ?? 0,
      r.cpu,
      own ? '-' : over(r.cpu, bare.cpu),
      own || c === peer
        ? '-'
        : ratio(r.cpu - bare.cpu, summary(`${coding}/${peer}`).cpu - bare.cpu),
      r.p99,
    ]);
  }
}
console.log(
  table(
    [
      'coding',
      'case',
      'bytes',
      'CPU µs/req',
      'over bare framework',
      'extra CPU vs the peer',
      'p99 ms',
    ],
    rowsZ,
  ),
);

// 4. In process ---------------------------------------------------------------------------

const hashRows: Array<Array<string | number>> = [];
for (const [size, bytes] of [
  ['1 KB', 1024],
  ['100 KB', 100 * 1024],
] as const) {
  const text = 'x'.repeat(bytes);
  const buffer = Buffer.from(text);
  hashRows.push([
    size,
    perCall(() => etagOf(text)).micros.toFixed(2),
    perCall(() => etagOf(buffer)).micros.toFixed(2),
    perCall(() => Buffer.from(text)).micros.toFixed(2),
    perCall(() => createHash('md5').update(buffer).digest('base64')).micros.toFixed(2),
  ]);
}
console.log('\n### The ETag hash alone, in process (CPU µs per call)\n');
console.log(
  table(
    [
      'body',
      'etag(string): SHA-1',
      'etag(Buffer): SHA-1',
      'UTF-8 encode (Buffer.from)',
      'MD5 of the Buffer',
    ],
    hashRows,
  ),
);

const input = list!;
const levels: Array<[string, number]> = [
  ['gzip', 1],
  ['gzip', 6],
  ['gzip', 9],
  ['br', 1],
  ['br', 4],
  ['br', 5],
  ['br', 6],
  ['br', 9],
  ['br', 11],
];
const inProcess: Array<Array<string | number>> = [];
for (const [coding, level] of levels) {
  const { micros, bytes } =
    coding === 'gzip'
      ? perCall(() => gzipSync(input, { level }))
      : perCall(() =>
          brotliCompressSync(input, {
            // The settings compression() uses for a buffered body of this size.
            params: {
              [constants.BROTLI_PARAM_QUALITY]: level,
              [constants.BROTLI_PARAM_SIZE_HINT]: input.length,
              [constants.BROTLI_PARAM_LGWIN]: Math.min(
                22,
                Math.max(18, Math.ceil(Math.log2(input.length + 16))),
              ),
            },
          }),
        );
  inProcess.push([
    `${coding} ${level}`,
    bytes,
    `${((1 - bytes / input.length) * 100).toFixed(1)}%`,
    Math.round(micros),
    ((input.length - bytes) / micros).toFixed(0),
  ]);
}
console.log(
  `\n### Compression of the same ${(input.length / 1024).toFixed(0)} KB list in process (synchronous zlib, one core)\n`,
);
console.log(
  table(['coding', 'bytes', 'saved', 'CPU µs per response', 'bytes saved per CPU µs'], inProcess),
);
