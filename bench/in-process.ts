/**
 * In-process measurement of Express middleware: real `IncomingMessage` and
 * `ServerResponse` objects on an unconnected socket, driven through a real
 * Express app up to the route handler, one request after another. No
 * network, no load generator competing for the CPU: on a small shared machine
 * the per-request differences between middlewares are far steadier than over
 * HTTP. The response is not written; what is measured is what a middleware
 * costs on the way in (and any headers it sets).
 */
import { IncomingMessage, type RequestListener, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import express from 'express';
import { median } from './harness.js';

export type Runner = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** An Express app with `middleware` in front of `GET /v1/users`, whose handler resolves the run. */
export function expressRunner(middleware?: express.RequestHandler): Runner {
  const app = express();
  app.set('etag', false);
  let done: () => void = () => {};
  if (middleware) app.use(middleware);
  app.get('/v1/users', () => done());
  const listener = app as unknown as RequestListener;
  return (req, res) =>
    new Promise<void>((resolve) => {
      done = resolve;
      listener(req, res);
    });
}

function request(headers: Record<string, string>): { req: IncomingMessage; res: ServerResponse } {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: '127.0.0.1' });
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = '/v1/users';
  req.headers = { host: 'localhost', accept: '*/*', ...headers };
  return { req, res: new ServerResponse(req) };
}

/**
 * Median microseconds per request of each runner, measured in turn for
 * `rounds` rounds of `count` requests (after a warm-up).
 */
export async function perRequestMicros(
  runners: Record<string, Runner>,
  options: { rounds?: number; count?: number; headers?: Record<string, string> } = {},
): Promise<Record<string, number>> {
  const { rounds = 5, count = 30_000, headers = {} } = options;
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(runners)) {
      for (let i = 0; i < 2000; i++) {
        const { req, res } = request(headers);
        await run(req, res);
      }
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) {
        const { req, res } = request(headers);
        await run(req, res);
      }
      const micros = Number(process.hrtime.bigint() - start) / count / 1000;
      samples[name] = [...(samples[name] ?? []), micros];
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, v]) => [name, median(v)]));
}

/**
 * One exchange through `listener` with the response written in full: a
 * request and its response on a socket that swallows what is written, so
 * that whatever intercepts the response's methods (on the response or its
 * prototype) runs as in production. Resolves once the response has finished.
 */
export function exchange(
  listener: RequestListener,
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: string,
): Promise<void> {
  return new Promise<void>((resolve) => {
    // The request reads from an unconnected socket (its body is pushed below);
    // the response writes into one that swallows everything.
    const socket = new Socket();
    Object.defineProperty(socket, 'remoteAddress', { value: '127.0.0.1' });
    const sink = new Duplex({
      write(_chunk, _encoding, cb) {
        cb();
      },
      read() {},
    });
    const req = new IncomingMessage(socket);
    req.method = method;
    req.url = url;
    req.headers = { host: 'localhost', ...headers };
    const res = new ServerResponse(req);
    res.assignSocket(sink as Socket);
    res.once('finish', () => resolve());
    listener(req, res);
    if (body !== undefined) req.push(body);
    req.push(null);
  });
}
