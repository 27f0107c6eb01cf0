/**
 * `hardenServer()`: makes the errors Node's HTTP parser answers by itself
 * problem details too, and sets server timeouts a public API wants.
 *
 * Some requests never reach a framework: a header with a control character,
 * bad framing (`Content-Length` with `Transfer-Encoding`), a header block over
 * `maxHeaderSize`, a client that stalls before finishing its request. Node
 * answers those itself, with a bare `400 Bad Request` and no trace id. Once
 * hardened, the server answers them as `application/problem+json` with a
 * trace id (the client's `traceparent` when it can be read, else a new one),
 * the status that fits (400, 408, 413, 431) and `Connection: close`, and logs
 * them at warn level, at most one line per `logIntervalMs`.
 *
 * Framework-free: works on the `http.Server` (or `https.Server`) that
 * `app.listen()` returns for Express and Koa, or one you create. Exported
 * from `restwell`. Details and defaults: docs/core.md.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * const server = hardenServer(createServer(app), { logger });
 * server.listen(3000);
 * ```
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { checkOptions, invalidOption, type RestwellErrorCode } from './errors.js';
import { defaultLogger, type Logger, LogThrottle } from './logger.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';
import { generateTraceId, parseTraceparent } from './trace.js';

/** Options of {@link hardenServer}: the server timeouts, validated once, and where warnings go. */
export interface HardenServerOptions {
  /**
   * Most milliseconds a client may take to send the whole header block
   * (`server.headersTimeout`); then it gets 408. Short, because a client that
   * trickles headers (Slowloris) holds a connection for nothing.
   * @default 10_000
   */
  headersTimeout?: number;
  /**
   * Most milliseconds a client may take to send the whole request, body
   * included (`server.requestTimeout`); then it gets 408. `0` disables it.
   * Raise it for routes that take large uploads. Must be at least
   * `headersTimeout` (Node requires it).
   * @default 60_000
   */
  requestTimeout?: number;
  /**
   * Milliseconds an idle keep-alive connection stays open
   * (`server.keepAliveTimeout`). Behind a load balancer, set it above the
   * balancer's idle timeout (for example 65_000 behind one that waits 60 s), so
   * that the balancer never reuses a connection the server is closing.
   * @default 5_000
   */
  keepAliveTimeout?: number;
  /**
   * How often Node checks connections against `headersTimeout` and
   * `requestTimeout` (`server.connectionsCheckingInterval`), so how late a
   * stalled client may be answered. Node reads it when the server starts
   * listening: giving it to a server that already listens throws.
   * @default Node's, 30_000
   */
  connectionsCheckingInterval?: number;
  /** Where the warnings go. @default one JSON line per entry on stderr */
  logger?: Logger;
  /** Fewest milliseconds between two warnings; the ones held back are counted. @default 10_000 */
  logIntervalMs?: number;
  /**
   * Response header that carries the trace id, as on the adapters; `false` to
   * send none (the document still has `traceId`).
   * @default 'Trace-Id'
   */
  traceHeader?: string | false;
}

const OPTION_NAMES = [
  'headersTimeout',
  'requestTimeout',
  'keepAliveTimeout',
  'connectionsCheckingInterval',
  'logger',
  'logIntervalMs',
  'traceHeader',
] as const;
const OPTION_HINTS: Readonly<Record<string, string>> = {
  timeout: 'Use headersTimeout and requestTimeout.',
  maxHeaderSize:
    'Node reads maxHeaderSize only when the server is created: createServer({ maxHeaderSize }).',
};

/** Longest wait for a client to close after its answer was sent. */
const LINGER_MS = 5_000;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HANDLER = Symbol.for('restwell.clientErrorHandler');
const EXPECTATION_HANDLER = Symbol.for('restwell.checkExpectationHandler');

type HardenableServer = HttpServer | HttpsServer;

interface ParserError extends Error {
  code?: string;
  rawPacket?: Buffer;
}

type ClientErrorListener = (err: ParserError, socket: Duplex) => void;
type ExpectationListener = (req: IncomingMessage, res: ServerResponse) => void;

interface Answer {
  status: 400 | 408 | 413 | 431;
  code: RestwellErrorCode;
  detail: string;
}

/** What each parser or server error means for the client. Details are fixed texts, safe to show. */
function answerFor(code: string | undefined): Answer {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'request-header-fields-too-large',
        detail: 'The request line and headers are larger than the server accepts.',
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: 413,
        code: 'payload-too-large',
        detail: 'The chunk extensions of the body are larger than the server accepts.',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'request-timeout',
        detail: 'The request was not received in time.',
      };
    case 'HPE_INVALID_HEADER_TOKEN':
      return {
        status: 400,
        code: 'bad-request',
        detail: 'A header field holds a character HTTP does not allow (RFC 9110 §5.1, §5.5).',
      };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return {
        status: 400,
        code: 'bad-request',
        detail: 'The message framing is invalid (RFC 9112 §6).',
      };
    default:
      return { status: 400, code: 'bad-request', detail: 'The request is not valid HTTP/1.1.' };
  }
}

/** A client's trace id, when the bytes parsed so far hold a valid `traceparent`. */
function traceIdFrom(raw: Buffer | undefined): string | undefined {
  if (raw === undefined || !Buffer.isBuffer(raw)) return undefined;
  const head = raw.toString('latin1', 0, Math.min(raw.length, 16_384));
  const m = /\r\ntraceparent[ \t]*:[ \t]*([^\r\n]{55,512})\r\n/i.exec(head);
  return m?.[1] === undefined ? undefined : parseTraceparent(m[1].trim());
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function positiveMs(name: string, value: unknown, zeroAllowed: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 0 ||
    (!zeroAllowed && value === 0)
  ) {
    invalidOption(
      'hardenServer',
      name,
      zeroAllowed ? 'a non-negative integer of milliseconds' : 'a positive integer of milliseconds',
      value,
    );
  }
  return value;
}

/**
 * Installs the `clientError` handler (and, unless the application has one,
 * a `checkExpectation` handler answering 417 as a problem) and sets the
 * timeouts on `server`; returns `server`. Calling it again reconfigures the same server. Throws a
 * `TypeError` for an unknown option or a bad value, when the server already has
 * another `clientError` listener (both would write to the socket), and when
 * `connectionsCheckingInterval` is given to a server that already listens.
 */
export function hardenServer<S extends HardenableServer>(
  server: S,
  options: HardenServerOptions = {},
): S {
  checkOptions('hardenServer', options, OPTION_NAMES, OPTION_HINTS);
  const {
    headersTimeout = 10_000,
    requestTimeout = 60_000,
    keepAliveTimeout = 5_000,
    connectionsCheckingInterval,
    logger = defaultLogger,
    logIntervalMs = 10_000,
    traceHeader = 'Trace-Id',
  } = options;
  positiveMs('headersTimeout', headersTimeout, false);
  positiveMs('requestTimeout', requestTimeout, true);
  positiveMs('keepAliveTimeout', keepAliveTimeout, true);
  positiveMs('logIntervalMs', logIntervalMs, true);
  if (connectionsCheckingInterval !== undefined) {
    positiveMs('connectionsCheckingInterval', connectionsCheckingInterval, false);
  }
  if (requestTimeout > 0 && headersTimeout > requestTimeout) {
    invalidOption(
      'hardenServer',
      'headersTimeout',
      `at most requestTimeout (${requestTimeout})`,
      headersTimeout,
    );
  }
  if (typeof logger?.warn !== 'function') {
    invalidOption('hardenServer', 'logger', 'an object with a warn() method', logger);
  }
  if (traceHeader !== false && (typeof traceHeader !== 'string' || !TOKEN.test(traceHeader))) {
    invalidOption('hardenServer', 'traceHeader', 'a header name or false', traceHeader);
  }
  if (
    server === null ||
    typeof server !== 'object' ||
    typeof (server as { on?: unknown }).on !== 'function'
  ) {
    invalidOption('hardenServer', 'server', 'an http.Server or https.Server', server);
  }
  const tagged = server as S & {
    [HANDLER]?: ClientErrorListener;
    [EXPECTATION_HANDLER]?: ExpectationListener;
  };
  const previous = tagged[HANDLER];
  const others = server.listeners('clientError').filter((l) => l !== previous);
  if (others.length > 0) {
    throw new TypeError(
      'restwell/hardenServer: the server already has a clientError listener; remove it first, since both would answer on the same socket.',
    );
  }
  if (connectionsCheckingInterval !== undefined && server.listening) {
    throw new TypeError(
      'restwell/hardenServer: option "connectionsCheckingInterval" is read when the server starts listening; call hardenServer() before listen().',
    );
  }

  server.headersTimeout = headersTimeout;
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = keepAliveTimeout;
  if (connectionsCheckingInterval !== undefined) {
    (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval =
      connectionsCheckingInterval;
  }

  const throttle = new LogThrottle(logIntervalMs);
  // The parser may report more than one error on a socket it already gave up on.
  const answered = new WeakSet<Duplex>();

  function warn(fields: Record<string, unknown>): void {
    const passed = throttle.pass();
    if (passed === undefined) return;
    try {
      logger.warn('request refused by the HTTP parser', {
        ...fields,
        suppressed: passed.suppressed,
      });
    } catch {
      // A failing logger must not leave the socket open.
    }
  }

  function onClientError(err: ParserError, socket: Duplex): void {
    try {
      if (answered.has(socket)) {
        // The parser stays in its error state and reports every later chunk
        // again; the answer is already on its way. Close once the client has.
        if (socket.readableEnded) socket.destroy();
        return;
      }
      answered.add(socket);
      // As Node's own handler: write only to a socket that is writable and on
      // which no response has started (a keep-alive connection may have one in
      // flight); otherwise the bytes would corrupt what the client is reading.
      const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: unknown } | null })
        ._httpMessage;
      if (err?.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
        socket.destroy();
        return;
      }
      const answer = answerFor(err?.code);
      const traceId = traceIdFrom(err?.rawPacket) ?? generateTraceId();
      const body = JSON.stringify({
        type: 'about:blank',
        title: STATUS_CODES[answer.status],
        status: answer.status,
        detail: answer.detail,
        code: answer.code,
        traceId,
      });
      const head =
        `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        // RFC 9110 §6.6.1: an origin server with a clock sends Date on a 4xx.
        `Date: ${new Date().toUTCString()}\r\n` +
        // RFC 9112 §9.6: the connection cannot be reused after a framing error.
        'Connection: close\r\n' +
        (traceHeader === false ? '' : `${traceHeader}: ${traceId}\r\n`) +
        '\r\n';
      warn({
        traceId,
        status: answer.status,
        code: err?.code,
        remoteAddress: (socket as Duplex & { remoteAddress?: string }).remoteAddress,
      });
      // RFC 9112 §9.6, closing in stages: send the answer and half-close, then
      // keep reading (the parser discards it) until the client closes its side.
      // Closing a socket with unread input sends a TCP reset, which can make the
      // client drop the answer unread. A client that never closes is cut off
      // after LINGER_MS.
      const timer = setTimeout(() => socket.destroy(), LINGER_MS);
      timer.unref?.();
      socket.once('close', () => clearTimeout(timer));
      socket.once('end', () => socket.destroy());
      socket.end(head + body);
    } catch {
      socket.destroy();
    }
  }

  /**
   * An `Expect` other than `100-continue` (RFC 9110 §10.1.1): without a
   * `checkExpectation` listener Node answers a bare 417 itself, before any
   * framework sees the request. Answered here as a problem with a trace id.
   * The body, if any, is left unread, so the connection closes after it.
   */
  function onCheckExpectation(req: IncomingMessage, res: ServerResponse): void {
    try {
      const traceId = parseTraceparent(firstValue(req.headers.traceparent)) ?? generateTraceId();
      const body = JSON.stringify({
        type: 'about:blank',
        title: STATUS_CODES[417],
        status: 417,
        detail: 'The server cannot meet the Expect field of the request; send it without Expect.',
        code: 'expectation-failed' satisfies RestwellErrorCode,
        traceId,
      });
      res.statusCode = 417;
      res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.setHeader('Connection', 'close');
      if (traceHeader !== false) res.setHeader(traceHeader, traceId);
      res.end(body);
    } catch {
      res.destroy();
    }
  }

  if (previous !== undefined) server.removeListener('clientError', previous);
  tagged[HANDLER] = onClientError;
  server.on('clientError', onClientError);
  // An application that answers expectations itself keeps its own listener.
  const previousExpectation = tagged[EXPECTATION_HANDLER];
  if (previousExpectation !== undefined) {
    server.removeListener('checkExpectation', previousExpectation);
    tagged[EXPECTATION_HANDLER] = undefined;
  }
  if (server.listenerCount('checkExpectation') === 0) {
    tagged[EXPECTATION_HANDLER] = onCheckExpectation;
    server.on('checkExpectation', onCheckExpectation);
  }
  return server;
}
