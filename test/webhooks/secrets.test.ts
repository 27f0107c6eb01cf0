import { describe, expect, it } from 'vitest';
import {
  decodeBase64Strict,
  generateWebhookKeyPair,
  generateWebhookSecret,
} from '../../src/webhooks/secrets.js';
import { githubVerifier } from '../../src/webhooks/github.js';
import { hmacSigner, hmacVerifier } from '../../src/webhooks/hmac.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';

const b64 = (n: number, fill = 7) => Buffer.alloc(n, fill).toString('base64');

describe('generated secrets and keys', () => {
  it('makes whsec_ + base64 of 32 CSPRNG bytes by default, different every time', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(decodeBase64Strict(a.slice(6))).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('takes 24 to 64 bytes and refuses other sizes', () => {
    expect(decodeBase64Strict(generateWebhookSecret({ bytes: 24 }).slice(6))).toHaveLength(24);
    expect(decodeBase64Strict(generateWebhookSecret({ bytes: 64 }).slice(6))).toHaveLength(64);
    expect(() => generateWebhookSecret({ bytes: 16 })).toThrow(/bytes/);
    expect(() => generateWebhookSecret({ bytes: 65 })).toThrow(/bytes/);
  });

  it('makes ed25519 pairs whose keys every signer and verifier accept', () => {
    const { secretKey, publicKey } = generateWebhookKeyPair();
    expect(secretKey).toMatch(/^whsk_[A-Za-z0-9+/]{43}=$/);
    expect(publicKey).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
    const headers = standardWebhooksSigner({ secrets: secretKey }).sign('{}', { id: 'msg_1' });
    expect(standardWebhooksVerifier({ secrets: publicKey }).verify('{}', headers).id).toBe('msg_1');
  });
});

describe('strict base64', () => {
  it.each([
    ['AAAA', 3],
    ['AAA=', 2],
    ['AAA', 2],
    ['AA==', 1],
    ['AA', 1],
    ['', 0],
  ])('decodes %j', (text, length) => {
    expect(decodeBase64Strict(text)).toHaveLength(length);
  });

  it.each([
    'AAA-',
    'AA_A',
    'A',
    'AAAAA',
    'AA=',
    'A===',
    'AB==', // trailing bits set
    'AAB=',
    ' AAAA',
    'AA AA',
    'AAAA\n',
    '=AAA',
  ])('refuses %j', (text) => {
    expect(decodeBase64Strict(text)).toBeUndefined();
  });
});

describe('secrets are refused at construction, never shortened', () => {
  const factories = {
    hmacSigner: (secrets: unknown) => hmacSigner({ secrets: secrets as string }),
    hmacVerifier: (secrets: unknown) => hmacVerifier({ secrets: secrets as string }),
    standardWebhooksSigner: (secrets: unknown) =>
      standardWebhooksSigner({ secrets: secrets as string }),
    standardWebhooksVerifier: (secrets: unknown) =>
      standardWebhooksVerifier({ secrets: secrets as string }),
  };

  describe.each(Object.entries(factories))('%s', (_name, make) => {
    it.each([
      ['an empty string', ''],
      ['a bare prefix', 'whsec_'],
      ['a short secret (23 bytes)', `whsec_${b64(23)}`],
      ['a secret over 64 bytes', `whsec_${b64(65)}`],
      ['undecodable base64 (a lenient decoder would make a 1-byte key)', 'whsec_!!!!A!!!'],
      [
        'base64url instead of base64',
        `whsec_${b64(32, 0xfb).replaceAll('+', '-').replaceAll('/', '_')}`,
      ],
      ['a secret with a trailing newline', `whsec_${b64(32)}\n`],
      ['no prefix', b64(32)],
      ['a number', 42],
      ['null', null],
      ['an empty list', []],
      ['a list with one bad secret', [`whsec_${b64(32)}`, 'whsec_short']],
    ])('refuses %s', (_label, secret) => {
      expect(() => make(secret)).toThrow(TypeError);
    });

    it('never shows the secret in the message', () => {
      const secret = `whsec_${b64(20, 0x41)}`;
      let message = '';
      try {
        make(secret);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/20 bytes/);
      expect(message).not.toContain(secret.slice(6, 12));
    });

    it('is required', () => {
      expect(() => make(undefined)).toThrow(/"secrets" is required/);
    });

    it('accepts 24 and 64 bytes, alone or in a rotation list', () => {
      expect(() => make(`whsec_${b64(24)}`)).not.toThrow();
      expect(() => make([`whsec_${b64(64)}`, `whsec_${b64(24)}`])).not.toThrow();
    });
  });

  it('refuses an ed25519 key where only HMAC secrets apply', () => {
    const { secretKey, publicKey } = generateWebhookKeyPair();
    expect(() => hmacVerifier({ secrets: secretKey })).toThrow(TypeError);
    expect(() => hmacSigner({ secrets: publicKey })).toThrow(TypeError);
    // A public key cannot sign.
    expect(() => standardWebhooksSigner({ secrets: publicKey })).toThrow(TypeError);
  });

  it('refuses malformed ed25519 keys', () => {
    expect(() => standardWebhooksVerifier({ secrets: `whpk_${b64(31)}` })).toThrow(TypeError);
    expect(() => standardWebhooksSigner({ secrets: `whsk_${b64(33)}` })).toThrow(TypeError);
    // The 64-byte (seed + public key) form must hold the seed's own public key.
    expect(() => standardWebhooksSigner({ secrets: `whsk_${b64(64)}` })).toThrow(/belong/);
  });

  it('refuses GitHub secrets shorter than 24 bytes, or padded with whitespace', () => {
    expect(() => githubVerifier({ secrets: 'short secret' })).toThrow(/24 bytes; got 12/);
    expect(() => githubVerifier({ secrets: ` ${'x'.repeat(30)}` })).toThrow(/whitespace/);
    expect(() => githubVerifier({ secrets: [] })).toThrow(TypeError);
  });

  it('refuses unknown options with the nearest name', () => {
    expect(() => hmacVerifier({ secrets: `whsec_${b64(32)}`, tolerance: 10 } as never)).toThrow(
      /unknown option "tolerance"/,
    );
    expect(() => hmacVerifier({ secret: `whsec_${b64(32)}` } as never)).toThrow(
      /Did you mean "secrets"/,
    );
  });
});
