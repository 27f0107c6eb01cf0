/**
 * The verifiers against a hostile client, scheme by scheme: oversized and
 * repeated headers refused before any signature is examined, every other
 * spelling of a timestamp refused, signatures of the wrong length or in
 * another alphabet matching nothing, and a clock that returns no number
 * failing closed instead of accepting every timestamp.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookVerificationError } from '../../src/webhooks/errors.js';
import { githubVerifier } from '../../src/webhooks/github.js';
import { hmacSigner, hmacVerifier } from '../../src/webhooks/hmac.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';
import type { WebhookHeaders, WebhookVerifier } from '../../src/webhooks/verify.js';

const SECRET = generateWebhookSecret();
const GITHUB_SECRET = 'a GitHub secret of more than 24 bytes';
const T = 1_700_000_000;
const clock = () => T * 1000;
const body = '{"id":"evt_1","type":"payment.succeeded"}';

const hmac = hmacVerifier({ secrets: SECRET, now: clock });
const standard = standardWebhooksVerifier({ secrets: SECRET, now: clock });
const github = githubVerifier({ secrets: GITHUB_SECRET });

function codeOf(verifier: WebhookVerifier, headers: WebhookHeaders, payload = body) {
  try {
    verifier.verify(payload, headers);
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.code;
    throw err;
  }
  return 'verified';
}

function hmacHex(t: number | string, payload = body): string {
  return createHmac('sha256', SECRET).update(`${t}.${payload}`).digest('hex');
}

function standardB64(id: string, t: number | string, payload = body): string {
  const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
  return createHmac('sha256', key).update(`${id}.${t}.${payload}`).digest('base64');
}

const githubHex = (payload = body) =>
  createHmac('sha256', GITHUB_SECRET).update(payload).digest('hex');

const standardHeaders = (signature: string, t: string | number = T, id = 'msg_1') => ({
  'webhook-id': id,
  'webhook-timestamp': String(t),
  'webhook-signature': signature,
});

describe('oversized headers are refused before they are split', () => {
  const megabyte = 'a'.repeat(1024 * 1024);
  const manyV1 = Array.from({ length: 10_000 }, () => `v1=${'a'.repeat(64)}`).join(',');
  const manyStandard = Array.from({ length: 10_000 }, () => `v1,${'A'.repeat(43)}=`).join(' ');
  const manyGithub = Array.from({ length: 10_000 }, () => `sha256=${'a'.repeat(64)}`).join(',');

  it.each([
    ['hmac, a 1 MB header', hmac, { 'x-signature': `t=${T},v1=${megabyte}` }],
    ['hmac, 10,000 v1= entries', hmac, { 'x-signature': `t=${T},${manyV1}` }],
    ['standard, a 1 MB header', standard, standardHeaders(`v1,${megabyte}`)],
    ['standard, 10,000 signatures', standard, standardHeaders(manyStandard)],
    ['github, a 1 MB header', github, { 'x-hub-signature-256': `sha256=${megabyte}` }],
    ['github, 10,000 signatures', github, { 'x-hub-signature-256': manyGithub }],
  ])('%s: signature-malformed', (_label, verifier, headers) => {
    expect(codeOf(verifier, headers)).toBe('signature-malformed');
  });

  it('refuses a 1 MB webhook-id or webhook-timestamp by its length or its form', () => {
    const signature = `v1,${standardB64('msg_1', T)}`;
    expect(codeOf(standard, standardHeaders(signature, T, 'x'.repeat(1024 * 1024)))).toBe(
      'webhook-id-invalid',
    );
    expect(codeOf(standard, standardHeaders(signature, '1'.repeat(1024 * 1024)))).toBe(
      'timestamp-invalid',
    );
  });

  it('refuses an empty or blank header as missing, in every scheme', () => {
    for (const blank of ['', ' ', '\t']) {
      expect(codeOf(hmac, { 'x-signature': blank })).toBe('signature-missing');
      expect(codeOf(standard, standardHeaders(blank))).toBe('signature-missing');
      expect(codeOf(github, { 'x-hub-signature-256': blank })).toBe('signature-missing');
    }
  });

  it('reads a repeated field as one list: a second t= is malformed, a second signature is tried', () => {
    const good = `t=${T},v1=${hmacHex(T)}`;
    expect(codeOf(hmac, { 'x-signature': [good, good] })).toBe('signature-malformed');
    expect(
      codeOf(standard, {
        ...standardHeaders(`v1,${'A'.repeat(43)}=`),
        'webhook-signature': [`v1,${'A'.repeat(43)}=`, `v1,${standardB64('msg_1', T)}`],
      }),
    ).toBe('verified');
    expect(
      codeOf(github, {
        'x-hub-signature-256': [`sha256=${'0'.repeat(64)}`, `sha256=${githubHex()}`],
      }),
    ).toBe('verified');
    // A repeated webhook-id or webhook-timestamp is no longer one value: refused, never split.
    expect(
      codeOf(standard, {
        ...standardHeaders(`v1,${standardB64('msg_1', T)}`),
        'webhook-id': ['msg_1', 'msg_1'],
      }),
    ).toBe('webhook-id-invalid');
    expect(
      codeOf(standard, {
        ...standardHeaders(`v1,${standardB64('msg_1', T)}`),
        'webhook-timestamp': [String(T), String(T)],
      }),
    ).toBe('timestamp-invalid');
  });
});

describe('a timestamp has one spelling', () => {
  const spellings: Array<[string, string]> = [
    ['negative', `-${T}`],
    ['signed', `+${T}`],
    ['a leading zero', `0${T}`],
    ['an exponent', '1.7e9'],
    ['hexadecimal', '0x6553f100'],
    ['fractional', `${T}.25`],
    ['with a space inside', '1700 000000'],
    ['a 13-digit number', '1700000000000'],
  ];

  it.each(spellings)('refuses %s in t= and in webhook-timestamp', (_label, t) => {
    // Signed for that exact spelling: the refusal is the timestamp's, not the signature's.
    expect(codeOf(hmac, { 'x-signature': `t=${t},v1=${hmacHex(t)}` })).toBe('timestamp-invalid');
    expect(codeOf(standard, standardHeaders(`v1,${standardB64('msg_1', t)}`, t))).toBe(
      'timestamp-invalid',
    );
  });

  it('refuses a far-future timestamp, signed correctly, as outside the tolerance', () => {
    const far = 999_999_999_999;
    expect(codeOf(hmac, { 'x-signature': `t=${far},v1=${hmacHex(far)}` })).toBe(
      'timestamp-outside-tolerance',
    );
    expect(codeOf(standard, standardHeaders(`v1,${standardB64('msg_1', far)}`, far))).toBe(
      'timestamp-outside-tolerance',
    );
  });

  it('accepts exactly the tolerance either way, and refuses one second more, on a clock mid-second', () => {
    // 999 ms into the second: the tolerance is counted in whole seconds of the clock.
    const midSecond = () => T * 1000 + 999;
    const h = hmacVerifier({ secrets: SECRET, now: midSecond });
    const s = standardWebhooksVerifier({ secrets: SECRET, now: midSecond });
    for (const [t, expected] of [
      [T - 300, 'verified'],
      [T + 300, 'verified'],
      [T - 301, 'timestamp-outside-tolerance'],
      [T + 301, 'timestamp-outside-tolerance'],
    ] as const) {
      expect(codeOf(h, { 'x-signature': `t=${t},v1=${hmacHex(t)}` }), String(t)).toBe(expected);
      expect(codeOf(s, standardHeaders(`v1,${standardB64('msg_1', t)}`, t)), String(t)).toBe(
        expected,
      );
    }
  });
});

describe('signatures in another length or alphabet match nothing', () => {
  it('hex: a digest of the wrong length is a mismatch; upper-case hex is the same bytes', () => {
    const hex = hmacHex(T);
    for (const wrong of [hex.slice(0, 62), `${hex}00`, hex.slice(0, 63), `${hex}0`]) {
      expect(codeOf(hmac, { 'x-signature': `t=${T},v1=${wrong}` }), wrong).toBe(
        'signature-mismatch',
      );
    }
    expect(codeOf(hmac, { 'x-signature': `t=${T},v1=${hex.toUpperCase()}` })).toBe('verified');
    expect(codeOf(github, { 'x-hub-signature-256': `sha256=${githubHex().toUpperCase()}` })).toBe(
      'verified',
    );
    expect(codeOf(github, { 'x-hub-signature-256': `sha256=${githubHex().slice(2)}` })).toBe(
      'signature-mismatch',
    );
    // The prefix names the algorithm: another one, or none, is not this signature.
    expect(codeOf(github, { 'x-hub-signature-256': `sha1=${githubHex()}` })).toBe(
      'signature-mismatch',
    );
    expect(codeOf(github, { 'x-hub-signature-256': githubHex() })).toBe('signature-mismatch');
  });

  it('base64: padded or unpadded decode to the same bytes; base64url, truncated or extended do not verify', () => {
    const b64 = standardB64('msg_1', T);
    expect(b64.endsWith('=')).toBe(true);
    expect(codeOf(standard, standardHeaders(`v1,${b64}`))).toBe('verified');
    expect(codeOf(standard, standardHeaders(`v1,${b64.replace(/=+$/, '')}`))).toBe('verified');
    const url = Buffer.from(b64, 'base64').toString('base64url');
    if (url !== b64.replace(/=+$/, ''))
      expect(codeOf(standard, standardHeaders(`v1,${url}`))).toBe('signature-mismatch');
    const bytes = Buffer.from(b64, 'base64');
    for (const wrong of [bytes.subarray(0, 31), Buffer.concat([bytes, Buffer.from([0])])]) {
      expect(codeOf(standard, standardHeaders(`v1,${wrong.toString('base64')}`))).toBe(
        'signature-mismatch',
      );
    }
    // Set bits past the last byte: another spelling of the same bytes, refused.
    const last = b64.at(-2)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(codeOf(standard, standardHeaders(`v1,${b64.slice(0, -2)}${sibling}=`))).toBe(
      'signature-mismatch',
    );
  });

  it('does not take a v1 HMAC as a v1a signature, or the other way round', () => {
    const b64 = standardB64('msg_1', T);
    expect(codeOf(standard, standardHeaders(`v1a,${b64}`))).toBe('signature-mismatch');
  });
});

describe('a clock that returns no number fails closed', () => {
  const broken = [
    ['a function', () => Date.now as unknown as number],
    ['undefined', () => undefined as unknown as number],
    ['NaN', () => Number.NaN],
    ['a string', () => String(T * 1000) as unknown as number],
  ] as const;

  it.each(broken)(
    'a verifier whose clock returns %s throws a TypeError, never verifies',
    (_l, now) => {
      const h = hmacVerifier({ secrets: SECRET, now });
      const s = standardWebhooksVerifier({ secrets: SECRET, now });
      // Signed far in the past: a tolerance check that compared NaN would let it through.
      const old = 1_000_000_000;
      expect(() => h.verify(body, { 'x-signature': `t=${old},v1=${hmacHex(old)}` })).toThrow(
        /clock \(option "now"\)/,
      );
      expect(() => s.verify(body, standardHeaders(`v1,${standardB64('msg_1', old)}`, old))).toThrow(
        /clock \(option "now"\)/,
      );
    },
  );

  it.each(broken)('a signer whose clock returns %s throws instead of signing t=NaN', (_l, now) => {
    expect(() => hmacSigner({ secrets: SECRET, now }).signature(body)).toThrow(/clock/);
    expect(() =>
      standardWebhooksSigner({ secrets: SECRET, now }).sign(body, { id: 'msg_1' }),
    ).toThrow(/clock/);
  });
});
