/**
 * What every benchmark server shares: listen on a free loopback port, print
 * `{"port": n}` for the harness, answer `/__cpu` with the process's CPU time
 * and `/__stats` with the case's own counters, count the requests served, and
 * stop on SIGTERM.
 */
import { createServer, type RequestListener } from 'node:http';

export function serve(
  app: RequestListener,
  options: { stats?: () => Record<string, number>; close?: () => unknown } = {},
): void {
  let requests = 0;
  const server = createServer((req, res) => {
    if (req.url === '/__cpu') res.end(JSON.stringify(process.cpuUsage()));
    else if (req.url === '/__stats') res.end(JSON.stringify({ requests, ...options.stats?.() }));
    else {
      requests++;
      app(req, res);
    }
  }).listen(0, '127.0.0.1', () => {
    const address = server.address();
    console.log(
      JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }),
    );
  });
  process.on('SIGTERM', () => {
    server.close(() => {
      void Promise.resolve(options.close?.()).finally(() => process.exit(0));
    });
  });
}
