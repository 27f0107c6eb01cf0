/**
 * A stream that fails while it is the response body: the process never sees
 * an uncaught exception, the client never waits, and what it gets is a 500
 * problem document (while nothing was sent) or an aborted response, never a
 * framework's text/plain page.
 */
import type { RequestListener } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../../src/adapters/express/index.js';
import { koaAdapter } from '../../src/adapters/koa/index.js';
import { jsonBody } from '../../src/core/body.js';
import type { Middleware } from '../../src/core/context.js';
import type { Logger } from '../../src/core/logger.js';

const uncaught: unknown[] = [];
const record = (e: unknown) => uncaught.push(e);
beforeAll(() => {
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
});
afterAll(() => {
  process.off('uncaughtException', record);
  process.off('unhandledRejection', record);
});

function failing(after = 0): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent++ < after) this.push('some bytes\n');
      else this.destroy(new Error('upstream reset at 10.0.0.7:5432'));
    },
  });
}

function logger(): Logger & { errors: Array<Record<string, unknown> | undefined> } {
  const errors: Array<Record<string, unknown> | undefined> = [];
  return { errors, error: (_m, f) => errors.push(f), warn() {}, info() {}, debug() {} };
}

/** The raw bytes of one request's answer; resolves when the server closes the connection. */
async function exchange(listener: RequestListener, path: string): Promise<string> {
  const { createServer } = await import('node:http');
  const server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('error', () => {});
    await new Promise<void>((resolve) => {
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve());
    });
    return Buffer.concat(chunks).toString('latin1');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A 500 problem with the trace id and nothing of the error, or nothing at all (aborted). */
function expectProblemOrAbort(answer: string): void {
  if (answer === '') return;
  expect(answer).toMatch(/^HTTP\/1\.1 500 /);
  expect(answer).toMatch(/content-type: application\/problem\+json/i);
  expect(answer).toMatch(/"traceId":"[0-9a-f]{32}"/);
  expect(answer).not.toMatch(/upstream|10\.0\.0\.7|text\/plain/);
}

const seesResponse: Middleware = async (_ctx, next) => {
  await next();
};

const expresses = [
  ['express5', express5],
  ['express4', express4 as unknown as typeof express5],
] as const;

describe.each(expresses)('%s: a stream piped into the response fails', (_name, express) => {
  function app(mount: Middleware[], flush: boolean, log: Logger) {
    const a = express();
    const rw = expressAdapter({ logger: log });
    a.use(rw(...mount));
    a.get('/pipe', (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      if (flush) res.flushHeaders();
      failing().pipe(res);
    });
    a.use(rw.errorHandler());
    return a as unknown as RequestListener;
  }

  it.each([
    ['a mount that reads the response', [seesResponse], false],
    ['a mount that reads the response, head flushed', [seesResponse], true],
    ['only response-blind mounts', [jsonBody()], false],
  ] as const)('with %s: logged, answered, no uncaught exception', async (_c, mount, flush) => {
    const before = uncaught.length;
    const log = logger();
    const answer = await exchange(app([...mount], flush, log), '/pipe');
    expectProblemOrAbort(answer);
    if (!flush) expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(uncaught.length).toBe(before);
    expect(log.errors.some((f) => String((f?.err as Error)?.message).includes('upstream'))).toBe(
      true,
    );
  });
});

describe.each(expresses)('%s: a piped stream fails after bytes were sent', (_name, express) => {
  it('the response is aborted, never left open', async () => {
    const before = uncaught.length;
    const a = express();
    const rw = expressAdapter({ logger: logger() });
    a.use(rw(jsonBody()));
    a.get('/pipe', (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      failing(2).pipe(res);
    });
    a.use(rw.errorHandler());
    const answer = await exchange(a as unknown as RequestListener, '/pipe');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toMatch(/\r\n0\r\n\r\n$/);
    expect(uncaught.length).toBe(before);
  });
});

const koas = [
  ['koa3', Koa3],
  ['koa2', Koa2 as unknown as typeof Koa3],
] as const;

describe.each(koas)('%s: a stream body fails before its first byte', (_name, Koa) => {
  it('is a 500 problem or an aborted response, never text/plain', async () => {
    const before = uncaught.length;
    const a = new Koa();
    a.silent = true;
    a.use(koaAdapter({ logger: logger() })() as unknown as Koa3.Middleware);
    a.use((ctx) => {
      ctx.type = 'text/plain';
      ctx.body = failing();
    });
    const answer = await exchange(a.callback() as RequestListener, '/');
    expectProblemOrAbort(answer);
    expect(uncaught.length).toBe(before);
  });

  it('a body Koa cannot serialise (a BigInt) is a 500 problem', async () => {
    const a = new Koa();
    a.silent = true;
    a.use(koaAdapter({ logger: logger() })() as unknown as Koa3.Middleware);
    a.use((ctx) => {
      ctx.body = { n: 1n };
    });
    const answer = await exchange(a.callback() as RequestListener, '/');
    expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).not.toMatch(/BigInt/);
  });

  it('once bytes were sent, the response is aborted, never left open', async () => {
    const before = uncaught.length;
    const a = new Koa();
    a.silent = true;
    a.use(koaAdapter({ logger: logger() })() as unknown as Koa3.Middleware);
    a.use((ctx) => {
      ctx.type = 'text/plain';
      ctx.body = failing(2);
    });
    // Chunked framing never completed: the connection closes with no final chunk.
    const answer = await exchange(a.callback() as RequestListener, '/');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toMatch(/\r\n0\r\n\r\n$/);
    expect(uncaught.length).toBe(before);
  });
});
