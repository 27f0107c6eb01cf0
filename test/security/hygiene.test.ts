/**
 * requestHygiene() through real Express 4/5 and Koa 2/3 apps, over raw
 * sockets, so that the bytes are exactly the attacker's: what Node refuses
 * itself, what reaches the handler without hygiene, and with it every case
 * refused with its problem before any handler runs, and the look-alikes
 * served.
 */
import { once } from 'node:events';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { silentLogger } from '../../src/core/logger.js';
import { hardenServer } from '../../src/core/server.js';
import { type RequestHygieneOptions, requestHygiene } from '../../src/security/hygiene.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { type Listening, listen } from '../helpers/raw.js';
import { exchange, rawExchange, requestText, type SocketResponse } from './socket.js';

interface Seen {
  path: string;
  name?: string;
  authorization?: string;
  contentType?: string;
  host?: string;
}

function app(
  adapter: AdapterCase,
  hygiene: RequestHygieneOptions | false,
  seen: Seen[] = [],
): RequestListener {
  const record = (req: {
    path: string;
    params: Record<string, string>;
    headers: Record<string, string | string[] | undefined>;
  }) => {
    seen.push({
      path: req.path,
      ...(req.params.name === undefined ? {} : { name: req.params.name }),
      ...(req.headers.authorization === undefined
        ? {}
        : { authorization: String(req.headers.authorization) }),
      ...(req.headers['content-type'] === undefined
        ? {}
        : { contentType: String(req.headers['content-type']) }),
      ...(req.headers.host === undefined ? {} : { host: String(req.headers.host) }),
    });
  };
  return adapter.build({
    use: hygiene === false ? [jsonBody()] : [requestHygiene(hygiene), jsonBody()],
    routes: [
      {
        method: 'get',
        path: '/files/:name',
        handler: (req) => {
          record(req);
          return { body: { name: req.params.name } };
        },
      },
      {
        method: 'post',
        path: '/files/:name',
        handler: (req) => {
          record(req);
          return { status: 201, body: { name: req.params.name } };
        },
      },
      {
        method: 'get',
        path: '/search',
        handler: (req) => {
          record(req);
          return { body: { query: req.query } };
        },
      },
      {
        method: 'get',
        path: '/v1/me',
        handler: (req) => {
          record(req);
          return { body: { ok: true } };
        },
      },
    ],
  });
}

function expectProblem(res: SocketResponse, status: number, code: string): Record<string, unknown> {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
  expect(typeof body.traceId).toBe('string');
  return body;
}

/** Requests Node's parser refuses itself, with a bare 400, before any middleware. */
const NODE_REFUSED: Array<[label: string, text: string]> = [
  ['a raw NUL in the target', requestText('/files/a\x00b')],
  ['a raw non-ASCII byte in the target', requestText('/files/caf\xc3\xa9')],
  [
    'Content-Length twice, even equal',
    requestText('/files/x', ['Host: a', 'Content-Length: 2', 'Content-Length: 2'], 'POST', 'ab'),
  ],
  [
    'Content-Length beside Transfer-Encoding',
    requestText(
      '/files/x',
      ['Host: a', 'Content-Length: 5', 'Transfer-Encoding: chunked'],
      'POST',
      '0\r\n\r\n',
    ),
  ],
  ...(
    [
      ['with a plus sign', '+2'],
      ['with a minus sign', '-2'],
      ['in hex', '0x2'],
      ['as a list', '2, 2'],
    ] as const
  ).map(
    ([label, value]) =>
      [
        `Content-Length ${label}`,
        requestText('/files/x', ['Host: a', `Content-Length: ${value}`], 'POST', 'ab'),
      ] as [string, string],
  ),
  [
    'a Transfer-Encoding whose last coding is not chunked (RFC 9112 §6.3)',
    requestText('/files/x', ['Host: a', 'Transfer-Encoding: gzip'], 'POST', 'ab'),
  ],
  [
    'Transfer-Encoding: chunked in two lines',
    requestText(
      '/files/x',
      ['Host: a', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
      'POST',
      '0\r\n\r\n',
    ),
  ],
  ['a control byte in a header value', requestText('/files/x', ['Host: a', 'X-A: a\x01b'])],
  ['no Host on HTTP/1.1', 'GET /files/x HTTP/1.1\r\nConnection: close\r\n\r\n'],
];

/** `count` distinct filler header lines. */
function filler(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `X-F${i}: a`);
}

/** Every target requestHygiene() refuses, with its code and part. */
const REFUSED: Array<[label: string, target: string, code: string, part: 'path' | 'query']> = [
  ['raw ..', '/files/../etc/passwd', 'path-traversal', 'path'],
  ['raw .', '/files/./x', 'path-traversal', 'path'],
  ['..%2f', '/files/..%2f..%2fetc%2fpasswd', 'path-traversal', 'path'],
  ['%2e%2e', '/files/%2e%2e', 'path-traversal', 'path'],
  ['%2E%2E%2F', '/files/%2E%2E%2Fsecret', 'path-traversal', 'path'],
  ['.%2e', '/files/.%2e', 'path-traversal', 'path'],
  ['%252e%252e', '/files/%252e%252e', 'path-traversal', 'path'],
  ['..%252f', '/files/..%252f..%252fetc', 'path-traversal', 'path'],
  ['%25252e%25252e', '/files/%25252e%25252e', 'path-traversal', 'path'],
  ['..%5c', '/files/..%5c..%5cwindows', 'path-traversal', 'path'],
  ['raw ..\\', '/files/..\\..\\windows', 'path-traversal', 'path'],
  ['..;/', '/files/..;/admin', 'path-traversal', 'path'],
  ['%c0%ae%c0%ae', '/files/%c0%ae%c0%ae', 'path-traversal', 'path'],
  ['..%c0%af', '/files/..%c0%afetc', 'path-traversal', 'path'],
  ['%e0%80%ae%e0%80%ae', '/files/%e0%80%ae%e0%80%ae', 'path-traversal', 'path'],
  ['full-width ．．', '/files/%ef%bc%8e%ef%bc%8e', 'path-traversal', 'path'],
  ['%2f', '/files/a%2fb', 'ambiguous-path', 'path'],
  ['%5c', '/files/a%5Cb', 'ambiguous-path', 'path'],
  ['raw \\', '/files/a\\b', 'ambiguous-path', 'path'],
  ['# in the path', '/files/a#b', 'invalid-request-target', 'path'],
  ['# in the query', '/search?q=a#b', 'invalid-request-target', 'query'],
  ['%00 in the path', '/files/a%00.json', 'null-byte', 'path'],
  ['%2500 in the path', '/files/a%2500.json', 'null-byte', 'path'],
  ['%c0%80 in the path', '/files/a%c0%80', 'null-byte', 'path'],
  ['%00 in the query', '/search?q=a%00b', 'null-byte', 'query'],
  ['bare % in the path', '/files/100%', 'invalid-percent-encoding', 'path'],
  ['%zz in the path', '/files/%zz', 'invalid-percent-encoding', 'path'],
  ['Latin-1 in the path', '/files/caf%E9', 'invalid-percent-encoding', 'path'],
  ['bare % in the query', '/search?discount=50%', 'invalid-percent-encoding', 'query'],
];

/** Look-alikes that must be served, with the name the route sees (`undefined`: a query route). */
const SERVED: Array<[label: string, target: string, name: string | undefined]> = [
  ['dots in a name', '/files/report.v2.json', 'report.v2.json'],
  ['dots inside a segment', '/files/a..b', 'a..b'],
  ['three dots', '/files/...', '...'],
  ['a hidden name', '/files/.well-known', '.well-known'],
  ['an encoded dot', '/files/report%2ejson', 'report.json'],
  ['an encoded percent', '/files/100%25', '100%'],
  ['UTF-8', '/files/caf%C3%A9', 'café'],
  ['an encoded #', '/files/a%23b', 'a#b'],
  ['traversal in a query value', '/search?path=../../etc/passwd', undefined],
  ['encoded traversal in a query value', '/search?q=..%2f..%2f&x=%2e%2e', undefined],
  ['the text "%00" in a query value', '/search?q=%2500', undefined],
  ['Latin-1 in a query value', '/search?q=caf%E9', undefined],
];

describe.each(adapters)('requestHygiene on $name', (adapter) => {
  describe('what Node refuses itself, before any middleware', () => {
    it.each(NODE_REFUSED)(
      '%s: a bare 400 from Node, the handler never runs',
      async (_label, text) => {
        const seen: Seen[] = [];
        const res = await rawExchange(app(adapter, {}, seen), text);
        expect(res.status).toBe(400);
        expect(res.headers['content-type']).toBeUndefined();
        expect(seen).toEqual([]);
      },
    );

    // Node answers a missing Host from its request handler, not as a client
    // error, so hardenServer() never sees that one.
    it.each(NODE_REFUSED.filter(([label]) => !label.startsWith('no Host')))(
      '%s: a 400 problem on a hardened server',
      async (_label, text) => {
        const seen: Seen[] = [];
        const server = hardenServer(createServer(app(adapter, {}, seen)), { logger: silentLogger });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        try {
          const res = await exchange((server.address() as AddressInfo).port, text);
          expect(res.status).toBe(400);
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(JSON.parse(res.body).status).toBe(400);
          expect(seen).toEqual([]);
        } finally {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      },
    );
  });

  describe('what reaches the handler without requestHygiene', () => {
    it('an encoded traversal, decoded into the route parameter', async () => {
      const seen: Seen[] = [];
      const res = await rawExchange(
        app(adapter, false, seen),
        requestText('/files/..%2f..%2fetc%2fpasswd'),
      );
      expect(res.status).toBe(200);
      expect(seen[0]?.name).toBe('../../etc/passwd');
    });

    it('a second Authorization, Host or Content-Type line, silently dropped by Node', async () => {
      const seen: Seen[] = [];
      const listener = app(adapter, false, seen);
      await rawExchange(
        listener,
        requestText('/v1/me', [
          'Host: api.example.com',
          'Host: evil.example.net',
          'Authorization: Bearer first',
          'Authorization: Bearer second',
        ]),
      );
      expect(seen[0]).toMatchObject({ host: 'api.example.com', authorization: 'Bearer first' });
    });

    it('a second Authorization after a thousand filler lines, which Node drops unseen', async () => {
      const seen: Seen[] = [];
      const res = await rawExchange(
        app(adapter, false, seen),
        requestText('/v1/me', [
          'Host: a',
          'Authorization: Bearer first',
          ...filler(1100),
          'Authorization: Bearer second',
        ]),
      );
      expect(res.status).toBe(200);
      expect(seen[0]?.authorization).toBe('Bearer first');
    });

    it('a fragment, which the router cuts off while the path restwell sees goes on', async () => {
      const seen: Seen[] = [];
      const res = await rawExchange(app(adapter, false, seen), requestText('/files/a#/../b'));
      expect(res.status).toBe(200);
      expect(seen[0]?.path).toBe('/files/a');
    });
  });

  describe('with requestHygiene', () => {
    let server: Listening;
    const seen: Seen[] = [];
    beforeAll(async () => {
      server = await listen(app(adapter, {}, seen));
    });
    afterAll(() => server.close());

    it.each(REFUSED)(
      'refuses %s (%s) with %s in the %s, before the handler',
      async (_l, target, code, part) => {
        const before = seen.length;
        const res = await exchange(server.port, requestText(target));
        const body = expectProblem(res, 400, code);
        expect(body.part).toBe(part);
        expect(res.body).not.toContain(target);
        expect(seen.length).toBe(before);
      },
    );

    it('refuses a POST to a bad path before its body is read', async () => {
      const before = seen.length;
      const res = await exchange(
        server.port,
        requestText(
          '/files/..%2fsecret',
          ['Host: api.example.com', 'Content-Type: application/json', 'Content-Length: 7'],
          'POST',
          '{"a":1}',
        ),
      );
      expectProblem(res, 400, 'path-traversal');
      expect(seen.length).toBe(before);
    });

    it.each(SERVED)('serves %s (%s)', async (_label, target, name) => {
      const res = await exchange(server.port, requestText(target));
      expect(res.status, res.body).toBe(200);
      if (name !== undefined) expect(JSON.parse(res.body).name).toBe(name);
    });

    it.each([
      ['Host', ['Host: api.example.com', 'Host: evil.example.net'], 'host'],
      ['Host in another case', ['Host: api.example.com', 'hOST: api.example.com'], 'host'],
      [
        'Authorization',
        ['Host: a', 'Authorization: Bearer first', 'Authorization: Bearer second'],
        'authorization',
      ],
      [
        'Content-Type',
        ['Host: a', 'Content-Type: application/json', 'Content-Type: text/plain'],
        'content-type',
      ],
      ['Origin', ['Host: a', 'Origin: https://a.example', 'Origin: https://b.example'], 'origin'],
      ['X-API-Key', ['Host: a', 'X-API-Key: k1', 'X-API-Key: k2'], 'x-api-key'],
      [
        'Idempotency-Key',
        ['Host: a', 'Idempotency-Key: a', 'Idempotency-Key: b'],
        'idempotency-key',
      ],
    ])('refuses %s sent twice with duplicate-header', async (_label, lines, header) => {
      const before = seen.length;
      const res = await exchange(server.port, requestText('/v1/me', lines));
      const body = expectProblem(res, 400, 'duplicate-header');
      expect(body.header).toBe(header);
      expect(seen.length).toBe(before);
    });

    it('serves repeated list headers and cookies, and one Authorization with commas', async () => {
      const res = await exchange(
        server.port,
        requestText('/v1/me', [
          'Host: a',
          'Accept: application/json',
          'Accept: */*',
          'Cookie: a=1',
          'Cookie: b=2',
          'Authorization: Digest username="u", realm="r", nonce="n"',
        ]),
      );
      expect(res.status, res.body).toBe(200);
    });

    it.each([
      ['a space', 'Host: api example.com'],
      ['a port out of range', 'Host: api.example.com:70000'],
      ['user info', 'Host: user@api.example.com'],
      ['a path', 'Host: api.example.com/x'],
      ['a broken IPv6 literal', 'Host: [::1'],
    ])('refuses a Host with %s as invalid-host', async (_label, line) => {
      const res = await exchange(server.port, requestText('/v1/me', [line]));
      expectProblem(res, 400, 'invalid-host');
    });

    it.each([
      ['a name and a port', 'Host: api.example.com:8443'],
      ['an IPv4 address', 'Host: 127.0.0.1'],
      ['an IPv6 literal', 'Host: [::1]:3000'],
      ['an empty value (RFC 9112 §3.2)', 'Host:'],
    ])('serves a Host with %s', async (_label, line) => {
      const res = await exchange(server.port, requestText('/v1/me', [line]));
      expect(res.status, res.body).toBe(200);
    });

    it('refuses a header value over 8192 bytes with a 431 naming it, and serves one at the limit', async () => {
      const over = await exchange(
        server.port,
        requestText('/v1/me', ['Host: a', `X-Long: ${'a'.repeat(8193)}`]),
      );
      const body = expectProblem(over, 431, 'request-header-fields-too-large');
      expect(body).toMatchObject({ header: 'x-long', maxLength: 8192 });
      expect(over.body).not.toContain('aaaa');
      const at = await exchange(
        server.port,
        requestText('/v1/me', ['Host: a', `X-Long: ${'a'.repeat(8192)}`]),
      );
      expect(at.status).toBe(200);
    });

    it("refuses more than 100 header lines with a 431, so that a repeated header cannot hide past Node's cut", async () => {
      const before = seen.length;
      const hidden = await exchange(
        server.port,
        requestText('/v1/me', [
          'Host: a',
          'Authorization: Bearer first',
          ...filler(1100),
          'Authorization: Bearer second',
        ]),
      );
      const body = expectProblem(hidden, 431, 'request-header-fields-too-large');
      expect(body.maxCount).toBe(100);
      expect(seen.length).toBe(before);
      // requestText adds Connection: close, the 100th line.
      const at = await exchange(server.port, requestText('/v1/me', ['Host: a', ...filler(98)]));
      expect(at.status, at.body).toBe(200);
      const over = await exchange(server.port, requestText('/v1/me', ['Host: a', ...filler(99)]));
      expectProblem(over, 431, 'request-header-fields-too-large');
    });

    it('refuses an overlong path or query with a 414', async () => {
      const path = await exchange(server.port, requestText(`/files/${'a'.repeat(2100)}`));
      expect(expectProblem(path, 414, 'uri-too-long')).toMatchObject({
        part: 'path',
        maxLength: 2048,
      });
      const query = await exchange(server.port, requestText(`/search?q=${'a'.repeat(8200)}`));
      expect(expectProblem(query, 414, 'uri-too-long')).toMatchObject({
        part: 'query',
        maxLength: 8192,
      });
    });
  });

  describe('options', () => {
    it('lets encoded slashes reach the route with allowEncodedSlashes, decoded, and still refuses their traversals', async () => {
      const seen: Seen[] = [];
      const server = await listen(app(adapter, { allowEncodedSlashes: true }, seen));
      try {
        const ok = await exchange(server.port, requestText('/files/group%2Fproject'));
        expect(ok.status).toBe(200);
        expect(JSON.parse(ok.body).name).toBe('group/project');
        const bad = await exchange(server.port, requestText('/files/group%2F..%2F..%2Fadmin'));
        expectProblem(bad, 400, 'path-traversal');
      } finally {
        await server.close();
      }
    });

    it('checks only the headers listed in singleValueHeaders, and the lengths given', async () => {
      const server = await listen(
        app(adapter, { singleValueHeaders: ['x-tenant'], maxHeaderLength: 64, maxPathLength: 32 }),
      );
      try {
        const twoAuth = await exchange(
          server.port,
          requestText('/v1/me', ['Host: a', 'Authorization: a', 'Authorization: b']),
        );
        expect(twoAuth.status).toBe(200);
        const twoTenants = await exchange(
          server.port,
          requestText('/v1/me', ['Host: a', 'X-Tenant: a', 'X-Tenant: b']),
        );
        expectProblem(twoTenants, 400, 'duplicate-header');
        const long = await exchange(
          server.port,
          requestText('/v1/me', ['Host: a', `X-A: ${'a'.repeat(65)}`]),
        );
        expectProblem(long, 431, 'request-header-fields-too-large');
        const path = await exchange(server.port, requestText(`/files/${'a'.repeat(30)}`));
        expectProblem(path, 414, 'uri-too-long');
      } finally {
        await server.close();
      }
    });
  });
});

describe('requestHygiene options', () => {
  it('refuses bad values at construction', () => {
    expect(() => requestHygiene({ maxHeaderLength: 0 })).toThrow(/maxHeaderLength/);
    expect(() => requestHygiene({ maxHeaderCount: 0 })).toThrow(/maxHeaderCount/);
    expect(() => requestHygiene({ maxHeaderCount: 2000 })).toThrow(/Node drops lines/);
    expect(() => requestHygiene({ maxHeaderCount: 1.5 })).toThrow(/maxHeaderCount/);
    expect(() => requestHygiene({ singleValueHeaders: 'host' as never })).toThrow(
      /singleValueHeaders/,
    );
    expect(() => requestHygiene({ singleValueHeaders: ['bad header'] })).toThrow(
      /singleValueHeaders/,
    );
    expect(() => requestHygiene({ singleValueHeaders: ['cookie'] })).toThrow(
      /HTTP\/2 splits Cookie/,
    );
    expect(() => requestHygiene({ allowEncodedSlash: true } as never)).toThrow(
      /Did you mean "allowEncodedSlashes"/,
    );
  });
});
