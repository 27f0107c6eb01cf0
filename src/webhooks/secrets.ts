/**
 * Webhook secrets and keys in the Standard Webhooks serialisation:
 * - `whsec_` + base64 of 24 to 64 random bytes: a symmetric secret (HMAC-SHA256);
 * - `whsk_` + base64 of an ed25519 private key (its 32-byte seed, or the 64-byte
 *   seed and public key of libsodium), `whpk_` + base64 of the 32-byte public key.
 *
 * Secrets are checked when a signer or verifier is built and refused, never
 * shortened or repaired: an empty value, a truncated one, or one whose base64
 * does not decode exactly (a lenient decoder skips bad characters and turns
 * `whsec_` plus garbage into a one-byte key) throws a `TypeError` that says
 * what is wrong without showing any of the secret.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { invalidOption } from '../core/errors.js';

/** The prefix of a symmetric secret. */
export const SECRET_PREFIX = 'whsec_';
/** The prefix of an ed25519 private key. */
export const PRIVATE_KEY_PREFIX = 'whsk_';
/** The prefix of an ed25519 public key. */
export const PUBLIC_KEY_PREFIX = 'whpk_';

/** Fewest random bytes in a symmetric secret (Standard Webhooks: at least 192 bits). */
export const MIN_SECRET_BYTES = 24;
/** Most random bytes in a symmetric secret (Standard Webhooks: at most 512 bits). */
export const MAX_SECRET_BYTES = 64;

/** A parsed `whsec_` secret: its text (what Stripe's scheme keys on) and its decoded bytes. */
export interface SymmetricKey {
  readonly kind: 'symmetric';
  /** The whole secret as text, `whsec_` included: the HMAC key of Stripe's `t=,v1=` scheme. */
  readonly text: Buffer;
  /** The decoded bytes after `whsec_`: the HMAC key of Standard Webhooks `v1`. */
  readonly bytes: Buffer;
}

/** A parsed `whsk_` key: signs `v1a` (and verifies, with its public half). */
export interface Ed25519PrivateKey {
  readonly kind: 'ed25519-private';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A parsed `whpk_` key: verifies `v1a`. */
export interface Ed25519PublicKey {
  readonly kind: 'ed25519-public';
  readonly publicKey: KeyObject;
}

/** Any parsed key. */
export type WebhookKey = SymmetricKey | Ed25519PrivateKey | Ed25519PublicKey;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard base64 (RFC 4648 §4) strictly: only the alphabet, padding
 * absent or complete, and no bits set past the last byte, so that exactly one
 * text decodes to given bytes. `undefined` for anything else. Node's own
 * decoder skips what it cannot read and would accept all of that.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  const unpadded = end === text.length ? text : text.slice(0, end);
  if (unpadded.length % 4 === 1) return undefined;
  if (end !== text.length && text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(unpadded, 'base64');
  // Non-zero trailing bits decode to the same bytes as zero ones: refuse them.
  let again = bytes.toString('base64');
  while (again.endsWith('=')) again = again.slice(0, -1);
  return again === unpadded ? bytes : undefined;
}

// DER prefixes of an ed25519 key in PKCS #8 and SubjectPublicKeyInfo (RFC 8410 §7, §4).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
}

/** Describes a secret for an error message: never its content, only what kind of value it is. */
function shape(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function refuse(module: string, option: string, expected: string, got: string): never {
  throw new TypeError(`restwell/${module}: option "${option}" must be ${expected}; got ${got}.`);
}

/** Which kinds of key an option accepts. */
export type KeyUse = 'symmetric' | 'sign' | 'verify';

const EXPECTED: Readonly<Record<KeyUse, string>> = {
  symmetric: `a secret "${SECRET_PREFIX}" + base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} random bytes (generateWebhookSecret() makes one)`,
  sign: `a secret "${SECRET_PREFIX}..." or an ed25519 private key "${PRIVATE_KEY_PREFIX}..." (generateWebhookSecret(), generateWebhookKeyPair())`,
  verify: `a secret "${SECRET_PREFIX}...", or an ed25519 public key "${PUBLIC_KEY_PREFIX}..." (generateWebhookSecret(), generateWebhookKeyPair())`,
};

/**
 * Parses one secret or key for `use`, or throws a `TypeError` naming
 * `option` and what is wrong with the value, without showing it.
 */
export function parseWebhookKey(
  module: string,
  option: string,
  value: unknown,
  use: KeyUse,
): WebhookKey {
  const expected = EXPECTED[use];
  if (typeof value !== 'string') return refuse(module, option, expected, shape(value));
  if (value.length === 0) return refuse(module, option, expected, 'an empty string');
  if (value.trim() !== value)
    return refuse(module, option, expected, 'a value with leading or trailing whitespace');
  if (value.startsWith(SECRET_PREFIX)) {
    const bytes = decodeBase64Strict(value.slice(SECRET_PREFIX.length));
    if (bytes === undefined)
      return refuse(
        module,
        option,
        expected,
        `"${SECRET_PREFIX}" followed by text that is not base64`,
      );
    if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES)
      return refuse(module, option, expected, `a secret of ${bytes.length} bytes`);
    return { kind: 'symmetric', text: Buffer.from(value, 'utf8'), bytes };
  }
  if (use !== 'symmetric' && value.startsWith(PRIVATE_KEY_PREFIX)) {
    const bytes = decodeBase64Strict(value.slice(PRIVATE_KEY_PREFIX.length));
    if (bytes === undefined || (bytes.length !== 32 && bytes.length !== 64))
      return refuse(
        module,
        option,
        expected,
        `a "${PRIVATE_KEY_PREFIX}" key that is not 32 or 64 bytes of base64`,
      );
    const privateKey = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519, bytes.subarray(0, 32)]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKey = createPublicKey(privateKey);
    // The 64-byte form carries the public key too: it must be the seed's own.
    if (bytes.length === 64 && !rawPublicKey(publicKey).equals(bytes.subarray(32)))
      return refuse(
        module,
        option,
        expected,
        `a "${PRIVATE_KEY_PREFIX}" key whose two halves do not belong together`,
      );
    return { kind: 'ed25519-private', privateKey, publicKey };
  }
  if (use === 'verify' && value.startsWith(PUBLIC_KEY_PREFIX)) {
    const bytes = decodeBase64Strict(value.slice(PUBLIC_KEY_PREFIX.length));
    if (bytes === undefined || bytes.length !== 32)
      return refuse(
        module,
        option,
        expected,
        `a "${PUBLIC_KEY_PREFIX}" key that is not 32 bytes of base64`,
      );
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({
        key: Buffer.concat([SPKI_ED25519, bytes]),
        format: 'der',
        type: 'spki',
      });
    } catch {
      return refuse(
        module,
        option,
        expected,
        `a "${PUBLIC_KEY_PREFIX}" key that is not an ed25519 point`,
      );
    }
    return { kind: 'ed25519-public', publicKey };
  }
  return refuse(module, option, expected, `${shape(value)} without a known prefix`);
}

/**
 * Parses the `secrets` option of a signer or verifier: one value or a
 * non-empty list (several during a rotation, newest first), each checked by
 * {@link parseWebhookKey}. A list of more than 16 is refused: every secret
 * costs a computation per delivery.
 */
export function parseWebhookKeys(
  module: string,
  value: unknown,
  use: KeyUse,
  option = 'secrets',
): WebhookKey[] {
  if (value === undefined)
    throw new TypeError(`restwell/${module}: option "${option}" is required.`);
  const many = Array.isArray(value);
  const list: readonly unknown[] = many ? value : [value];
  if (list.length === 0)
    throw new TypeError(`restwell/${module}: option "${option}" must hold at least one secret.`);
  if (list.length > 16) invalidOption(module, option, 'a list of at most 16 secrets', value);
  return list.map((item, i) =>
    parseWebhookKey(module, many ? `${option}[${i}]` : option, item, use),
  );
}

/** Options of {@link generateWebhookSecret}. */
export interface GenerateSecretOptions {
  /** How many random bytes, from 24 to 64. @default 32 */
  bytes?: number;
}

/**
 * A new symmetric secret: `whsec_` + base64 of `bytes` bytes from the
 * operating system's CSPRNG (`crypto.randomBytes`).
 *
 * @example
 * ```ts
 * const secret = generateWebhookSecret(); // 'whsec_' + 44 base64 characters
 * ```
 */
export function generateWebhookSecret(options: GenerateSecretOptions = {}): string {
  const bytes = options.bytes ?? 32;
  if (!Number.isInteger(bytes) || bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES)
    invalidOption(
      'webhooks',
      'bytes',
      `an integer from ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES}`,
      bytes,
    );
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** An ed25519 key pair in the Standard Webhooks serialisation. */
export interface WebhookKeyPair {
  /** `whsk_` + base64 of the 32-byte seed: the sender keeps it to sign `v1a`. */
  readonly secretKey: string;
  /** `whpk_` + base64 of the 32-byte public key: receivers verify `v1a` with it. */
  readonly publicKey: string;
}

/**
 * A new ed25519 key pair for Standard Webhooks `v1a` signatures.
 *
 * @example
 * ```ts
 * const { secretKey, publicKey } = generateWebhookKeyPair();
 * ```
 */
export function generateWebhookKeyPair(): WebhookKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  return {
    secretKey: PRIVATE_KEY_PREFIX + seed.toString('base64'),
    publicKey: PUBLIC_KEY_PREFIX + rawPublicKey(publicKey).toString('base64'),
  };
}
