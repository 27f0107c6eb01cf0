/**
 * SHA-256 digests as restwell writes them into store keys and fingerprints:
 * base64url without padding (RFC 4648 §5), 43 characters, safe in any store
 * key and in a URL. Internal: not exported from the package.
 */
import * as crypto from 'node:crypto';

type OneShotHash = (
  algorithm: string,
  data: string | Uint8Array,
  outputEncoding: 'base64url',
) => string;

// `crypto.hash()` (Node 20.12, 21.7) digests in one call, without the Hash
// object and one native call per `update()`: about a third of the cost for the
// short inputs restwell hashes. Older Node falls back to `createHash`.
const oneShot: OneShotHash | undefined =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? ((crypto as unknown as { hash: OneShotHash }).hash as OneShotHash)
    : undefined;

/** The SHA-256 of one value (a string is hashed as UTF-8), base64url. */
export function sha256(data: string | Uint8Array): string {
  if (oneShot !== undefined) return oneShot('sha256', data, 'base64url');
  return crypto.createHash('sha256').update(data).digest('base64url');
}

/**
 * The SHA-256 of a sequence of parts, each followed by one U+0000 byte,
 * base64url. The separator keeps `['ab', 'c']` and `['a', 'bc']` apart. It is
 * unambiguous as long as at most one part of a fixed-length sequence may hold
 * U+0000 (HTTP forbids it in methods, targets and field values; a body may
 * hold it). Never the same digest as `sha256()` of the joined value.
 *
 * All-string parts are joined and hashed in one call: the same bytes as one
 * `update()` per part, since UTF-8 encodes each part on its own either way (a
 * part never ends in half a surrogate pair that the next part completes: a
 * U+0000 stands between them). A part given as bytes goes through `createHash`,
 * so that it is never copied into a string.
 */
export function sha256Parts(parts: readonly (string | Uint8Array)[]): string {
  if (oneShot !== undefined) {
    let joined = '';
    let strings = true;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (typeof part !== 'string') {
        strings = false;
        break;
      }
      joined += `${part}\u0000`;
    }
    if (strings) return oneShot('sha256', joined, 'base64url');
  }
  return sha256PartsStreamed(parts);
}

/** `sha256Parts` with one `update()` per part: the reference, and the path for bytes. */
export function sha256PartsStreamed(parts: Iterable<string | Uint8Array>): string {
  const h = crypto.createHash('sha256');
  for (const part of parts) {
    h.update(part);
    h.update('\u0000');
  }
  return h.digest('base64url');
}
