/**
 * hardenServer(): an `Expect` other than 100-continue (RFC 9110 §10.1.1) is
 * answered by Node itself, before any framework, with a bare 417. Hardened,
 * it is a problem document with a trace id, on every adapter; an application
 * that answers expectations itself keeps its own listener.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { hardenServer } from '../../src/core/server.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function exchange(server: Server, bytes: string): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.write(bytes);
  await closed;
  return Buffer.concat(chunks).toString('latin1');
}

const request = (expect: string) =>
  `POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: ${expect}\r\ntraceparent: 00-${TRACE}-00f067aa0ba902b7-01\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;

describe.each(adapters)('hardenServer() and Expect through $name', (adapter: AdapterCase) => {
  const app = (): RequestListener =>
    adapter.build({ routes: [{ method: 'post', path: '/x', handler: () => ({ body: 'ran' }) }] });

  it('an unknown expectation is a 417 problem with the client trace id', async () => {
    const answer = await exchange(
      hardenServer(createServer(app()), { logger: silentLogger }),
      request('200-ok'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 417 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toMatch(new RegExp(`trace-id: ${TRACE}`, 'i'));
    expect(answer).toContain('"code":"expectation-failed"');
    expect(answer).not.toContain('ran');
  });

  it('100-continue still reaches the handler', async () => {
    const answer = await exchange(
      hardenServer(createServer(app()), { logger: silentLogger }),
      request('100-continue'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(answer).toContain('ran');
  });
});

describe('hardenServer() and an application checkExpectation listener', () => {
  it('leaves the application listener alone, also when called again', async () => {
    const server = createServer(() => {});
    server.on('checkExpectation', (_req, res) => {
      res.statusCode = 200;
      res.end('mine');
    });
    hardenServer(server, { logger: silentLogger });
    hardenServer(server, { logger: silentLogger });
    expect(server.listenerCount('checkExpectation')).toBe(1);
    const answer = await exchange(server, request('200-ok'));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('mine');
  });

  it('installs one listener however many times it is called', () => {
    const server = createServer(() => {});
    hardenServer(server, { logger: silentLogger });
    hardenServer(server, { logger: silentLogger });
    expect(server.listenerCount('checkExpectation')).toBe(1);
  });
});
