/**
 * The constant-time path: whatever is wrong with a well-formed key (unknown
 * id, wrong secret, unreadable record), the check hashes it and compares two
 * 32-byte digests with `crypto.timingSafeEqual`, exactly as for a good key,
 * so its timing tells nothing about how much of the key was right.
 */
import * as crypto from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const { apiKeyVerifier, createApiKey } = await import('../../src/auth/api-keys.js');
const { MemoryApiKeyStore } = await import('../../src/auth/key-stores/memory.js');
const { silentLogger } = await import('../../src/core/logger.js');

const compare = vi.mocked(crypto.timingSafeEqual);

beforeEach(() => {
  compare.mockClear();
});

describe('every well-formed key costs one hash and one constant-time comparison', () => {
  it('a good key, a wrong secret, an unknown id and an unreadable record alike', async () => {
    const store = new MemoryApiKeyStore();
    const { key, record } = createApiKey();
    await store.create(record);
    const broken = createApiKey();
    await store.create({ ...broken.record, hash: 'not-a-digest' });
    const verifier = apiKeyVerifier({ store, logger: silentLogger });
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    const cases = [key, wrongSecret, createApiKey().key, broken.key];
    for (const k of cases) await verifier.verify(k).catch(() => {});
    expect(compare).toHaveBeenCalledTimes(cases.length);
    for (const [a, b] of compare.mock.calls) {
      expect((a as Buffer).byteLength).toBe(32);
      expect((b as Buffer).byteLength).toBe(32);
    }
  });

  it('the secret is never compared as a string', async () => {
    const store = new MemoryApiKeyStore();
    const { key, record } = createApiKey();
    await store.create(record);
    await apiKeyVerifier({ store }).verify(key);
    const [a, b] = compare.mock.calls[0]!;
    const secret = Buffer.from(key.split('_')[2]!);
    expect(Buffer.compare(a as Buffer, secret)).not.toBe(0);
    expect(Buffer.compare(b as Buffer, secret)).not.toBe(0);
  });

  it('a malformed key is refused before any lookup (its format is public)', async () => {
    const store = new MemoryApiKeyStore();
    const get = vi.spyOn(store, 'get');
    await apiKeyVerifier({ store })
      .verify('nope')
      .catch(() => {});
    expect(get).not.toHaveBeenCalled();
    expect(compare).not.toHaveBeenCalled();
  });
});
