/**
 * `jsonBody()`: reads and parses a JSON request body within a size limit,
 * answering every failure as a problem: 415 for a media type or encoding it
 * cannot read, 413 for a body over the limit (refused from `Content-Length`
 * before a byte is read when possible), 400 for malformed JSON. Keeps the raw
 * bytes in `ctx.request.rawBody` (signatures and fingerprints need them) and
 * the parsed value in `ctx.request.body`.
 *
 * Skipped when the framework already parsed the body.
 *
 * @example
 * ```ts
 * app.use(rw(jsonBody({ limit: 512 * 1024 })));
 * ```
 */
import { type Middleware, responseBlind } from './context.js';
import { invalidOption, RestwellError } from './errors.js';

export interface JsonBodyOptions {
  /** Largest body accepted, in bytes. @default 1_048_576 (1 MiB) */
  limit?: number;
  /**
   * Which media types are JSON. A request with a body of another type gets 415.
   * @default (type) => type === 'application/json' || type ends with '+json'
   */
  isJson?: (mediaType: string) => boolean;
}

export class PayloadTooLargeError extends RestwellError {
  override readonly name = 'PayloadTooLargeError';
  constructor(limit: number) {
    super('payload-too-large', 413, 'Payload Too Large', {
      detail: `The body exceeds the limit of ${limit} bytes.`,
      extensions: { limit },
    });
  }
}

export class UnsupportedMediaTypeError extends RestwellError {
  override readonly name = 'UnsupportedMediaTypeError';
  constructor(detail: string) {
    super('unsupported-media-type', 415, 'Unsupported Media Type', { detail });
  }
}

export class MalformedJsonError extends RestwellError {
  override readonly name = 'MalformedJsonError';
  constructor(detail: string, cause?: unknown) {
    super('malformed-json', 400, 'Malformed JSON', { detail, cause });
  }
}

const defaultIsJson = (type: string) => type === 'application/json' || type.endsWith('+json');

/** `type/subtype` of a Content-Type value, lower-cased, parameters removed. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type.length > 0 ? type : undefined;
}

function charsetOf(contentType: string): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return m?.[1]?.toLowerCase();
}

interface NodeReadable extends AsyncIterable<Uint8Array> {
  on(event: string, listener: (arg?: never) => void): unknown;
  removeListener(event: string, listener: (arg?: never) => void): unknown;
  pause(): unknown;
}

/**
 * Reads a whole body, failing with 413 as soon as it passes `limit`. Node
 * streams are read through events, which costs less per request than async
 * iteration; anything else is iterated.
 */
async function readAll(stream: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
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
    const onError = (err: Error) => finish(err);
    const onClose = () =>
      finish(new MalformedJsonError('The request body ended before it was complete.'));
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

export function jsonBody(options: JsonBodyOptions = {}): Middleware {
  const { limit = 1_048_576, isJson = defaultIsJson } = options;
  if (!Number.isInteger(limit) || limit < 0)
    invalidOption('body', 'limit', 'a non-negative integer of bytes', limit);
  if (typeof isJson !== 'function') invalidOption('body', 'isJson', 'a function', isJson);

  return responseBlind(async function parseJsonBody(ctx, next) {
    const req = ctx.request;
    if (req.bodyConsumed || req.body !== undefined) return next();
    const lengthHeader = req.header('content-length');
    const chunked = req.header('transfer-encoding') !== undefined;
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
    if (lengthHeader !== undefined) {
      const declared = Number(lengthHeader);
      if (Number.isSafeInteger(declared) && declared > limit) throw new PayloadTooLargeError(limit);
    }

    const raw = await readAll(req.stream(), limit);
    req.rawBody = raw;
    if (raw.length === 0) return next();
    let text = raw.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
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
