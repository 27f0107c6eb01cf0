/**
 * Response compression with Node's built-in zlib: brotli and gzip (deflate on
 * request), negotiated from `Accept-Encoding` (RFC 9110 §12.5.3).
 *
 * Exported from `restwell/compression`.
 *
 * - Bodies of at least `threshold` bytes (1 KB) are compressed; streaming
 *   bodies are compressed as streams, never buffered.
 * - HEAD mirrors GET (RFC 9110 §9.3.2): the same `Content-Encoding`, `ETag`
 *   and `Vary`, and never the identity `Content-Length` of a coded GET.
 * - Left alone: 204, 206, 304, responses with a `Content-Encoding`,
 *   `Cache-Control: no-transform`, a digest of their bytes (`Content-Digest`,
 *   `Repr-Digest`, RFC 9530), already-compressed types (images but SVG,
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
import { type Context, isStreamBody, type Middleware } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { hasDirective } from '../conditional/cache-control.js';
import {
  bodyBuffer,
  carriesDigest,
  type EncodingNegotiation,
  type EncodingPlan,
  getReplacedRepresentation,
  type RepresentationFacts,
  setEncodingNegotiation,
} from '../conditional/encoding.js';
import { encodingETag } from '../conditional/etag-list.js';
import { vary } from '../conditional/vary.js';
import { compressible, isEventStream, mediaType } from './compressible.js';
import { type Coding, negotiateEncoding } from './negotiate.js';

export { compressible } from './compressible.js';
export {
  type AcceptedCoding,
  type Coding,
  type Negotiated,
  negotiateEncoding,
  parseAcceptEncoding,
} from './negotiate.js';

/** Options of {@link compression}. */
export interface CompressionOptions {
  /**
   * Smallest body, in bytes, that is compressed: a body of at least
   * `threshold` bytes is compressed, a shorter one is sent as is (1023 bytes
   * are not compressed, 1024 are). Below about 1 KB the framing and CPU cost
   * more than the bytes saved. Streaming bodies are always compressed.
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
   * Whether a media type is worth compressing. Receives the bare media type of
   * the response's `Content-Type`, lower case and without parameters
   * (`application/json` for `application/json; charset=utf-8`). Responses
   * without a `Content-Type` are never compressed (they may be anything).
   * @default compressible: everything but images (SVG aside), video, audio, archives and WOFF fonts
   */
  filter?: (mediaType: string) => boolean;
}

const CODINGS: readonly Coding[] = ['br', 'gzip', 'deflate'];
const OPTION_NAMES = ['threshold', 'encodings', 'brotliQuality', 'gzipLevel', 'filter'] as const;
const OPTION_HINTS: Record<string, string> = {
  level: 'Use "gzipLevel" (gzip and deflate) or "brotliQuality" (brotli).',
  quality: 'Did you mean "brotliQuality"?',
};

/**
 * Negotiation results kept per distinct `Accept-Encoding` value. Clients send
 * a handful of distinct values (each browser family one), so a few hundred
 * entries hold all of them; a cache, so hostile variety only evicts.
 */
const NEGOTIATIONS_KEPT = 256;
/** Longer values are negotiated every time rather than kept (no browser sends one). */
const LONGEST_KEPT = 256;
const NO_PLAN: EncodingPlan = Object.freeze({ varies: false, coding: undefined });

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

/**
 * A complete body's length in bytes, as far as the threshold needs it: a
 * string of at least `threshold` UTF-16 units has at least as many UTF-8
 * bytes, and one of fewer than a third of it fewer, so most strings are
 * decided without walking them.
 */
function byteLength(body: string | Uint8Array, threshold: number): number {
  if (typeof body !== 'string') return body.byteLength;
  if (body.length >= threshold || body.length * 3 < threshold) return body.length;
  return Buffer.byteLength(body, 'utf8');
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
  checkOptions('compression', options, OPTION_NAMES, OPTION_HINTS);
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

  /** Whether a 200 with these facts depends on Accept-Encoding: whether it would be coded for a client that asks. */
  function varies(facts: RepresentationFacts): boolean {
    const encoding = facts.contentEncoding;
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return false;
    if (hasDirective(facts.cacheControl, 'no-transform')) return false;
    // A digest of the identity bytes would not match the coded ones (RFC 9530).
    if (facts.digested) return false;
    const type = facts.contentType;
    // Server-Sent Events are never compressed: see docs/caching.md.
    if (type === undefined || isEventStream(type)) return false;
    const media = mediaType(type);
    if (media.length === 0 || !filter(media)) return false;
    return facts.size === undefined || facts.size >= threshold;
  }

  /**
   * One negotiation per distinct Accept-Encoding value: immutable, shared by
   * every request that sent the same value, so a request allocates nothing.
   */
  class Negotiation implements EncodingNegotiation {
    readonly codings = offered;
    private readonly coded: EncodingPlan;
    constructor(readonly coding: Coding | undefined) {
      this.coded = Object.freeze({ varies: true, coding });
    }
    plan(facts: RepresentationFacts): EncodingPlan {
      return varies(facts) ? this.coded : NO_PLAN;
    }
  }
  const negotiate = (header: string | undefined): Negotiation => {
    const negotiated = negotiateEncoding(header, offered);
    // `undefined`: identity refused and nothing of ours acceptable. restwell sends
    // identity rather than 406 (RFC 9110 §12.1 lets a server disregard a
    // preference it cannot meet); a readable answer beats an error.
    return new Negotiation(
      negotiated === 'identity' || negotiated === undefined ? undefined : negotiated,
    );
  };
  const withoutHeader = negotiate(undefined);
  const kept = new Map<string, Negotiation>();
  function negotiationFor(header: string | undefined): Negotiation {
    if (header === undefined) return withoutHeader;
    if (header.length > LONGEST_KEPT) return negotiate(header);
    const hit = kept.get(header);
    if (hit !== undefined) return hit;
    const fresh = negotiate(header);
    // Least recently added goes first: Map keeps insertion order.
    if (kept.size >= NEGOTIATIONS_KEPT) kept.delete(kept.keys().next().value as string);
    kept.set(header, fresh);
    return fresh;
  }

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
  const streamCompressors: Record<Coding, (source: Readable) => Transform> = {
    br: (source) =>
      compressStream(
        source,
        createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: brotliQuality } }),
        constants.BROTLI_OPERATION_FLUSH,
      ),
    gzip: (source) => compressStream(source, createGzip(zlibOptions), constants.Z_SYNC_FLUSH),
    deflate: (source) => compressStream(source, createDeflate(zlibOptions), constants.Z_SYNC_FLUSH),
  };

  /** Labels the response as the `coding` variant: its own strong ETag, no byte ranges. */
  function label(ctx: Context, coding: Coding): void {
    const headers = ctx.response.headers;
    headers.set('Content-Encoding', coding);
    // Ranges of the identity bytes would not splice with coded ones (a resumed download).
    headers.delete('accept-ranges');
    const etag = headers.get('etag');
    if (etag !== undefined) headers.set('ETag', encodingETag(etag, coding));
  }

  return async function compress(ctx, next) {
    const negotiation = negotiationFor(ctx.request.header('accept-encoding'));
    setEncodingNegotiation(ctx, negotiation);

    await next();

    const { response } = ctx;
    const headers = response.headers;
    const status = response.status;
    if (status === 304) {
      // A 304 carries the Vary its 200 would have had (RFC 9110 §15.4.5): known
      // when conditional() replaced that 200; otherwise assumed compressible.
      const replaced = getReplacedRepresentation(ctx);
      const variesToo =
        replaced === undefined
          ? !hasDirective(headers.get('cache-control'), 'no-transform')
          : varies(replaced);
      if (variesToo) vary(headers, 'Accept-Encoding');
      return;
    }
    if (untouched(status)) return;

    const body = response.body;
    const head = ctx.request.method === 'HEAD';
    // A body the framework dropped (HEAD on Express): `null`, with the length the
    // handler computed for GET still in Content-Length.
    const dropped = body === null;
    if (dropped && !head) return;
    const streaming = isStreamBody(body);
    let size: number | undefined;
    if (dropped) {
      const length = headers.get('content-length');
      // Unknown: the GET may be a stream, and compressed; it varies, but no coding is claimed.
      if (length === undefined) size = undefined;
      else size = Number(length);
      if (size !== undefined && !Number.isSafeInteger(size)) return;
    } else if (!streaming) {
      size = byteLength(body as string | Uint8Array, threshold);
    }
    const plan = negotiation.plan({
      contentType: headers.get('content-type'),
      contentEncoding: headers.get('content-encoding'),
      cacheControl: headers.get('cache-control'),
      digested: carriesDigest(headers),
      size,
    });
    if (!plan.varies) return;
    vary(headers, 'Accept-Encoding');
    const coding = plan.coding as Coding | undefined;
    if (coding === undefined) return;

    // HEAD mirrors GET (RFC 9110 §9.3.2): the same Content-Encoding, ETag and
    // Vary. Where the body is visible (Koa, a body set by a middleware) it is
    // compressed like GET's, so Content-Length is the coded length; where the
    // framework dropped it, the identity length would lie and is removed.
    if (dropped) {
      if (size === undefined) return;
      label(ctx, coding);
      headers.delete('content-length');
      return;
    }
    if (streaming) {
      const source =
        body instanceof Readable
          ? body
          : Readable.fromWeb(body as NodeWebReadableStream<Uint8Array>);
      const compressor = streamCompressors[coding](source);
      label(ctx, coding);
      headers.delete('content-length');
      response.body = compressor;
      return;
    }
    const output = await compressBody(coding, bodyBuffer(ctx, body as string | Uint8Array));
    label(ctx, coding);
    headers.set('Content-Length', output.byteLength);
    response.body = output;
  };
}
