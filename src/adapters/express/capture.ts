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
 *
 * The interceptors are installed once, on the Express response prototype
 * (see `installHeadInterceptor`), and find the request's capture through the
 * request's state: a request pays no property writes on its response, whose
 * shape stays the one Node's own hot paths are optimised for (assigning four
 * methods and a symbol to every `ServerResponse` cost about 20 µs a request,
 * most of it in the slower paths the changed shape sends Node's own code
 * down). A capture intercepts nothing until the chain passes the request on
 * (`arm()`): a middleware that answers on its own (a replay, a 429, a 304)
 * writes straight through. When something else (an Express middleware mounted
 * earlier: express-session, compression) has already put its own methods on
 * the response, the capture installs its interceptors on the response itself,
 * over those, so that the layering stays what it always was: restwell sees
 * the handler's response first, and sends it through their methods.
 */
import { toBuffer } from '../../core/bytes.js';
import type { ServerResponse } from 'node:http';
import { PassThrough, pipeline, Readable, Writable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import type { ResponseBody, ResponseView } from '../../core/context.js';
import { NodeResponseHeaders } from '../../core/node.js';
import {
  clearForLastResort,
  destroyBody,
  isEmptyStatus,
  LAST_RESORT_CONTENT_TYPE,
  lastResortProblem,
  releaseReplaced,
} from '../../core/response.js';

type WriteCallback = (err?: Error | null) => void;
type Chunk = string | Uint8Array;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

type AnyWrite = (
  this: ServerResponse,
  chunk: Chunk,
  encoding?: BufferEncoding | WriteCallback,
  cb?: WriteCallback,
) => boolean;
type AnyEnd = (
  this: ServerResponse,
  chunk?: Chunk | (() => void),
  encoding?: BufferEncoding | (() => void),
  cb?: () => void,
) => ServerResponse;
type AnyWriteHead = (
  this: ServerResponse,
  statusCode: number,
  ...rest: unknown[]
) => ServerResponse;

const CAPTURE = Symbol('restwell.capture');
type CapturedResponse = ServerResponse & { [CAPTURE]?: ResponseCapture };

/** Node's own methods, as found where the interceptors were installed. */
interface NodeMethods {
  readonly write: AnyWrite;
  readonly end: AnyEnd;
  readonly flushHeaders: () => void;
}
const NODE_METHODS = Symbol('restwell.nodeMethods');
/** Marks the prototype that holds the adapter's `writeHead`: where the other interceptors go. */
const HEAD_OWNER = Symbol('restwell.headOwner');

/** Where the adapter keeps a request's state (on Express's request). */
export const STATE = Symbol.for('restwell.express.state');
interface CaptureHolder {
  capture: ResponseCapture | undefined;
}
type ProtoResponse = ServerResponse & {
  req?: { [STATE]?: CaptureHolder };
  [NODE_METHODS]?: NodeMethods;
};

/** The capture armed on this response, whichever way it intercepts. */
function armedCapture(res: ServerResponse): ResponseCapture | undefined {
  const c = (res as ProtoResponse).req?.[STATE]?.capture;
  return c?.armed ? c : undefined;
}

/** The capture intercepting through the prototype's methods, if any. */
function protoCapture(res: ProtoResponse): ResponseCapture | undefined {
  const c = res.req?.[STATE]?.capture;
  return c?.viaPrototype ? c : undefined;
}

/** Whether a capture holds this response back (and has not sent it yet). */
export function isCapturing(res: ServerResponse): boolean {
  const c = armedCapture(res);
  return c !== undefined && !c.flushed;
}

/** The capture holding this response, if any (sent or not). */
export function captureOf(res: ServerResponse): ResponseCapture | undefined {
  return armedCapture(res);
}

function define(proto: object, name: string | symbol, value: unknown): void {
  Object.defineProperty(proto, name, { configurable: true, writable: true, value });
}

/**
 * Installs the adapter's `writeHead` on `proto` (Express's response
 * prototype), once: it holds the head while a capture does, and otherwise
 * runs `writeHead` (the adapter's head invariants), made from Node's own.
 * The body interceptors join it when a capture is first armed
 * ({@link ResponseCapture.arm}): apps whose mounts never read the response
 * keep Node's own `write` and `end`.
 */
export function installHeadInterceptor(
  proto: object,
  writeHead: (
    nodeWriteHead: AnyWriteHead,
  ) => (
    this: ServerResponse,
    statusCode: number,
    reason?: unknown,
    headers?: unknown,
  ) => ServerResponse,
): void {
  if (HEAD_OWNER in proto) return;
  const head = writeHead((proto as { writeHead: AnyWriteHead }).writeHead);
  define(proto, HEAD_OWNER, true);
  define(
    proto,
    'writeHead',
    function writeHead(
      this: ProtoResponse,
      statusCode: number,
      reason?: unknown,
      headers?: unknown,
    ): ServerResponse {
      const c = protoCapture(this);
      if (c === undefined || c.flushed) return head.call(this, statusCode, reason, headers);
      c.writeHead(statusCode, [reason, headers]);
      return this;
    },
  );
}

/** Installs `write`, `end` and `flushHeaders` beside the adapter's `writeHead`; Node's own, or `undefined` when there is none. */
function installBodyInterceptors(res: ServerResponse): NodeMethods | undefined {
  let proto = Object.getPrototypeOf(res) as Record<string | symbol, unknown> | null;
  while (proto !== null && !Object.hasOwn(proto, HEAD_OWNER)) proto = Object.getPrototypeOf(proto);
  if (proto === null) return undefined;
  const node: NodeMethods = {
    write: proto.write as AnyWrite,
    end: proto.end as AnyEnd,
    flushHeaders: proto.flushHeaders as () => void,
  };
  define(proto, NODE_METHODS, node);
  define(
    proto,
    'write',
    function write(
      this: ProtoResponse,
      chunk: Chunk,
      encoding?: BufferEncoding | WriteCallback,
      cb?: WriteCallback,
    ): boolean {
      const c = protoCapture(this);
      if (c === undefined || c.released) return node.write.call(this, chunk, encoding, cb);
      if (typeof encoding === 'function') return c.write(chunk, undefined, encoding);
      return c.write(chunk, encoding, cb);
    },
  );
  define(
    proto,
    'end',
    function end(
      this: ProtoResponse,
      chunk?: Chunk | (() => void),
      encoding?: BufferEncoding | (() => void),
      cb?: () => void,
    ): ServerResponse {
      const c = protoCapture(this);
      if (c === undefined || c.released) return node.end.call(this, chunk, encoding, cb);
      if (typeof chunk === 'function') c.end(undefined, undefined, chunk);
      else if (typeof encoding === 'function') c.end(chunk, undefined, encoding);
      else c.end(chunk, encoding, cb);
      return this;
    },
  );
  define(proto, 'flushHeaders', function flushHeaders(this: ProtoResponse): void {
    const c = protoCapture(this);
    if (c === undefined || c.flushed) node.flushHeaders.call(this);
    else c.startStreaming();
  });
  return node;
}

// Once the response is flushed the interceptors stay installed and delegate to
// Node's own methods: putting the originals back would change the fields'
// values on every response and cost more than the delegation.

function capturedWriteHead(
  this: CapturedResponse,
  statusCode: number,
  ...rest: unknown[]
): ServerResponse {
  const c = this[CAPTURE]!;
  if (c.flushed) return c.origWriteHead.call(this, statusCode, ...rest);
  c.writeHead(statusCode, rest);
  return this;
}

function capturedWrite(
  this: CapturedResponse,
  chunk: Chunk,
  encoding?: BufferEncoding | WriteCallback,
  cb?: WriteCallback,
): boolean {
  const c = this[CAPTURE]!;
  if (c.released) return c.origWrite.call(this, chunk, encoding, cb);
  if (typeof encoding === 'function') return c.write(chunk, undefined, encoding);
  return c.write(chunk, encoding, cb);
}

function capturedEnd(
  this: CapturedResponse,
  chunk?: Chunk | (() => void),
  encoding?: BufferEncoding | (() => void),
  cb?: () => void,
): ServerResponse {
  const c = this[CAPTURE]!;
  if (c.released) return c.origEnd.call(this, chunk, encoding, cb);
  if (typeof chunk === 'function') c.end(undefined, undefined, chunk);
  else if (typeof encoding === 'function') c.end(chunk, undefined, encoding);
  else c.end(chunk, encoding, cb);
  return this;
}

function capturedFlushHeaders(this: CapturedResponse): void {
  const c = this[CAPTURE]!;
  if (c.flushed) c.origFlushHeaders.call(this);
  else c.startStreaming();
}

export class ResponseCapture implements ResponseView {
  readonly headers: NodeResponseHeaders;
  /** Mounts waiting for the downstream response, innermost last. */
  private readonly waiters: Waiter[] = [];
  // The body as written: usually one chunk from `res.send()`, kept as given (no copy).
  private first: Chunk | undefined;
  private firstEncoding: BufferEncoding | undefined;
  private rest: Buffer[] | undefined;
  private size = 0;
  private stream: PassThrough | undefined;
  /** Streams the handler piped into the response. */
  readonly pipedSources: Readable[] = [];
  private replacedBody: ResponseBody = null;
  private bodyReplaced = false;
  /** True once the downstream has answered (ended, or switched to streaming). */
  settled = false;
  /** The restwell middlewares are done: the head goes out through Node's own methods. */
  flushed = false;
  /** Writes go to Node's own methods too (a buffered response, once flushed). */
  released = false;
  /** Intercepting: the chain passed the request on. */
  armed = false;
  /** Intercepting through the prototype's methods (else through the response's own properties). */
  viaPrototype = false;
  // Where the response goes once released: Node's own methods, or what the
  // response had before the capture was armed.
  origWriteHead!: AnyWriteHead;
  origWrite!: AnyWrite;
  origEnd!: AnyEnd;
  origFlushHeaders!: () => void;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferedBytes: number,
    private readonly isHead: boolean,
    headers: NodeResponseHeaders,
  ) {
    this.headers = headers;
  }

  /**
   * Starts holding the response back: called when the chain passes the request
   * on, so that a middleware that answers on its own costs no interception.
   */
  arm(): void {
    if (this.armed) return;
    this.armed = true;
    const r = this.res as ProtoResponse & CapturedResponse;
    const own =
      Object.hasOwn(r, 'writeHead') ||
      Object.hasOwn(r, 'write') ||
      Object.hasOwn(r, 'end') ||
      Object.hasOwn(r, 'flushHeaders');
    const node = own ? undefined : (r[NODE_METHODS] ?? installBodyInterceptors(r));
    if (node !== undefined) {
      this.viaPrototype = true;
      this.origWrite = node.write;
      this.origEnd = node.end;
      this.origFlushHeaders = node.flushHeaders;
      return;
    }
    this.origWriteHead = r.writeHead as AnyWriteHead;
    this.origWrite = r.write as AnyWrite;
    this.origEnd = r.end as AnyEnd;
    this.origFlushHeaders = r.flushHeaders;
    r[CAPTURE] = this;
    r.writeHead = capturedWriteHead as ServerResponse['writeHead'];
    r.write = capturedWrite as ServerResponse['write'];
    r.end = capturedEnd as ServerResponse['end'];
    r.flushHeaders = capturedFlushHeaders;
  }

  get status(): number {
    return this.res.statusCode;
  }

  set status(value: number) {
    this.res.statusCode = value;
  }

  get body(): ResponseBody {
    if (this.bodyReplaced) return this.replacedBody;
    if (this.stream) return this.stream;
    if (this.first === undefined) return null;
    if (this.rest === undefined) {
      if (
        typeof this.first === 'string' &&
        (this.firstEncoding === undefined ||
          this.firstEncoding === 'utf8' ||
          this.firstEncoding === 'utf-8')
      ) {
        return this.first;
      }
      this.first = toBuffer(this.first, this.firstEncoding);
      this.firstEncoding = undefined;
      return this.first;
    }
    const all = Buffer.concat([toBuffer(this.first, this.firstEncoding), ...this.rest], this.size);
    this.first = all;
    this.firstEncoding = undefined;
    this.rest = undefined;
    return all;
  }

  set body(value: ResponseBody) {
    // The stream a handler is writing (or one a module set) that this body replaces.
    releaseReplaced(this.res, this.bodyReplaced ? this.replacedBody : this.stream, value);
    this.bodyReplaced = true;
    this.replacedBody = value;
  }

  /** Registers a mount waiting for the downstream response. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  /** Settles the innermost waiting mount: the downstream answered, or failed. */
  settleInnermost(err?: unknown): boolean {
    const waiter = this.waiters.pop();
    if (waiter === undefined) return false;
    if (err === undefined) waiter.resolve();
    else waiter.reject(err);
    return true;
  }

  writeHead(statusCode: number, rest: unknown[]): void {
    const res = this.res;
    res.statusCode = statusCode;
    let headers = rest[0];
    if (typeof headers === 'string') {
      res.statusMessage = headers;
      headers = rest[1];
    }
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
  }

  private append(chunk: Chunk, encoding: BufferEncoding | undefined): void {
    if (this.first === undefined) {
      this.first = chunk;
      this.firstEncoding = encoding;
      this.size = typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength;
      return;
    }
    const buf = toBuffer(chunk, encoding);
    if (this.rest === undefined) this.rest = [buf];
    else this.rest.push(buf);
    this.size += buf.length;
  }

  write(
    chunk: Chunk,
    encoding: BufferEncoding | undefined,
    cb: WriteCallback | undefined,
  ): boolean {
    if (this.stream) return this.stream.write(toBuffer(chunk, encoding), cb);
    if (this.settled) return false;
    this.append(chunk, encoding);
    if (cb) process.nextTick(cb);
    const type = this.res.getHeader('content-type');
    if (
      this.size > this.maxBufferedBytes ||
      (typeof type === 'string' && type.startsWith('text/event-stream'))
    ) {
      this.startStreaming();
    }
    return true;
  }

  end(
    chunk: Chunk | undefined,
    encoding: BufferEncoding | undefined,
    cb: (() => void) | undefined,
  ): void {
    if (cb) this.res.once('finish', cb);
    if (this.stream) {
      if (chunk !== undefined && chunk !== null) this.stream.end(toBuffer(chunk, encoding));
      else this.stream.end();
      return;
    }
    if (this.settled) return;
    if (chunk !== undefined && chunk !== null && chunk.length > 0) this.append(chunk, encoding);
    this.settled = true;
    this.settleInnermost();
  }

  /** Switches to streaming: what was written so far and all later writes flow through a stream. */
  startStreaming(): void {
    if (this.stream || this.settled) return;
    const stream = new PassThrough();
    if (this.first !== undefined) stream.write(toBuffer(this.first, this.firstEncoding));
    for (const chunk of this.rest ?? []) stream.write(chunk);
    this.first = undefined;
    this.rest = undefined;
    this.size = 0;
    // Producers wait for 'drain' on the response when write() returns false.
    stream.on('drain', () => this.res.emit('drain'));
    // A stream piped into the response (`fs.createReadStream(f).pipe(res)`)
    // must stop when what it feeds is discarded (a 304 drops the body, a
    // problem replaces it): otherwise it stays paused, holding its file open.
    stream.once('close', () => {
      for (const source of this.pipedSources) {
        if (!source.destroyed && !source.readableEnded) source.destroy();
      }
    });
    this.stream = stream;
    this.settled = true;
    this.settleInnermost();
  }

  /**
   * A stream piped into the response failed: the body cannot be completed.
   * While the handler is still writing, the mounts waiting for the downstream
   * see the error (the outermost renders it as a problem); once the body has
   * become a stream, that stream fails, which aborts the response.
   */
  fail(err: Error): void {
    if (!this.settled) {
      this.settled = true;
      if (this.settleInnermost(err)) return;
    }
    // Without the error: before the flush no pipeline listens to the stream yet,
    // and its early close is enough for the pipeline to abort the response.
    if (this.stream !== undefined) this.stream.destroy();
    else if (!this.res.writableFinished) this.res.destroy(err);
  }

  /** Sends the (possibly replaced) response through Node's own methods. */
  flush(): void {
    if (this.flushed) return;
    this.flushed = true;
    const body = this.body;
    if (!this.armed) {
      // Nothing was intercepted: the chain answered on its own.
      this.released = true;
      const res = this.res;
      if (res.headersSent || res.writableEnded) {
        destroyBody(body);
        return;
      }
      sendResponse(
        res,
        body,
        this.isHead,
        this.bodyReplaced,
        res.write as AnyWrite,
        res.end as AnyEnd,
      );
      return;
    }
    // Node writes the head through `this.writeHead` on the first write, which
    // now delegates; write/end keep feeding the captured stream while a handler
    // is still streaming.
    if (this.stream === undefined) this.released = true;
    sendResponse(this.res, body, this.isHead, this.bodyReplaced, this.origWrite, this.origEnd);
  }

  /** Sends `body` as is through Node's own methods, whatever was captured (the last resort). */
  flushRaw(body: string): void {
    const stream = this.stream;
    this.flushed = true;
    this.released = true;
    if (stream !== undefined) destroyBody(stream);
    if (this.bodyReplaced) destroyBody(this.replacedBody);
    if (this.armed) this.origEnd.call(this.res, body);
    else this.res.end(body);
  }
}

/**
 * Writes a response whose head and body restwell decided. `write` and `end`
 * are Node's own methods (the captured response's originals, or the response's
 * methods when nothing was intercepted).
 */
export function sendResponse(
  res: ServerResponse,
  body: ResponseBody,
  isHead: boolean,
  bodyReplaced: boolean,
  write: AnyWrite,
  end: AnyEnd,
): void {
  // The head's own rules (the 304 allowlist, no framing on empty statuses) are
  // applied when it is written, for every response: see the adapter's writeHead.
  const streamed = body !== null && typeof body === 'object' && !(body instanceof Uint8Array);
  if (isEmptyStatus(res.statusCode) || (isHead && streamed)) {
    // No content (RFC 9110 §15.3.5, §15.4.5), or a HEAD: a stream nobody reads
    // would hold its source open.
    if (streamed) destroyBody(body);
    end.call(res);
    return;
  }
  if (streamed) {
    pipeStream(res, body, write, end);
    return;
  }
  // A complete body goes with its exact length, never beside a relayed
  // Transfer-Encoding (RFC 9112 §6.2); a HEAD gets the length GET would have
  // (RFC 9110 §9.3.2): the handler's, unless a module replaced the body.
  res.removeHeader('transfer-encoding');
  if (bodyReplaced || !res.hasHeader('content-length')) {
    res.setHeader(
      'content-length',
      body === null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
    );
  }
  if (isHead || body === null) end.call(res);
  else end.call(res, body);
}

/**
 * The answer when rendering the real one failed: a static 500 problem, sent
 * through Node's own methods. When the head is already out there is nothing
 * left to say: the response is aborted, so the client sees it is incomplete.
 */
export function sendLastResort(
  res: ServerResponse,
  capture: ResponseCapture | undefined,
  traceId: string | undefined,
  traceHeader: string | false,
): void {
  if (res.headersSent || res.writableEnded) {
    if (!res.writableFinished) res.destroy();
    return;
  }
  const body = lastResortProblem(traceId);
  // The policy headers (nosniff, HSTS, CORS, ...) hold for this answer too.
  clearForLastResort(res);
  res.statusCode = 500;
  res.setHeader('content-type', LAST_RESORT_CONTENT_TYPE);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (traceHeader !== false && traceId !== undefined) res.setHeader(traceHeader, traceId);
  if (capture !== undefined) capture.flushRaw(body);
  else res.end(body);
}

function pipeStream(
  res: ServerResponse,
  body: Readable | ReadableStream<Uint8Array>,
  write: AnyWrite,
  end: AnyEnd,
): void {
  const source =
    body instanceof Readable ? body : Readable.fromWeb(body as NodeWebReadableStream<Uint8Array>);
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      // Node calls back once the chunk is handed to the socket: backpressure without 'drain' bookkeeping.
      write.call(res, chunk, (err?: Error | null) => cb(err ?? null));
    },
    final(cb) {
      end.call(res, () => cb());
    },
  });
  // pipeline() tears both ends down on an error or an early close of either,
  // and owns the error: a failing upstream aborts this response, never the process.
  pipeline(source, sink, (err) => {
    if (err) res.destroy(err);
  });
  res.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
}

/**
 * The response view when no middleware of the request reads the final
 * response: nothing is intercepted. Status and headers are the response's own;
 * a body set by a middleware (an early answer, a problem) is sent by `send()`.
 */
export class DirectResponse implements ResponseView {
  readonly headers: NodeResponseHeaders;
  private value: ResponseBody = null;
  private assigned = false;

  constructor(
    readonly res: ServerResponse,
    private readonly isHead: boolean,
  ) {
    this.headers = new NodeResponseHeaders(res);
  }

  get status(): number {
    return this.res.statusCode;
  }

  set status(value: number) {
    this.res.statusCode = value;
  }

  get body(): ResponseBody {
    return this.value;
  }

  set body(value: ResponseBody) {
    releaseReplaced(this.res, this.value, value);
    this.value = value;
    this.assigned = true;
  }

  /** Sends the body a middleware set, unless the response is already on its way. */
  send(): void {
    if (this.res.headersSent || this.res.writableEnded) {
      // Answered already (the handler went on after a middleware's answer): nothing will read it.
      destroyBody(this.value);
      return;
    }
    sendResponse(
      this.res,
      this.value,
      this.isHead,
      this.assigned,
      this.res.write as AnyWrite,
      this.res.end as AnyEnd,
    );
  }
}
