/**
 * `jsonBody()`: reads and parses a JSON request body within bounds, answering
 * every failure as a problem: 415 for a media type, charset or content coding
 * it cannot read, 413 for a body over `limit` (refused from `Content-Length`
 * before a byte is read when possible), 400 for bytes that are not UTF-8, for
 * nesting deeper than `maxDepth` and for malformed JSON. Keeps the raw bytes in
 * `ctx.request.rawBody` (signatures and fingerprints need them) and the parsed
 * value in `ctx.request.body`.
 *
 * Skipped when the framework already parsed the body (its parser's bounds
 * apply then, not these).
 *
 * @example
 * ```ts
 * app.use(rw(jsonBody({ limit: 512 * 1024 })));
 * ```
 */
import { type Middleware, responseBlind } from './context.js';
import { checkOptions, invalidOption, RestwellError } from './errors.js';

/** Options of {@link jsonBody}. */
export interface JsonBodyOptions {
  /** Largest body accepted, in bytes. @default 1_048_576 (1 MiB) */
  limit?: number;
  /**
   * Deepest nesting of arrays and objects accepted: `{}` and `[1]` have depth
   * 1, `{"a":[1]}` depth 2, a bare scalar depth 0. Deeper bodies get 400
   * `json-too-deep` before they are parsed, so that code which walks the value
   * recursively (validators, `JSON.stringify`, fingerprints) never meets one
   * deep enough to exhaust the stack. 64 is the default of .NET's
   * System.Text.Json; real documents rarely pass 10.
   * @default 64
   */
  maxDepth?: number;
  /**
   * Which media types are JSON. A request with a body of another type gets 415.
   * @default (type) => type === 'application/json' || type ends with '+json'
   */
  isJson?: (mediaType: string) => boolean;
}

const OPTION_NAMES = ['limit', 'maxDepth', 'isJson'] as const;
const OPTION_HINTS: Readonly<Record<string, string>> = {
  strict: 'jsonBody() always parses any JSON text (RFC 8259 §2), scalars included.',
  type: 'Use isJson: (mediaType) => boolean.',
  reviver: 'Transform the parsed body in a middleware after jsonBody().',
};

/** 413: the body is larger than `limit` bytes (checked from Content-Length before reading, and while reading). */
export class PayloadTooLargeError extends RestwellError {
  override readonly name = 'PayloadTooLargeError';
  constructor(limit: number) {
    super('payload-too-large', 413, 'Payload Too Large', {
      detail: `The body exceeds the limit of ${limit} bytes.`,
      extensions: { limit },
    });
  }
}

/** 415: the body is not JSON, is in another charset than UTF-8, or carries a coding restwell does not undo. */
export class UnsupportedMediaTypeError extends RestwellError {
  override readonly name = 'UnsupportedMediaTypeError';
  constructor(detail: string) {
    super('unsupported-media-type', 415, 'Unsupported Media Type', { detail });
  }
}

/** 400: the body is not valid JSON, or ended before it was complete. */
export class MalformedJsonError extends RestwellError {
  override readonly name = 'MalformedJsonError';
  constructor(detail: string, cause?: unknown) {
    super('malformed-json', 400, 'Malformed JSON', { detail, cause });
  }
}

/** 400: the body nests arrays and objects deeper than `maxDepth`. */
export class JsonTooDeepError extends RestwellError {
  override readonly name = 'JsonTooDeepError';
  constructor(maxDepth: number) {
    super('json-too-deep', 400, 'JSON Too Deep', {
      detail: `The body nests arrays and objects deeper than ${maxDepth} levels.`,
      extensions: { maxDepth },
    });
  }
}

/** 400: the body is not valid UTF-8 (RFC 8259 §8.1). */
export class InvalidUtf8Error extends RestwellError {
  override readonly name = 'InvalidUtf8Error';
  constructor(cause?: unknown) {
    super('invalid-utf8', 400, 'Invalid UTF-8', {
      detail: 'The body is not valid UTF-8.',
      cause,
    });
  }
}

const defaultIsJson = (type: string) => type === 'application/json' || type.endsWith('+json');

/**
 * The media type of a `Content-Type` value: `type/subtype`, lower-cased,
 * parameters removed (RFC 9110 §8.3.1: type and subtype are case-insensitive).
 * `undefined` for an absent value or one without a type and a subtype.
 */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  // RFC 9110 §8.3.1: type "/" subtype, both non-empty. `+json` alone is not
  // one, and must not pass an `endsWith('+json')` test.
  const slash = type.indexOf('/');
  return slash > 0 && slash < type.length - 1 ? type : undefined;
}

// Fatal: a malformed sequence throws rather than becoming U+FFFD, which would
// let two different byte strings parse to the same value. A leading BOM is
// dropped (the decoder's default), which RFC 8259 §8.1 allows a parser to do.
const utf8 = new TextDecoder('utf-8', { fatal: true });

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether `bytes` nest arrays and objects deeper than `max`, by one pass that
 * counts brackets outside strings: no recursion, no allocation, and no parse
 * of a body that will be refused. Bytes of multi-byte UTF-8 sequences are all
 * 0x80 or above, so they never look like a bracket, a quote or a backslash.
 * On malformed input the count may be off; JSON.parse rejects that input next.
 */
export function nestsDeeperThan(bytes: Uint8Array, max: number): boolean {
  // n bytes hold at most n levels.
  if (bytes.length <= max) return false;
  const n = bytes.length;
  let depth = 0;
  let i = 0;
  while (i < n) {
    const b = bytes[i++]!;
    if (b === QUOTE) {
      // Jump to the closing quote: one not preceded by an odd run of backslashes.
      for (;;) {
        const end = bytes.indexOf(QUOTE, i);
        if (end < 0) return false;
        let backslashes = 0;
        while (bytes[end - 1 - backslashes] === BACKSLASH) backslashes++;
        i = end + 1;
        if ((backslashes & 1) === 0) break;
      }
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * Whether a parsed value nests arrays and objects deeper than `max`, counted
 * as {@link nestsDeeperThan} counts bytes, by an explicit stack rather than
 * recursion. For a body a framework's own parser produced (which bounds size
 * but not depth) before code walks it recursively: `JSON.stringify`, a stable
 * stringify for a fingerprint. Meant for trees such as parsed JSON; a cycle
 * counts as too deep.
 */
export function valueNestsDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const current = values.pop()!;
    const depth = depths.pop()!;
    if (depth > max) return true;
    const children: unknown[] = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        values.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

function charsetOf(contentType: string): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return m?.[1]?.toLowerCase();
}

function incomplete(cause?: unknown): MalformedJsonError {
  return new MalformedJsonError('The request body ended before it was complete.', cause);
}

/**
 * Whether a `Transfer-Encoding` value is exactly `chunked` (case-insensitive,
 * RFC 9112 §7). Node decodes chunked framing only: with another coding in the
 * list (`gzip, chunked`) the bytes it hands over are still encoded, and
 * reading them as JSON would disagree with any intermediary that decodes them.
 */
function onlyChunked(transferEncoding: string): boolean {
  return transferEncoding.trim().toLowerCase() === 'chunked';
}

interface NodeReadable extends AsyncIterable<Uint8Array> {
  on(event: string, listener: (arg?: never) => void): unknown;
  removeListener(event: string, listener: (arg?: never) => void): unknown;
  pause(): unknown;
}

/**
 * Reads a whole body, failing with 413 as soon as it passes `limit`. Node
 * streams are read through events, which costs less per request than async
 * iteration; anything else is iterated. `unfinished` makes the error for a
 * body the client did not finish (the caller's own 400).
 */
export async function readAll(
  stream: AsyncIterable<Uint8Array>,
  limit: number,
  unfinished: (cause?: unknown) => Error = incomplete,
): Promise<Buffer> {
  const node = stream as Partial<NodeReadable>;
  if (typeof node.on !== 'function' || typeof node.removeListener !== 'function') {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += chunk.byteLength;
      if (size > limit) throw new PayloadTooLargeError(limit);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }
  const readable = stream as NodeReadable;
  return new Promise<Buffer>((resolve, reject) => {
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading; the request is answered 413 without draining it.
        readable.pause();
        finish(new PayloadTooLargeError(limit));
        return;
      }
      if (first === undefined) first = chunk;
      else if (more === undefined) more = [chunk];
      else more.push(chunk);
    };
    const onEnd = () => finish();
    // A client that resets the connection mid-body makes Node's request emit
    // `aborted` (ECONNRESET): a body the client did not finish, not a server
    // failure to log as a 500.
    const onError = (err: Error) =>
      finish((err as { code?: unknown }).code === 'ECONNRESET' ? unfinished(err) : err);
    const onClose = () => finish(unfinished());
    function finish(err?: Error): void {
      readable.removeListener('data', onData as () => void);
      readable.removeListener('end', onEnd);
      readable.removeListener('error', onError as () => void);
      readable.removeListener('close', onClose);
      if (err) reject(err);
      else if (more === undefined) resolve(first ?? Buffer.alloc(0));
      else resolve(Buffer.concat([first as Buffer, ...more], size));
    }
    readable.on('data', onData as () => void);
    readable.on('end', onEnd);
    readable.on('error', onError as () => void);
    readable.on('close', onClose);
  });
}

/**
 * Parses a JSON request body within bounds: 415 for another media type, charset or coding, 413
 * over `limit`, 400 for malformed JSON, invalid UTF-8 or nesting deeper than `maxDepth`. The raw
 * bytes are kept on `ctx.request.rawBody`. Skipped when a framework parser already read the body.
 *
 * @example
 * ```ts
 * app.use(rw(jsonBody({ limit: 64 * 1024 })));
 * ```
 */
export function jsonBody(options: JsonBodyOptions = {}): Middleware {
  checkOptions('jsonBody', options, OPTION_NAMES, OPTION_HINTS);
  const { limit = 1_048_576, maxDepth = 64, isJson = defaultIsJson } = options;
  if (!Number.isSafeInteger(limit) || limit < 0)
    invalidOption('jsonBody', 'limit', 'a non-negative integer of bytes', limit);
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1)
    invalidOption('jsonBody', 'maxDepth', 'a positive integer', maxDepth);
  if (typeof isJson !== 'function') invalidOption('jsonBody', 'isJson', 'a function', isJson);

  return responseBlind(async function parseJsonBody(ctx, next) {
    const req = ctx.request;
    if (req.bodyConsumed || req.body !== undefined) return next();
    const lengthHeader = req.header('content-length');
    const transferEncoding = req.header('transfer-encoding');
    const chunked = transferEncoding !== undefined;
    // RFC 9112 §6.3: no Content-Length and no Transfer-Encoding means no body.
    if (!chunked && (lengthHeader === undefined || lengthHeader.trim() === '0')) return next();

    const contentType = req.header('content-type');
    const type = mediaTypeOf(contentType);
    if (type === undefined || !isJson(type)) {
      throw new UnsupportedMediaTypeError(
        type === undefined
          ? 'The request has a body but no Content-Type; send application/json.'
          : `Content-Type ${type} is not supported; send application/json.`,
      );
    }
    const charset = charsetOf(contentType ?? '');
    // RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new UnsupportedMediaTypeError(`Charset ${charset} is not supported; send UTF-8.`);
    }
    const encoding = req.header('content-encoding')?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      throw new UnsupportedMediaTypeError(`Content-Encoding ${encoding} is not supported.`);
    }
    // RFC 9112 §6.1 would answer an unknown transfer coding 501; it is the
    // client's request that cannot be read, so it is a 4xx here, as an unknown
    // content coding is (RFC 9110 §15.5.16).
    if (transferEncoding !== undefined && !onlyChunked(transferEncoding)) {
      throw new UnsupportedMediaTypeError(
        'Transfer-Encoding other than chunked is not supported; send the body chunked or with Content-Length.',
      );
    }
    if (lengthHeader !== undefined) {
      const declared = Number(lengthHeader);
      if (Number.isSafeInteger(declared) && declared > limit) throw new PayloadTooLargeError(limit);
    }

    const raw = await readAll(req.stream(), limit);
    req.rawBody = raw;
    if (raw.length === 0) return next();
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch (err) {
      throw new InvalidUtf8Error(err);
    }
    if (nestsDeeperThan(raw, maxDepth)) throw new JsonTooDeepError(maxDepth);
    try {
      req.body = JSON.parse(text);
    } catch (err) {
      const position = /position (\d+)/.exec(String((err as Error).message))?.[1];
      throw new MalformedJsonError(
        position === undefined
          ? 'The body is not valid JSON.'
          : `The body is not valid JSON (error at position ${position}).`,
        err,
      );
    }
    return next();
  });
}
