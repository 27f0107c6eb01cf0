/**
 * Benchmark server for ETags and compression:
 * `node --import tsx bench/servers/caching.ts <case> [arg]`.
 *
 * ETag cases, serving `GET /body/1k`, `/body/100k` and `/body/1m` (prebuilt JSON
 * strings, so that only the ETag work differs):
 * - `none`: Express with its ETag off, no restwell;
 * - `express`: Express's built-in ETag (`etag` package, weak, hashed in `res.send`);
 * - `restwell`: `conditional()`, a strong ETag hashed from the final body;
 * - `supplied`: `conditional()` with the handler setting `ETag: "v1"` itself (no hashing);
 * - `load`: `conditional({ load })`: the validator comes from `load`, and a
 *   request with a matching `If-None-Match` is answered 304 without the handler.
 *
 * Compression cases, serving `GET /list` (a 100 KB JSON list):
 * - `identity`: no compression mounted;
 * - `br <quality>`, `gzip <level>`: `compression()` offering that one coding.
 *
 * `/__cpu` reports the process's CPU time.
 */
import { createServer } from 'node:http';
import express from 'express';
import { compression } from 'restwell/compression';
import { conditional } from 'restwell/conditional';
import { expressAdapter } from 'restwell/express';

const which = process.argv[2] ?? 'none';
const arg = Number(process.argv[3] ?? 0);

/** A JSON array of plausible API records, `bytes` long give or take one record. */
function jsonList(bytes: number): string {
  const items: unknown[] = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const item = {
      id: `usr_${(i * 7919).toString(36).padStart(8, '0')}`,
      name: `User ${i}`,
      email: `user${i}@example.com`,
      createdAt: new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString(),
      plan: ['free', 'pro', 'team'][i % 3],
      active: i % 5 !== 0,
      score: (i * 37) % 1000,
      tags: ['alpha', 'beta', 'gamma'].slice(0, (i % 3) + 1),
    };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return JSON.stringify(items);
}

const bodies: Record<string, string> = {
  '1k': jsonList(1024),
  '100k': jsonList(100 * 1024),
  '1m': jsonList(1024 * 1024),
};
const list = jsonList(100 * 1024);

const app = express();
app.disable('x-powered-by');
app.set('etag', which === 'express');
const rw = expressAdapter();

if (which === 'restwell' || which === 'supplied') app.use(rw(conditional()));
if (which === 'load') app.use(rw(conditional({ load: () => ({ etag: '"v1"' }) })));
if (which === 'br') app.use(rw(compression({ encodings: ['br'], brotliQuality: arg })));
if (which === 'gzip') app.use(rw(compression({ encodings: ['gzip'], gzipLevel: arg })));

app.get('/body/:size', (req, res) => {
  const body = bodies[req.params.size ?? ''] ?? '';
  if (which === 'supplied') res.setHeader('ETag', '"v1"');
  res.type('application/json').send(body);
});
app.get('/list', (_req, res) => {
  res.type('application/json').send(list);
});

const server = createServer((req, res) => {
  if (req.url === '/__cpu') res.end(JSON.stringify(process.cpuUsage()));
  else app(req, res);
}).listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }));
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
});
