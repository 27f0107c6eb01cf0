/** Byte helpers shared by the adapters and the modules that rewrite bodies. Internal. */

/**
 * A `Buffer` over `chunk`: a string is encoded (UTF-8 unless `encoding` says
 * otherwise), a `Buffer` is returned as is, and any other `Uint8Array` is
 * wrapped without copying, so the result shares its memory.
 */
export function toBuffer(chunk: string | Uint8Array, encoding: BufferEncoding = 'utf8'): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding);
  return Buffer.isBuffer(chunk)
    ? chunk
    : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
