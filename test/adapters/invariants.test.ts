/**
 * Response invariants that hold on every adapter, whoever made the response:
 * the last-resort 500, replaced streams released, framing (RFC 9112 §6.2),
 * HEAD mirroring GET (RFC 9110 §9.3.2), the 304 allowlist (RFC 9110 §15.4.5),
 * the trusted X-Forwarded-Proto, and one answer to methods nobody routes.
 */
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conditional } from '../../src/conditional/index.js';
import type { Middleware } from '../../src/core/context.js';
import type { Logger } from '../../src/core/logger.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';
import { type Listening, listen, rawRequest } from '../helpers/raw.js';

const PROBLEM = /^application\/problem\+json/;

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, error: (msg) => errors.push(msg), warn() {}, info() {} };
}

/** The head exactly as written on the wire, field names lower-cased, repeats kept. */
async function wireHead(
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; fields: Array<[string, string]>; rest: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  return {
    status: Number(statusLine.split(' ')[1]),
    fields: lines.map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
    }),
    rest: text.slice(end + 4),
  };
}

const bigFile = (() => {
  const file = join(mkdtempSync(join(tmpdir(), 'restwell-inv-')), 'big.txt');
  // Larger than the stream's buffers, so the reader is still open when its body is replaced.
  writeFileSync(file, Buffer.alloc(4 * 1024 * 1024, 'x'));
  return file;
})();

describe.each(adapters)('response invariants through $name', (adapter: AdapterCase) => {
  describe('the last-resort 500 when rendering the problem fails', () => {
    const failing = () => {
      throw new Error('handler failed');
    };
    const cases: Array<[string, Parameters<AdapterCase['build']>[0]['options']]> = [
      [
        'a throwing problems.map',
        {
          problems: {
            map: () => {
              throw new Error('map failed');
            },
          },
        },
      ],
      [
        'a throwing problems.instance',
        {
          problems: {
            instance: () => {
              throw new Error('instance failed');
            },
          },
        },
      ],
      [
        'a throwing logger',
        {
          logger: {
            error() {
              throw new Error('logger failed');
            },
            warn() {},
            info() {},
          },
        },
      ],
    ];
    it.each(cases)('answers a static 500 problem with %s', async (_name, options) => {
      const app = adapter.build({
        options,
        routes: [{ method: 'get', path: '/boom', handler: failing }],
      });
      const res = await request(app).get('/boom').timeout(5000);
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toMatch(PROBLEM);
      expect(res.body).toMatchObject({ status: 500, code: 'internal-error' });
      expect(res.headers['trace-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(res.body.traceId).toBe(res.headers['trace-id']);
    });

    it('answers a static 500 when a middleware answers early and rendering fails', async () => {
      const early: Middleware = () => {
        throw new Error('early failure');
      };
      const app = adapter.build({
        use: [early],
        options: {
          problems: {
            map: () => {
              throw new Error('map failed');
            },
          },
        },
        routes: [{ method: 'get', path: '/x', handler: () => ({ body: 'unreached' }) }],
      });
      const res = await request(app).get('/x').timeout(5000);
      expect(res.status).toBe(500);
      expect(res.body.code).toBe('internal-error');
    });
  });

  describe('a streamed body that is replaced is destroyed', () => {
    const opened: Readable[] = [];
    const streamed = () => {
      const stream = createReadStream(bigFile);
      opened.push(stream);
      return { headers: { 'content-type': 'text/plain' }, body: stream };
    };
    const replaceWithProblem: Middleware = async (_ctx, next) => {
      await next();
      throw new Error('after the handler');
    };
    const replaceWithText: Middleware = async (ctx, next) => {
      await next();
      ctx.response.body = 'replaced';
    };

    it.each([
      ['a problem', replaceWithProblem, 500],
      ['another body', replaceWithText, 200],
    ] as const)('when replaced by %s', async (_name, replace, status) => {
      opened.length = 0;
      const app = adapter.build({
        routes: [{ method: 'get', path: '/file', use: [replace], handler: streamed }],
      });
      const server = await listen(app);
      try {
        const res = await rawRequest(server.port, { path: '/file' });
        expect(res.status).toBe(status);
        expect(res.body.length).toBeLessThan(1024);
      } finally {
        await server.close();
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(opened).toHaveLength(1);
      expect(opened[0]?.destroyed).toBe(true);
    });

    it.each([
      ['a 412 to a stale If-Match', { 'if-match': '"v0"' }, 412],
      ['a 304 to a matching If-None-Match', { 'if-none-match': '"v1"' }, 304],
    ] as const)('when conditional() answers %s', async (_name, headers, status) => {
      opened.length = 0;
      const app = adapter.build({
        routes: [
          {
            method: 'get',
            path: '/file',
            use: [conditional()],
            handler: () => ({
              ...streamed(),
              headers: { etag: '"v1"', 'content-type': 'text/plain' },
            }),
          },
        ],
      });
      const server = await listen(app);
      try {
        const res = await rawRequest(server.port, { path: '/file', headers });
        expect(res.status).toBe(status);
      } finally {
        await server.close();
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(opened).toHaveLength(1);
      expect(opened[0]?.destroyed).toBe(true);
    });
  });

  describe('framing (RFC 9112 §6.2)', () => {
    let server: Listening;
    beforeAll(async () => {
      server = await listen(
        adapter.build({
          routes: [
            {
              method: 'get',
              path: '/relayed',
              // A handler relaying an upstream's framing fields.
              handler: () => ({
                headers: { 'transfer-encoding': 'chunked', 'content-length': '5' },
                body: 'hello',
              }),
            },
            {
              method: 'get',
              path: '/relayed-stream',
              handler: () => ({
                headers: { 'transfer-encoding': 'chunked', 'content-length': '999' },
                chunks: ['he', 'llo'],
              }),
            },
          ],
        }),
      );
    });
    afterAll(() => server.close());

    it.each(['/relayed', '/relayed-stream'])(
      'never sends Content-Length beside Transfer-Encoding: %s',
      async (path) => {
        const head = await wireHead(server.port, 'GET', path);
        expect(head.status).toBe(200);
        const names = head.fields.map(([n]) => n);
        const framing = names.filter((n) => n === 'content-length' || n === 'transfer-encoding');
        expect(framing).toHaveLength(1);
        expect(head.rest).toContain('llo');
      },
    );
  });

  describe('HEAD mirrors GET (RFC 9110 §9.3.2)', () => {
    const app = adapter.build({
      use: [conditional()],
      routes: [{ method: 'get', path: '/doc', handler: () => ({ body: { id: 1, name: 'a' } }) }],
    });

    it('gets the ETag and Content-Length GET gets, and no body', async () => {
      const get = await request(app).get('/doc').expect(200);
      const head = await request(app).head('/doc').expect(200);
      expect(get.headers.etag).toBeDefined();
      expect(head.headers.etag).toBe(get.headers.etag);
      expect(head.headers['content-length']).toBe(get.headers['content-length']);
      expect(head.text ?? '').toBe('');
    });
  });

  describe('the 304 allowlist (RFC 9110 §15.4.5)', () => {
    const headers = {
      etag: '"v1"',
      'cache-control': 'max-age=60',
      vary: 'Accept-Language',
      'content-location': '/doc.json',
      'last-modified': 'Wed, 01 May 2024 12:00:00 GMT',
      'set-cookie': 'session=secret',
      'accept-ranges': 'bytes',
      digest: 'sha-256=abc',
      'content-digest': 'sha-256=:abc:',
      'repr-digest': 'sha-256=:abc:',
      'x-app': 'value',
      'content-language': 'en',
    };
    const toNotModified: Middleware = async (ctx, next) => {
      await next();
      ctx.response.status = 304;
      ctx.response.body = null;
    };
    const app = (traceHeader?: string) =>
      adapter.build({
        options: traceHeader === undefined ? {} : { traceHeader },
        routes: [
          {
            method: 'get',
            path: '/by-handler',
            handler: () => ({ status: 304, headers }),
          },
          {
            method: 'get',
            path: '/by-module',
            use: [toNotModified],
            handler: () => ({ headers, body: { id: 1 } }),
          },
          {
            method: 'get',
            path: '/by-conditional',
            use: [conditional()],
            handler: () => ({ headers, body: { id: 1 } }),
          },
        ],
      });

    it.each(['/by-handler', '/by-module', '/by-conditional'])(
      'keeps only the listed fields, whoever made the 304: %s',
      async (path) => {
        const res = await request(app()).get(path).set('If-None-Match', '"v1"').expect(304);
        expect(res.headers.etag).toBe('"v1"');
        expect(res.headers['cache-control']).toBe('max-age=60');
        expect(res.headers.vary).toBe('Accept-Language');
        expect(res.headers['content-location']).toBe('/doc.json');
        expect(res.headers['last-modified']).toBe('Wed, 01 May 2024 12:00:00 GMT');
        expect(res.headers['trace-id']).toMatch(/^[0-9a-f]{32}$/);
        for (const gone of [
          'set-cookie',
          'accept-ranges',
          'digest',
          'content-digest',
          'repr-digest',
          'x-app',
          'content-language',
          'content-type',
          'content-length',
          'transfer-encoding',
        ]) {
          expect(res.headers[gone], gone).toBeUndefined();
        }
      },
    );

    it('keeps the configured trace header', async () => {
      const res = await request(app('X-Request-Id')).get('/by-module').expect(304);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    });

    it('sends no framing fields on a 204', async () => {
      const listener = adapter.build({
        routes: [
          {
            method: 'get',
            path: '/empty',
            handler: () => ({ status: 204, headers: { 'transfer-encoding': 'chunked' } }),
          },
        ],
      });
      const server = await listen(listener);
      try {
        const head = await wireHead(server.port, 'GET', '/empty');
        expect(head.status).toBe(204);
        const names = head.fields.map(([n]) => n);
        expect(names).not.toContain('content-length');
        expect(names).not.toContain('transfer-encoding');
      } finally {
        await server.close();
      }
    });
  });

  describe('X-Forwarded-Proto takes the value the trusted hop added', () => {
    const app = adapter.build({
      options: { trustProxy: 'loopback' },
      routes: [
        {
          method: 'get',
          path: '/proto',
          handler: (req) => ({ body: { protocol: req.context.request.protocol } }),
        },
      ],
    });

    it('ignores a value the client put in front of the list', async () => {
      // The client sent "https"; the loopback proxy appended the "http" it received.
      const res = await request(app)
        .get('/proto')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('X-Forwarded-Proto', 'https, http')
        .expect(200);
      expect(res.body.protocol).toBe('http');
    });

    it('believes the trusted proxy', async () => {
      const res = await request(app)
        .get('/proto')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('X-Forwarded-Proto', 'https')
        .expect(200);
      expect(res.body.protocol).toBe('https');
    });
  });

  describe('methods nobody routes', () => {
    const logger = recordingLogger();
    let server: Listening;
    beforeAll(async () => {
      server = await listen(
        adapter.build({
          options: { logger },
          routes: [
            { method: 'post', path: '/r', handler: () => ({ status: 201, body: {} }) },
            { method: 'get', path: '/r', handler: () => ({ body: {} }) },
          ],
        }),
      );
    });
    afterAll(() => server.close());

    it.each(['TRACE', 'PROPFIND', 'PATCH', 'DELETE', 'MKCOL', 'PURGE'])(
      '%s on a known path is a 405 problem with Allow in canonical order, logged as no error',
      async (method) => {
        logger.errors.length = 0;
        const res = await rawRequest(server.port, { method, path: '/r' });
        expect(res.status).toBe(405);
        expect(res.headers['content-type']).toMatch(PROBLEM);
        expect(res.headers.allow).toBe('GET, HEAD, POST');
        expect(JSON.parse(res.body.toString())).toMatchObject({
          status: 405,
          code: 'method-not-allowed',
          detail: `${method} is not supported by this resource.`,
        });
        expect(logger.errors).toEqual([]);
      },
    );

    it.each(['TRACE', 'PROPFIND', 'GET'])(
      '%s on an unknown path is a 404 problem',
      async (method) => {
        const res = await rawRequest(server.port, { method, path: '/nowhere' });
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toMatch(PROBLEM);
      },
    );

    it('OPTIONS on a known path lists Allow, with no content', async () => {
      const res = await rawRequest(server.port, { method: 'OPTIONS', path: '/r' });
      expect(res.status).toBe(200);
      expect(res.headers.allow).toBe('GET, HEAD, POST');
      expect(res.headers['content-type']).toBeUndefined();
      expect(res.body.length).toBe(0);
    });
  });
});
