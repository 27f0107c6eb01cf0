/**
 * One delivery attempt: a POST of the signed body to the endpoint, answered
 * by an {@link AttemptResult} and never by an exception, so that a worker can
 * record every outcome the same way (the delivery log, the breaker, the
 * retry schedule).
 *
 * The rules are the seed's: a hard deadline for the whole exchange (connect,
 * request, full response; 5 s by default), only a 2xx is a success, a
 * redirect is never followed (a 3xx is a failure, and following it would send
 * the signed payload to a URL nobody registered, past the SSRF guard), and a
 * receiver's `Retry-After` on 429 and 503 is read for the schedule.
 *
 * The request goes through `node:http` / `node:https` directly so that the
 * SSRF guard's `lookup` runs when the socket connects: the address connected
 * to is the address checked. Keep-alive agents are kept per guard, so a
 * socket opened without a guard is never reused by a request that has one.
 */
import http from 'node:http';
import https from 'node:https';
import { WebhookUrlRefusedError } from './errors.js';
import type { SsrfGuard } from './ssrf.js';

/**
 * Why an attempt failed:
 * - `timeout`: no complete response within `timeoutMs` (the receiver hangs, or trickles its body);
 * - `connection-refused`: nothing listens at the address;
 * - `connection-reset`: the connection closed before the response was complete;
 * - `dns`: the host name did not resolve;
 * - `tls`: the TLS handshake failed (an untrusted or expired certificate, a
 *   name mismatch, a plain-HTTP server addressed with https:);
 * - `http-status`: a complete response with a status other than 2xx or 3xx;
 * - `redirect`: a 3xx (redirects are not followed);
 * - `url-refused`: the SSRF guard refused the URL or the address it resolved to;
 * - `aborted`: the caller's `signal` aborted the attempt (a shutdown: not the receiver's fault);
 * - `network`: anything else (an unreachable network, a response that is not HTTP).
 */
export type AttemptFailure =
  | 'timeout'
  | 'connection-refused'
  | 'connection-reset'
  | 'dns'
  | 'tls'
  | 'http-status'
  | 'redirect'
  | 'url-refused'
  | 'aborted'
  | 'network';

/** What to send; see {@link sendAttempt}. */
export interface AttemptRequest {
  /** The endpoint URL, http: or https:. */
  url: string;
  /** The exact bytes that were signed (a string is sent as UTF-8). */
  body: string | Uint8Array;
  /**
   * Headers to send: the signature headers, event id, ... `Content-Type`
   * defaults to `application/json` and `User-Agent` to `restwell-webhooks`;
   * `Content-Length` is always computed and `Transfer-Encoding` never sent.
   */
  headers: Readonly<Record<string, string>>;
  /** The hard deadline of the whole attempt (DNS, connect, TLS, request, full response), ms. @default 5000 */
  timeoutMs?: number;
  /**
   * The bytes of the response body kept as the excerpt (0 to 1 MiB). The
   * rest is read and discarded up to 64 KiB more, then the connection is
   * closed, so a huge body costs neither memory nor time. @default 2048
   */
  maxResponseBytes?: number;
  /** The longest `Retry-After` taken from a receiver, ms; longer ones are cut to it. @default 24 h */
  maxRetryAfterMs?: number;
  /** The SSRF guard: its `lookup` runs at connect time, and a literal IP host is checked before. */
  guard?: SsrfGuard;
  /**
   * The agent to use (an `https.Agent` for https: URLs), for pooling per
   * endpoint or for trusting a private CA. @default keep-alive agents kept per guard
   */
  agent?: http.Agent;
  /** Aborts the attempt: the result is the failure `aborted`. */
  signal?: AbortSignal;
  /** The clock, ms since the epoch, for `startedAt`, `durationMs` and HTTP-date `Retry-After`. @default Date.now */
  now?: () => number;
}

/** The outcome of one attempt; plain data, for the delivery log. */
export interface AttemptResult {
  /** A complete 2xx response. */
  ok: boolean;
  /** When the attempt started, ms since the epoch. */
  startedAt: number;
  /** How long it took, ms, up to the end of the response (or the failure). */
  durationMs: number;
  /** The response status, when one was received (also for a timeout during the body). */
  status?: number;
  /** Why it failed; absent when `ok`. */
  failure?: AttemptFailure;
  /** A short description of the failure, for people reading the log. */
  message?: string;
  /** The start of the response body, UTF-8 decoded (an incomplete trailing character is dropped). */
  responseExcerpt?: string;
  /**
   * The receiver's `Retry-After` on a 429 or 503, in ms from now: delay-seconds
   * or an HTTP-date (RFC 9110 §10.2.3), cut to `maxRetryAfterMs`; a date in the
   * past is 0; an invalid value is ignored.
   */
  retryAfterMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RESPONSE_BYTES = 2048;
const MAX_RESPONSE_BYTES_LIMIT = 1024 * 1024;
/** Read past the excerpt, so that a short tail lets the socket be reused; beyond it, close. */
const MAX_DRAIN_BYTES = 64 * 1024;
const DEFAULT_MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
const MAX_MESSAGE_LENGTH = 300;
const USER_AGENT = 'restwell-webhooks';
/** Set by the attempt itself, never by the caller or the receiver. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection']);

interface Agents {
  http: http.Agent;
  https: https.Agent;
}
const agentsByGuard = new WeakMap<SsrfGuard, Agents>();
let unguardedAgents: Agents | undefined;

function makeAgents(): Agents {
  // An idle socket is closed after 15 s; one in use is bounded by the
  // attempt's own deadline, not by the agent.
  const options = { keepAlive: true, timeout: 15_000 };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

function agentsFor(guard: SsrfGuard | undefined): Agents {
  if (guard === undefined) {
    unguardedAgents ??= makeAgents();
    return unguardedAgents;
  }
  let agents = agentsByGuard.get(guard);
  if (agents === undefined) {
    agents = makeAgents();
    agentsByGuard.set(guard, agents);
  }
  return agents;
}

function truncate(text: string): string {
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text;
}

const TLS_CODES = new Set([
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
]);
const DNS_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EAI_NODATA',
  'ENODATA',
  'ESERVFAIL',
  'ENOTIMP',
  'EREFUSED',
  'EBADNAME',
  'ETIMEOUT',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Why a transport error happened, from its code (Node's, OpenSSL's, getaddrinfo's). */
function classify(err: unknown): AttemptFailure {
  if (err instanceof WebhookUrlRefusedError) return 'url-refused';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'network';
  if (code === 'ECONNREFUSED') return 'connection-refused';
  if (RESET_CODES.has(code)) return 'connection-reset';
  if (DNS_CODES.has(code)) return 'dns';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (
    TLS_CODES.has(code) ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_OSSL_') ||
    (err as { library?: unknown }).library === 'SSL routines'
  ) {
    return 'tls';
  }
  return 'network';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept.
const IMF_FIXDATE = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`,
);
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
const ASCTIME = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`,
);

function utc(
  year: number,
  month: string,
  day: string,
  hour: string,
  minute: string,
  second: string,
): number | undefined {
  const m = MONTHS.indexOf(month);
  const d = Number(day.trim());
  const [h, min, s] = [Number(hour), Number(minute), Number(second)];
  // a leap second (60) is read as the next second rather than refused
  if (d < 1 || d > 31 || h > 23 || min > 59 || s > 60) return undefined;
  const time = Date.UTC(year, m, d, h, min, s);
  // 31 Feb would roll over into March: refuse a day the month does not have
  if (new Date(Date.UTC(year, m, d)).getUTCDate() !== d) return undefined;
  return time;
}

/** An HTTP-date (RFC 9110 §5.6.7) as ms since the epoch, or `undefined`. */
export function parseHttpDate(value: string, nowMs: number = Date.now()): number | undefined {
  let match = IMF_FIXDATE.exec(value);
  if (match !== null) {
    const [, day, month, year, h, m, s] = match as unknown as string[];
    return utc(Number(year), month!, day!, h!, m!, s!);
  }
  match = RFC_850.exec(value);
  if (match !== null) {
    const [, day, month, yy, h, m, s] = match as unknown as string[];
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is
    // the most recent past year with those digits
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(yy);
    if (year > thisYear + 50) year -= 100;
    return utc(year, month!, day!, h!, m!, s!);
  }
  match = ASCTIME.exec(value);
  if (match !== null) {
    const [, month, day, h, m, s, year] = match as unknown as string[];
    return utc(Number(year), month!, day!, h!, m!, s!);
  }
  return undefined;
}

/**
 * A `Retry-After` value (RFC 9110 §10.2.3) as a delay in ms from `nowMs`:
 * delay-seconds (digits only) or an HTTP-date; a date in the past is 0, a
 * delay longer than `maxMs` is cut to it, anything else is `undefined`.
 */
export function parseRetryAfter(
  value: string | undefined,
  nowMs: number,
  maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text.length === 0 || text.length > 64) return undefined;
  if (/^\d+$/.test(text)) {
    // more digits than a day's worth of seconds is past any cap
    const seconds = text.length > 12 ? Number.POSITIVE_INFINITY : Number(text);
    return Math.min(seconds * 1000, maxMs);
  }
  const date = parseHttpDate(text, nowMs);
  if (date === undefined) return undefined;
  return Math.min(Math.max(0, date - nowMs), maxMs);
}

function validNumber(
  value: unknown,
  fallback: number,
  valid: (n: number) => boolean,
): number | undefined {
  if (value === undefined) return fallback;
  return typeof value === 'number' && valid(value) ? value : undefined;
}

/**
 * Sends one attempt and resolves with its outcome; never rejects. `ok` only
 * for a complete 2xx response within `timeoutMs`.
 *
 * @example
 * ```ts
 * const body = JSON.stringify(event);
 * const result = await sendAttempt({
 *   url: endpoint.url,
 *   body,
 *   headers: { ...signer.sign(body), 'webhook-id': event.id },
 *   guard,
 * });
 * if (!result.ok) schedule.delayBefore(attempt + 1, result.retryAfterMs);
 * ```
 */
export function sendAttempt(request: AttemptRequest): Promise<AttemptResult> {
  const now = typeof request?.now === 'function' ? request.now : Date.now;
  const startedAt = now();
  const result = (fields: Omit<AttemptResult, 'startedAt' | 'durationMs'>): AttemptResult => ({
    ...fields,
    startedAt,
    durationMs: Math.max(0, now() - startedAt),
  });
  const invalid = (message: string) =>
    Promise.resolve(result({ ok: false, failure: 'network', message }));
  try {
    return send(request, now, result, invalid);
  } catch (err) {
    return invalid(
      truncate(`the request could not be sent: ${String((err as Error)?.message ?? err)}`),
    );
  }
}

function send(
  request: AttemptRequest,
  now: () => number,
  result: (fields: Omit<AttemptResult, 'startedAt' | 'durationMs'>) => AttemptResult,
  invalid: (message: string) => Promise<AttemptResult>,
): Promise<AttemptResult> {
  const timeoutMs = validNumber(
    request.timeoutMs,
    DEFAULT_TIMEOUT_MS,
    (n) => Number.isFinite(n) && n > 0,
  );
  if (timeoutMs === undefined)
    return invalid('invalid option timeoutMs: a finite number > 0 is needed');
  const maxBytes = validNumber(
    request.maxResponseBytes,
    DEFAULT_MAX_RESPONSE_BYTES,
    (n) => Number.isInteger(n) && n >= 0 && n <= MAX_RESPONSE_BYTES_LIMIT,
  );
  if (maxBytes === undefined)
    return invalid('invalid option maxResponseBytes: an integer from 0 to 1048576 is needed');
  const maxRetryAfterMs = validNumber(
    request.maxRetryAfterMs,
    DEFAULT_MAX_RETRY_AFTER_MS,
    (n) => !Number.isNaN(n) && n >= 0,
  );
  if (maxRetryAfterMs === undefined)
    return invalid('invalid option maxRetryAfterMs: a number ≥ 0 is needed');

  const { guard, signal } = request;
  let url: URL;
  try {
    if (guard !== undefined) {
      url = guard.parseUrl(request.url);
    } else {
      url = new URL(request.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new WebhookUrlRefusedError('scheme');
    }
  } catch (err) {
    const message =
      err instanceof WebhookUrlRefusedError ? (err.detail ?? err.message) : 'not an absolute URL';
    return Promise.resolve(result({ ok: false, failure: 'url-refused', message }));
  }
  if (signal?.aborted) {
    return Promise.resolve(
      result({ ok: false, failure: 'aborted', message: 'aborted before sending' }),
    );
  }

  const raw = request.body;
  // the signed bytes, sent as they are (a view, not a copy)
  const body =
    typeof raw === 'string'
      ? Buffer.from(raw, 'utf8')
      : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const headers: Record<string, string> = {};
  const given = new Set<string>();
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    const lower = name.toLowerCase();
    if (FRAMING_HEADERS.has(lower)) continue;
    given.add(lower);
    headers[name] = value;
  }
  if (!given.has('content-type')) headers['Content-Type'] = 'application/json';
  if (!given.has('user-agent')) headers['User-Agent'] = USER_AGENT;
  headers['Content-Length'] = String(body.length);

  const isHttps = url.protocol === 'https:';
  const agent = request.agent ?? (isHttps ? agentsFor(guard).https : agentsFor(guard).http);

  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    let status: number | undefined;
    let retryAfterMs: number | undefined;
    let location: string | undefined;
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let seenBytes = 0;

    const excerpt = (): string | undefined => {
      if (keptBytes === 0) return undefined;
      // stream: true holds back an incomplete trailing UTF-8 sequence
      return new TextDecoder('utf-8').decode(Buffer.concat(kept), { stream: true });
    };
    const settle = (fields: Omit<AttemptResult, 'startedAt' | 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const text = excerpt();
      resolve(
        result({
          ...fields,
          ...(status === undefined ? {} : { status }),
          ...(text === undefined ? {} : { responseExcerpt: text }),
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        }),
      );
    };
    const fail = (failure: AttemptFailure, message: string) =>
      settle({ ok: false, failure, message: truncate(message) });
    /** The response is complete (or long enough): judge it by its status. */
    const judge = (cut: boolean) => {
      const s = status ?? 0;
      const tail = cut
        ? `; the body was longer than ${keptBytes + MAX_DRAIN_BYTES} bytes and was cut`
        : '';
      if (s >= 200 && s < 300)
        settle({ ok: true, ...(cut ? { message: truncate(tail.slice(2)) } : {}) });
      else if (s >= 300 && s < 400)
        fail(
          'redirect',
          `HTTP ${s}: redirects are not followed${location === undefined ? '' : ` (Location: ${location})`}${tail}`,
        );
      else fail('http-status', `HTTP ${s}${tail}`);
    };

    let req: http.ClientRequest | undefined;
    // The deadline covers everything from here: DNS, connect, TLS, request
    // and the whole response. An idle timeout would let a receiver that
    // trickles one byte a second hold a worker for ever.
    const timer = setTimeout(() => {
      fail('timeout', `no complete response within ${timeoutMs} ms`);
      req?.destroy();
    }, timeoutMs);
    const onAbort = () => {
      fail('aborted', 'the attempt was aborted');
      req?.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    try {
      req = (isHttps ? https : http).request(url, {
        method: 'POST',
        headers,
        agent,
        ...(guard === undefined ? {} : { lookup: guard.lookup }),
      });
    } catch (err) {
      fail('network', `the request could not be sent: ${(err as Error).message}`);
      return;
    }
    req.on('error', (err) => {
      const failure = classify(err);
      const message =
        err instanceof WebhookUrlRefusedError ? (err.detail ?? err.message) : err.message;
      fail(failure, message);
    });
    // A 101 (the receiver switching protocols) is no answer to a POST of a webhook: without
    // this listener Node keeps the socket and the attempt would wait for its deadline.
    req.on('upgrade', (res, socket) => {
      status = res.statusCode;
      socket.destroy();
      fail('http-status', `HTTP ${status ?? 101}: a switch of protocols is not a webhook answer`);
    });
    req.on('response', (res) => {
      status = res.statusCode;
      if (status === 429 || status === 503) {
        const header = res.headers['retry-after'];
        retryAfterMs = parseRetryAfter(
          Array.isArray(header) ? header[0] : header,
          now(),
          maxRetryAfterMs,
        );
      }
      if (status !== undefined && status >= 300 && status < 400) {
        const value = res.headers.location;
        if (typeof value === 'string') location = truncate(value);
      }
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        seenBytes += chunk.length;
        if (keptBytes < maxBytes) {
          const part = chunk.subarray(0, maxBytes - keptBytes);
          kept.push(part);
          keptBytes += part.length;
        }
        if (seenBytes > maxBytes + MAX_DRAIN_BYTES) {
          judge(true);
          res.destroy();
          req?.destroy();
        }
      });
      res.on('end', () => judge(false));
      res.on('error', (err) => fail(classify(err), err.message));
      // after 'end' this does nothing; before it, the body was cut short
      res.on('close', () =>
        fail('connection-reset', 'the connection closed before the response was complete'),
      );
    });
    req.end(body);
  });
}
