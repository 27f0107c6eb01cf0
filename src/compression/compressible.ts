/**
 * Which media types are worth compressing. Text, JSON, XML, SVG, JavaScript,
 * CSS and unknown types are; formats that are compressed already are not:
 * compressing them again costs CPU and saves nothing (or adds bytes).
 */

/** Media types that carry compressed data. */
import { mediaTypeOf } from '../core/body.js';
const ALREADY_COMPRESSED = new Set([
  // opaque binary: most often a compressed or encrypted payload
  'application/octet-stream',
  // archives and compressed containers
  'application/zip',
  'application/gzip',
  'application/x-gzip',
  'application/x-bzip',
  'application/x-bzip2',
  'application/x-xz',
  'application/x-lzip',
  'application/x-lzma',
  'application/x-7z-compressed',
  'application/x-rar-compressed',
  'application/vnd.rar',
  'application/zstd',
  'application/x-zstd',
  'application/x-compress',
  'application/x-brotli',
  'application/java-archive',
  'application/vnd.android.package-archive',
  'application/x-apple-diskimage',
  'application/epub+zip',
  // fonts: WOFF and WOFF2 are compressed formats
  'font/woff',
  'font/woff2',
  'application/font-woff',
  'application/font-woff2',
  'application/x-font-woff',
]);

/**
 * The media type of a `Content-Type` value: lower case, parameters removed;
 * `''` for a value that is not `type/subtype` (the core's one parser).
 */
export function mediaType(contentType: string): string {
  return mediaTypeOf(contentType) ?? '';
}

/**
 * Whether a response of this `Content-Type` is worth compressing: not images
 * (except SVG, which is XML), video, audio, archives, WOFF fonts, opaque
 * binary (`application/octet-stream`), nor any
 * `+zip`/`+gzip` structured type (RFC 6839). The default `filter` of
 * `compression()`.
 */
export function compressible(contentType: string): boolean {
  const type = mediaType(contentType);
  if (type.length === 0) return false;
  if (type.startsWith('image/')) return type === 'image/svg+xml';
  if (type.startsWith('video/') || type.startsWith('audio/')) return false;
  if (type.endsWith('+zip') || type.endsWith('+gzip')) return false;
  return !ALREADY_COMPRESSED.has(type);
}

/** Server-Sent Events (`text/event-stream`). */
export function isEventStream(contentType: string): boolean {
  return mediaType(contentType) === 'text/event-stream';
}
