/**
 * Hostile and broken receivers, on raw TCP servers (port 0) that write
 * whatever bytes they like: a protocol switch, interim responses, broken
 * chunked framing, a 2xx whose body is cut, a reset after a complete
 * response, an endless body, a redirect to the metadata service. Only the
 * kind of outcome is asserted, never how long it took.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendAttempt } from '../../../../src/webhooks/delivery/attempt.js';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A raw server: once the request's head has arrived, `reply` writes to the socket. */
async function raw(reply: (socket: net.Socket) => void) {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    let head = '';
    let answered = false;
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (!answered && head.includes('\r\n\r\n')) {
        answered = true;
        reply(socket);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks`, connections: () => connections };
}

const send = (url: string, timeoutMs = 2000) =>
  sendAttempt({ url, body: '{"id":"evt_1"}', headers: {}, timeoutMs });

describe('hostile receivers', () => {
  it('a 101 Switching Protocols fails at once as an http-status, not after the deadline', async () => {
    const r = await raw((s) =>
      s.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      ),
    );
    // a deadline far longer than the test's own: a timeout here would fail the test
    const result = await send(r.url, 15_000);
    expect(result).toMatchObject({ ok: false, failure: 'http-status', status: 101 });
  });

  it('interim responses (103, 100) before a 200 are skipped: the 200 counts', async () => {
    const r = await raw((s) =>
      s.write(
        'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    expect(await send(r.url)).toMatchObject({ ok: true, status: 200, responseExcerpt: 'ok' });
  });

  it('a 100 Continue and nothing after it is a timeout', async () => {
    const r = await raw((s) => s.write('HTTP/1.1 100 Continue\r\n\r\n'));
    expect(await send(r.url, 300)).toMatchObject({ ok: false, failure: 'timeout' });
  });

  it('a 200 with broken chunked framing is a failure, whatever the status said', async () => {
    const bad = await raw((s) =>
      s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'),
    );
    expect(await send(bad.url)).toMatchObject({ ok: false, failure: 'network', status: 200 });
    const unterminated = await raw((s) =>
      s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'),
    );
    expect(await send(unterminated.url)).toMatchObject({
      ok: false,
      failure: 'connection-reset',
      status: 200,
    });
  });

  it('a 2xx whose body is cut short (closed or reset before Content-Length) is not a success', async () => {
    const fin = await raw((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok'));
    expect(await send(fin.url)).toMatchObject({ ok: false, failure: 'connection-reset' });
    const reset = await raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    expect(await send(reset.url)).toMatchObject({ ok: false, failure: 'connection-reset' });
  });

  it('a reset after a complete 2xx response is a success: the answer was whole', async () => {
    const r = await raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    expect(await send(r.url)).toMatchObject({ ok: true, status: 200 });
  });

  it('a 200 that then never ends its body is a timeout, with the status kept', async () => {
    const r = await raw((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'));
    expect(await send(r.url, 300)).toMatchObject({ ok: false, failure: 'timeout', status: 200 });
  });

  it('an endless body is cut after a bound; the 2xx already received decides', async () => {
    const r = await raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
      const pump = () => {
        while (!s.destroyed && s.write(chunk)) {}
        if (!s.destroyed) s.once('drain', pump);
      };
      pump();
    });
    const result = await send(r.url, 10_000);
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result.message).toMatch(/cut/);
    expect(result.responseExcerpt).toHaveLength(2048);
  });

  it('a 302 to the metadata service is a redirect failure, never followed', async () => {
    const r = await raw((s) =>
      s.end(
        'HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n',
      ),
    );
    const result = await send(r.url);
    expect(result).toMatchObject({ ok: false, failure: 'redirect', status: 302 });
    expect(r.connections()).toBe(1);
  });

  it.each([
    ['Retry-After: 999999999', 24 * 60 * 60 * 1000],
    ['Retry-After: Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['Retry-After: soon', undefined],
    ['Retry-After: -5', undefined],
    ['Retry-After: 1e3', undefined],
  ])('a 429 with %s gives retryAfterMs %s', async (header, expected) => {
    const r = await raw((s) =>
      s.end(`HTTP/1.1 429 Too Many Requests\r\n${header}\r\nContent-Length: 0\r\n\r\n`),
    );
    const result = await send(r.url);
    expect(result).toMatchObject({ ok: false, status: 429 });
    expect(result.retryAfterMs).toBe(expected);
  });

  it('smuggling framing (Content-Length with Transfer-Encoding, two lengths) is a failure', async () => {
    for (const head of [
      'Content-Length: 2\r\nTransfer-Encoding: chunked',
      'Content-Length: 2\r\nContent-Length: 3',
    ]) {
      const r = await raw((s) => s.end(`HTTP/1.1 200 OK\r\n${head}\r\n\r\nok`));
      expect(await send(r.url)).toMatchObject({ ok: false, failure: 'network' });
    }
  });
});
