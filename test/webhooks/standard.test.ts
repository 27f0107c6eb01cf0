/**
 * Standard Webhooks `v1` (HMAC) and `v1a` (ed25519): every rule with an
 * injectable clock; interop both ways with the reference library
 * (`standardwebhooks`); the reference `v1a` test vector; and GitHub's
 * `X-Hub-Signature-256` with GitHub's documented example.
 */
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { WebhookVerificationError } from '../../src/webhooks/errors.js';
import { githubVerifier } from '../../src/webhooks/github.js';
import { generateWebhookKeyPair, generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';

const SECRET = generateWebhookSecret();
const OLD_SECRET = generateWebhookSecret();
const PAIR = generateWebhookKeyPair();
const T = 1_700_000_000;
const clock = (seconds: number) => () => seconds * 1000;
const body = '{"type":"payment.succeeded","data":{"id":"pay_1","status":"succeeded"}}';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.code;
    throw err;
  }
  return undefined;
}

function v1(secret: string, id: string, t: number | string, payload: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${t}.${payload}`).digest('base64')}`;
}

const verifier = standardWebhooksVerifier({ secrets: SECRET, now: clock(T) });
const headersFor = (overrides: Record<string, string | undefined> = {}) => {
  const base: Record<string, string | undefined> = {
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(T),
    'webhook-signature': v1(SECRET, 'msg_1', T, body),
    ...overrides,
  };
  return Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
};

describe('Standard Webhooks signing', () => {
  it('writes the three headers: id, unix timestamp, v1 over "<id>.<t>.<body>" under the decoded secret', () => {
    const signer = standardWebhooksSigner({ secrets: SECRET, now: clock(T) });
    expect(signer.sign(body, { id: 'msg_1' })).toEqual({
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(T),
      'webhook-signature': v1(SECRET, 'msg_1', T, body),
    });
  });

  it('signs with every active secret and key, space-delimited', () => {
    const signer = standardWebhooksSigner({
      secrets: [SECRET, OLD_SECRET, PAIR.secretKey],
      now: clock(T),
    });
    const signature = signer.sign(body, { id: 'msg_1' })['webhook-signature'];
    const parts = signature.split(' ');
    expect(parts).toHaveLength(3);
    expect(parts[0]).toBe(v1(SECRET, 'msg_1', T, body));
    expect(parts[1]).toBe(v1(OLD_SECRET, 'msg_1', T, body));
    expect(parts[2]).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
  });

  it('signs each attempt with its own timestamp, keeping the id', () => {
    let now = T;
    const signer = standardWebhooksSigner({ secrets: SECRET, now: () => now * 1000 });
    const first = signer.sign(body, { id: 'msg_1' });
    now += 5;
    const second = signer.sign(body, { id: 'msg_1' });
    expect(second['webhook-id']).toBe(first['webhook-id']);
    expect(second['webhook-timestamp']).toBe(String(T + 5));
    expect(second['webhook-signature']).not.toBe(first['webhook-signature']);
  });

  it('refuses ids that are empty, too long, unprintable or hold "."', () => {
    const signer = standardWebhooksSigner({ secrets: SECRET });
    for (const id of ['', 'a'.repeat(257), 'msg 1', 'msg.1', 'msg\n1', undefined])
      expect(() => signer.sign(body, { id: id as string }), String(id)).toThrow(TypeError);
  });
});

describe('Standard Webhooks verification', () => {
  it('accepts a valid v1 and returns the webhook-id', () => {
    expect(verifier.verify(body, headersFor())).toEqual({
      scheme: 'standard-webhooks',
      id: 'msg_1',
      timestamp: T,
      secretIndex: 0,
    });
  });

  it('signs the id and the timestamp: changing either fails', () => {
    expect(codeOf(() => verifier.verify(body, headersFor({ 'webhook-id': 'msg_2' })))).toBe(
      'signature-mismatch',
    );
    expect(
      codeOf(() => verifier.verify(body, headersFor({ 'webhook-timestamp': String(T + 1) }))),
    ).toBe('signature-mismatch');
  });

  it('tries every signature in the header, ignoring unknown versions and garbage', () => {
    const signature = [
      'v2,abc',
      'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      'v1,!!!!',
      'v1,',
      'v1a,AAAA',
      v1(SECRET, 'msg_1', T, body),
    ].join(' ');
    expect(verifier.verify(body, headersFor({ 'webhook-signature': signature })).id).toBe('msg_1');
  });

  it('accepts several secrets and keys during a rotation', () => {
    const rotating = standardWebhooksVerifier({
      secrets: [SECRET, OLD_SECRET, PAIR.publicKey],
      now: clock(T),
    });
    const byOld = headersFor({ 'webhook-signature': v1(OLD_SECRET, 'msg_1', T, body) });
    expect(rotating.verify(body, byOld).secretIndex).toBe(1);
    const signed = standardWebhooksSigner({ secrets: PAIR.secretKey, now: clock(T) }).sign(body, {
      id: 'msg_1',
    });
    expect(rotating.verify(body, signed).secretIndex).toBe(2);
    expect(codeOf(() => verifier.verify(body, byOld))).toBe('signature-mismatch');
  });

  it('reads the headers in any case, and a repeated signature field joined by ", "', () => {
    const h = headersFor();
    const upper = {
      'Webhook-Id': h['webhook-id']!,
      'WEBHOOK-TIMESTAMP': h['webhook-timestamp']!,
      'Webhook-Signature': h['webhook-signature']!,
    };
    expect(verifier.verify(body, upper).id).toBe('msg_1');
    expect(verifier.verify(body, new Headers(upper)).id).toBe('msg_1');
    const joined = headersFor({
      'webhook-signature': `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=, ${h['webhook-signature']}`,
    });
    expect(verifier.verify(body, joined).id).toBe('msg_1');
  });

  it('applies the tolerance both ways', () => {
    const at = (t: number) =>
      headersFor({
        'webhook-timestamp': String(t),
        'webhook-signature': v1(SECRET, 'msg_1', t, body),
      });
    expect(verifier.verify(body, at(T + 300)).timestamp).toBe(T + 300);
    expect(verifier.verify(body, at(T - 300)).timestamp).toBe(T - 300);
    expect(codeOf(() => verifier.verify(body, at(T + 301)))).toBe('timestamp-outside-tolerance');
    expect(codeOf(() => verifier.verify(body, at(T - 301)))).toBe('timestamp-outside-tolerance');
  });

  it.each([
    ['signature-missing', { 'webhook-signature': undefined }],
    ['signature-missing', { 'webhook-signature': '' }],
    ['signature-missing', { 'webhook-signature': 'v2,abc v0,def' }],
    ['webhook-id-missing', { 'webhook-id': undefined }],
    ['webhook-id-invalid', { 'webhook-id': 'a'.repeat(257) }],
    ['webhook-id-invalid', { 'webhook-id': 'msg 1' }],
    ['timestamp-missing', { 'webhook-timestamp': undefined }],
    ['timestamp-invalid', { 'webhook-timestamp': `${T}abc` }],
    ['timestamp-invalid', { 'webhook-timestamp': ` ${T}` }],
    ['timestamp-invalid', { 'webhook-timestamp': `0${T}` }],
    ['timestamp-invalid', { 'webhook-timestamp': `${T}.0` }],
    ['signature-malformed', { 'webhook-signature': `v1,${'A'.repeat(9000)}` }],
    [
      'signature-malformed',
      { 'webhook-signature': Array.from({ length: 40 }, () => 'v1,AAAA').join(' ') },
    ],
  ])('answers %s for %j', (code, overrides) => {
    expect(codeOf(() => verifier.verify(body, headersFor(overrides)))).toBe(code);
  });

  it('handles an empty payload', () => {
    const h = headersFor({ 'webhook-signature': v1(SECRET, 'msg_1', T, '') });
    expect(verifier.verify('', h).id).toBe('msg_1');
    expect(codeOf(() => verifier.verify('', headersFor()))).toBe('signature-mismatch');
  });
});

describe('v1a (ed25519)', () => {
  it('matches the reference implementation test vector', () => {
    // libraries/go/webhook_asymmetric_test.go, TestAsymmetricWebhookSign.
    const key = 'whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=';
    const signer = standardWebhooksSigner({ secrets: key });
    const headers = signer.sign('{"test": 2432232314}', {
      id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      timestamp: 1614265330,
    });
    expect(headers['webhook-signature']).toBe(
      'v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==',
    );
    // And it verifies with the key's public half, or the private key itself.
    const at = { now: clock(1614265330) };
    expect(
      standardWebhooksVerifier({ secrets: key, ...at }).verify('{"test": 2432232314}', headers).id,
    ).toBe('msg_p5jXN8AQM9LWM0D4loKWxJek');
  });

  it('verifies with the public key, and refuses another key or a changed body', () => {
    const headers = standardWebhooksSigner({ secrets: PAIR.secretKey, now: clock(T) }).sign(body, {
      id: 'msg_1',
    });
    const byPublic = standardWebhooksVerifier({ secrets: PAIR.publicKey, now: clock(T) });
    expect(byPublic.verify(body, headers).id).toBe('msg_1');
    expect(codeOf(() => byPublic.verify(`${body} `, headers))).toBe('signature-mismatch');
    const other = standardWebhooksVerifier({
      secrets: generateWebhookKeyPair().publicKey,
      now: clock(T),
    });
    expect(codeOf(() => other.verify(body, headers))).toBe('signature-mismatch');
    // An HMAC-only verifier cannot check v1a: no signature it can use matched.
    expect(codeOf(() => verifier.verify(body, headers))).toBe('signature-mismatch');
  });
});

describe('interop with standardwebhooks', () => {
  it('what restwell signs, Webhook.verify accepts (v1, with rotation)', () => {
    const headers = standardWebhooksSigner({ secrets: [OLD_SECRET, SECRET] }).sign(body, {
      id: 'msg_42',
    });
    expect(new Webhook(SECRET).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new Webhook(OLD_SECRET).verify(Buffer.from(body), { ...headers })).toEqual(
      JSON.parse(body),
    );
  });

  it('what Webhook.sign makes, restwell accepts', () => {
    const wh = new Webhook(SECRET);
    const now = new Date();
    const headers = {
      'webhook-id': 'msg_7',
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': wh.sign('msg_7', now, body),
    };
    const result = standardWebhooksVerifier({ secrets: SECRET }).verify(body, headers);
    expect(result.id).toBe('msg_7');
    expect(result.timestamp).toBe(Math.floor(now.getTime() / 1000));
  });

  it('both refuse a tampered body', () => {
    const headers = standardWebhooksSigner({ secrets: SECRET }).sign(body, { id: 'msg_1' });
    expect(() => new Webhook(SECRET).verify(`${body}x`, { ...headers })).toThrow();
    expect(
      codeOf(() => standardWebhooksVerifier({ secrets: SECRET }).verify(`${body}x`, headers)),
    ).toBe('signature-mismatch');
  });
});

describe('GitHub X-Hub-Signature-256', () => {
  // GitHub's documented example ("Validating webhook deliveries").
  const secret = "It's a Secret to Everybody";
  const example = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
  const github = githubVerifier({ secrets: secret });

  it("accepts GitHub's example and returns the delivery id", () => {
    expect(
      github.verify('Hello, World!', {
        'x-hub-signature-256': example,
        'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      }),
    ).toEqual({
      scheme: 'github',
      id: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      timestamp: undefined,
      secretIndex: 0,
    });
  });

  it('refuses another body, a missing header, or the SHA-1 header alone', () => {
    expect(codeOf(() => github.verify('Hello, World?', { 'x-hub-signature-256': example }))).toBe(
      'signature-mismatch',
    );
    expect(codeOf(() => github.verify('Hello, World!', {}))).toBe('signature-missing');
    expect(
      codeOf(() =>
        github.verify('Hello, World!', {
          'x-hub-signature': 'sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59',
        }),
      ),
    ).toBe('signature-missing');
    expect(
      codeOf(() => github.verify('Hello, World!', { 'x-hub-signature-256': 'sha256=zz' })),
    ).toBe('signature-mismatch');
  });

  it('signs the body only: a replay with another X-GitHub-Delivery still verifies, under the new id', () => {
    // Why deduplicating by the delivery id cannot stop a replay of captured bytes.
    const replay = github.verify('Hello, World!', {
      'x-hub-signature-256': example,
      'x-github-delivery': 'a-fresh-id-chosen-by-whoever-replays-it',
    });
    expect(replay.id).toBe('a-fresh-id-chosen-by-whoever-replays-it');
    expect(replay.timestamp).toBeUndefined();
  });

  it('accepts either secret during a rotation', () => {
    const rotating = githubVerifier({ secrets: ['x'.repeat(32), secret] });
    expect(rotating.verify('Hello, World!', { 'X-Hub-Signature-256': example }).secretIndex).toBe(
      1,
    );
  });
});
