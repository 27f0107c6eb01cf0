/**
 * restwell/compression through every adapter (Express 5 and 4, Koa 3 and 2),
 * reading the bytes on the wire: negotiation, what is left alone, Vary, ETags
 * per encoding, exact round trips through zlib, streams compressed as streams,
 * and Server-Sent Events never held back.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  createBrotliDecompress,
  createGunzip,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateSync,
} from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type CompressionOptions, compression } from '../../src/compression/index.js';
import { isStreamBody, type Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import { adapters, type HandlerResponse, type RouteSpec } from '../helpers/apps.js';
import { listen, type RawResponse, raw, rawRequest } from '../helpers/raw.js';

const LIST = {
  items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })),
};
const LIST_JSON = JSON.stringify(LIST);
const SMALL = JSON.stringify({ ok: true });
// Larger than the 16 KB below which bodies are compressed inline: this one goes to the thread pool.
const BIG = { items: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item ${i}` })) };
const BIG_JSON = JSON.stringify(BIG);
const TEXT = 'lorem ipsum dolor sit amet '.repeat(100);

function decode(res: RawResponse): string {
  switch (res.headers['content-encoding']) {
    case 'br':
      return brotliDecompressSync(res.body).toString();
    case 'gzip':
      return gunzipSync(res.body).toString();
    case 'deflate':
      return inflateSync(res.body).toString();
    case undefined:
      return res.body.toString();
    default:
      throw new Error(`unexpected content-encoding ${res.headers['content-encoding']}`);
  }
}

const varyOf = (res: RawResponse) =>
  String(res.headers.vary ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

function route(path: string, out: () => HandlerResponse, method: RouteSpec['method'] = 'get') {
  return { method, path, handler: out };
}

/** Streams controlled by the test, created by the handler on each request. */
interface Streams {
  last?: PassThrough;
  /** What the middleware inside compression() saw as the response body, per request. */
  seen: Array<'stream' | 'buffered' | 'none'>;
}

function routes(streams: Streams): RouteSpec[] {
  const stream = (type: string) => () => {
    const body = new PassThrough();
    streams.last = body;
    return { headers: { 'content-type': type }, body };
  };
  return [
    route('/list', () => ({ body: LIST })),
    route('/small', () => ({ body: JSON.parse(SMALL) })),
    route('/big', () => ({ body: BIG })),
    route('/text', () => ({
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: TEXT,
    })),
    route('/versioned', () => ({ headers: { etag: '"v3"' }, body: LIST })),
    route('/weak', () => ({ headers: { etag: 'W/"v3"' }, body: LIST })),
    route('/vary-origin', () => ({ headers: { vary: 'Origin' }, body: LIST })),
    route('/vary-dup', () => ({ headers: { vary: 'origin, accept-encoding' }, body: LIST })),
    route('/vary-star', () => ({ headers: { vary: '*' }, body: LIST })),
    route('/png', () => ({
      headers: { 'content-type': 'image/png' },
      body: Buffer.alloc(4096, 7),
    })),
    route('/svg', () => ({
      headers: { 'content-type': 'image/svg+xml' },
      body: `<svg xmlns="http://www.w3.org/2000/svg">${'<rect/>'.repeat(400)}</svg>`,
    })),
    route('/woff2', () => ({
      headers: { 'content-type': 'font/woff2' },
      body: Buffer.alloc(4096),
    })),
    route('/zip', () => ({
      headers: { 'content-type': 'application/zip' },
      body: Buffer.alloc(4096),
    })),
    // The frameworks label a bare Buffer application/octet-stream: opaque binary, left alone.
    route('/binary', () => ({ headers: {}, body: Buffer.alloc(4096, 1) })),
    route('/encoded', () => ({
      headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
      body: Buffer.from('pretend this is gzip'.repeat(100)),
    })),
    route('/no-transform', () => ({
      headers: { 'cache-control': 'public, no-transform' },
      body: LIST,
    })),
    route('/empty', () => ({ status: 204 })),
    route('/problem', () => ({ status: 422, body: { errors: LIST.items } })),
    route('/stream', stream('application/x-ndjson')),
    route('/events', stream('text/event-stream')),
  ];
}

describe.each(adapters)('compression() through $name', (adapter) => {
  function app(options: CompressionOptions = {}) {
    const streams: Streams = { seen: [] };
    // Sits inside compression(): records the body compression() is about to see.
    const probe: Middleware = async (ctx, next) => {
      await next();
      const body = ctx.response.body;
      streams.seen.push(isStreamBody(body) ? 'stream' : body === null ? 'none' : 'buffered');
    };
    const listener = adapter.build({
      options: { logger: silentLogger },
      use: [compression(options), probe],
      routes: routes(streams),
    });
    return { listener, streams };
  }
  const get = (listener: ReturnType<typeof app>['listener'], path: string, ae?: string) =>
    raw(listener, { path, headers: ae === undefined ? {} : { 'accept-encoding': ae } });

  describe('negotiation', () => {
    it('sends br to a client that accepts it, and the bytes decode to the exact body', async () => {
      const res = await get(app().listener, '/list', 'gzip, deflate, br');
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe('br');
      expect(Number(res.headers['content-length'])).toBe(res.body.length);
      expect(res.body.length).toBeLessThan(LIST_JSON.length / 4);
      expect(decode(res)).toBe(LIST_JSON);
      expect(varyOf(res)).toEqual(['accept-encoding']);
    });

    it('round-trips large bodies (compressed off the event loop) in every coding', async () => {
      expect(BIG_JSON.length).toBeGreaterThan(32 * 1024);
      const { listener } = app({ encodings: ['br', 'gzip', 'deflate'] });
      for (const coding of ['br', 'gzip', 'deflate']) {
        const res = await get(listener, '/big', coding);
        expect(res.headers['content-encoding']).toBe(coding);
        expect(Number(res.headers['content-length'])).toBe(res.body.length);
        expect(decode(res)).toBe(BIG_JSON);
      }
    });

    it('sends gzip when preferred by q-value, or when br is not offered', async () => {
      const byQ = await get(app().listener, '/list', 'br;q=0.5, gzip');
      expect(byQ.headers['content-encoding']).toBe('gzip');
      expect(decode(byQ)).toBe(LIST_JSON);
      const gzipOnly = await get(app({ encodings: ['gzip'] }).listener, '/list', 'br, gzip');
      expect(gzipOnly.headers['content-encoding']).toBe('gzip');
    });

    it('breaks a q-value tie by server preference (br)', async () => {
      const res = await get(app().listener, '/list', 'gzip;q=0.8, br;q=0.8');
      expect(res.headers['content-encoding']).toBe('br');
    });

    it('reads * as any coding', async () => {
      expect((await get(app().listener, '/list', '*')).headers['content-encoding']).toBe('br');
      const noBr = await get(app().listener, '/list', 'br;q=0, *');
      expect(noBr.headers['content-encoding']).toBe('gzip');
      expect(decode(noBr)).toBe(LIST_JSON);
    });

    it('sends identity, with Vary, to a client that sent no Accept-Encoding', async () => {
      const res = await get(app().listener, '/list');
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body.toString()).toBe(LIST_JSON);
      expect(varyOf(res)).toEqual(['accept-encoding']);
    });

    it('sends identity when identity is preferred or nothing offered is accepted', async () => {
      const { listener } = app();
      expect(
        (await get(listener, '/list', 'identity')).headers['content-encoding'],
      ).toBeUndefined();
      expect((await get(listener, '/list', 'zstd')).headers['content-encoding']).toBeUndefined();
      expect(
        (await get(listener, '/list', 'gzip;q=0.1, identity')).headers['content-encoding'],
      ).toBeUndefined();
    });

    it('identity;q=0 with nothing acceptable: sends identity rather than 406', async () => {
      const res = await get(app().listener, '/list', 'zstd, identity;q=0');
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body.toString()).toBe(LIST_JSON);
      // ...but a compressible alternative is still taken when offered:
      const gz = await get(app().listener, '/list', 'gzip, identity;q=0');
      expect(gz.headers['content-encoding']).toBe('gzip');
    });

    it('offers deflate only when enabled', async () => {
      const off = await get(app().listener, '/list', 'deflate');
      expect(off.headers['content-encoding']).toBeUndefined();
      const on = await get(
        app({ encodings: ['br', 'gzip', 'deflate'] }).listener,
        '/list',
        'deflate',
      );
      expect(on.headers['content-encoding']).toBe('deflate');
      expect(decode(on)).toBe(LIST_JSON);
    });

    it('uses the configured brotli quality: the bytes brotli makes at that quality', async () => {
      const input = Buffer.from(TEXT);
      const at = (quality: number) =>
        brotliCompressSync(input, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: quality,
            [constants.BROTLI_PARAM_SIZE_HINT]: input.length,
            [constants.BROTLI_PARAM_LGWIN]: 18,
          },
        });
      expect(at(1).equals(at(11))).toBe(false);
      for (const quality of [1, 11]) {
        const res = await get(app({ brotliQuality: quality }).listener, '/text', 'br');
        expect(res.body.equals(at(quality)), `quality ${quality}`).toBe(true);
        expect(decode(res)).toBe(TEXT);
      }
    });

    it('uses the configured gzip level: the bytes zlib makes at that level', async () => {
      const input = Buffer.from(LIST_JSON);
      // The levels must differ on this input, or the test would prove nothing.
      expect(gzipSync(input, { level: 1 }).equals(gzipSync(input, { level: 9 }))).toBe(false);
      for (const level of [1, 6, 9]) {
        const res = await get(app({ gzipLevel: level }).listener, '/list', 'gzip');
        expect(res.headers['content-encoding']).toBe('gzip');
        expect(res.body.equals(gzipSync(input, { level })), `level ${level}`).toBe(true);
      }
      const deflated = await get(
        app({ encodings: ['deflate'], gzipLevel: 1 }).listener,
        '/list',
        'deflate',
      );
      expect(deflated.body.equals(deflateSync(input, { level: 1 }))).toBe(true);
    });
  });

  describe('the threshold: a body of at least `threshold` bytes is compressed', () => {
    const sized = (bytes: number): RouteSpec =>
      route(`/bytes/${bytes}`, () => ({
        headers: { 'content-type': 'text/plain' },
        // Two-byte characters at the end: the threshold counts bytes, not characters.
        body: `${'a'.repeat(bytes - 4)}éé`,
      }));
    const threshold = (options: CompressionOptions = {}) =>
      adapter.build({
        options: { logger: silentLogger },
        use: [compression(options)],
        routes: [1023, 1024, 1025, 99, 100, 101].map(sized),
      });

    it('1023 bytes are sent as is; 1024 and 1025 are compressed (default 1024)', async () => {
      const listener = threshold();
      const below = await get(listener, '/bytes/1023', 'gzip');
      expect(below.headers['content-encoding']).toBeUndefined();
      expect(below.body.length).toBe(1023);
      expect(below.headers.vary).toBeUndefined();
      for (const bytes of [1024, 1025]) {
        const res = await get(listener, `/bytes/${bytes}`, 'gzip');
        expect(res.headers['content-encoding'], `${bytes}`).toBe('gzip');
        expect(Buffer.byteLength(decode(res))).toBe(bytes);
        expect(varyOf(res)).toEqual(['accept-encoding']);
      }
    });

    it('the same rule at a configured threshold', async () => {
      const listener = threshold({ threshold: 100 });
      expect((await get(listener, '/bytes/99', 'br')).headers['content-encoding']).toBeUndefined();
      expect((await get(listener, '/bytes/100', 'br')).headers['content-encoding']).toBe('br');
      expect((await get(listener, '/bytes/101', 'br')).headers['content-encoding']).toBe('br');
    });
  });

  describe('what is left alone', () => {
    it('bodies under the threshold: no encoding and no Vary', async () => {
      const res = await get(app().listener, '/small', 'br');
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers.vary).toBeUndefined();
      expect(res.body.toString()).toBe(SMALL);
      const low = await get(app({ threshold: 0 }).listener, '/small', 'br');
      expect(low.headers['content-encoding']).toBe('br');
      expect(decode(low)).toBe(SMALL);
    });

    it('already-compressed types, but not SVG', async () => {
      const { listener } = app();
      for (const path of ['/png', '/woff2', '/zip', '/binary']) {
        const res = await get(listener, path, 'br, gzip');
        expect(res.headers['content-encoding'], path).toBeUndefined();
        expect(res.headers.vary, path).toBeUndefined();
        expect(res.body.length, path).toBe(4096);
      }
      const svg = await get(listener, '/svg', 'br');
      expect(svg.headers['content-encoding']).toBe('br');
      expect(decode(svg)).toContain('<svg');
    });

    it('a response that already has a Content-Encoding', async () => {
      const res = await get(app().listener, '/encoded', 'br');
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.body.toString()).toBe('pretend this is gzip'.repeat(100));
    });

    it('Cache-Control: no-transform', async () => {
      const res = await get(app().listener, '/no-transform', 'br');
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body.toString()).toBe(LIST_JSON);
    });

    it('204: nothing to compress', async () => {
      const empty = await get(app().listener, '/empty', 'br');
      expect(empty.status).toBe(204);
      expect(empty.headers['content-encoding']).toBeUndefined();
    });

    it('compresses error documents too', async () => {
      const res = await get(app().listener, '/problem', 'gzip');
      expect(res.status).toBe(422);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(JSON.parse(decode(res))).toEqual({ errors: LIST.items });
    });
  });

  describe('Vary', () => {
    it("merges Accept-Encoding into the application's Vary", async () => {
      const { listener } = app();
      expect(varyOf(await get(listener, '/vary-origin', 'br'))).toEqual([
        'origin',
        'accept-encoding',
      ]);
      expect(varyOf(await get(listener, '/vary-origin'))).toEqual(['origin', 'accept-encoding']);
      expect(varyOf(await get(listener, '/vary-dup', 'br'))).toEqual(['origin', 'accept-encoding']);
      expect((await get(listener, '/vary-star', 'br')).headers.vary).toBe('*');
    });
  });

  describe('ETags per encoding (RFC 9110 §8.8.3)', () => {
    it('suffixes a strong ETag with the coding, keeps weak ones', async () => {
      const { listener } = app();
      expect((await get(listener, '/versioned', 'br')).headers.etag).toBe('"v3-br"');
      expect((await get(listener, '/versioned', 'gzip')).headers.etag).toBe('"v3-gzip"');
      expect((await get(listener, '/versioned')).headers.etag).toBe('"v3"');
      expect((await get(listener, '/weak', 'br')).headers.etag).toBe('W/"v3"');
    });
  });

  describe('streams', () => {
    it('compresses a streamed body as a stream: no Content-Length, exact bytes back', async () => {
      for (const coding of ['br', 'gzip']) {
        const { listener, streams } = app();
        const server = await listen(listener);
        try {
          const pending = rawRequest(server.port, {
            path: '/stream',
            headers: { 'accept-encoding': coding },
          });
          await until(() => streams.last !== undefined);
          const lines = Array.from({ length: 500 }, (_, i) => `${JSON.stringify({ i })}\n`);
          for (const line of lines) streams.last!.write(line);
          streams.last!.end();
          const res = await pending;
          expect(res.headers['content-encoding']).toBe(coding);
          expect(res.headers['content-length']).toBeUndefined();
          expect(varyOf(res)).toContain('accept-encoding');
          expect(decode(res)).toBe(lines.join(''));
          // compression() was handed a stream, and compressed it as one: not a buffered body.
          expect(streams.seen).toEqual(['stream']);
        } finally {
          await server.close();
        }
      }
    });

    it('does not hold a slow producer back: each write is decodable before the stream ends', async () => {
      for (const coding of ['br', 'gzip'] as const) {
        const { listener, streams } = app();
        const server = await listen(listener);
        try {
          // Decode on the client as bytes arrive, as a browser does.
          const decoder = coding === 'br' ? createBrotliDecompress() : createGunzip();
          let decoded = '';
          decoder.on('data', (c: Buffer) => {
            decoded += c.toString();
          });
          const pending = rawRequest(server.port, {
            path: '/stream',
            headers: { 'accept-encoding': coding },
            onChunk: (c) => decoder.write(c),
          });
          await until(() => streams.last !== undefined);
          const first = `${JSON.stringify({ progress: 1, of: 3 })}\n`;
          streams.last!.write(first);
          // Buffered until its end, the stream would deliver nothing here: the end never comes first.
          const arrived = await until(() => decoded === first, 5_000);
          streams.last!.write(`${JSON.stringify({ progress: 2, of: 3 })}\n`);
          streams.last!.end(`${JSON.stringify({ progress: 3, of: 3 })}\n`);
          const res = await pending;
          expect(arrived, coding).toBe(true);
          expect(res.headers['content-encoding']).toBe(coding);
          expect(decode(res).split('\n')).toHaveLength(4);
        } finally {
          await server.close();
        }
      }
    });

    it('compresses a large stream without waiting for its end', async () => {
      const { listener, streams } = app();
      const server = await listen(listener);
      try {
        let received = 0;
        const pending = rawRequest(server.port, {
          path: '/stream',
          headers: { 'accept-encoding': 'br' },
          onChunk: (c) => {
            received += c.length;
          },
        });
        await until(() => streams.last !== undefined);
        const part = randomBytes(256 * 1024).toString('base64');
        streams.last!.write(part);
        const arrived = await until(() => received > 0, 5_000);
        streams.last!.end('tail');
        const res = await pending;
        expect(arrived).toBe(true);
        expect(decode(res)).toBe(`${part}tail`);
      } finally {
        await server.close();
      }
    });

    it('never holds back Server-Sent Events: the first event arrives before the stream ends', async () => {
      const { listener, streams } = app();
      const server = await listen(listener);
      try {
        const chunks: string[] = [];
        const pending = rawRequest(server.port, {
          path: '/events',
          headers: { 'accept-encoding': 'br, gzip', accept: 'text/event-stream' },
          onChunk: (c) => chunks.push(c.toString()),
        });
        await until(() => streams.last !== undefined);
        streams.last!.write('data: first\n\n');
        const arrived = await until(() => chunks.join('').includes('data: first'), 5_000);
        streams.last!.end('data: last\n\n');
        const res = await pending;
        expect(arrived).toBe(true);
        expect(res.headers['content-encoding']).toBeUndefined();
        expect(res.headers.vary).toBeUndefined();
        expect(res.body.toString()).toBe('data: first\n\ndata: last\n\n');
      } finally {
        await server.close();
      }
    });
  });
});

describe.each(adapters)('compression() of a web ReadableStream body through $name', (adapter) => {
  it('compresses a body a middleware set as a web stream', async () => {
    const text = 'web stream chunk\n'.repeat(200);
    const listener = adapter.build({
      options: { logger: silentLogger },
      use: [
        compression(),
        (ctx) => {
          ctx.response.status = 200;
          ctx.response.headers.set('content-type', 'text/plain');
          ctx.response.body = new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(text.slice(0, 1000)));
              controller.enqueue(new TextEncoder().encode(text.slice(1000)));
              controller.close();
            },
          });
        },
      ],
      routes: [{ method: 'get', path: '/web', handler: () => ({ body: 'unreached' }) }],
    });
    const res = await raw(listener, { path: '/web', headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(decode(res)).toBe(text);
  });
});

/** Polls `check` every 5 ms; true once it holds, false after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

describe.each(adapters)('compression() filter through $name', (adapter) => {
  it('receives the bare media type: lower case, without parameters', async () => {
    const seen: string[] = [];
    const listener = adapter.build({
      options: { logger: silentLogger },
      use: [
        compression({
          filter: (type) => {
            seen.push(type);
            return type === 'text/plain';
          },
        }),
      ],
      routes: [
        route('/t', () => ({
          headers: { 'content-type': 'Text/Plain; charset=UTF-8' },
          body: TEXT,
        })),
      ],
    });
    const res = await raw(listener, { path: '/t', headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(seen).toEqual(['text/plain']);
  });
});

describe('compression() options', () => {
  it('refuses unknown options, naming the nearest', () => {
    expect(() => compression({ treshold: 10 } as never)).toThrow(
      /^restwell\/compression: unknown option "treshold"\. Did you mean "threshold"\?$/,
    );
    expect(() => compression({ level: 9 } as never)).toThrow(/gzipLevel/);
    expect(() => compression('br' as never)).toThrow(/^restwell\/compression: options must be/);
  });

  it('validates options when created', () => {
    expect(() => compression({ threshold: -1 })).toThrow(/threshold/);
    expect(() => compression({ threshold: 1.5 })).toThrow(/threshold/);
    expect(() => compression({ encodings: [] })).toThrow(/encodings/);
    expect(() => compression({ encodings: ['zstd' as never] })).toThrow(/encodings/);
    expect(() => compression({ encodings: ['br', 'br'] })).toThrow(/encodings/);
    expect(() => compression({ brotliQuality: 12 })).toThrow(/brotliQuality/);
    expect(() => compression({ gzipLevel: 0 })).toThrow(/gzipLevel/);
    expect(() => compression({ filter: 'json' as never })).toThrow(/filter/);
    expect(() => compression()).not.toThrow();
  });
});
