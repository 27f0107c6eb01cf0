/**
 * ETags and compression, `npm run bench -- caching` (`BENCH_SECONDS=2` by default):
 *
 * 1. ETag cost on 1 KB, 100 KB and 1 MB JSON bodies on Express: no ETag,
 *    Express's built-in ETag, restwell `conditional()` hashing the body, and an
 *    application-supplied validator (no hashing); then a revalidation that
 *    matches, answered after hashing vs from `load` without the handler.
 * 2. Compression of a 100 KB JSON list: bytes on the wire and server CPU per
 *    response for gzip and brotli at several levels, over HTTP.
 * 3. The same settings in process: CPU per compression without HTTP around it,
 *    the figure that chose the default brotli quality.
 */
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import etagOf from 'etag';
import {
  type LoadResult,
  measure,
  median,
  type ServerHandle,
  startServer,
  table,
} from './harness.js';

const server = fileURLToPath(new URL('./servers/caching.ts', import.meta.url));
const duration = Number(process.env.BENCH_SECONDS ?? 2);
const connections = 16;

/** One GET on loopback; the raw (still encoded) bytes and headers. */
function fetchRaw(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ bytes: Buffer; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ bytes: Buffer.concat(chunks), headers: res.headers }));
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

const cpu = (r: LoadResult) => r.cpuMicrosPerRequest ?? Number.NaN;
const pct = (value: number, base: number) => `${((value / base - 1) * 100).toFixed(0)}%`;

// 1. ETag cost ------------------------------------------------------------------------------

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const sizes = ['1k', '100k', '1m'] as const;
const etagCases = [
  ['none', 'no ETag'],
  ['express', "Express built-in (app.set('etag'), weak)"],
  ['restwell', 'restwell conditional(), hashed (strong)'],
  ['supplied', 'restwell conditional(), app-supplied ETag'],
] as const;

// All servers up at once, measured alternately round after round: noise on the
// machine (two cores, shared with the load generator) hits every case alike.
const handles = new Map<string, ServerHandle>();
for (const [name] of etagCases) handles.set(name, await startServer(server, [name]));
handles.set('load', await startServer(server, ['load']));
const samples = new Map<string, LoadResult[]>();
const sample = (key: string, r: LoadResult) => samples.set(key, [...(samples.get(key) ?? []), r]);
try {
  const restwellPort = handles.get('restwell')!.port;
  const { headers: labelled } = await fetchRaw(restwellPort, '/body/100k');
  for (let round = 0; round < rounds; round++) {
    for (const size of sizes) {
      for (const [name] of etagCases) {
        const url = `http://127.0.0.1:${handles.get(name)!.port}/body/${size}`;
        sample(`${name}/${size}`, await measure({ url, duration, connections }));
      }
    }
    sample(
      'revalidate/hash',
      await measure({
        url: `http://127.0.0.1:${restwellPort}/body/100k`,
        headers: { 'if-none-match': String(labelled.etag) },
        duration,
        connections,
      }),
    );
    sample(
      'revalidate/load',
      await measure({
        url: `http://127.0.0.1:${handles.get('load')!.port}/body/100k`,
        headers: { 'if-none-match': '"v1"' },
        duration,
        connections,
      }),
    );
  }
} finally {
  for (const handle of handles.values()) await handle.stop();
}

/** Medians over the rounds. */
function summary(key: string): { rps: number; cpu: number; p99: number } {
  const all = samples.get(key)!;
  return {
    rps: median(all.map((r) => r.requestsPerSec)),
    cpu: median(all.map(cpu)),
    p99: median(all.map((r) => r.p99Ms)),
  };
}

const etagRows: Array<Array<string | number>> = [];
for (const size of sizes) {
  const base = summary(`none/${size}`);
  for (const [name, label] of etagCases) {
    const r = summary(`${name}/${size}`);
    etagRows.push([
      size.toUpperCase().replace('K', ' KB').replace('M', ' MB'),
      label,
      Math.round(r.rps),
      r.cpu,
      name === 'none' ? '-' : `${(r.cpu - base.cpu).toFixed(1)} µs (${pct(r.cpu, base.cpu)})`,
      r.p99,
    ]);
  }
}
console.log(
  `\n### ETag cost (medians of ${rounds} rounds, ${duration} s per case, ${connections} connections, Express, loopback)\n`,
);
console.log(table(['body', 'case', 'req/s', 'CPU µs/req', 'CPU vs no ETag', 'p99 ms'], etagRows));

const hashRows: Array<Array<string | number>> = [];
for (const [size, bytes] of [
  ['1 KB', 1024],
  ['100 KB', 100 * 1024],
  ['1 MB', 1024 * 1024],
] as const) {
  const body = 'x'.repeat(bytes);
  const { micros } = perCall(() => etagOf(body));
  hashRows.push([size, micros.toFixed(1)]);
}
console.log('\nThe hash alone, in process (`etag` package: SHA-1 of the body, strong):\n');
console.log(table(['body', 'CPU µs per ETag'], hashRows));

const hash = summary('revalidate/hash');
const loaded = summary('revalidate/load');
console.log('\nRevalidating a 100 KB resource with a matching If-None-Match (answer: 304):\n');
console.log(
  table(
    ['how', 'req/s', 'CPU µs/req', 'p99 ms'],
    [
      ['conditional(): handler runs, body hashed, 304', Math.round(hash.rps), hash.cpu, hash.p99],
      [
        'conditional({ load }): 304 before the handler',
        Math.round(loaded.rps),
        loaded.cpu,
        loaded.p99,
      ],
    ],
  ),
);

// 2. Compression over HTTP ----------------------------------------------------------------

const compressionCases: Array<[string, number]> = [
  ['identity', 0],
  ['gzip', 1],
  ['gzip', 6],
  ['gzip', 9],
  ['br', 1],
  ['br', 4],
  ['br', 5],
  ['br', 6],
  ['br', 9],
];
// Quality 11 takes a fifth of a second per 100 KB response: measured in process only.
const inProcessOnly: Array<[string, number]> = [['br', 11]];

let list: Buffer | undefined;
let identityCpu = Number.NaN;
let identityBytes = Number.NaN;
const httpRows: Array<Array<string | number>> = [];
for (const [coding, level] of compressionCases) {
  const handle = await startServer(
    server,
    coding === 'identity' ? ['none'] : [coding, String(level)],
  );
  try {
    const headers = { 'accept-encoding': coding };
    const sample = await fetchRaw(handle.port, '/list', headers);
    if (coding === 'identity') {
      list = sample.bytes;
      identityBytes = sample.bytes.length;
    } else if (sample.headers['content-encoding'] !== coding) {
      throw new Error(`expected ${coding}, got ${String(sample.headers['content-encoding'])}`);
    }
    const r = await measure({
      url: `http://127.0.0.1:${handle.port}/list`,
      headers,
      duration,
      connections,
    });
    if (coding === 'identity') identityCpu = cpu(r);
    httpRows.push([
      coding === 'identity' ? 'identity' : `${coding} ${level}`,
      sample.bytes.length,
      coding === 'identity'
        ? '-'
        : `${((1 - sample.bytes.length / identityBytes) * 100).toFixed(1)}%`,
      Math.round(r.requestsPerSec),
      cpu(r),
      coding === 'identity' ? '-' : (cpu(r) - identityCpu).toFixed(0),
      r.p99Ms,
    ]);
  } finally {
    await handle.stop();
  }
}
console.log(
  `\n### Compression of a ${(identityBytes / 1024).toFixed(0)} KB JSON list over HTTP (${duration} s per case, ${connections} connections, Express)\n`,
);
console.log(
  table(
    ['coding', 'bytes', 'saved', 'req/s', 'CPU µs/req', 'extra CPU µs/req', 'p99 ms'],
    httpRows,
  ),
);

// 3. Compression in process ---------------------------------------------------------------

const input = list!;
const inProcess: Array<Array<string | number>> = [];
for (const [coding, level] of [...compressionCases, ...inProcessOnly]) {
  if (coding === 'identity') continue;
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
