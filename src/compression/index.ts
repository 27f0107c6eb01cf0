/**
 * Response compression with Node's built-in zlib: brotli and gzip (deflate on
 * request), negotiated from `Accept-Encoding` (RFC 9110 §12.5.3).
 *
 * Exported from `restwell/compression`.
 *
 * - Bodies of at least `threshold` bytes (1 KB) are compressed; streaming
 *   bodies are compressed as streams, never buffered.
 * - Left alone: HEAD, 204, 206, 304, responses with a `Content-Encoding`,
 *   `Cache-Control: no-transform`, already-compressed types (images but SVG,
 *   video, audio, archives, WOFF fonts) and Server-Sent Events, which must
 *   reach the client event by event.
 * - `Vary: Accept-Encoding` is merged in whenever the answer depends on it,
 *   even when this client did not ask for compression.
 * - A strong ETag names one representation (RFC 9110 §8.8.3): the brotli
 *   variant of `"abc"` is `"abc-br"`. `restwell/conditional` knows, so a
 *   client revalidating with `"abc-br"` gets its 304. Weak ETags are kept.
 *
 * Mount it before `conditional()` (outer), so that ETags are computed on the
 * identity body and a 304 is answered before anything is compressed.
 *
 * @example
 * ```ts
 * import { compression } from 'restwell/compression';
 * import { conditional } from 'restwell/conditional';
 *
 * app.use(rw(compression(), conditional()));
 * ```
 */
import { Readable, type Transform } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import {
  brotliCompress,
  brotliCompressSync,
  constants,
  createBrotliCompress,
  createDeflate,
  createGzip,
  deflate,
  deflateSync,
  gzip,
  gzipSync,
} from 'node:zlib';
import { isStreamBody, type Middleware } from '../core/context.js';
import { invalidOption } from '../core/errors.js';
import { hasDirective } from '../conditional/cache-control.js';
import { setEncodingNegotiation } from '../conditional/encoding.js';
import { encodingETag } from '../conditional/etag-list.js';
import { vary } from '../conditional/vary.js';
import { compressible, isEventStream } from './compressible.js';
import { type Coding, negotiateEncoding } from './negotiate.js';

export { compressible, isEventStream, mediaType } from './compressible.js';
export {
  type AcceptedCoding,
  type Coding,
  type Negotiated,
  negotiateEncoding,
  parseAcceptEncoding,
} from './negotiate.js';
export { mergeVary, vary } from '../conditional/vary.js';

export interface CompressionOptions {
  /**
   * Smallest body, in bytes, that is compressed. Below about 1 KB the framing
   * and CPU cost more than the bytes saved. Streaming bodies are always compressed.
   * @default 1024
   */
  threshold?: number;
  /**
   * Codings offered, in the server's order of preference (which breaks ties
   * between equal q-values). Add `'deflate'` to offer it; it is off by default
   * because clients disagree on whether it means zlib or raw deflate, and every
   * client that accepts deflate accepts gzip.
   * @default ['br', 'gzip']
   */
  encodings?: readonly Coding[];
  /**
   * Brotli quality, 0 (fastest) to 11 (smallest), for every response. 4 was
   * chosen by measurement (bench/caching.ts, docs/caching.md): on a 100 KB JSON
   * list it costs the CPU of gzip level 6 and sends 18% fewer bytes; 5 sends 16%
   * fewer again for 60-70% more CPU; 11 is for precompressed static files, at
   * some 200 times the CPU.
   * @default 4
   */
  brotliQuality?: number;
  /** gzip and deflate level, 1 (fastest) to 9 (smallest). @default 6 */
  gzipLevel?: number;
  /**
   * Whether a `Content-Type` is worth compressing. Responses without a
   * `Content-Type` are never compressed (they may be anything).
   * @default compressible: everything but images (SVG aside), video, audio, archives and WOFF fonts
   */
  filter?: (contentType: string) => boolean;
}

const CODINGS: readonly Coding[] = ['br', 'gzip', 'deflate'];

/**
 * Bodies smaller than this are compressed inline: at most about 0.1 ms of
 * event-loop time at the default settings, and cheaper than the thread-pool
 * round trip (measured 30-40 µs per response) that larger bodies take.
 */
const SYNC_BELOW = 16 * 1024;

/**
 * The brotli window for a body of `size` bytes: no larger than the body needs
 * (at least 2^18, at most brotli's default 2^22). Same output, but under
 * concurrency a 4 MB window per response costs measurably more CPU in
 * allocation (bench/caching.ts: about a third less CPU for 100 KB bodies).
 */
function brotliWindow(size: number): number {
  return Math.min(22, Math.max(18, Math.ceil(Math.log2(size + 16))));
}

/** Statuses whose response carries no content to compress (or, 206, partial content of the identity body). */
function untouched(status: number): boolean {
  return status < 200 || status === 204 || status === 206 || status === 304;
}

function toBuffer(body: string | Uint8Array): Buffer {
  if (typeof body === 'string') return Buffer.from(body);
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Pipes `source` through `compressor`, flushing whenever the source pauses:
 * a producer that writes a line and then waits (progress, NDJSON, a long
 * poll) has that line delivered now, instead of sitting in the compressor's
 * window (brotli holds about a megabyte before it emits anything). A fast
 * source writes many chunks before the flush runs, so the ratio barely suffers.
 * Backpressure is kept both ways; an error or an early close on either side
 * destroys both.
 */
function compressStream(
  source: Readable,
  compressor: Transform & { flush(kind: number): void },
  flushKind: number,
): Transform {
  let flushPending = false;
  const flush = () => {
    flushPending = false;
    if (!compressor.destroyed && !compressor.writableEnded) compressor.flush(flushKind);
  };
  source.on('data', (chunk: Buffer) => {
    if (!compressor.write(chunk)) source.pause();
    if (!flushPending) {
      flushPending = true;
      setImmediate(flush);
    }
  });
  compressor.on('drain', () => source.resume());
  source.once('end', () => compressor.end());
  source.once('error', (err) => compressor.destroy(err));
  // A source that closes without 'end' (destroyed upstream) must not leave the response hanging.
  source.once('close', () => {
    if (!source.readableEnded && !compressor.destroyed) {
      compressor.destroy(new Error('the response body stream closed before its end'));
    }
  });
  compressor.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  return compressor;
}

/**
 * The compression middleware. See the module documentation.
 */
export function compression(options: CompressionOptions = {}): Middleware {
  const {
    threshold = 1024,
    encodings = ['br', 'gzip'],
    brotliQuality = 4,
    gzipLevel = 6,
    filter = compressible,
  } = options ?? {};
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 0) {
    invalidOption('compression', 'threshold', 'a non-negative integer (bytes)', threshold);
  }
  if (
    !Array.isArray(encodings) ||
    encodings.length === 0 ||
    encodings.some((e) => !CODINGS.includes(e)) ||
    new Set(encodings).size !== encodings.length
  ) {
    invalidOption(
      'compression',
      'encodings',
      "a non-empty list of distinct 'br', 'gzip', 'deflate'",
      encodings,
    );
  }
  if (!Number.isInteger(brotliQuality) || brotliQuality < 0 || brotliQuality > 11) {
    invalidOption('compression', 'brotliQuality', 'an integer from 0 to 11', brotliQuality);
  }
  if (!Number.isInteger(gzipLevel) || gzipLevel < 1 || gzipLevel > 9) {
    invalidOption('compression', 'gzipLevel', 'an integer from 1 to 9', gzipLevel);
  }
  if (typeof filter !== 'function') invalidOption('compression', 'filter', 'a function', filter);

  const offered = encodings.slice();
  const zlibOptions = { level: gzipLevel };

  const brotliParams = (size: number) => ({
    [constants.BROTLI_PARAM_QUALITY]: brotliQuality,
    [constants.BROTLI_PARAM_SIZE_HINT]: size,
    [constants.BROTLI_PARAM_LGWIN]: brotliWindow(size),
  });

  /** Compresses a whole body: inline when small, on the thread pool when large. */
  function compressBody(coding: Coding, input: Buffer): Buffer | Promise<Buffer> {
    if (input.byteLength < SYNC_BELOW) {
      if (coding === 'br')
        return brotliCompressSync(input, { params: brotliParams(input.byteLength) });
      return coding === 'gzip' ? gzipSync(input, zlibOptions) : deflateSync(input, zlibOptions);
    }
    return new Promise<Buffer>((resolve, reject) => {
      const done = (err: Error | null, out: Buffer) => (err ? reject(err) : resolve(out));
      if (coding === 'br') brotliCompress(input, { params: brotliParams(input.byteLength) }, done);
      else if (coding === 'gzip') gzip(input, zlibOptions, done);
      else deflate(input, zlibOptions, done);
    });
  }
  // A sync flush ends the current block, so that the client can decode
  // everything so far, and keeps the dictionary (a full flush would reset it).
  const streaming: Record<Coding, (source: Readable) => Transform> = {
    br: (source) =>
      compressStream(
        source,
        createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: brotliQuality } }),
        constants.BROTLI_OPERATION_FLUSH,
      ),
    gzip: (source) => compressStream(source, createGzip(zlibOptions), constants.Z_SYNC_FLUSH),
    deflate: (source) => compressStream(source, createDeflate(zlibOptions), constants.Z_SYNC_FLUSH),
  };

  return async function compress(ctx, next) {
    const negotiated = negotiateEncoding(ctx.request.header('accept-encoding'), offered);
    // `undefined`: identity refused and nothing of ours acceptable. restwell sends
    // identity rather than 406 (RFC 9110 §12.1 lets a server disregard a
    // preference it cannot meet); a readable answer beats an error.
    const coding = negotiated === 'identity' || negotiated === undefined ? undefined : negotiated;
    setEncodingNegotiation(ctx, { codings: offered, coding });

    await next();

    const { response } = ctx;
    const headers = response.headers;
    const label = (c: Coding): void => {
      headers.set('Content-Encoding', c);
      // Ranges of the identity bytes would not splice with coded ones (a resumed download).
      headers.delete('accept-ranges');
      const etag = headers.get('etag');
      if (etag !== undefined) headers.set('ETag', encodingETag(etag, c));
    };
    if (untouched(response.status)) {
      // A 304 carries the Vary its 200 would have had (RFC 9110 §15.4.5).
      if (response.status === 304 && !hasDirective(headers.get('cache-control'), 'no-transform')) {
        vary(headers, 'Accept-Encoding');
      }
      return;
    }
    const encoding = headers.get('content-encoding');
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return;
    if (hasDirective(headers.get('cache-control'), 'no-transform')) return;
    const type = headers.get('content-type');
    // Server-Sent Events are never compressed: see docs/caching.md.
    if (type === undefined || isEventStream(type) || !filter(type)) return;

    if (ctx.request.method === 'HEAD') {
      // No body to compress, but the GET it mirrors varies on Accept-Encoding.
      const length = Number(headers.get('content-length'));
      if (!(Number.isFinite(length) && length < threshold)) vary(headers, 'Accept-Encoding');
      return;
    }

    const body = response.body;
    if (body === null) return;
    if (isStreamBody(body)) {
      vary(headers, 'Accept-Encoding');
      if (coding === undefined) return;
      const source =
        body instanceof Readable
          ? body
          : Readable.fromWeb(body as NodeWebReadableStream<Uint8Array>);
      const compressor = streaming[coding](source);
      label(coding);
      headers.delete('content-length');
      response.body = compressor;
      return;
    }

    if ((typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength) < threshold) return;
    vary(headers, 'Accept-Encoding');
    if (coding === undefined) return;
    const input = toBuffer(body);
    const output = await compressBody(coding, input);
    label(coding);
    headers.set('Content-Length', output.byteLength);
    response.body = output;
  };
}
