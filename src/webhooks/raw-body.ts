/**
 * The route-level raw body capture of `webhookReceiver()`: the exact bytes a
 * sender signed, the same way on Express 4 and 5 and Koa 2 and 3, whether or
 * not a body parser ran first.
 *
 * - Bytes a parser kept are used as they are: `ctx.request.rawBody` (restwell's
 *   `jsonBody()`, `express.json({ verify })` storing `req.rawBody`,
 *   koa-bodyparser's `ctx.request.rawBody`), or a `Buffer` body
 *   (`express.raw()`).
 * - Otherwise the stream is read here, bounded by `limit` (413 from
 *   `Content-Length` before a byte is read, or as soon as the bytes pass it),
 *   and kept on `ctx.request.rawBody` for what runs after.
 * - A stream a parser consumed without keeping the bytes cannot be verified:
 *   `WebhookBodyConsumedError`, whose message names the fixes. Re-serialising
 *   the parsed value is never tried (the bug behind stripe-node #341).
 */
import type { Context } from '../core/context.js';
import { PayloadTooLargeError, UnsupportedMediaTypeError } from '../core/body.js';
import { RestwellError } from '../core/errors.js';
import { WebhookBodyConsumedError } from './errors.js';

const EMPTY = new Uint8Array(0);

function incomplete(cause?: unknown): RestwellError {
  return new RestwellError('bad-request', 400, 'Incomplete body', {
    detail: 'The request body ended before it was complete.',
    cause,
  });
}

/** Whether the request has content (RFC 9112 §6.3: Transfer-Encoding, or a non-zero Content-Length). */
function hasContent(ctx: Context): boolean {
  const { headers } = ctx.request;
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length.trim() !== '0' && Number(length) !== 0;
}

interface NodeReadable {
  on(event: string, listener: (arg?: never) => void): unknown;
  removeListener(event: string, listener: (arg?: never) => void): unknown;
  pause(): unknown;
}

/** Reads the whole body, failing with 413 as soon as it passes `limit`, without draining the rest. */
function readBounded(stream: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const readable = stream as unknown as Partial<NodeReadable>;
  if (typeof readable.on !== 'function' || typeof readable.removeListener !== 'function') {
    return (async () => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of stream) {
        size += chunk.byteLength;
        if (size > limit) throw new PayloadTooLargeError(limit);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks, size);
    })();
  }
  const node = readable as NodeReadable;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading: the request is answered 413 without taking in the rest.
        node.pause();
        finish(new PayloadTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    // A client that resets mid-body: a body it did not finish, not a server failure.
    const onError = (err: Error) =>
      finish((err as { code?: unknown }).code === 'ECONNRESET' ? incomplete(err) : err);
    const onClose = () => finish(incomplete());
    function finish(err?: Error): void {
      node.removeListener('data', onData as () => void);
      node.removeListener('end', onEnd);
      node.removeListener('error', onError as () => void);
      node.removeListener('close', onClose);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    }
    node.on('data', onData as () => void);
    node.on('end', onEnd);
    node.on('error', onError as () => void);
    node.on('close', onClose);
  });
}

/**
 * The request's exact body bytes, at most `limit` of them (see the file
 * comment for where they come from). Keeps them on `ctx.request.rawBody`.
 */
export async function readRawBody(ctx: Context, limit: number): Promise<Uint8Array> {
  const req = ctx.request;
  const kept = req.rawBody ?? (req.body instanceof Uint8Array ? req.body : undefined);
  if (kept !== undefined) {
    if (kept.byteLength > limit) throw new PayloadTooLargeError(limit);
    return kept;
  }
  if (!hasContent(ctx)) return EMPTY;
  if (req.bodyConsumed) throw new WebhookBodyConsumedError();
  const encoding = req.header('content-encoding')?.trim().toLowerCase();
  // The signature covers the bytes as sent; a coded body would have to be decoded
  // first, and no webhook sender codes one.
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity')
    throw new UnsupportedMediaTypeError(`Content-Encoding ${encoding} is not supported.`);
  const transferEncoding = req.header('transfer-encoding');
  // Node undoes chunked framing only (RFC 9112 §7): other codings would leave coded bytes.
  if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked')
    throw new UnsupportedMediaTypeError(
      'Transfer-Encoding other than chunked is not supported; send the body chunked or with Content-Length.',
    );
  const declared = Number(req.header('content-length'));
  if (Number.isSafeInteger(declared) && declared > limit) throw new PayloadTooLargeError(limit);
  const raw = await readBounded(req.stream(), limit);
  req.rawBody = raw;
  return raw;
}
