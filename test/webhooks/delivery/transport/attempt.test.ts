/**
 * One delivery attempt against real local receivers (node:http on port 0, and
 * node:https with a self-signed certificate made for the test): statuses,
 * Retry-After in both forms, a receiver that hangs or trickles, refused and
 * reset connections, DNS failure, TLS failure, a huge body, the SSRF guard at
 * connect time, and the caller's abort. Deadlines are small (300 ms) and
 * only the kind of failure is asserted, never how long it took.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AttemptRequest,
  parseHttpDate,
  parseRetryAfter,
  sendAttempt,
} from '../../../../src/webhooks/delivery/attempt.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';

const TIMEOUT = 300;

interface Seen {
  method: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  port: number;
  seen: Seen[];
}

const servers: (http.Server | https.Server)[] = [];
const sockets = new Set<Socket>();

async function listen(server: http.Server | https.Server, scheme: 'http' | 'https') {
  servers.push(server);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `${scheme}://127.0.0.1:${port}/hooks`, port };
}

/** A receiver that records each request (read in full) and answers with `handler`. */
async function receiver(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  make: (listener: http.RequestListener) => http.Server | https.Server = http.createServer,
  scheme: 'http' | 'https' = 'http',
): Promise<Receiver> {
  const seen: Seen[] = [];
  const server = make((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      handler(req, res);
    });
  });
  return { ...(await listen(server, scheme)), seen };
}

const answer =
  (status: number, body = '', headers: Record<string, string> = {}) =>
  (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(status, headers);
    res.end(body);
  };

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(
    servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))),
  );
});

const BODY = '{"id":"evt_1","type":"payment.succeeded"}';
const attempt = (url: string, extra: Partial<AttemptRequest> = {}) =>
  sendAttempt({
    url,
    body: BODY,
    headers: { 'webhook-id': 'evt_1' },
    timeoutMs: TIMEOUT,
    ...extra,
  });

describe('the request', () => {
  it('POSTs the body with JSON, restwell-webhooks and a computed Content-Length', async () => {
    const r = await receiver(answer(200, 'thanks'));
    const result = await attempt(r.url, {
      headers: { 'webhook-id': 'evt_1', 'X-Signature': 't=1,v1=ab' },
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseExcerpt: 'thanks' });
    expect(result.failure).toBeUndefined();
    expect(r.seen).toHaveLength(1);
    const [seen] = r.seen;
    expect(seen?.method).toBe('POST');
    expect(seen?.body).toBe(BODY);
    expect(seen?.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'restwell-webhooks',
      'content-length': String(Buffer.byteLength(BODY)),
      'webhook-id': 'evt_1',
      'x-signature': 't=1,v1=ab',
    });
    expect(seen?.headers['transfer-encoding']).toBeUndefined();
  });

  it("keeps the caller's Content-Type and User-Agent, never its framing headers", async () => {
    const r = await receiver(answer(204));
    const result = await attempt(r.url, {
      body: new TextEncoder().encode('é'),
      headers: {
        'content-type': 'application/cloudevents+json',
        'User-Agent': 'acme-hooks/1.0',
        'Content-Length': '999',
        'Transfer-Encoding': 'chunked',
      },
    });
    expect(result.ok).toBe(true);
    expect(r.seen[0]?.headers).toMatchObject({
      'content-type': 'application/cloudevents+json',
      'user-agent': 'acme-hooks/1.0',
      'content-length': '2',
    });
    expect(r.seen[0]?.headers['transfer-encoding']).toBeUndefined();
    expect(r.seen[0]?.body).toBe('é');
  });

  it('reports startedAt and durationMs from the injected clock', async () => {
    const r = await receiver(answer(200));
    let t = 1_000_000;
    const result = await attempt(r.url, { now: () => (t += 10) });
    expect(result.startedAt).toBe(1_000_010);
    expect(result.durationMs).toBeGreaterThanOrEqual(10);
    expect(result.durationMs % 10).toBe(0);
  });

  it('real clock: startedAt is now, durationMs non-negative', async () => {
    const r = await receiver(answer(200));
    const before = Date.now();
    const result = await attempt(r.url);
    expect(result.startedAt).toBeGreaterThanOrEqual(before);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });
});

describe('statuses', () => {
  it.each([200, 201, 202, 204, 299])('%i is a success', async (status) => {
    const r = await receiver(answer(status));
    expect(await attempt(r.url)).toMatchObject({ ok: true, status });
  });

  it.each([301, 302, 303, 307, 308])(
    '%i is a redirect failure and is not followed',
    async (status) => {
      const target = await receiver(answer(200));
      const r = await receiver(answer(status, 'moved', { Location: target.url }));
      const result = await attempt(r.url);
      expect(result).toMatchObject({ ok: false, status, failure: 'redirect' });
      expect(result.message).toContain(target.url);
      expect(result.responseExcerpt).toBe('moved');
      expect(target.seen).toHaveLength(0);
    },
  );

  it('304 with no body is a redirect failure too', async () => {
    const r = await receiver(answer(304));
    expect(await attempt(r.url)).toMatchObject({ ok: false, status: 304, failure: 'redirect' });
  });

  it.each([400, 401, 403, 404, 410, 422, 500, 502, 504])(
    '%i is an http-status failure with the body excerpt',
    async (status) => {
      const r = await receiver(answer(status, `{"error":"nope ${status}"}`));
      const result = await attempt(r.url);
      expect(result).toMatchObject({
        ok: false,
        status,
        failure: 'http-status',
        responseExcerpt: `{"error":"nope ${status}"}`,
      });
      expect(result.message).toBe(`HTTP ${status}`);
      expect(result.retryAfterMs).toBeUndefined();
    },
  );
});

describe('Retry-After', () => {
  it('429 with delay-seconds', async () => {
    const r = await receiver(answer(429, '', { 'Retry-After': '120' }));
    expect(await attempt(r.url)).toMatchObject({
      ok: false,
      status: 429,
      failure: 'http-status',
      retryAfterMs: 120_000,
    });
  });

  it('503 with an HTTP-date, against the injected clock', async () => {
    const date = Date.UTC(2030, 0, 15, 12, 0, 0);
    const r = await receiver(answer(503, '', { 'Retry-After': new Date(date).toUTCString() }));
    const result = await attempt(r.url, { now: () => date - 90_000 });
    expect(result).toMatchObject({ status: 503, retryAfterMs: 90_000 });
  });

  it('429 with an HTTP-date in the past: 0', async () => {
    const r = await receiver(answer(429, '', { 'Retry-After': 'Sun, 06 Nov 1994 08:49:37 GMT' }));
    expect((await attempt(r.url)).retryAfterMs).toBe(0);
  });

  it('a huge value is cut to maxRetryAfterMs', async () => {
    const r = await receiver(answer(503, '', { 'Retry-After': '99999999999999999999' }));
    expect((await attempt(r.url)).retryAfterMs).toBe(24 * 3600_000);
    expect((await attempt(r.url, { maxRetryAfterMs: 60_000 })).retryAfterMs).toBe(60_000);
  });

  it.each(['soon', '-5', '1.5', '', '10 20', 'Sun, 31 Feb 2030 00:00:00 GMT'])(
    'an invalid value %j is ignored',
    async (value) => {
      const r = await receiver(answer(429, '', { 'Retry-After': value }));
      const result = await attempt(r.url);
      expect(result).toMatchObject({ status: 429, failure: 'http-status' });
      expect(result.retryAfterMs).toBeUndefined();
    },
  );

  it('is read on 429 and 503 only', async () => {
    const r = await receiver(answer(500, '', { 'Retry-After': '120' }));
    expect((await attempt(r.url)).retryAfterMs).toBeUndefined();
  });
});

describe('parseRetryAfter and parseHttpDate (RFC 9110 §10.2.3, §5.6.7)', () => {
  const now = Date.UTC(1994, 10, 6, 8, 49, 0);

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('  30 ', now)).toBe(30_000);
  });

  it('reads the three date forms', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(expected);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(expected);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(expected);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now)).toBe(37_000);
  });

  it('puts a two-digit year more than 50 years ahead in the past century', () => {
    const in2030 = Date.UTC(2030, 0, 1);
    expect(
      new Date(parseHttpDate('Monday, 01-Jan-79 00:00:00 GMT', in2030)!).getUTCFullYear(),
    ).toBe(2079);
    expect(
      new Date(parseHttpDate('Monday, 01-Jan-99 00:00:00 GMT', in2030)!).getUTCFullYear(),
    ).toBe(1999);
  });

  it.each([
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Foo 1994 08:49:37 GMT',
    'Sun, 30 Feb 1994 08:49:37 GMT',
    '1994-11-06T08:49:37Z',
  ])('refuses %j', (value) => {
    expect(parseHttpDate(value)).toBeUndefined();
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  it('refuses an absent or overlong value', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('1'.padStart(65, '0'), now)).toBeUndefined();
  });
});

describe('the deadline', () => {
  it('cuts a receiver that accepts the connection and never answers', async () => {
    const r = await receiver(() => {});
    const result = await attempt(r.url);
    expect(result).toMatchObject({ ok: false, failure: 'timeout' });
    expect(result.status).toBeUndefined();
    expect(result.message).toBe(`no complete response within ${TIMEOUT} ms`);
  });

  it('cuts a receiver that sends a 200 and never ends the body', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    expect(await attempt(r.url)).toMatchObject({
      ok: false,
      failure: 'timeout',
      status: 200,
      responseExcerpt: 'partial',
    });
  });

  it('cuts a receiver that trickles its body: a total deadline, not an idle one', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 20);
      res.on('close', () => clearInterval(timer));
    });
    const result = await attempt(r.url);
    expect(result).toMatchObject({ ok: false, failure: 'timeout', status: 200 });
    expect(result.responseExcerpt).toMatch(/^\.+$/);
  });

  it('cuts a server that never completes the TCP exchange (a raw socket reading nothing)', async () => {
    const server = http.createServer();
    server.on('connection', (socket) => socket.pause());
    const { url } = await listen(server, 'http');
    expect(await attempt(url)).toMatchObject({ ok: false, failure: 'timeout' });
  });
});

describe('transport failures', () => {
  it('connection refused: a closed port', async () => {
    const server = http.createServer();
    const { url } = await listen(server, 'http');
    await new Promise((resolve) => server.close(resolve));
    const result = await attempt(url);
    expect(result).toMatchObject({ ok: false, failure: 'connection-refused' });
    expect(result.message).toMatch(/ECONNREFUSED/);
  });

  it('reset in the middle of the response body', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('half');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    expect(await attempt(r.url)).toMatchObject({
      ok: false,
      failure: 'connection-reset',
      status: 200,
      responseExcerpt: 'half',
    });
  });

  it('reset before any response', async () => {
    const r = await receiver((req) => req.socket.destroy());
    expect(await attempt(r.url)).toMatchObject({ ok: false, failure: 'connection-reset' });
  });

  it('a response that is not HTTP is a network failure', async () => {
    const server = http.createServer();
    server.on('connection', (socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    const { url } = await listen(server, 'http');
    expect(await attempt(url)).toMatchObject({ ok: false, failure: 'network' });
  });

  it('DNS failure: a name under .invalid (RFC 6761)', async () => {
    const result = await attempt('http://no-such-receiver.invalid/hooks');
    expect(result).toMatchObject({ ok: false, failure: 'dns' });
    expect(result.status).toBeUndefined();
  });
});

describe('the response body', () => {
  it('keeps a bounded excerpt of a huge body, and still judges by the status', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = () => {
        while (sent < 10 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
    const result = await attempt(r.url, { timeoutMs: 5000 });
    expect(result.ok).toBe(true);
    expect(result.responseExcerpt).toHaveLength(2048);
    expect(result.message).toMatch(/cut/);
  });

  it('a body a little longer than the excerpt is read to its end', async () => {
    const r = await receiver(answer(500, 'y'.repeat(10_000)));
    const result = await attempt(r.url, { maxResponseBytes: 100 });
    expect(result).toMatchObject({ failure: 'http-status', message: 'HTTP 500' });
    expect(result.responseExcerpt).toBe('y'.repeat(100));
  });

  it('drops a UTF-8 character cut by the bound', async () => {
    const r = await receiver(answer(400, 'ééé'));
    expect((await attempt(r.url, { maxResponseBytes: 5 })).responseExcerpt).toBe('éé');
  });

  it('keeps no excerpt with maxResponseBytes 0, or for an empty body', async () => {
    const r = await receiver(answer(400, 'body'));
    expect((await attempt(r.url, { maxResponseBytes: 0 })).responseExcerpt).toBeUndefined();
    const empty = await receiver(answer(200));
    expect((await attempt(empty.url)).responseExcerpt).toBeUndefined();
  });
});

describe('the SSRF guard at connect time', () => {
  it('refuses a name that resolves to loopback when the socket connects', async () => {
    const r = await receiver(answer(200));
    const guard = ssrfGuard();
    const result = await attempt(`http://localhost:${r.port}/hooks`, { guard });
    expect(result).toMatchObject({ ok: false, failure: 'url-refused' });
    expect(result.message).toMatch(/loopback/);
    expect(r.seen).toHaveLength(0);
  });

  it("uses the guard's resolver to connect: a custom name reaches the local receiver only when allowed", async () => {
    const r = await receiver(answer(200));
    const resolve = async (host: string) => {
      if (host === 'receiver.localtest.me') return ['127.0.0.1'];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    const url = `http://receiver.localtest.me:${r.port}/hooks`;
    expect(await attempt(url, { guard: ssrfGuard({ resolve }) })).toMatchObject({
      failure: 'url-refused',
    });
    expect(r.seen).toHaveLength(0);
    expect(
      await attempt(url, { guard: ssrfGuard({ resolve, allowLoopback: true }) }),
    ).toMatchObject({ ok: true, status: 200 });
    expect(r.seen).toHaveLength(1);
    expect(r.seen[0]?.headers.host).toBe(`receiver.localtest.me:${r.port}`);
  });

  it('catches a name that rebinds to loopback after passing the registration check', async () => {
    const r = await receiver(answer(200));
    let calls = 0;
    const guard = ssrfGuard({
      resolve: async () => (++calls === 1 ? ['93.184.215.14'] : ['127.0.0.1']),
    });
    const url = `http://rebind.example:${r.port}/hooks`;
    await guard.check(url);
    expect(await attempt(url, { guard })).toMatchObject({ failure: 'url-refused' });
    expect(r.seen).toHaveLength(0);
  });

  it('refuses a literal loopback host before connecting (Node does not call lookup for it)', async () => {
    const r = await receiver(answer(200));
    for (const host of ['127.0.0.1', '127.1', '[::ffff:127.0.0.1]', '2130706433']) {
      expect(await attempt(`http://${host}:${r.port}/hooks`, { guard: ssrfGuard() })).toMatchObject(
        {
          failure: 'url-refused',
        },
      );
    }
    expect(r.seen).toHaveLength(0);
    expect(await attempt(r.url, { guard: ssrfGuard({ allowLoopback: true }) })).toMatchObject({
      ok: true,
    });
  });

  it('refuses a URL the guard refuses by its form', async () => {
    const result = await attempt('http://user:pw@example.com/', { guard: ssrfGuard() });
    expect(result).toMatchObject({ ok: false, failure: 'url-refused' });
  });
});

describe('TLS', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'restwell-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    key = readFileSync(join(dir, 'key.pem'));
    cert = readFileSync(join(dir, 'cert.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tlsReceiver = (handler: http.RequestListener) =>
    receiver(handler, (listener) => https.createServer({ key, cert }, listener), 'https');

  it('delivers over https to a receiver whose certificate the agent trusts', async () => {
    const r = await tlsReceiver(answer(200, 'secure'));
    const agent = new https.Agent({ ca: cert });
    const result = await attempt(r.url, { agent });
    agent.destroy();
    expect(result).toMatchObject({ ok: true, status: 200, responseExcerpt: 'secure' });
    expect(r.seen[0]?.body).toBe(BODY);
  });

  it('checks the certificate against the name connected to through the guard', async () => {
    const r = await tlsReceiver(answer(200));
    const agent = new https.Agent({ ca: cert });
    const guard = ssrfGuard({ allowLoopback: true });
    const result = await attempt(`https://localhost:${r.port}/hooks`, { agent, guard });
    agent.destroy();
    expect(result).toMatchObject({ ok: true });
  });

  it('an untrusted (self-signed) certificate is a tls failure', async () => {
    const r = await tlsReceiver(answer(200));
    const result = await attempt(r.url);
    expect(result).toMatchObject({ ok: false, failure: 'tls' });
    expect(result.message).toMatch(/self.signed/i);
    expect(r.seen).toHaveLength(0);
  });

  it('a plain-HTTP server addressed with https: is a tls failure', async () => {
    const r = await receiver(answer(200));
    const result = await attempt(r.url.replace('http:', 'https:'));
    expect(result).toMatchObject({ ok: false, failure: 'tls' });
  });
});

describe('the caller', () => {
  it('aborts an attempt with its signal: aborted, not a fault of the receiver', async () => {
    const r = await receiver(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const result = await attempt(r.url, { signal: controller.signal, timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: false, failure: 'aborted' });
  });

  it('an already aborted signal sends nothing', async () => {
    const r = await receiver(answer(200));
    const result = await attempt(r.url, { signal: AbortSignal.abort() });
    expect(result).toMatchObject({ ok: false, failure: 'aborted' });
    expect(r.seen).toHaveLength(0);
  });

  it.each<[Partial<AttemptRequest>, RegExp]>([
    [{ timeoutMs: 0 }, /timeoutMs/],
    [{ timeoutMs: Number.NaN }, /timeoutMs/],
    [{ maxResponseBytes: -1 }, /maxResponseBytes/],
    [{ maxResponseBytes: 2 * 1024 * 1024 }, /maxResponseBytes/],
    [{ maxRetryAfterMs: Number.NaN }, /maxRetryAfterMs/],
  ])('never throws on a bad option %j: a failure naming it', async (extra, message) => {
    const result = await attempt('http://127.0.0.1:9/', extra);
    expect(result).toMatchObject({ ok: false, failure: 'network' });
    expect(result.message).toMatch(message);
  });

  it('never throws on a header value with a line break', async () => {
    const r = await receiver(answer(200));
    const result = await attempt(r.url, { headers: { 'X-Evil': 'a\r\nInjected: yes' } });
    expect(result).toMatchObject({ ok: false, failure: 'network' });
    expect(r.seen).toHaveLength(0);
  });

  it.each(['not a url', 'ftp://example.com/', '/relative'])(
    'never throws on the URL %j: url-refused',
    async (url) => {
      expect(await attempt(url)).toMatchObject({ ok: false, failure: 'url-refused' });
    },
  );
});
