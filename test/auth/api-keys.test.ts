import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  type ApiKeyRecord,
  type ApiKeyStore,
  apiKeyMatches,
  apiKeyRecordFor,
  apiKeyVerifier,
  createApiKey,
  issueApiKey,
  parseApiKey,
} from '../../src/auth/api-keys.js';
import { InvalidApiKeyError, IpNotAllowedError } from '../../src/auth/errors.js';
import { MemoryApiKeyStore } from '../../src/auth/key-stores/memory.js';
import { recordingLogger } from './helpers.js';

const KEY_FORMAT = /^rwk_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}$/;

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('accepted'),
    (e: unknown) => e,
  );
}

describe('issuing keys', () => {
  it('a key is namespace_id_secret from the CSPRNG; its record holds the SHA-256, never the key', () => {
    const { key, record } = createApiKey({ subject: 'svc_billing', scopes: ['payments:write'] });
    expect(key).toMatch(KEY_FORMAT);
    expect(key.split('_')[1]).toBe(record.id);
    expect(record.hash).toBe(createHash('sha256').update(key).digest('base64url'));
    const stored = JSON.stringify(record);
    expect(stored).not.toContain(key);
    expect(stored).not.toContain(key.split('_')[2]!);
    expect(record).toMatchObject({ subject: 'svc_billing', scopes: ['payments:write'], roles: [] });
  });

  it('keys are unique and their characters uniform', () => {
    const keys = Array.from({ length: 2000 }, () => createApiKey().key);
    expect(new Set(keys).size).toBe(keys.length);
    const counts = new Map<string, number>();
    for (const k of keys) for (const c of k.split('_')[2]!) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 64 000 characters over 62 symbols: about 1032 each; a modulo bias would skew the first eight.
    for (const n of counts.values()) expect(Math.abs(n - 64_000 / 62)).toBeLessThan(200);
  });

  it('the subject defaults to the key id; expiry from ttlMs or expiresAt', () => {
    const { record } = createApiKey({ ttlMs: 60_000, now: () => 1_000 });
    expect(record.subject).toBe(record.id);
    expect(record.expiresAt).toBe(61_000);
    expect(createApiKey({ expiresAt: new Date(5000), now: () => 1000 }).record.expiresAt).toBe(
      5000,
    );
  });

  it('a namespace of your own', () => {
    expect(createApiKey({ namespace: 'acme_live' }).key).toMatch(
      /^acme_live_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}$/,
    );
    for (const namespace of ['Acme', '9x', 'a-b', 'x_', '', 'a'.repeat(25)]) {
      expect(() => createApiKey({ namespace })).toThrow(/namespace/);
    }
  });

  it('bad options are refused at once', () => {
    expect(() => createApiKey({ roles: ['has space'] })).toThrow(/roles/);
    expect(() => createApiKey({ scopes: ['a"b'] })).toThrow(/scopes/);
    expect(() => createApiKey({ allowedIps: ['10.0.0.0/33'] })).toThrow(/allowedIps/);
    expect(() => createApiKey({ allowedIps: ['not-an-ip'] })).toThrow(/allowedIps/);
    expect(() => createApiKey({ allowedIps: [] })).toThrow(/allowedIps/);
    expect(() => createApiKey({ expiresAt: 1, now: () => 2 })).toThrow(/future/);
    expect(() => createApiKey({ ttlMs: 1, expiresAt: 5 })).toThrow(/not both/);
    expect(() => createApiKey({ scope: ['a'] } as never)).toThrow(/Did you mean "scopes"/);
  });

  it('issueApiKey stores the record and returns the key once', async () => {
    const store = new MemoryApiKeyStore();
    const { key, record } = await issueApiKey(store, { roles: ['admin'] });
    expect(await store.get(record.id)).toEqual(record);
    expect(apiKeyMatches(key, (await store.get(record.id))!.hash)).toBe(true);
  });
});

describe('apiKeyRecordFor', () => {
  it('records a key given in configuration by its hash, and the key then verifies', async () => {
    const { key } = createApiKey();
    const record = apiKeyRecordFor(key, { subject: 'svc_env', roles: ['admin'] });
    expect(record.id).toBe(key.split('_')[1]);
    expect(JSON.stringify(record)).not.toContain(key.split('_')[2]!);
    const store = new MemoryApiKeyStore();
    await store.create(record);
    expect((await apiKeyVerifier({ store }).verify(key)).principal).toMatchObject({
      id: 'svc_env',
      roles: ['admin'],
    });
  });

  it('refuses a string not in the key format, without showing it', () => {
    try {
      apiKeyRecordFor('hunter2-my-old-key');
      expect.unreachable();
    } catch (err) {
      expect(String(err)).toMatch(/key format/);
      expect(String(err)).not.toContain('hunter2');
    }
    expect(() => apiKeyRecordFor(createApiKey().key, { namespace: 'x' } as never)).toThrow(
      /unknown option/,
    );
  });
});

describe('parseApiKey', () => {
  it('reads well-formed keys and nothing else', () => {
    const { key, record } = createApiKey({ namespace: 'acme_live' });
    expect(parseApiKey(key)).toEqual({ namespace: 'acme_live', id: record.id });
    for (const bad of [
      '',
      'rwk',
      'rwk__',
      `rwk_${'a'.repeat(12)}`,
      `rwk_${'a'.repeat(11)}_${'b'.repeat(32)}`,
      `rwk_${'a'.repeat(12)}_${'b'.repeat(31)}`,
      `rwk_${'a'.repeat(12)}_${'b'.repeat(33)}`,
      `rwk_${'a'.repeat(12)}_${'b'.repeat(31)}-`,
      `_${'a'.repeat(12)}_${'b'.repeat(32)}`,
      `RWK_${'a'.repeat(12)}_${'b'.repeat(32)}`,
      `rwk_${'a'.repeat(12)}_${'b'.repeat(32)} `,
      'x'.repeat(10_000),
    ]) {
      expect(parseApiKey(bad), bad.slice(0, 40)).toBeUndefined();
    }
  });
});

async function seeded(options: Parameters<typeof createApiKey>[0] = {}) {
  const store = new MemoryApiKeyStore();
  const issued = await issueApiKey(store, options);
  return { store, ...issued };
}

describe('verifying keys', () => {
  it('a good key gives the principal of its record', async () => {
    const { store, key, record } = await seeded({
      subject: 'svc_billing',
      name: 'billing',
      roles: ['admin'],
      scopes: ['payments:write'],
      tenant: 'acme',
    });
    const { principal } = await apiKeyVerifier({ store }).verify(key);
    expect(principal).toMatchObject({
      id: 'svc_billing',
      type: 'api-key',
      roles: ['admin'],
      scopes: ['payments:write'],
      tenant: 'acme',
      authentication: 'api-key',
      claims: { keyId: record.id, sub: 'svc_billing', name: 'billing' },
    });
    expect(JSON.stringify(principal)).not.toContain(key);
    expect(JSON.stringify(principal)).not.toContain(record.hash);
  });

  it('unknown id, wrong secret, revoked, expired, wrong namespace, malformed', async () => {
    const t0 = Date.UTC(2026, 4, 1);
    const { store, key, record } = await seeded({ ttlMs: 60_000, now: () => t0 });
    const verifier = apiKeyVerifier({ store, now: () => t0 });
    const reason = async (k: string, now?: number) =>
      ((await refusal(verifier.verify(k, now === undefined ? {} : { now }))) as InvalidApiKeyError)
        .reason;
    const [, id, secret] = key.split('_') as [string, string, string];
    expect(await reason(createApiKey().key)).toBe('unknown');
    expect(
      await reason(`rwk_${id}_${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`),
    ).toBe('unknown');
    expect(await reason(`acme_${id}_${secret}`)).toBe('malformed');
    expect(await reason('not a key')).toBe('malformed');
    expect(await reason(key, t0 + 60_000)).toBe('expired');
    expect((await verifier.verify(key, { now: t0 + 59_999 })).record.id).toBe(record.id);
    await store.revoke(record.id, t0 + 10);
    expect(await reason(key, t0 + 10)).toBe('revoked');
  });

  it('a revocation counts at once, even stamped by a clock ahead of this one', async () => {
    const t0 = Date.UTC(2026, 4, 1);
    const { store, key, record } = await seeded({ now: () => t0 });
    const verifier = apiKeyVerifier({ store, now: () => t0 });
    expect((await verifier.verify(key)).record.id).toBe(record.id);
    // Revoked on a host whose clock runs a minute fast.
    await store.revoke(record.id, t0 + 60_000);
    const err = (await refusal(verifier.verify(key))) as InvalidApiKeyError;
    expect(err.reason).toBe('revoked');
  });

  it('several namespaces while renaming', async () => {
    const store = new MemoryApiKeyStore();
    const a = await issueApiKey(store, { namespace: 'old' });
    const b = await issueApiKey(store, { namespace: 'new' });
    const verifier = apiKeyVerifier({ store, namespace: ['old', 'new'] });
    await verifier.verify(a.key);
    await verifier.verify(b.key);
    expect(verifier.recognizes(a.key)).toBe(true);
    expect(apiKeyVerifier({ store, namespace: 'new' }).recognizes(a.key)).toBe(false);
  });

  it('a corrupted record is refused and reported, never trusted', async () => {
    const { key, record } = createApiKey();
    const logger = recordingLogger();
    for (const value of [
      { ...record, roles: 'admin' },
      { ...record, id: 'someoneElse0' },
      { ...record, expiresAt: 'never' },
      'a string',
    ]) {
      const store: ApiKeyStore = {
        kind: 'broken',
        get: async () => value as unknown as ApiKeyRecord,
        create: async () => true,
        revoke: async () => true,
        delete: async () => true,
      };
      const err = await refusal(apiKeyVerifier({ store, logger }).verify(key));
      expect((err as InvalidApiKeyError).reason).toBe('unknown');
    }
    expect(logger.lines.filter((l) => l.includes('unreadable')).length).toBe(4);
    expect(logger.lines.join('\n')).not.toContain(key);
  });

  it('a store that fails or hangs answers 503 within its timeout', async () => {
    const failing: ApiKeyStore = {
      kind: 'down',
      get: async () => {
        throw new Error('ECONNREFUSED');
      },
      create: async () => true,
      revoke: async () => true,
      delete: async () => true,
    };
    const hanging: ApiKeyStore = { ...failing, get: () => new Promise(() => {}) };
    const { key } = createApiKey();
    expect(
      await refusal(apiKeyVerifier({ store: failing, logger: silentLogger }).verify(key)),
    ).toBeInstanceOf(ServiceUnavailableError);
    const started = Date.now();
    expect(
      await refusal(
        apiKeyVerifier({ store: hanging, timeoutMs: 200, logger: silentLogger }).verify(key),
      ),
    ).toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('IP allowlists', () => {
  const cases: Array<[string[], string | undefined, boolean]> = [
    [['203.0.113.0/24'], '203.0.113.7', true],
    [['203.0.113.0/24'], '203.0.114.7', false],
    [['203.0.113.7'], '203.0.113.7', true],
    [['203.0.113.7'], '203.0.113.8', false],
    [['10.0.0.0/8'], '::ffff:10.1.2.3', true],
    [['2001:db8::/32'], '2001:db8:1::1', true],
    [['2001:db8::/32'], '2001:db9::1', false],
    [['2001:db8::1'], '2001:DB8:0:0:0:0:0:1', true],
    [['2001:db8::/32'], '203.0.113.7', false],
    [['203.0.113.0/24'], '2001:db8::1', false],
    [['loopback'], '127.0.0.1', true],
    [['loopback'], '::1', true],
    [['0.0.0.0/0'], '198.51.100.1', true],
    [['0.0.0.0/0'], '::ffff:198.51.100.1', true],
    [['::/0'], '2001:db8::1', true],
    [['203.0.113.7/32'], '203.0.113.7', true],
    [['203.0.113.7/32'], '203.0.113.6', false],
    [['2001:db8::1/128'], '2001:db8::1', true],
    [['2001:db8::1/128'], '2001:db8::2', false],
    [['10.0.0.1'], '::ffff:10.0.0.1', true],
    [['10.0.0.1'], '::FFFF:10.0.0.1', true],
    [['10.0.0.1'], '[::ffff:10.0.0.1]:443', true],
    [['10.0.0.0/8'], '::ffff:11.0.0.1', false],
    [['10.0.0.0/8'], '::10.0.0.1', false],
    [['10.0.0.0/8'], '64:ff9b::a00:1', false],
    [['fe80::/10'], 'fe80::1%eth0', true],
    [['203.0.113.0/24'], undefined, false],
    [['203.0.113.0/24'], 'garbage', false],
  ];
  it.each(cases)('%j from %s: %s', async (allowedIps, ip, allowed) => {
    const { store, key } = await seeded({ allowedIps });
    const verifier = apiKeyVerifier({ store });
    if (allowed) await verifier.verify(key, { ip });
    else expect(await refusal(verifier.verify(key, { ip }))).toBeInstanceOf(IpNotAllowedError);
  });

  it('a wrong secret from an allowed address is still a 401, not a 403', async () => {
    const { store, key } = await seeded({ allowedIps: ['203.0.113.0/24'] });
    const wrong = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    expect(
      await refusal(apiKeyVerifier({ store }).verify(wrong, { ip: '198.51.100.1' })),
    ).toBeInstanceOf(InvalidApiKeyError);
  });

  it('malformed CIDR ranges are refused when a key is made, and allow nothing from a store', async () => {
    for (const bad of [
      '10.0.0.0/8/32',
      '10.0.0.0//8',
      '10.0.0.0/',
      '/8',
      '10.0.0.0/-1',
      '10.0.0.0/8 ',
      '10.0.0.0/0x8',
      '2001:db8::/129',
      '10.0.0.256/8',
      '10.0.0.0/8,192.168.0.0/16',
    ]) {
      expect(() => createApiKey({ allowedIps: [bad] }), bad).toThrow(/allowedIps/);
    }
    const { key, record } = createApiKey();
    const store = new MemoryApiKeyStore();
    // A typo that would read as 10.0.0.0/8: every address of it would be allowed.
    await store.create({ ...record, allowedIps: ['10.0.0.0/8/32'] });
    expect(
      await refusal(
        apiKeyVerifier({ store, logger: silentLogger }).verify(key, { ip: '10.9.9.9' }),
      ),
    ).toBeInstanceOf(IpNotAllowedError);
  });

  it('an unreadable allowlist in a stored record allows nothing', async () => {
    const { key, record } = createApiKey();
    const store = new MemoryApiKeyStore();
    await store.create({ ...record, allowedIps: ['10.0.0.0/99'] });
    const logger = recordingLogger();
    expect(
      await refusal(apiKeyVerifier({ store, logger }).verify(key, { ip: '10.0.0.1' })),
    ).toBeInstanceOf(IpNotAllowedError);
    expect(logger.lines.some((l) => l.includes('unreadable IP allowlist'))).toBe(true);
  });
});

describe('the record cache', () => {
  function counting(store: ApiKeyStore) {
    const counter = { reads: 0 };
    const wrapped: ApiKeyStore = {
      kind: store.kind,
      get: (id) => {
        counter.reads++;
        return store.get(id);
      },
      create: (r) => store.create(r),
      revoke: (id, at) => store.revoke(id, at),
      delete: (id) => store.delete(id),
    };
    return { counter, wrapped };
  }

  it('off by default: every request reads the store, and a revocation counts at once', async () => {
    const { store, key, record } = await seeded();
    const { counter, wrapped } = counting(store);
    const verifier = apiKeyVerifier({ store: wrapped });
    await verifier.verify(key);
    await verifier.verify(key);
    expect(counter.reads).toBe(2);
    await store.revoke(record.id, Date.now());
    expect(await refusal(verifier.verify(key))).toBeInstanceOf(InvalidApiKeyError);
  });

  it('with cacheTtlMs, one read per interval; a revocation takes up to that long', async () => {
    const { store, key, record } = await seeded();
    const { counter, wrapped } = counting(store);
    const clock = { now: Date.now() };
    const verifier = apiKeyVerifier({ store: wrapped, cacheTtlMs: 5000, now: () => clock.now });
    await verifier.verify(key);
    await verifier.verify(key);
    expect(counter.reads).toBe(1);
    await store.revoke(record.id, clock.now);
    clock.now += 1;
    await verifier.verify(key);
    clock.now += 5000;
    expect(await refusal(verifier.verify(key))).toBeInstanceOf(InvalidApiKeyError);
    expect(counter.reads).toBe(2);
  });

  it('unknown ids are not cached: a key issued a moment ago works at once', async () => {
    const store = new MemoryApiKeyStore();
    const { counter, wrapped } = counting(store);
    const verifier = apiKeyVerifier({ store: wrapped, cacheTtlMs: 60_000 });
    const { key, record } = createApiKey();
    await refusal(verifier.verify(key));
    await store.create(record);
    await verifier.verify(key);
    expect(counter.reads).toBe(2);
  });
});

describe('configuration', () => {
  it('is checked', () => {
    expect(() => apiKeyVerifier({} as never)).toThrow(/store/);
    expect(() => apiKeyVerifier({ store: new MemoryApiKeyStore(), namespace: 'Bad' })).toThrow(
      /namespace/,
    );
    expect(() => apiKeyVerifier({ store: new MemoryApiKeyStore(), cacheTTL: 5 } as never)).toThrow(
      /cacheTtlMs/,
    );
    expect(() => apiKeyVerifier({ store: new MemoryApiKeyStore(), timeoutMs: 0 })).toThrow(
      /timeoutMs/,
    );
  });
});
