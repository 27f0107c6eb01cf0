/**
 * Response capture for Express: Express handlers write straight to Node's
 * `ServerResponse`, so to let restwell middlewares see and replace the final
 * response, `writeHead`/`write`/`end` are intercepted on the response object
 * and the body is held until the middleware chain has unwound.
 *
 * Streaming responses are not held back: Server-Sent Events, `flushHeaders()`
 * and bodies written in many chunks beyond `maxBufferedBytes` switch to
 * streaming, where the body becomes a stream that is piped to the socket as
 * soon as the chain has unwound.
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { ResponseBody, ResponseView } from '../../core/context.js';
import { NodeResponseHeaders } from '../../core/node.js';

type WriteCallback = (err?: Error | null) => void;
type Chunk = string | Uint8Array;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

const EMPTY_STATUSES = new Set([204, 205, 304]);

function toBuffer(chunk: Chunk, encoding?: BufferEncoding): Buffer {
  return typeof chunk === 'string'
    ? Buffer.from(chunk, encoding ?? 'utf8')
    : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export class ResponseCapture implements ResponseView {
  readonly headers: NodeResponseHeaders;
  /** Mounts waiting for the downstream response, innermost last. */
  private readonly waiters: Waiter[] = [];
  private chunks: Buffer[] = [];
  private size = 0;
  private stream: PassThrough | undefined;
  private replacedBody: ResponseBody | undefined;
  private bodyReplaced = false;
  /** True once the downstream has answered (ended, or switched to streaming). */
  settled = false;
  flushed = false;
  private readonly originals: {
    writeHead: ServerResponse['writeHead'];
    write: ServerResponse['write'];
    end: ServerResponse['end'];
    flushHeaders: ServerResponse['flushHeaders'];
  };
  // The same functions, typed by the one call shape this file uses.
  private readonly rawWrite: (
    this: ServerResponse,
    chunk: Uint8Array,
    cb: WriteCallback,
  ) => boolean;
  private readonly rawEnd: (this: ServerResponse, chunk?: Uint8Array | (() => void)) => void;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferedBytes: number,
    private readonly isHead: boolean,
  ) {
    this.headers = new NodeResponseHeaders(res);
    this.originals = {
      writeHead: res.writeHead,
      write: res.write,
      end: res.end,
      flushHeaders: res.flushHeaders,
    };
    this.rawWrite = res.write as unknown as typeof this.rawWrite;
    this.rawEnd = res.end as unknown as typeof this.rawEnd;
    this.intercept();
  }

  get status(): number {
    return this.res.statusCode;
  }

  set status(value: number) {
    this.res.statusCode = value;
  }

  get body(): ResponseBody {
    if (this.bodyReplaced) return this.replacedBody ?? null;
    if (this.stream) return this.stream;
    if (this.chunks.length === 0) return null;
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? null;
  }

  set body(value: ResponseBody) {
    this.bodyReplaced = true;
    this.replacedBody = value;
  }

  /** Registers a mount waiting for the downstream response. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  /** Whether any mount is waiting for the downstream. */
  get waiting(): boolean {
    return this.waiters.length > 0;
  }

  /** Settles the innermost waiting mount: the downstream answered, or failed. */
  settleInnermost(err?: unknown): boolean {
    const waiter = this.waiters.pop();
    if (waiter === undefined) return false;
    if (err === undefined) waiter.resolve();
    else waiter.reject(err);
    return true;
  }

  private intercept(): void {
    const res = this.res;
    const self = this;
    res.writeHead = function writeHead(
      this: ServerResponse,
      statusCode: number,
      ...rest: unknown[]
    ): ServerResponse {
      self.status = statusCode;
      const headers = typeof rest[0] === 'string' ? rest[1] : rest[0];
      if (typeof rest[0] === 'string') res.statusMessage = rest[0];
      if (Array.isArray(headers)) {
        // flat [name, value, name, value] or [[name, value], ...]
        if (Array.isArray(headers[0])) {
          for (const [k, v] of headers as [string, string][]) res.setHeader(k, v);
        } else {
          for (let i = 0; i + 1 < headers.length; i += 2)
            res.setHeader(String(headers[i]), headers[i + 1]);
        }
      } else if (headers !== null && typeof headers === 'object') {
        for (const [k, v] of Object.entries(
          headers as Record<string, string | string[] | number | undefined>,
        )) {
          if (v !== undefined) res.setHeader(k, v);
        }
      }
      return res;
    } as ServerResponse['writeHead'];

    res.write = function write(
      chunk: Chunk,
      encoding?: BufferEncoding | WriteCallback,
      cb?: WriteCallback,
    ): boolean {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (self.flushed && !self.stream) return false;
      if (self.stream) return self.stream.write(toBuffer(chunk, encoding), cb);
      self.chunks.push(toBuffer(chunk, encoding));
      self.size += self.chunks[self.chunks.length - 1]!.length;
      if (cb) process.nextTick(cb);
      const type = String(res.getHeader('content-type') ?? '');
      if (self.size > self.maxBufferedBytes || type.startsWith('text/event-stream'))
        self.startStreaming();
      return true;
    } as ServerResponse['write'];

    res.end = function end(
      chunk?: Chunk | (() => void),
      encoding?: BufferEncoding | (() => void),
      cb?: () => void,
    ): ServerResponse {
      if (typeof chunk === 'function') {
        cb = chunk;
        chunk = undefined;
      } else if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (cb) res.once('finish', cb);
      if (self.stream) {
        if (chunk !== undefined && chunk !== null)
          self.stream.end(toBuffer(chunk, encoding as BufferEncoding | undefined));
        else self.stream.end();
        return res;
      }
      if (self.settled) return res;
      if (chunk !== undefined && chunk !== null && (chunk as Chunk).length > 0) {
        self.chunks.push(toBuffer(chunk as Chunk, encoding as BufferEncoding | undefined));
        self.size += self.chunks[self.chunks.length - 1]!.length;
      }
      self.settled = true;
      self.settleInnermost();
      return res;
    } as ServerResponse['end'];

    res.flushHeaders = function flushHeaders(): void {
      self.startStreaming();
    };
  }

  /** Switches to streaming: what was written so far and all later writes flow through a stream. */
  private startStreaming(): void {
    if (this.stream || this.settled) return;
    const stream = new PassThrough();
    for (const chunk of this.chunks) stream.write(chunk);
    this.chunks = [];
    this.size = 0;
    // Producers wait for 'drain' on the response when write() returns false.
    stream.on('drain', () => this.res.emit('drain'));
    this.stream = stream;
    this.settled = true;
    this.settleInnermost();
  }

  /** Restores Node's own methods and sends the (possibly replaced) response. */
  flush(): void {
    if (this.flushed) return;
    this.flushed = true;
    const res = this.res;
    const { writeHead, write, end } = this.originals;
    const { rawWrite, rawEnd } = this;
    const body = this.body;
    // Node writes the head through `this.writeHead` on the first write, so it is
    // restored in every case; write/end stay intercepted while a handler is
    // still streaming into the captured body.
    res.writeHead = writeHead;
    res.flushHeaders = this.originals.flushHeaders;
    if (this.stream === undefined) {
      res.write = write;
      res.end = end;
    }
    if (EMPTY_STATUSES.has(res.statusCode)) {
      // RFC 9110 §15.3.5, §15.4.5: no content; framing headers would lie.
      res.removeHeader('content-length');
      res.removeHeader('transfer-encoding');
      if (res.statusCode !== 304) res.removeHeader('content-type');
      rawEnd.call(res);
      return;
    }
    if (body !== null && typeof body === 'object' && !(body instanceof Uint8Array)) {
      this.pipeStream(body, rawWrite, rawEnd);
      return;
    }
    const bytes = body === null ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
    // A HEAD response keeps the Content-Length the handler computed for GET.
    if (!this.isHead) res.setHeader('content-length', bytes === undefined ? 0 : bytes.byteLength);
    if (bytes === undefined || this.isHead) rawEnd.call(res);
    else rawEnd.call(res, bytes);
  }

  private pipeStream(
    body: Readable | ReadableStream<Uint8Array>,
    write: ResponseCapture['rawWrite'],
    end: ResponseCapture['rawEnd'],
  ): void {
    const res = this.res;
    const source =
      body instanceof Readable
        ? body
        : Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        // Node calls back once the chunk is handed to the socket: backpressure without 'drain' bookkeeping.
        write.call(res, chunk, (err?: Error | null) => cb(err ?? null));
      },
      final(cb) {
        end.call(res, () => cb());
      },
    });
    source.on('error', (err) => {
      sink.destroy(err);
      res.destroy(err);
    });
    res.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    source.pipe(sink);
  }
}
