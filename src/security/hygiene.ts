/**
 * `requestHygiene()`: refuses, before any handler runs, requests whose target
 * or headers are malformed in ways that serve only to make two components
 * disagree (a proxy and the app, a router and a file system), the seed's
 * "reject malformed input at the gateway".
 *
 * What Node's parser already refuses with its own bare 400 never reaches a
 * middleware: raw NUL, control or non-ASCII bytes in the target, a
 * `Content-Length` sent twice (even with the same value) or beside
 * `Transfer-Encoding`, control bytes in a header value, a missing `Host` on
 * HTTP/1.1. What does reach it, and is refused here:
 * - a dot-segment (`..`, `.`) in the path in any spelling: raw, `%2e%2e`,
 *   `..%2f`, double-encoded `%252e%252e`, with a `;` parameter (`..;/`),
 *   overlong UTF-8 (`%c0%ae`), full-width dots that NFKC folds to `.`;
 * - an encoded separator (`%2f`, `%5c`) or a raw backslash in the path,
 *   which some components split on and others do not (`allowEncodedSlashes`
 *   lets `%2F` through for ids that contain a slash);
 * - a fragment (`#`) in the target, which Express's URL parser cuts off and
 *   restwell's view of the path does not;
 * - a NUL byte, `%00`, in the path or the query;
 * - broken percent-encoding (a `%` without two hex digits; a path that does
 *   not decode to UTF-8);
 * - a path or query over its length limit (414), a header value over its
 *   limit (431);
 * - more header field lines than a bound (431), well below the count past
 *   which Node drops lines silently, where a repeated header would hide;
 * - a second field line of a header that must be sent once (`Host`,
 *   `Content-Type`, `Authorization`, ...: RFC 9110 §5.3), which Node drops
 *   silently, keeping the first, while a proxy in front may have used the
 *   last; an invalid `Host` (RFC 9112 §3.2 requires a 400 for both).
 *
 * The query is checked for NUL and percent syntax only: `..` or `/` in a
 * query value is data, not a path.
 */
import { type Context, type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption, type RestwellError } from '../core/errors.js';
import {
  DuplicateHeaderError,
  HeaderTooLargeError,
  InvalidHostError,
  type MalformedTargetCode,
  MalformedTargetError,
  TargetTooLongError,
  TooManyHeadersError,
} from './errors.js';
import { parseHost } from './host.js';

/** Options of {@link requestHygiene}. */
export interface RequestHygieneOptions {
  /** Longest path, in characters of the raw (encoded) path. @default 2048 */
  maxPathLength?: number;
  /** Longest query string, in characters, without the `?`. @default 8192 */
  maxQueryLength?: number;
  /**
   * Longest value of any one header, in bytes. Node caps the whole head at
   * 16 KiB by default (`maxHeaderSize`) and answers 431 itself past it; this
   * bounds each value below that. @default 8192
   */
  maxHeaderLength?: number;
  /**
   * Most header field lines a request may have (431 past it), as Apache
   * httpd's `LimitRequestFields`. Node keeps about a thousand lines
   * (`server.maxHeadersCount`) and drops the rest without a word, repeated
   * `Host` or `Authorization` lines included, so this must stay below that
   * count for the repeated-header check to see every line: at most 1000, and
   * below the server's `maxHeadersCount` if you lowered it. @default 100
   */
  maxHeaderCount?: number;
  /**
   * Let `%2F` and `%5C` (an encoded `/` or `\`) through in path segments,
   * for ids that contain one (`/v1/repos/group%2Fproject`). Dot-segments
   * they would form (`..%2F..`) are still refused. @default false
   */
  allowEncodedSlashes?: boolean;
  /** Check the query for NUL bytes and broken percent-encoding. @default true */
  checkQuery?: boolean;
  /**
   * Headers that must come in one field line, lower or any case. Repeated
   * `Content-Length` never gets here (Node refuses it). @default
   * ['host', 'content-length', 'content-type', 'authorization',
   * 'proxy-authorization', 'origin', 'idempotency-key', 'x-api-key']
   */
  singleValueHeaders?: readonly string[];
}

/** Headers refused when repeated, by default. */
export const DEFAULT_SINGLE_VALUE_HEADERS: readonly string[] = [
  'host',
  'content-length',
  'content-type',
  'authorization',
  'proxy-authorization',
  'origin',
  'idempotency-key',
  'x-api-key',
];

const OPTIONS = [
  'maxPathLength',
  'maxQueryLength',
  'maxHeaderLength',
  'maxHeaderCount',
  'allowEncodedSlashes',
  'checkQuery',
  'singleValueHeaders',
];

/** What {@link inspectTarget} checks, resolved. */
export interface TargetRules {
  maxPathLength: number;
  maxQueryLength: number;
  allowEncodedSlashes: boolean;
  checkQuery: boolean;
}

/** A finding: the error a request would be refused with. */
export type HygieneFinding = MalformedTargetError | TargetTooLongError;

const HEX = /^[0-9A-Fa-f]{2}$/;
const DECODE_DEPTH = 3;

/** `.`, `..`, and either with `;` parameters (`..;jsessionid=1`, which Tomcat reads as `..`). */
function isDotSegment(part: string): boolean {
  const semicolon = part.indexOf(';');
  const name = semicolon < 0 ? part : part.slice(0, semicolon);
  return name === '.' || name === '..';
}

/** Percent-decodes to bytes; `undefined` when a `%` is not followed by two hex digits and `strict`. */
function percentBytes(text: string, strict: boolean): Buffer | undefined {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = text.slice(i + 1, i + 3);
      if (HEX.test(hex)) {
        out.push(Number.parseInt(hex, 16));
        i += 2;
        continue;
      }
      if (strict) return undefined;
    }
    if (c < 0x80) out.push(c);
    else for (const b of Buffer.from(text[i]!, 'utf8')) out.push(b);
  }
  return Buffer.from(out);
}

/**
 * The code point an overlong UTF-8 sequence at `i` stands for, or
 * `undefined` when there is none there. Overlong forms (`C0 AE` for `.`)
 * are invalid UTF-8 (RFC 3629 §3) and exist to slip past filters.
 */
function overlongAt(bytes: Buffer, i: number): number | undefined {
  const b0 = bytes[i]!;
  const cont = (k: number) => {
    const b = bytes[i + k];
    return b !== undefined && b >= 0x80 && b <= 0xbf ? b & 0x3f : undefined;
  };
  if (b0 === 0xc0 || b0 === 0xc1) {
    const c1 = cont(1);
    return c1 === undefined ? undefined : ((b0 & 0x1f) << 6) | c1;
  }
  if (b0 === 0xe0) {
    const b1 = bytes[i + 1];
    const c1 = cont(1);
    const c2 = cont(2);
    if (b1 === undefined || b1 > 0x9f || c1 === undefined || c2 === undefined) return undefined;
    return (c1 << 6) | c2;
  }
  if (b0 === 0xf0) {
    const b1 = bytes[i + 1];
    const c1 = cont(1);
    const c2 = cont(2);
    const c3 = cont(3);
    if (b1 === undefined || b1 > 0x8f || c1 === undefined || c2 === undefined || c3 === undefined)
      return undefined;
    return (c1 << 12) | (c2 << 6) | c3;
  }
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Checks decoded bytes: NUL, overlong forms. Returns a code, or `undefined`. */
function byteFinding(bytes: Buffer): MalformedTargetCode | undefined {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) return 'null-byte';
    if (b >= 0xc0) {
      const cp = overlongAt(bytes, i);
      if (cp === undefined) continue;
      if (cp === 0) return 'null-byte';
      if (cp === 0x2e || cp === 0x2f || cp === 0x5c) return 'path-traversal';
      return 'invalid-percent-encoding';
    }
  }
  return undefined;
}

/** Dot-segments in a decoded segment, however it splits: on `/`, `\`, and after NFKC folding. */
function textFinding(text: string): MalformedTargetCode | undefined {
  const parts = text.split(/[/\\]/);
  if (parts.some(isDotSegment)) return 'path-traversal';
  // U+FF0E FULLWIDTH FULL STOP, U+FF0F FULLWIDTH SOLIDUS and kin fold to
  // ASCII under NFKC, which some stacks apply to paths.
  if (/[\u0080-\uffff]/.test(text)) {
    const folded = text.normalize('NFKC');
    if (folded !== text && folded.split(/[/\\]/).some(isDotSegment)) return 'path-traversal';
  }
  return undefined;
}

function segmentFinding(segment: string, rules: TargetRules): MalformedTargetCode | undefined {
  if (isDotSegment(segment)) return 'path-traversal';
  if (!segment.includes('%')) return textFinding(segment);
  const bytes = percentBytes(segment, true);
  if (bytes === undefined) return 'invalid-percent-encoding';
  const found = byteFinding(bytes);
  if (found !== undefined) return found;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return 'invalid-percent-encoding';
  }
  const traversal = textFinding(text);
  if (traversal !== undefined) return traversal;
  if (/%(?:2f|5c)/i.test(segment) && !rules.allowEncodedSlashes) return 'ambiguous-path';
  // Decoded again, as a component behind the router might: %252e%252e is
  // ".." to it. Only what that decoding would make of the path counts here
  // (dot-segments, NUL); a literal "%" in an id is not an error.
  let level = text;
  for (let depth = 2; depth <= DECODE_DEPTH && level.includes('%'); depth++) {
    const deeper = percentBytes(level, false)!;
    const deeperFinding = byteFinding(deeper);
    if (deeperFinding === 'null-byte' || deeperFinding === 'path-traversal') return deeperFinding;
    const next = deeper.toString('utf8');
    if (next === level) break;
    if (textFinding(next) !== undefined) return 'path-traversal';
    level = next;
  }
  return undefined;
}

function pathFinding(path: string, rules: TargetRules): MalformedTargetCode | undefined {
  // The common case: nothing encoded, no dots, no backslash.
  if (!/[%.\\]/.test(path)) return undefined;
  if (path.includes('\\')) {
    // Windows and some proxies split on a backslash: a traversal there is a traversal.
    return pathFinding(path.replace(/\\/g, '/'), rules) === 'path-traversal'
      ? 'path-traversal'
      : 'ambiguous-path';
  }
  let start = 0;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    if (end > start) {
      const found = segmentFinding(path.slice(start, end), rules);
      if (found !== undefined) return found;
    }
    start = end + 1;
  }
  return undefined;
}

function queryFinding(query: string): MalformedTargetCode | undefined {
  if (!query.includes('%')) return undefined;
  for (let i = query.indexOf('%'); i >= 0; i = query.indexOf('%', i + 1)) {
    const hex = query.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return 'invalid-percent-encoding';
    if (hex === '00') return 'null-byte';
  }
  return undefined;
}

/**
 * Resolves hygiene options into the rules {@link inspectTarget} applies,
 * checking them (a bad value throws a `TypeError` naming it).
 */
export function targetRules(options: RequestHygieneOptions = {}): TargetRules {
  checkOptions('requestHygiene', options, OPTIONS);
  const {
    maxPathLength = 2048,
    maxQueryLength = 8192,
    allowEncodedSlashes = false,
    checkQuery = true,
  } = options;
  for (const [name, value] of [
    ['maxPathLength', maxPathLength],
    ['maxQueryLength', maxQueryLength],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      invalidOption('requestHygiene', name, 'a positive whole number of characters', value);
    }
  }
  if (typeof allowEncodedSlashes !== 'boolean') {
    invalidOption('requestHygiene', 'allowEncodedSlashes', 'a boolean', allowEncodedSlashes);
  }
  if (typeof checkQuery !== 'boolean') {
    invalidOption('requestHygiene', 'checkQuery', 'a boolean', checkQuery);
  }
  return { maxPathLength, maxQueryLength, allowEncodedSlashes, checkQuery };
}

/**
 * Inspects a request target in origin form (`/path?query`, still
 * percent-encoded): the error it would be refused with, or `undefined` when
 * it is clean. Pure, for tests and for other front doors.
 *
 * @example
 * ```ts
 * const rules = targetRules();
 * inspectTarget('/files/..%2f..%2fetc%2fpasswd', rules)?.code; // 'path-traversal'
 * inspectTarget('/search?q=..%2f', rules);                     // undefined
 * ```
 */
export function inspectTarget(url: string, rules: TargetRules): HygieneFinding | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.length > rules.maxPathLength) return new TargetTooLongError('path', rules.maxPathLength);
  // Node passes a "#" on in the target; Express's URL parser ends the path (or
  // the query) there, while the path modules see would go on past it.
  const hash = url.indexOf('#');
  if (hash >= 0) {
    return new MalformedTargetError('invalid-request-target', q < 0 || hash < q ? 'path' : 'query');
  }
  const found = pathFinding(path, rules);
  if (found !== undefined) return new MalformedTargetError(found, 'path');
  if (q < 0) return undefined;
  const query = url.slice(q + 1);
  if (query.length > rules.maxQueryLength) {
    return new TargetTooLongError('query', rules.maxQueryLength);
  }
  if (!rules.checkQuery) return undefined;
  const inQuery = queryFinding(query);
  return inQuery === undefined ? undefined : new MalformedTargetError(inQuery, 'query');
}

/**
 * The first header of `names` (lower case) that comes in more than one field
 * line of `rawHeaders` (Node's `IncomingMessage.rawHeaders`: name, value,
 * name, value, ...), or `undefined`.
 *
 * @example
 * ```ts
 * findRepeatedHeader(['Host', 'a', 'host', 'b'], new Set(['host'])); // 'host'
 * ```
 */
export function findRepeatedHeader(
  rawHeaders: readonly string[],
  names: ReadonlySet<string>,
): string | undefined {
  let seen: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!names.has(name)) continue;
    seen ??= new Set();
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Adapters whose request view streams the body from Node's `IncomingMessage` itself (src/core/node.ts). */
const NODE_ADAPTERS = new Set(['express', 'koa']);

/**
 * The raw header lines of a request, when the adapter can give them. The
 * request view's `headers` is Node's merged map, which has already dropped
 * every repeated `Host`, `Authorization` or `Content-Type` but the first.
 * A view with `rawHeaders` of its own gives those; on the Node adapters, the
 * body stream is Node's `IncomingMessage`, which keeps the lines as received
 * (getting it reads nothing). Another adapter's stream may be a one-time
 * reader, so it is left alone, and repeated headers go unseen there.
 */
function rawHeaderLines(ctx: Context): readonly string[] | undefined {
  const request = ctx.request;
  const own = (request as { rawHeaders?: unknown }).rawHeaders;
  if (Array.isArray(own)) return own as string[];
  if (!NODE_ADAPTERS.has(ctx.adapter)) return undefined;
  const lines = (request.stream() as { rawHeaders?: unknown }).rawHeaders;
  return Array.isArray(lines) && lines.every((l) => typeof l === 'string')
    ? (lines as string[])
    : undefined;
}

function headerFinding(
  ctx: Context,
  maxHeaderLength: number,
  maxHeaderCount: number,
  single: ReadonlySet<string>,
): RestwellError | undefined {
  const request = ctx.request;
  const lines = rawHeaderLines(ctx);
  if (lines !== undefined) {
    if (lines.length / 2 > maxHeaderCount) return new TooManyHeadersError(maxHeaderCount);
    for (let i = 1; i < lines.length; i += 2) {
      if (lines[i]!.length > maxHeaderLength) {
        return new HeaderTooLargeError(lines[i - 1]!.toLowerCase(), maxHeaderLength);
      }
    }
    const repeated = findRepeatedHeader(lines, single);
    if (repeated !== undefined) return new DuplicateHeaderError(repeated);
  } else {
    const entries = Object.entries(request.headers);
    if (entries.length > maxHeaderCount) return new TooManyHeadersError(maxHeaderCount);
    for (const [name, value] of entries) {
      const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
      if (values.some((v) => v.length > maxHeaderLength)) {
        return new HeaderTooLargeError(name, maxHeaderLength);
      }
    }
  }
  const host = request.headers.host;
  // An empty Host is allowed for a target without an authority (RFC 9112 §3.2).
  if (host !== undefined && host !== '' && parseHost(host) === undefined) {
    return new InvalidHostError();
  }
  return undefined;
}

/**
 * Refuses malformed requests with a 4xx problem before anything else reads
 * them: 400 for a dot-segment in any spelling, an encoded separator, a NUL
 * byte, broken percent-encoding, a repeated single-value header or an
 * invalid `Host`; 414 for an overlong path or query; 431 for an overlong
 * header value or too many header lines. Mount it early, right after `httpsOnly()`, `securityHeaders()`
 * and `cors()` (so that a browser can read its problems). Options are checked
 * here, once.
 *
 * @example
 * ```ts
 * app.use(rw(requestHygiene({ allowEncodedSlashes: true })));
 * ```
 */
export function requestHygiene(options: RequestHygieneOptions = {}): Middleware {
  const rules = targetRules(options);
  const {
    maxHeaderLength = 8192,
    maxHeaderCount = 100,
    singleValueHeaders = DEFAULT_SINGLE_VALUE_HEADERS,
  } = options;
  if (!Number.isSafeInteger(maxHeaderLength) || maxHeaderLength < 1) {
    invalidOption(
      'requestHygiene',
      'maxHeaderLength',
      'a positive whole number of bytes',
      maxHeaderLength,
    );
  }
  if (!Number.isSafeInteger(maxHeaderCount) || maxHeaderCount < 1 || maxHeaderCount > 1000) {
    invalidOption(
      'requestHygiene',
      'maxHeaderCount',
      'a whole number of header lines from 1 to 1000 (Node drops lines past about a thousand, unseen)',
      maxHeaderCount,
    );
  }
  if (
    !Array.isArray(singleValueHeaders) ||
    !singleValueHeaders.every(
      (h) => typeof h === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h),
    )
  ) {
    invalidOption(
      'requestHygiene',
      'singleValueHeaders',
      'a list of header names',
      singleValueHeaders,
    );
  }
  if (singleValueHeaders.some((h) => /^(set-)?cookie$/i.test(h))) {
    invalidOption(
      'requestHygiene',
      'singleValueHeaders',
      'header names sent once; HTTP/2 splits Cookie into several fields (RFC 9113 §8.2.3)',
      singleValueHeaders,
    );
  }
  const single = new Set(singleValueHeaders.map((h) => h.toLowerCase()));

  return responseBlind(function hygiene(ctx, next) {
    const finding =
      inspectTarget(ctx.request.target ?? ctx.request.url, rules) ??
      headerFinding(ctx, maxHeaderLength, maxHeaderCount, single);
    if (finding !== undefined) throw finding;
    return next();
  });
}
