/**
 * SHA-256 digests as restwell writes them into store keys and fingerprints:
 * base64url without padding (RFC 4648 §5), 43 characters, safe in any store
 * key and in a URL. Internal: not exported from the package.
 */
import { createHash } from 'node:crypto';

/** The SHA-256 of one value (a string is hashed as UTF-8), base64url. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}

/**
 * The SHA-256 of a sequence of parts, each followed by one U+0000 byte,
 * base64url. The separator keeps `['ab', 'c']` and `['a', 'bc']` apart. It is
 * unambiguous as long as at most one part of a fixed-length sequence may hold
 * U+0000 (HTTP forbids it in methods, targets and field values; a body may
 * hold it). Never the same digest as `sha256()` of the joined value.
 */
export function sha256Parts(parts: Iterable<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const part of parts) {
    h.update(part);
    h.update('\u0000');
  }
  return h.digest('base64url');
}
