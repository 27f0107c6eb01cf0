import { generateKeyPairSync } from 'node:crypto';
import { CompactEncrypt, exportJWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/core/errors.js';
import { InvalidTokenError, type InvalidTokenReason } from '../../src/auth/errors.js';
import { type JwtVerifierOptions, jwtVerifier } from '../../src/auth/jwt.js';
import {
  AUDIENCE,
  b64,
  ISSUER,
  type KeyPair,
  keyPair,
  SECRET,
  seconds,
  secretBytes,
  sign,
  unsigned,
} from './helpers.js';

async function reasonOf(promise: Promise<unknown>): Promise<InvalidTokenReason> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidTokenError);
  return (err as InvalidTokenError).reason;
}

const hs = (extra: Partial<JwtVerifierOptions> = {}) =>
  jwtVerifier({
    keys: [{ secret: SECRET, algorithms: ['HS256'] }],
    issuer: ISSUER,
    audience: AUDIENCE,
    ...extra,
  });

let rsa: KeyPair;
let ec: KeyPair;
let ed: KeyPair;

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([keyPair('RS256'), keyPair('ES256'), keyPair('EdDSA')]);
});

describe('every algorithm family verifies with its own kind of key', () => {
  it.each([
    ['HS256', 32],
    ['HS384', 48],
    ['HS512', 64],
  ] as const)('%s with a secret of %i bytes', async (alg, bytes) => {
    const secret = 's'.repeat(bytes);
    const verifier = jwtVerifier({
      keys: [{ secret, algorithms: [alg] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const token = await sign(secretBytes(secret), { alg });
    const { principal, header } = await verifier.verify(token);
    expect(principal.id).toBe('usr_ada');
    expect(header.alg).toBe(alg);
  });

  it.each([
    'RS256',
    'RS384',
    'RS512',
    'PS256',
    'PS384',
    'PS512',
    'ES256',
    'ES384',
    'ES512',
    'EdDSA',
    'Ed25519',
  ] as const)('%s with a public key as PEM, as JWK and as KeyObject', async (alg) => {
    const pair = await keyPair(alg, `k-${alg}`);
    const token = await sign(pair.privateKey, { alg, kid: pair.kid });
    const { createPublicKey } = await import('node:crypto');
    for (const publicKey of [pair.pem, pair.jwk, createPublicKey(pair.pem)]) {
      const verifier = jwtVerifier({
        keys: [{ kid: pair.kid, publicKey: publicKey as never, algorithms: [alg] }],
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      expect((await verifier.verify(token)).principal.id).toBe('usr_ada');
    }
  });
});

describe('the principal', () => {
  it('takes id, roles, scopes and tenant from the verified claims', async () => {
    const token = await sign(
      secretBytes(),
      { alg: 'HS256' },
      {
        roles: ['admin', 'support'],
        scope: 'users:read users:write',
        tenant: 'acme',
      },
    );
    const { principal } = await hs().verify(token);
    expect(principal).toMatchObject({
      id: 'usr_ada',
      type: 'user',
      roles: ['admin', 'support'],
      scopes: ['users:read', 'users:write'],
      tenant: 'acme',
      authentication: 'jwt',
    });
    expect(principal.claims.tenant).toBe('acme');
    expect(principal.expiresAt).toBe((principal.claims.exp as number) * 1000);
  });

  it('reads scp arrays, and a client-credentials token is a client (RFC 9068 §5)', async () => {
    const token = await sign(
      secretBytes(),
      { alg: 'HS256' },
      {
        sub: 'svc_billing',
        client_id: 'svc_billing',
        scp: ['payments:write'],
      },
    );
    const { principal } = await hs().verify(token);
    expect(principal.type).toBe('client');
    expect(principal.scopes).toEqual(['payments:write']);
  });

  it('ignores roles and scopes that are not strings', async () => {
    const token = await sign(
      secretBytes(),
      { alg: 'HS256' },
      { roles: [1, { admin: true }, 'ok'], scope: 42 },
    );
    const { principal } = await hs().verify(token);
    expect(principal.roles).toEqual(['ok']);
    expect(principal.scopes).toEqual([]);
  });

  it('a custom mapping decides; undefined refuses the token', async () => {
    const verifier = hs({
      principal: (claims) =>
        typeof claims.uid === 'string' ? { id: claims.uid, roles: ['member'] } : undefined,
    });
    const ok = await sign(secretBytes(), { alg: 'HS256' }, { uid: 'u_7' });
    expect((await verifier.verify(ok)).principal).toMatchObject({ id: 'u_7', roles: ['member'] });
    const none = await sign(secretBytes(), { alg: 'HS256' });
    expect(await reasonOf(verifier.verify(none))).toBe('claims');
  });

  it('a token without sub nor client_id maps to no principal', async () => {
    const token = await sign(secretBytes(), { alg: 'HS256' }, { sub: undefined });
    expect(await reasonOf(hs().verify(token))).toBe('claims');
  });
});

describe('attacks (RFC 8725)', () => {
  it('alg none is refused, however it is spelled', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      expect(await reasonOf(hs().verify(unsigned({}, { alg })))).toBe('algorithm');
    }
    // With a "signature" appended too.
    expect(await reasonOf(hs().verify(`${unsigned()}${b64('sig')}`))).toBe('algorithm');
  });

  it('"none" cannot even be configured', () => {
    expect(() =>
      jwtVerifier({
        keys: [{ secret: SECRET, algorithms: ['none' as never] }],
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    ).toThrow(/never accepted/);
  });

  it('HS256 signed with the RSA public key PEM is refused by an RS256 verifier (key confusion)', async () => {
    const verifier = jwtVerifier({
      keys: [{ publicKey: rsa.pem, algorithms: ['RS256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const forged = await sign(secretBytes(rsa.pem), { alg: 'HS256' });
    expect(await reasonOf(verifier.verify(forged))).toBe('algorithm');
    // Also when the verifier knows an HMAC secret: the PEM is not that secret.
    const both = jwtVerifier({
      keys: [
        { publicKey: rsa.pem, algorithms: ['RS256'] },
        { secret: SECRET, algorithms: ['HS256'] },
      ],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(await reasonOf(both.verify(forged))).toBe('signature');
    // And the real RS256 token still passes.
    expect((await both.verify(await sign(rsa.privateKey, { alg: 'RS256' }))).principal.id).toBe(
      'usr_ada',
    );
  });

  it('a public key can never be configured as an HMAC secret, nor for an HMAC algorithm', () => {
    const base = { issuer: ISSUER, audience: AUDIENCE };
    expect(() =>
      jwtVerifier({ ...base, keys: [{ secret: rsa.pem, algorithms: ['HS256'] }] }),
    ).toThrow(/looks like a PEM or a JWK/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ secret: JSON.stringify(rsa.jwk), algorithms: ['HS256'] }] }),
    ).toThrow(/looks like a PEM or a JWK/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: rsa.pem, algorithms: ['HS256' as never] }] }),
    ).toThrow(/never verifies an HMAC algorithm/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ secret: SECRET, algorithms: ['RS256' as never] }] }),
    ).toThrow(/HS256, HS384 or HS512 only/);
  });

  it('an RS256 token is refused by a verifier that allows ES256 only, and the other way round', async () => {
    const esOnly = jwtVerifier({
      keys: [{ publicKey: ec.pem, algorithms: ['ES256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(await reasonOf(esOnly.verify(await sign(rsa.privateKey, { alg: 'RS256' })))).toBe(
      'algorithm',
    );
    const rsOnly = jwtVerifier({
      keys: [{ publicKey: rsa.pem, algorithms: ['RS256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(await reasonOf(rsOnly.verify(await sign(ec.privateKey, { alg: 'ES256' })))).toBe(
      'algorithm',
    );
  });

  it('kid injection: a path, SQL or a huge kid selects no key', async () => {
    const verifier = jwtVerifier({
      keys: [{ kid: 'k1', secret: SECRET, algorithms: ['HS256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    for (const kid of [
      '../../../../../../dev/null',
      '/etc/passwd',
      "' OR '1'='1' --",
      'k1; DROP TABLE keys',
      'k1\u0000',
      'K1',
      'x'.repeat(100_000),
    ]) {
      // Signed with the empty secret (what /dev/null would give) and with the real one.
      for (const key of [new Uint8Array(32), secretBytes()]) {
        const token = await sign(key, { alg: 'HS256', kid });
        expect(await reasonOf(verifier.verify(token))).toMatch(/^(key|malformed)$/);
      }
    }
    for (const kid of [1, { $ne: null }, ['k1'], null]) {
      const token = `${b64({ alg: 'HS256', kid })}.${b64({ sub: 'x' })}.sig`;
      expect(await reasonOf(verifier.verify(token))).toBe('key');
    }
  });

  it('an embedded jwk, jku or x5u header is never followed', async () => {
    const attacker = await keyPair('RS256', 'evil');
    const verifier = jwtVerifier({
      keys: [{ publicKey: rsa.pem, algorithms: ['RS256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    for (const extra of [
      { jwk: attacker.jwk },
      { jku: 'http://127.0.0.1:1/jwks.json' },
      { x5u: 'http://127.0.0.1:1/cert.pem' },
    ]) {
      const token = await sign(attacker.privateKey, { alg: 'RS256', ...extra });
      expect(await reasonOf(verifier.verify(token))).toBe('signature');
    }
  });

  it('a tampered payload or header fails the signature', async () => {
    const token = await sign(secretBytes(), { alg: 'HS256' }, { roles: ['member'] });
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const promoted = `${h}.${b64({ ...payload, roles: ['admin'] })}.${s}`;
    expect(await reasonOf(hs().verify(promoted))).toBe('signature');
    const rekeyed = `${b64({ alg: 'HS256', kid: 'other' })}.${p}.${s}`;
    expect(await reasonOf(hs().verify(rekeyed))).toBe('signature');
    const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await reasonOf(hs().verify(flipped))).toBe('signature');
  });

  it('a token signed with another secret fails the signature', async () => {
    const token = await sign(secretBytes('another-secret-of-thirty-two-bytes!!'), { alg: 'HS256' });
    expect(await reasonOf(hs().verify(token))).toBe('signature');
  });

  it('unknown critical headers are refused (RFC 7515 §4.1.11)', async () => {
    const { createHmac } = await import('node:crypto');
    const header = b64({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 });
    const payload = b64({ iss: ISSUER, aud: AUDIENCE, sub: 'a', exp: seconds(Date.now()) + 60 });
    const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    expect(await reasonOf(hs().verify(`${header}.${payload}.${sig}`))).toBe('malformed');
  });

  it('malformed input of every kind is a 401 reason, never an exception', async () => {
    const jwe = await new CompactEncrypt(new TextEncoder().encode('{}'))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(new Uint8Array(32));
    const cases = [
      '',
      'a',
      'a.b',
      'a.b.c.d',
      jwe,
      '...',
      '.x.y',
      `${b64('not json')}.${b64({})}.sig`,
      `${b64([1, 2])}.${b64({})}.sig`,
      `${b64('null')}.${b64({})}.sig`,
      `${b64({ alg: 'HS256' })}.${b64('[1]')}.sig`,
      `${b64({ alg: 'HS256' })}.%%%.sig`,
      `${b64({ alg: 'HS256' })}.${b64({})}.${'A'.repeat(9000)}`,
      `${b64({ alg: 'HS256', b64: false, crit: ['b64'] })}.${b64({})}.sig`,
      '\u0000.\u0000.\u0000',
      `${b64({ alg: 'HS256' })}.${b64({ exp: 'soon', iss: ISSUER, aud: AUDIENCE, sub: 'x' })}.sig`,
    ];
    for (const token of cases) {
      await expect(hs().verify(token)).rejects.toBeInstanceOf(InvalidTokenError);
    }
    await expect(hs().verify(undefined as never)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('a header or claims set naming a member twice is refused, escapes included (RFC 7515 §5.2)', async () => {
    const { createHmac } = await import('node:crypto');
    const signed = (header: string, payload: string) => {
      const h = b64(header);
      const p = b64(payload);
      return `${h}.${p}.${createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')}`;
    };
    const claims = `"iss":"${ISSUER}","aud":"${AUDIENCE}","exp":${seconds(Date.now()) + 60}`;
    // A first-wins reader (a gateway, a log pipeline) would see usr_admin and the admin role.
    const twoSubs = signed(
      '{"alg":"HS256"}',
      `{"sub":"usr_admin","roles":["admin"],${claims},"sub":"usr_ada"}`,
    );
    const escaped = signed(
      '{"alg":"HS256"}',
      `{"sub":"usr_admin",${claims},"s\\u0075b":"usr_ada"}`,
    );
    const nested = signed(
      '{"alg":"HS256"}',
      `{"sub":"usr_ada",${claims},"realm":{"roles":["admin"],"roles":[]}}`,
    );
    const twoAlgs = signed('{"alg":"none","alg":"HS256"}', `{"sub":"usr_ada",${claims}}`);
    for (const token of [twoSubs, escaped, nested, twoAlgs]) {
      expect(await reasonOf(hs().verify(token))).toBe('malformed');
    }
    // The same names in different objects, and strings that look like names, are fine.
    const fine = signed(
      '{"alg":"HS256","typ":"JWT"}',
      `{"sub":"usr_ada",${claims},"a":{"sub":"x","b":["sub","sub",{"sub":1}]},"c":"\\"sub\\":"}`,
    );
    expect((await hs().verify(fine)).principal.id).toBe('usr_ada');
  });

  it('a nested JWT (cty: JWT) is refused, whatever its payload (RFC 7519 §5.2)', async () => {
    const { createHmac } = await import('node:crypto');
    const inner = unsigned();
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'usr_ada', exp: seconds(Date.now()) + 60 };
    for (const [cty, payload] of [
      ['JWT', inner],
      ['jwt', JSON.stringify(claims)],
      ['application/JWT', JSON.stringify(claims)],
    ] as const) {
      const h = b64({ alg: 'HS256', cty });
      const p = b64(payload);
      const sig = createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
      expect(await reasonOf(hs().verify(`${h}.${p}.${sig}`))).toBe('malformed');
    }
    // Another content type says nothing about nesting.
    const other = await sign(secretBytes(), { alg: 'HS256', cty: 'json' });
    expect((await hs().verify(other)).principal.id).toBe('usr_ada');
  });

  it('a payload that is not a JSON object is refused even with a valid signature', async () => {
    const header = b64({ alg: 'HS256' });
    for (const body of ['[1,2]', '"x"', '42', 'null']) {
      const payload = b64(body);
      const { createHmac } = await import('node:crypto');
      const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
      expect(await reasonOf(hs().verify(`${header}.${payload}.${sig}`))).toBe('malformed');
    }
  });
});

describe('claims, with an injected clock', () => {
  const t0 = Date.UTC(2026, 0, 15, 12, 0, 0);

  it('expired, with the clock tolerance', async () => {
    const token = await sign(
      secretBytes(),
      { alg: 'HS256' },
      { iat: seconds(t0) - 120, exp: seconds(t0) - 10 },
      t0,
    );
    expect(await reasonOf(hs({ clockToleranceMs: 0 }).verify(token, { now: t0 }))).toBe('expired');
    expect(await reasonOf(hs({ clockToleranceMs: 10_000 }).verify(token, { now: t0 }))).toBe(
      'expired',
    );
    expect((await hs({ clockToleranceMs: 11_000 }).verify(token, { now: t0 })).principal.id).toBe(
      'usr_ada',
    );
  });

  it('not yet valid (nbf), with the clock tolerance', async () => {
    const token = await sign(secretBytes(), { alg: 'HS256' }, { nbf: seconds(t0) + 30 }, t0);
    expect(await reasonOf(hs({ clockToleranceMs: 0 }).verify(token, { now: t0 }))).toBe(
      'not-yet-valid',
    );
    expect((await hs({ clockToleranceMs: 30_000 }).verify(token, { now: t0 })).principal.id).toBe(
      'usr_ada',
    );
    expect(
      (await hs({ clockToleranceMs: 0 }).verify(token, { now: t0 + 31_000 })).principal.id,
    ).toBe('usr_ada');
  });

  it('issued in the future (iat) beyond the clock tolerance is refused, even without maxTokenAgeMs', async () => {
    const token = await sign(
      secretBytes(),
      { alg: 'HS256' },
      { iat: seconds(t0) + 3600, exp: seconds(t0) + 7200 },
      t0,
    );
    expect(await reasonOf(hs().verify(token, { now: t0 }))).toBe('not-yet-valid');
    expect(await reasonOf(hs({ clockToleranceMs: 3_599_000 }).verify(token, { now: t0 }))).toBe(
      'not-yet-valid',
    );
    expect(
      (await hs({ clockToleranceMs: 3_600_000 }).verify(token, { now: t0 })).principal.id,
    ).toBe('usr_ada');
    expect((await hs().verify(token, { now: t0 + 3_600_000 })).principal.id).toBe('usr_ada');
  });

  it('a clock given to the verifier is used when the call gives none', async () => {
    const token = await sign(secretBytes(), { alg: 'HS256' }, { exp: seconds(t0) + 60 }, t0);
    expect((await hs({ now: () => t0 }).verify(token)).principal.id).toBe('usr_ada');
    expect(await reasonOf(hs({ now: () => t0 + 3_600_000 }).verify(token))).toBe('expired');
  });

  it('exp is required', async () => {
    const token = await sign(secretBytes(), { alg: 'HS256' }, { exp: undefined });
    expect(await reasonOf(hs().verify(token))).toBe('claims');
  });

  it('wrong or missing issuer', async () => {
    expect(
      await reasonOf(
        hs().verify(await sign(secretBytes(), { alg: 'HS256' }, { iss: 'https://evil.example' })),
      ),
    ).toBe('issuer');
    expect(
      await reasonOf(hs().verify(await sign(secretBytes(), { alg: 'HS256' }, { iss: undefined }))),
    ).toBe('issuer');
    const two = hs({ issuer: [ISSUER, 'https://id2.example.com'] });
    expect(
      (
        await two.verify(
          await sign(secretBytes(), { alg: 'HS256' }, { iss: 'https://id2.example.com' }),
        )
      ).principal.id,
    ).toBe('usr_ada');
  });

  it('wrong or missing audience; an audience list claim must contain ours', async () => {
    expect(
      await reasonOf(
        hs().verify(
          await sign(secretBytes(), { alg: 'HS256' }, { aud: 'https://other.example.com' }),
        ),
      ),
    ).toBe('audience');
    expect(
      await reasonOf(hs().verify(await sign(secretBytes(), { alg: 'HS256' }, { aud: undefined }))),
    ).toBe('audience');
    expect(
      (await hs().verify(await sign(secretBytes(), { alg: 'HS256' }, { aud: ['x', AUDIENCE] })))
        .principal.id,
    ).toBe('usr_ada');
    const anyAudience = hs({ audience: false });
    expect(
      (await anyAudience.verify(await sign(secretBytes(), { alg: 'HS256' }, { aud: undefined })))
        .principal.id,
    ).toBe('usr_ada');
  });

  it('max token age makes iat required and bounds it', async () => {
    const verifier = hs({ maxTokenAgeMs: 300_000, clockToleranceMs: 0 });
    const old = await sign(secretBytes(), { alg: 'HS256' }, { iat: seconds(t0) - 301 }, t0);
    expect(await reasonOf(verifier.verify(old, { now: t0 }))).toBe('too-old');
    const fresh = await sign(secretBytes(), { alg: 'HS256' }, { iat: seconds(t0) - 299 }, t0);
    expect((await verifier.verify(fresh, { now: t0 })).principal.id).toBe('usr_ada');
    const noIat = await sign(secretBytes(), { alg: 'HS256' }, { iat: undefined }, t0);
    expect(await reasonOf(verifier.verify(noIat, { now: t0 }))).toBe('claims');
    const future = await sign(secretBytes(), { alg: 'HS256' }, { iat: seconds(t0) + 600 }, t0);
    expect(await reasonOf(verifier.verify(future, { now: t0 }))).toBe('not-yet-valid');
  });

  it('required claims', async () => {
    const verifier = hs({ requiredClaims: ['jti', 'tenant'] });
    expect(
      await reasonOf(verifier.verify(await sign(secretBytes(), { alg: 'HS256' }, { jti: '1' }))),
    ).toBe('claims');
    expect(
      (
        await verifier.verify(
          await sign(secretBytes(), { alg: 'HS256' }, { jti: '1', tenant: 't' }),
        )
      ).principal.tenant,
    ).toBe('t');
  });

  it('explicit typing (RFC 8725 §3.11)', async () => {
    const verifier = hs({ type: 'JWT' });
    expect(await reasonOf(verifier.verify(await sign(secretBytes(), { alg: 'HS256' })))).toBe(
      'type',
    );
    expect(
      await reasonOf(verifier.verify(await sign(secretBytes(), { alg: 'HS256', typ: 'at+jwt' }))),
    ).toBe('type');
    expect(
      (await verifier.verify(await sign(secretBytes(), { alg: 'HS256', typ: 'jwt' }))).principal.id,
    ).toBe('usr_ada');
  });

  it('a recorded vector verifies the same at the time it was made, and expires after', async () => {
    // Made once with jose: HS256 over SECRET, iat 2026-01-15T12:00:00Z, exp an hour later.
    const vector = await sign(secretBytes(), { alg: 'HS256', typ: 'JWT' }, { jti: 'vec-1' }, t0);
    expect((await hs().verify(vector, { now: t0 + 1000 })).payload.jti).toBe('vec-1');
    expect((await hs().verify(vector, { now: t0 + 1000 })).payload).toEqual(
      (await hs().verify(vector, { now: t0 + 2000 })).payload,
    );
    expect(await reasonOf(hs().verify(vector, { now: t0 + 3_600_000 + 6000 }))).toBe('expired');
  });
});

describe('the RFC 9068 profile (JWT access tokens)', () => {
  const verifier = () => hs({ profile: 'rfc9068' });
  const claims = { client_id: 'app_1', jti: 'at-1' };

  it('accepts typ at+jwt and application/at+jwt with every required claim', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT']) {
      const token = await sign(secretBytes(), { alg: 'HS256', typ }, claims);
      expect((await verifier().verify(token)).principal.id).toBe('usr_ada');
    }
  });

  it('refuses a plain JWT (an ID token, say) and any missing claim', async () => {
    expect(
      await reasonOf(
        verifier().verify(await sign(secretBytes(), { alg: 'HS256', typ: 'JWT' }, claims)),
      ),
    ).toBe('type');
    expect(
      await reasonOf(verifier().verify(await sign(secretBytes(), { alg: 'HS256' }, claims))),
    ).toBe('type');
    for (const missing of ['client_id', 'jti', 'iat', 'sub']) {
      const token = await sign(
        secretBytes(),
        { alg: 'HS256', typ: 'at+jwt' },
        { ...claims, [missing]: undefined },
      );
      expect(await reasonOf(verifier().verify(token))).toBe('claims');
    }
  });

  it('needs an audience, and refuses another type', () => {
    expect(() => hs({ profile: 'rfc9068', audience: false })).toThrow(/needs an audience/);
    expect(() => hs({ profile: 'rfc9068', type: 'JWT' })).toThrow(/at\+jwt/);
  });
});

describe('key selection', () => {
  it('a kid selects its key; without a kid every key of the algorithm is tried', async () => {
    const old = 'old-secret-of-thirty-two-bytes-long!!';
    const verifier = jwtVerifier({
      keys: [
        { kid: 'new', secret: SECRET, algorithms: ['HS256'] },
        { kid: 'old', secret: old, algorithms: ['HS256'] },
      ],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(
      (await verifier.verify(await sign(secretBytes(old), { alg: 'HS256', kid: 'old' }))).principal
        .id,
    ).toBe('usr_ada');
    expect(
      (await verifier.verify(await sign(secretBytes(old), { alg: 'HS256' }))).principal.id,
    ).toBe('usr_ada');
    expect(
      await reasonOf(verifier.verify(await sign(secretBytes(old), { alg: 'HS256', kid: 'new' }))),
    ).toBe('signature');
    // A claim failure on the key that verified is final, not a reason to try the next key.
    expect(
      await reasonOf(verifier.verify(await sign(secretBytes(), { alg: 'HS256' }, { aud: 'x' }))),
    ).toBe('audience');
  });

  it('an unnamed key serves tokens whose kid no key has', async () => {
    const verifier = jwtVerifier({
      keys: [{ secret: SECRET, algorithms: ['HS256'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(
      (await verifier.verify(await sign(secretBytes(), { alg: 'HS256', kid: 'whatever' })))
        .principal.id,
    ).toBe('usr_ada');
  });

  it('a key verifies only the algorithms listed for it', async () => {
    const verifier = jwtVerifier({
      keys: [{ secret: 's'.repeat(64), algorithms: ['HS512'] }],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(
      await reasonOf(verifier.verify(await sign(secretBytes('s'.repeat(64)), { alg: 'HS256' }))),
    ).toBe('algorithm');
  });
});

describe('configuration is checked at construction', () => {
  const base = { issuer: ISSUER, audience: AUDIENCE };

  it('secrets shorter than the hash (RFC 7518 §3.2)', () => {
    expect(() =>
      jwtVerifier({ ...base, keys: [{ secret: 'short', algorithms: ['HS256'] }] }),
    ).toThrow(/at least 32/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ secret: 's'.repeat(40), algorithms: ['HS512'] }] }),
    ).toThrow(/at least 64/);
  });

  it('private keys, symmetric JWKs and keys that do not fit their algorithm', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: privatePem, algorithms: ['ES256'] }] }),
    ).toThrow(/private key/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: privateKey, algorithms: ['ES256'] }] }),
    ).toThrow(/private KeyObject/);
    const privateJwk = await exportJWK(privateKey);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: privateJwk as never, algorithms: ['ES256'] }] }),
    ).toThrow(/private or symmetric/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: ec.pem, algorithms: ['ES384'] }] }),
    ).toThrow(/cannot verify ES384/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: ec.pem, algorithms: ['RS256'] }] }),
    ).toThrow(/cannot verify RS256/);
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: ed.pem, algorithms: ['ES256'] }] }),
    ).toThrow(/cannot verify/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() =>
      jwtVerifier({ ...base, keys: [{ publicKey: small, algorithms: ['RS256'] }] }),
    ).toThrow(/at least 2048/);
  });

  it('unknown options with the nearest name or a hint, and required options', () => {
    expect(() =>
      jwtVerifier({
        ...base,
        keys: [{ secret: SECRET, algorithms: ['HS256'] }],
        isuer: 'x',
      } as never),
    ).toThrow(/Did you mean "issuer"/);
    expect(() => jwtVerifier({ ...base, secret: SECRET } as never)).toThrow(/Put secrets in keys/);
    expect(() =>
      jwtVerifier({
        ...base,
        keys: [{ secret: SECRET, algorithms: ['HS256'] }],
        clockTolerance: 5,
      } as never),
    ).toThrow(/clockToleranceMs/);
    expect(() => jwtVerifier({ ...base, keys: [] })).toThrow(/give "keys", "jwks", or both/);
    expect(() =>
      jwtVerifier({
        audience: AUDIENCE,
        keys: [{ secret: SECRET, algorithms: ['HS256'] }],
      } as never),
    ).toThrow(/"issuer"/);
    expect(() =>
      jwtVerifier({ issuer: ISSUER, keys: [{ secret: SECRET, algorithms: ['HS256'] }] } as never),
    ).toThrow(/"audience"/);
    expect(() => jwtVerifier({ ...base, keys: [{ secret: SECRET }] } as never)).toThrow(
      /algorithms/,
    );
    expect(() =>
      jwtVerifier({
        ...base,
        keys: [{ secret: SECRET, publicKey: ec.pem, algorithms: ['HS256'] }],
      } as never),
    ).toThrow(/exactly one/);
    expect(() =>
      jwtVerifier({
        ...base,
        keys: [
          { kid: 'a', secret: SECRET, algorithms: ['HS256'] },
          { kid: 'a', secret: SECRET, algorithms: ['HS256'] },
        ],
      }),
    ).toThrow(/distinct kids/);
  });

  it('a secret never appears in a configuration error', () => {
    const secret = 'do-not-print-me-do-not-print-me-!!';
    try {
      jwtVerifier({ ...base, keys: [{ secret, algorithms: ['HS256', 'RS256' as never] }] });
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });
});

describe('a remote key set that cannot be had answers 503, not 401', () => {
  it('an unreachable JWKS', async () => {
    const verifier = jwtVerifier({
      jwks: {
        keys: {
          url: 'http://127.0.0.1:1/jwks.json',
          timeoutMs: 500,
          logger: { error() {}, warn() {}, info() {} },
        },
        algorithms: ['RS256'],
      },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const token = await sign(rsa.privateKey, { alg: 'RS256', kid: rsa.kid });
    const err = await verifier.verify(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect((err as ServiceUnavailableError).status).toBe(503);
    // An HS256 token never reaches the JWKS at all.
    expect(await reasonOf(verifier.verify(await sign(secretBytes(), { alg: 'HS256' })))).toBe(
      'algorithm',
    );
  });
});
