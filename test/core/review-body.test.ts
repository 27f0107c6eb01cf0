/**
 * jsonBody() against hostile framing, on every adapter through real sockets:
 * a client that aborts its upload is a client error (never a logged 500), a
 * transfer coding other than chunked is refused rather than read as JSON, and
 * an absolute-form request target gives the path the router matched.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { type Listening, listen } from '../helpers/raw.js';

interface Recorder extends Logger {
  errors: string[];
  answered: Promise<Record<string, unknown> | undefined>;
  reset(): void;
}

function recorder(): Recorder {
  let resolve: (f: Record<string, unknown> | undefined) => void = () => {};
  const r: Recorder = {
    errors: [],
    answered: Promise.resolve(undefined),
    reset() {
      r.errors.length = 0;
      r.answered = new Promise((res) => {
        resolve = res;
      });
    },
    error: (message) => r.errors.push(message),
    warn() {},
    info() {},
    debug: (_m, fields) => resolve(fields),
  };
  return r;
}

/** Writes `bytes` on a fresh connection and returns what came back once the server closes it. */
async function exchange(port: number, bytes: string, abort = false): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(bytes, () => {
    if (abort) socket.resetAndDestroy();
  });
  await closed;
  return Buffer.concat(chunks).toString('latin1');
}

describe.each(adapters)('jsonBody() framing on $name', (adapter: AdapterCase) => {
  const log = recorder();
  let server: Listening;
  beforeAll(async () => {
    server = await listen(
      adapter.build({
        use: [jsonBody()],
        options: { logger: log, debug: true },
        routes: [
          {
            method: 'post',
            path: '/echo',
            handler: (req) => ({ body: { got: req.body ?? null } }),
          },
          {
            method: 'get',
            path: '/where',
            handler: (req) => ({ body: { path: req.context.request.path } }),
          },
        ],
      }),
    );
  });
  afterAll(() => server.close());

  it('an upload the client aborts is a 400, and no server error is logged', async () => {
    log.reset();
    await exchange(
      server.port,
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
      true,
    );
    const answered = await log.answered;
    expect(answered?.status).toBe(400);
    expect(log.errors).toEqual([]);
  });

  it.each(['gzip, chunked', 'deflate,chunked', 'x-custom , chunked'])(
    'Transfer-Encoding: %s is refused with 415, not read as JSON',
    async (coding) => {
      log.reset();
      const answer = await exchange(
        server.port,
        `POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: ${coding}\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 415 /);
      expect(answer).toMatch(/application\/problem\+json/i);
      expect(answer).toMatch(/"code":"unsupported-media-type"/);
    },
  );

  it('Transfer-Encoding: chunked (any case) is read', async () => {
    const answer = await exchange(
      server.port,
      'POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('{"got":{"a":1}}');
  });

  it('an absolute-form target (RFC 9112 §3.2.2) gives the path the router matched', async () => {
    const answer = await exchange(
      server.port,
      'GET http://evil.example:8080/where?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('{"path":"/where"}');
  });
});
