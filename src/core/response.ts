/**
 * Response invariants, in one place for every adapter: framing, what a 304
 * may carry, replaced streams, the canonical `Allow` list, and the last-resort
 * answer when rendering a problem itself fails. Modules never repeat these
 * rules; the adapters apply them as the last step before the head is written,
 * whoever produced the response.
 */
import type { OutgoingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { isStreamBody, type ResponseBody } from './context.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

/**
 * Header fields a 304 keeps. RFC 9110 §15.4.5: the server MUST send the
 * Content-Location, Date, ETag and Vary fields, and Cache-Control and Expires,
 * that a 200 would have carried, and SHOULD NOT send other representation
 * metadata unless it guides cache updates: Last-Modified, the other validator,
 * is what RFC 9111 §4.3.4 uses to select the stored responses a 304 updates,
 * so it stays. A cache that receives a 304 merges its fields into the stored
 * response (RFC 9111 §4.3.4), so a field left on a 304 (a `Set-Cookie`, the
 * caller's `RateLimit`, a digest of a body that is not there) would be served
 * later to other clients: the list is an allowlist, not a denylist.
 * `Connection` and `Keep-Alive` are hop-by-hop (RFC 9110 §7.6.1) and never
 * stored. The trace header names this exchange only and lets an operator find
 * the request in the logs.
 *
 * The CORS response headers stay too (§15.4.5 lets a server send other fields
 * that would be useful): a script that revalidates with its own
 * `If-None-Match` is handed the 304 itself, and Fetch's CORS check fails it
 * without `Access-Control-Allow-Origin` (and `-Allow-Credentials` for a
 * credentialed request); `-Expose-Headers` lets it read the new `ETag`. They
 * are safe to merge into a stored response: they depend only on the request's
 * `Origin`, which the `Vary` kept beside them names.
 */
const KEPT_ON_304 = new Set([
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
  'connection',
  'keep-alive',
  'trace-id',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-expose-headers',
]);

/**
 * Header fields the last-resort 500 keeps from the response it replaces: the
 * policy fields that hold for every answer of this origin, errors included.
 * Without them a problem document could be sniffed as another type or framed
 * (`X-Content-Type-Options`, `X-Frame-Options`, `Content-Security-Policy`, the
 * cross-origin policies), the browser would lose HSTS on one answer, and a
 * script of an allowed origin could not read the error it got (the CORS
 * fields, and the `Vary` that goes with them). Everything else was set for
 * the answer that failed (`Set-Cookie`, `Link`, validators, rate-limit state,
 * framing) and goes.
 */
const KEPT_ON_LAST_RESORT = new Set([
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'content-security-policy',
  'content-security-policy-report-only',
  'referrer-policy',
  'cross-origin-resource-policy',
  'cross-origin-opener-policy',
  'cross-origin-embedder-policy',
  'permissions-policy',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-expose-headers',
  'vary',
]);

/** Statuses that never carry content (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
export function isEmptyStatus(status: number): boolean {
  return status === 204 || status === 205 || status === 304 || (status >= 100 && status < 200);
}

/** The subset of Node's header store the invariants use. */
type HeaderStore = Pick<OutgoingMessage, 'getHeaderNames' | 'hasHeader' | 'removeHeader'>;

/**
 * Applies every header invariant that depends on the status and on the kind of
 * body that will be sent:
 * - 304, 204, 205 (and 1xx): no `Content-Length` or `Transfer-Encoding`, and a
 *   304 keeps only the {@link KEPT_ON_304} fields and the configured trace header;
 * - never `Content-Length` beside `Transfer-Encoding` (RFC 9112 §6.2): a
 *   complete body is sent with its exact length, so a relayed
 *   `Transfer-Encoding` goes; a stream is sent chunked, so a relayed
 *   `Content-Length` goes.
 *
 * Returns whether a body may follow.
 */
export function applyFraming(
  res: HeaderStore,
  status: number,
  streamed: boolean,
  traceHeader: string | false,
): boolean {
  if (isEmptyStatus(status)) {
    if (status === 304) keep304Fields(res, traceHeader);
    else {
      res.removeHeader('content-length');
      res.removeHeader('transfer-encoding');
    }
    // RFC 9110 §15.3.5: a 204 has no content, so nothing to describe.
    if (status === 204 || status === 205) res.removeHeader('content-type');
    return false;
  }
  if (res.hasHeader('transfer-encoding')) {
    if (streamed) res.removeHeader('content-length');
    else res.removeHeader('transfer-encoding');
  }
  return true;
}

function keep304Fields(res: HeaderStore, traceHeader: string | false): void {
  const trace = traceHeader === false ? undefined : traceHeader.toLowerCase();
  for (const name of res.getHeaderNames()) {
    if (KEPT_ON_304.has(name) || name === trace) continue;
    res.removeHeader(name);
  }
}

/**
 * Clears a raw response for the last-resort 500, keeping only the
 * {@link KEPT_ON_LAST_RESORT} policy fields. For the adapters, which write
 * that answer through Node's own methods once the context can no longer be
 * trusted to.
 */
export function clearForLastResort(res: HeaderStore): void {
  for (const name of res.getHeaderNames()) {
    if (!KEPT_ON_LAST_RESORT.has(name)) res.removeHeader(name);
  }
}

/** Stops a stream nobody will read, so that its source (a file, a socket) is released. */
export function destroyBody(body: ResponseBody | undefined): void {
  if (!isStreamBody(body)) return;
  if (typeof (body as Readable).destroy === 'function') {
    if (!(body as Readable).destroyed) (body as Readable).destroy();
  } else {
    const web = body as ReadableStream<Uint8Array>;
    // A locked stream belongs to its reader (a wrapper that replaced it), which cancels it.
    if (!web.locked) web.cancel().catch(() => {});
  }
}

/**
 * Called by every response view when a body is replaced: a stream that was the
 * body and is no longer is destroyed once the response is closed. Not at once:
 * the new body may read from the old one (a compressor wrapping it), and it has
 * consumed what it needs by the time the response closes; a stream nobody reads
 * (replaced by a problem or a 304) is then released.
 */
export function releaseReplaced(
  res: { readonly closed: boolean; once(event: 'close', listener: () => void): unknown },
  previous: ResponseBody | undefined,
  next: ResponseBody,
): void {
  if (previous === next || !isStreamBody(previous)) return;
  if (res.closed) destroyBody(previous);
  else res.once('close', () => destroyBody(previous));
}

/**
 * Methods in one canonical order, so that `Allow` reads the same on every
 * adapter: the methods of RFC 9110 §9 in the order it defines them, then any
 * other in alphabetical order. Duplicates go; `HEAD` joins `GET`
 * (RFC 9110 §9.3.2: a server that supports GET supports HEAD).
 */
export function canonicalAllow(methods: Iterable<string>): string[] {
  const set = new Set<string>();
  for (const m of methods) {
    const upper = m.trim().toUpperCase();
    if (upper !== '' && upper !== '_ALL') set.add(upper);
  }
  if (set.has('GET')) set.add('HEAD');
  return [...set].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
function rank(method: string): number {
  const i = ORDER.indexOf(method);
  return i < 0 ? ORDER.length : i;
}

/** The body of the answer given when rendering a problem failed: see `lastResortProblemBody`. */
export { lastResortProblemBody as lastResortProblem } from './problem.js';

export const LAST_RESORT_CONTENT_TYPE = PROBLEM_CONTENT_TYPE;
