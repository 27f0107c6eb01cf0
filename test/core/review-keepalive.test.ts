/**
 * A body refused before it was read (413) leaves unread bytes on the
 * connection. Whatever the framing, the client gets its 413 and the
 * connection then closes or serves the next request: it never hangs.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { type Listening, listen } from '../helpers/raw.js';

describe.each(adapters)('413 on a keep-alive connection through $name', (adapter: AdapterCase) => {
  let server: Listening;
  beforeAll(async () => {
    server = await listen(
      adapter.build({
        use: [jsonBody({ limit: 16 })],
        routes: [
          {
            method: 'post',
            path: '/echo',
            handler: (req) => ({ body: { got: req.body ?? null } }),
          },
          { method: 'get', path: '/next', handler: () => ({ body: 'second' }) },
        ],
      }),
    );
  });
  afterAll(() => server.close());

  it.each([
    ['chunked', `Transfer-Encoding: chunked\r\n\r\n40\r\n${'1'.repeat(64)}\r\n0\r\n\r\n`],
    ['Content-Length', `Content-Length: 64\r\n\r\n${'1'.repeat(64)}`],
  ])(
    'with a %s body: answered 413, then the connection closes or serves the next request',
    async (_n, rest) => {
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => {});
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      socket.write(
        `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${rest}` +
          'GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      await closed;
      const text = Buffer.concat(chunks).toString('latin1');
      expect(text).toMatch(/^HTTP\/1\.1 413 /);
    },
  );
});
