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
import { PayloadTooLargeError, readAll, UnsupportedMediaTypeError } from '../core/body.js';
import { RestwellError } from '../core/errors.js';
import { WebhookBodyConsumedError } from './errors.js';

const EMPTY = new Uint8Array(0);

function incomplete(cause?: unknown): RestwellError {
  return new RestwellError('bad-request', 400, 'Incomplete body', {
    detail: 'The request body ended before it was complete.',
    cause,
  });
}

/**
 * 415 for a content coding. RFC 9110 §12.5.3: a server that fails a request for
 * its content coding ought to say which it accepts in `Accept-Encoding`, which
 * tells the sender the coding, not the media type, was refused (and a 415 for a
 * media type must not carry it).
 */
function codingRefused(encoding: string): RestwellError {
  return new RestwellError('unsupported-media-type', 415, 'Unsupported Media Type', {
    detail: `Content-Encoding ${encoding.slice(0, 64)} is not supported; send the body uncoded, as it was signed.`,
    headers: { 'Accept-Encoding': 'identity' },
  });
}

/** Whether the request has content (RFC 9112 §6.3: Transfer-Encoding, or a non-zero Content-Length). */
function hasContent(ctx: Context): boolean {
  const { headers } = ctx.request;
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length.trim() !== '0' && Number(length) !== 0;
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
    throw codingRefused(encoding);
  const transferEncoding = req.header('transfer-encoding');
  // Node undoes chunked framing only (RFC 9112 §7): other codings would leave coded bytes.
  if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked')
    throw new UnsupportedMediaTypeError(
      'Transfer-Encoding other than chunked is not supported; send the body chunked or with Content-Length.',
    );
  const declared = Number(req.header('content-length'));
  if (Number.isSafeInteger(declared) && declared > limit) throw new PayloadTooLargeError(limit);
  const raw = await readAll(req.stream(), limit, incomplete);
  req.rawBody = raw;
  return raw;
}
