import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Parts, sha256PartsStreamed } from '../../src/core/hash.js';

/** The digest as idempotency computed it before the one-shot path: one update per part. */
function reference(parts: readonly (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\u0000');
  }
  return h.digest('base64url');
}

describe('sha256Parts, one-shot over the joined parts', () => {
  const cases: (string | Uint8Array)[][] = [
    [],
    [''],
    ['', ''],
    ['principal:7', 'POST', '/v1/orders', 'key-1'],
    [
      'POST',
      '/v1/orders?a=1',
      '{"amount":100,"note":"é 日本 😀"}',
      'content-type:application/json',
    ],
    // Lone surrogates (a body from JavaScript may hold them) become U+FFFD either way.
    ['\ud83d', '\ude00', 'a\ud83db', '\ude00\ud83d'],
    ['a\u0000b', '\u0000', 'c'],
    ['x'.repeat(100_000), 'y'],
    ['POST', '/v1', new Uint8Array([0, 1, 2, 255]), 'h:'],
  ];

  it('gives the same digests as one update per part, so keys and fingerprints survive an upgrade', () => {
    for (const parts of cases) {
      expect(sha256Parts(parts)).toBe(reference(parts));
      expect(sha256PartsStreamed(parts)).toBe(reference(parts));
    }
  });
});
