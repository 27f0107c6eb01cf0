/**
 * The `t=,v1=` scheme, one describe per rule, with an injectable clock; and
 * interop both ways with Stripe's own implementation (`stripe` dev dependency).
 */
import { createHmac } from 'node:crypto';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { WebhookVerificationError } from '../../src/webhooks/errors.js';
import { hmacSigner, hmacVerifier } from '../../src/webhooks/hmac.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';

const SECRET = generateWebhookSecret();
const OLD_SECRET = generateWebhookSecret();
const T = 1_700_000_000;
const clock = (seconds: number) => () => seconds * 1000;
const body = '{"id":"evt_1","type":"payment.succeeded","data":{"amount":4200}}';

function hex(secret: string, timestamp: number | string, payload: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(payload).digest('hex');
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.code;
    throw err;
  }
  return undefined;
}

const verifier = hmacVerifier({ secrets: SECRET, now: clock(T) });
const verify = (header: string | undefined, payload: string | Uint8Array = body) =>
  verifier.verify(payload, header === undefined ? {} : { 'x-signature': header });

describe('signing', () => {
  it('writes t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">, keyed on the secret text', () => {
    const signer = hmacSigner({ secrets: SECRET, now: clock(T) });
    expect(signer.sign(body)).toEqual({ 'X-Signature': `t=${T},v1=${hex(SECRET, T, body)}` });
  });

  it('signs every attempt afresh with its own timestamp', () => {
    let now = T;
    const signer = hmacSigner({ secrets: SECRET, now: () => now * 1000 });
    const first = signer.signature(body);
    now += 30;
    const second = signer.signature(body);
    expect(first).toMatch(new RegExp(`^t=${T},`));
    expect(second).toMatch(new RegExp(`^t=${T + 30},`));
    expect(second).not.toBe(first);
  });

  it('carries one v1 per secret during a rotation, in the order given', () => {
    const signer = hmacSigner({ secrets: [SECRET, OLD_SECRET], now: clock(T) });
    expect(signer.signature(body)).toBe(
      `t=${T},v1=${hex(SECRET, T, body)},v1=${hex(OLD_SECRET, T, body)}`,
    );
  });

  it('takes an explicit timestamp (seconds or a Date) and a header name', () => {
    const signer = hmacSigner({ secrets: SECRET, header: 'Stripe-Signature' });
    expect(Object.keys(signer.sign(body, { timestamp: T }))).toEqual(['Stripe-Signature']);
    expect(signer.signature(body, { timestamp: new Date(T * 1000 + 999) })).toMatch(
      new RegExp(`^t=${T},`),
    );
    expect(() => signer.signature(body, { timestamp: 1.5 })).toThrow(TypeError);
    expect(() => signer.signature(body, { timestamp: -1 })).toThrow(TypeError);
  });

  it('signs bytes and strings alike, and refuses a parsed body', () => {
    const signer = hmacSigner({ secrets: SECRET, now: clock(T) });
    expect(signer.signature(Buffer.from(body))).toBe(signer.signature(body));
    expect(() => signer.signature(JSON.parse(body) as never)).toThrow(/raw body/);
  });
});

describe('verification', () => {
  const valid = `t=${T},v1=${hex(SECRET, T, body)}`;

  it('accepts a valid signature and reports the timestamp and the secret used', () => {
    expect(verify(valid)).toEqual({
      scheme: 'hmac-sha256',
      id: undefined,
      timestamp: T,
      secretIndex: 0,
    });
  });

  it('checks the exact bytes: one changed byte, re-serialised JSON or a trailing newline fail', () => {
    expect(codeOf(() => verify(valid, body.replace('4200', '4201')))).toBe('signature-mismatch');
    expect(codeOf(() => verify(valid, JSON.stringify(JSON.parse(body), null, 2)))).toBe(
      'signature-mismatch',
    );
    expect(codeOf(() => verify(valid, `${body}\n`))).toBe('signature-mismatch');
  });

  it('verifies non-UTF-8 bytes as bytes', () => {
    const bytes = Uint8Array.from([0xff, 0xfe, 0x00, 0x80]);
    expect(verify(`t=${T},v1=${hex(SECRET, T, bytes)}`, bytes).timestamp).toBe(T);
  });

  it('handles an empty payload', () => {
    expect(verify(`t=${T},v1=${hex(SECRET, T, '')}`, '').timestamp).toBe(T);
    expect(codeOf(() => verify(valid, ''))).toBe('signature-mismatch');
  });

  it('tries every v1 in the header, and ignores other schemes', () => {
    const wrong = 'a'.repeat(64);
    expect(
      verify(`t=${T},v0=${wrong},v1=${wrong},v1=nothex,v1=${hex(SECRET, T, body)}`).timestamp,
    ).toBe(T);
  });

  it('accepts any of several secrets during a rotation, and says which one verified', () => {
    const rotating = hmacVerifier({ secrets: [SECRET, OLD_SECRET], now: clock(T) });
    const byOld = `t=${T},v1=${hex(OLD_SECRET, T, body)}`;
    expect(rotating.verify(body, { 'x-signature': byOld }).secretIndex).toBe(1);
    expect(rotating.verify(body, { 'x-signature': valid }).secretIndex).toBe(0);
    expect(codeOf(() => verify(byOld))).toBe('signature-mismatch');
  });

  it('refuses a signature made with another secret', () => {
    expect(codeOf(() => verify(`t=${T},v1=${hex(generateWebhookSecret(), T, body)}`))).toBe(
      'signature-mismatch',
    );
  });

  it('reads the header in any case, from any header shape', () => {
    expect(verifier.verify(body, { 'X-SIGNATURE': valid }).timestamp).toBe(T);
    expect(verifier.verify(body, new Headers({ 'X-Signature': valid })).timestamp).toBe(T);
    expect(verifier.verify(body, { 'x-signature': [valid] }).timestamp).toBe(T);
  });

  it('signs the timestamp: the signature of one timestamp does not verify under another', () => {
    expect(codeOf(() => verify(`t=${T + 1},v1=${hex(SECRET, T, body)}`))).toBe(
      'signature-mismatch',
    );
  });
});

describe('the tolerance, in both directions', () => {
  const at = (t: number) => `t=${t},v1=${hex(SECRET, t, body)}`;

  it('accepts 300 seconds either way by default, and refuses 301', () => {
    expect(verify(at(T - 300)).timestamp).toBe(T - 300);
    expect(verify(at(T + 300)).timestamp).toBe(T + 300);
    expect(codeOf(() => verify(at(T - 301)))).toBe('timestamp-outside-tolerance');
    // Future timestamps too: a one-sided check (stripe-php #657) would accept this one.
    expect(codeOf(() => verify(at(T + 301)))).toBe('timestamp-outside-tolerance');
  });

  it('uses the configured tolerance and clock', () => {
    const strict = hmacVerifier({ secrets: SECRET, toleranceSeconds: 5, now: clock(T) });
    expect(strict.verify(body, { 'x-signature': at(T - 5) }).timestamp).toBe(T - 5);
    expect(codeOf(() => strict.verify(body, { 'x-signature': at(T - 6) }))).toBe(
      'timestamp-outside-tolerance',
    );
    expect(() => hmacVerifier({ secrets: SECRET, toleranceSeconds: 0 })).toThrow(TypeError);
    expect(() => hmacVerifier({ secrets: SECRET, toleranceSeconds: 1.5 })).toThrow(TypeError);
  });

  it('refuses a stale delivery before computing any HMAC', () => {
    // A stale timestamp with a garbage signature is "outside tolerance", not "mismatch".
    expect(codeOf(() => verify(`t=${T - 1000},v1=${'0'.repeat(64)}`))).toBe(
      'timestamp-outside-tolerance',
    );
  });
});

describe('timestamps are plain decimal seconds', () => {
  it.each([
    ['non-numeric', 'abc'],
    ['padded with a space', ` ${T}`],
    ['padded with zeros', `0${T}`],
    ['signed', `+${T}`],
    ['negative', `-${T}`],
    ['a fraction', `${T}.5`],
    ['an exponent', '1.7e9'],
    ['hexadecimal', '0x6553f100'],
    ['trailing garbage (parseInt would accept it)', `${T}abc`],
    ['empty', ''],
    ['absurdly long', '9'.repeat(400)],
  ])('refuses t= %s', (_label, t) => {
    expect(codeOf(() => verify(`t=${t},v1=${hex(SECRET, t, body)}`))).toBe('timestamp-invalid');
  });

  it('refuses a missing or a repeated t', () => {
    expect(codeOf(() => verify(`v1=${hex(SECRET, T, body)}`))).toBe('timestamp-missing');
    expect(codeOf(() => verify(`t=${T},t=${T},v1=${hex(SECRET, T, body)}`))).toBe(
      'signature-malformed',
    );
  });

  it('allows optional whitespace around list elements', () => {
    expect(verify(` t=${T} , v1=${hex(SECRET, T, body)} `).timestamp).toBe(T);
  });
});

describe('missing and hostile headers', () => {
  it('refuses a missing, empty or v1-less header with signature-missing', () => {
    expect(codeOf(() => verify(undefined))).toBe('signature-missing');
    expect(codeOf(() => verify(''))).toBe('signature-missing');
    expect(codeOf(() => verify('   '))).toBe('signature-missing');
    expect(codeOf(() => verify(`t=${T},v0=${'a'.repeat(64)}`))).toBe('signature-missing');
  });

  it('refuses a huge header or too many elements cheaply, as malformed', () => {
    expect(codeOf(() => verify(`t=${T},v1=${'a'.repeat(10_000)}`))).toBe('signature-malformed');
    const many = Array.from({ length: 40 }, () => `v1=${'a'.repeat(64)}`).join(',');
    expect(codeOf(() => verify(`t=${T},${many}`))).toBe('signature-malformed');
  });

  it('answers garbage with a 401 error, never anything else', () => {
    for (const header of ['=', ',,,,', 't', 't=', 'v1', '\u0000\u0001', 'é=ü', `t=${T},v1==`]) {
      const err = (() => {
        try {
          verify(header);
        } catch (e) {
          return e;
        }
      })();
      expect(err, header).toBeInstanceOf(WebhookVerificationError);
      expect((err as WebhookVerificationError).status).toBe(401);
    }
  });
});

describe('interop with stripe', () => {
  const webhooks = Stripe.webhooks;

  it('what restwell signs, stripe.webhooks.constructEvent accepts (with rotation)', () => {
    const signer = hmacSigner({ secrets: [OLD_SECRET, SECRET], header: 'Stripe-Signature' });
    const headers = signer.sign(body);
    const event = webhooks.constructEvent(body, headers['Stripe-Signature']!, SECRET);
    expect(event.id).toBe('evt_1');
    expect(
      webhooks.constructEvent(Buffer.from(body), headers['Stripe-Signature']!, OLD_SECRET).type,
    ).toBe('payment.succeeded');
  });

  it('what stripe signs (generateTestHeaderString), restwell accepts', () => {
    const header = webhooks.generateTestHeaderString({ payload: body, secret: SECRET });
    const stripeVerifier = hmacVerifier({ secrets: SECRET, header: 'Stripe-Signature' });
    expect(stripeVerifier.verify(body, { 'stripe-signature': header }).secretIndex).toBe(0);
    const dated = webhooks.generateTestHeaderString({
      payload: body,
      secret: SECRET,
      timestamp: T,
    });
    expect(verifier.verify(body, { 'x-signature': dated }).timestamp).toBe(T);
  });

  it('both refuse a tampered body', () => {
    const header = webhooks.generateTestHeaderString({ payload: body, secret: SECRET });
    const tampered = body.replace('4200', '1');
    expect(() => webhooks.constructEvent(tampered, header, SECRET)).toThrow();
    expect(
      codeOf(() => hmacVerifier({ secrets: SECRET }).verify(tampered, { 'x-signature': header })),
    ).toBe('signature-mismatch');
  });

  it('restwell refuses the future timestamp stripe-node accepts (a one-sided tolerance)', () => {
    const now = Math.floor(Date.now() / 1000);
    const future = webhooks.generateTestHeaderString({
      payload: body,
      secret: SECRET,
      timestamp: now + 3600,
    });
    expect(webhooks.constructEvent(body, future, SECRET).id).toBe('evt_1');
    expect(
      codeOf(() => hmacVerifier({ secrets: SECRET }).verify(body, { 'x-signature': future })),
    ).toBe('timestamp-outside-tolerance');
  });
});
