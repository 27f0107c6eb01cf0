import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/logger.js';
import { hardenServer } from '../../src/core/server.js';

interface Warning {
  message: string;
  fields: Record<string, unknown> | undefined;
}

function recorder(): Logger & { warnings: Warning[] } {
  const warnings: Warning[] = [];
  return {
    warnings,
    error() {},
    info() {},
    warn: (message, fields) => warnings.push({ message, fields }),
  };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function start(server: Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Writes raw bytes on a fresh connection; resolves with everything received until the server closes it. */
function send(port: number, ...parts: Array<string | Buffer>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('connect', () => {
      for (const p of parts) socket.write(p);
    });
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function parse(raw: string): Parsed {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  // The text was read as latin1: one character per byte.
  const body = Buffer.from(raw.slice(end + 4), 'latin1');
  expect(body.length).toBe(Number(headers['content-length']));
  return {
    status: Number(statusLine?.split(' ')[1]),
    headers,
    body: JSON.parse(body.toString('utf8')),
  };
}

function expectProblem(res: Parsed, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json');
  expect(res.headers.connection).toBe('close');
  expect(res.headers.date).toMatch(/GMT$/);
  expect(res.body).toMatchObject({ type: 'about:blank', status, code });
  expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(res.headers['trace-id']).toBe(res.body.traceId);
}

const ok = () => createServer((_req, res) => res.end('ok'));

describe('hardenServer(): what the HTTP parser refuses is a problem', () => {
  it('a control character in a header value: 400', async () => {
    const logger = recorder();
    const port = await start(hardenServer(ok(), { logger }));
    const res = parse(await send(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Note: a\u0001b\r\n\r\n'));
    expectProblem(res, 400, 'bad-request');
    expect(res.body.detail).toMatch(/character HTTP does not allow/);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.fields).toMatchObject({
      traceId: res.body.traceId,
      status: 400,
      code: 'HPE_INVALID_HEADER_TOKEN',
      suppressed: 0,
    });
  });

  it("keeps the client's traceparent when the bytes read so far hold one", async () => {
    const port = await start(hardenServer(ok(), { logger: recorder() }));
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = parse(
      await send(
        port,
        `GET / HTTP/1.1\r\nHost: x\r\ntraceparent: ${traceparent}\r\nX: \u0007\r\n\r\n`,
      ),
    );
    expect(res.body.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('Content-Length with Transfer-Encoding (bad framing): 400', async () => {
    const port = await start(hardenServer(ok(), { logger: recorder() }));
    const res = parse(
      await send(
        port,
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ),
    );
    expectProblem(res, 400, 'bad-request');
    expect(res.body.detail).toMatch(/framing/);
  });

  it('a header block over maxHeaderSize: 431', async () => {
    const port = await start(hardenServer(ok(), { logger: recorder() }));
    const res = parse(
      await send(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expectProblem(res, 431, 'request-header-fields-too-large');
  });

  it("chunk extensions over Node's limit: 413", async () => {
    const reader = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const port = await start(hardenServer(reader, { logger: recorder() }));
    const res = parse(
      await send(
        port,
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
        `1;ext=${'x'.repeat(20_000)}\r\na\r\n0\r\n\r\n`,
      ),
    );
    expectProblem(res, 413, 'payload-too-large');
  });

  it('a request that stalls: 408 once headersTimeout passes', async () => {
    const server = hardenServer(ok(), {
      logger: recorder(),
      headersTimeout: 100,
      requestTimeout: 200,
      connectionsCheckingInterval: 20,
    });
    const port = await start(server);
    const res = parse(await send(port, 'GET / HTTP/1.1\r\nHost: x\r\n'));
    expectProblem(res, 408, 'request-timeout');
  });

  it('a body that stalls: 408 once requestTimeout passes', async () => {
    const reader = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const server = hardenServer(reader, {
      logger: recorder(),
      headersTimeout: 100,
      requestTimeout: 200,
      connectionsCheckingInterval: 20,
    });
    const port = await start(server);
    const res = parse(
      await send(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'),
    );
    expectProblem(res, 408, 'request-timeout');
  });

  it('leaves valid requests alone', async () => {
    const port = await start(hardenServer(ok(), { logger: recorder() }));
    const raw = await send(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(raw.endsWith('ok')).toBe(true);
  });

  it('sends no trace header with traceHeader: false; the document keeps traceId', async () => {
    const port = await start(hardenServer(ok(), { logger: recorder(), traceHeader: false }));
    const res = parse(await send(port, 'GET / HTTP/1.1\r\nX: \u0001\r\n\r\n'));
    expect(res.headers['trace-id']).toBeUndefined();
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('logs at most one warning per interval, counting the ones held back', async () => {
    const logger = recorder();
    const port = await start(hardenServer(ok(), { logger, logIntervalMs: 60_000 }));
    for (let i = 0; i < 3; i++) await send(port, 'GET / HTTP/1.1\r\nX: \u0001\r\n\r\n');
    expect(logger.warnings).toHaveLength(1);
  });
});

describe('hardenServer(): never writes where it must not', () => {
  it('a response already started on the connection: the socket is closed, nothing appended', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      // never ends: the client's next bytes are garbage
    });
    const port = await start(hardenServer(server, { logger: recorder() }));
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        if (Buffer.concat(chunks).includes('partial')) socket.write('\u0001\u0002 garbage\r\n\r\n');
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(raw).not.toMatch(/problem\+json/);
  });

  function fakeSocket(writable: boolean, inFlight?: { headersSent: boolean }) {
    const socket = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    const calls: string[] = [];
    Object.defineProperty(socket, 'writable', { value: writable });
    Object.assign(socket, { _httpMessage: inFlight });
    socket.write = (() => {
      calls.push('write');
      return true;
    }) as never;
    socket.end = (() => {
      calls.push('end');
      return socket;
    }) as never;
    socket.destroy = (() => {
      calls.push('destroy');
      return socket;
    }) as never;
    return { socket, calls };
  }

  it('a socket that is not writable is destroyed, not written to', () => {
    const server = hardenServer(ok(), { logger: recorder() });
    const { socket, calls } = fakeSocket(false);
    server.emit(
      'clientError',
      Object.assign(new Error('x'), { code: 'HPE_INVALID_METHOD' }),
      socket,
    );
    expect(calls).toEqual(['destroy']);
  });

  it('a response with headers sent is not written after', () => {
    const server = hardenServer(ok(), { logger: recorder() });
    const { socket, calls } = fakeSocket(true, { headersSent: true });
    server.emit(
      'clientError',
      Object.assign(new Error('x'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
      socket,
    );
    expect(calls).toEqual(['destroy']);
  });

  it('a reset connection is destroyed', () => {
    const server = hardenServer(ok(), { logger: recorder() });
    const { socket, calls } = fakeSocket(true);
    server.emit('clientError', Object.assign(new Error('x'), { code: 'ECONNRESET' }), socket);
    expect(calls).toEqual(['destroy']);
  });

  it('a second error on a socket already answered writes nothing more', () => {
    const server = hardenServer(ok(), { logger: recorder() });
    const { socket, calls } = fakeSocket(true);
    const err = Object.assign(new Error('x'), { code: 'HPE_INVALID_METHOD' });
    server.emit('clientError', err, socket);
    server.emit('clientError', err, socket);
    expect(calls).toEqual(['end']);
    // Once the client has closed its side, the socket is closed too.
    socket.emit('end');
    expect(calls).toEqual(['end', 'destroy']);
  });

  it('an oversized header sent in many small writes is still answered 431', async () => {
    const port = await start(hardenServer(ok(), { logger: recorder() }));
    const header = `X-Big: ${'a'.repeat(60_000)}\r\n`;
    const parts = ['GET / HTTP/1.1\r\nHost: x\r\n'];
    for (let i = 0; i < header.length; i += 1_000) parts.push(header.slice(i, i + 1_000));
    parts.push('\r\n');
    const res = parse(await send(port, ...parts));
    expectProblem(res, 431, 'request-header-fields-too-large');
  });
});

describe('hardenServer(): timeouts and options', () => {
  it('sets the documented defaults', () => {
    const server = hardenServer(createServer());
    expect(server.headersTimeout).toBe(10_000);
    expect(server.requestTimeout).toBe(60_000);
    expect(server.keepAliveTimeout).toBe(5_000);
  });

  it('takes overrides', () => {
    const server = hardenServer(createServer(), {
      headersTimeout: 5_000,
      requestTimeout: 0,
      keepAliveTimeout: 65_000,
    });
    expect(server.headersTimeout).toBe(5_000);
    expect(server.requestTimeout).toBe(0);
    expect(server.keepAliveTimeout).toBe(65_000);
  });

  it('rejects unknown options with the nearest name, and bad values by name', () => {
    expect(() => hardenServer(createServer(), { headerTimeout: 1 } as never)).toThrow(
      'restwell/hardenServer: unknown option "headerTimeout". Did you mean "headersTimeout"?',
    );
    expect(() => hardenServer(createServer(), { maxHeaderSize: 1 } as never)).toThrow(
      /createServer\(\{ maxHeaderSize \}\)/,
    );
    expect(() => hardenServer(createServer(), { headersTimeout: 0 })).toThrow(
      /option "headersTimeout" must be a positive integer of milliseconds, got 0/,
    );
    expect(() => hardenServer(createServer(), { requestTimeout: -1 })).toThrow(/"requestTimeout"/);
    expect(() =>
      hardenServer(createServer(), { headersTimeout: 2_000, requestTimeout: 1_000 }),
    ).toThrow(/"headersTimeout" must be at most requestTimeout/);
    expect(() => hardenServer(createServer(), { traceHeader: 'bad header' })).toThrow(
      /"traceHeader"/,
    );
  });

  it('refuses a server that already has another clientError listener', () => {
    const server = createServer();
    server.on('clientError', () => {});
    expect(() => hardenServer(server)).toThrow(/already has a clientError listener/);
  });

  it('may be called again: it replaces its own listener', () => {
    const server = hardenServer(hardenServer(createServer()), { keepAliveTimeout: 1 });
    expect(server.listeners('clientError')).toHaveLength(1);
    expect(server.keepAliveTimeout).toBe(1);
  });

  it('refuses connectionsCheckingInterval once the server listens', async () => {
    const server = createServer();
    await start(server);
    expect(() => hardenServer(server, { connectionsCheckingInterval: 10 })).toThrow(
      /before listen\(\)/,
    );
  });
});
