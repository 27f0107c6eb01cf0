/**
 * Standard Webhooks (standardwebhooks.com, spec 1.0.0): `webhook-id`,
 * `webhook-timestamp` and `webhook-signature`, the signed content being
 * `<id>.<timestamp>.<raw body>`. The signature header is a space-delimited
 * list of `<version>,<base64>`: `v1` is HMAC-SHA256 under the decoded bytes of
 * a `whsec_` secret, `v1a` ed25519 under a `whsk_` private key, verified with
 * its `whpk_` public key. During a rotation a delivery carries one signature
 * per active secret or key, and a verifier holding any of them accepts it.
 *
 * Interoperable with the reference library (`standardwebhooks`' `Webhook`) in
 * both directions for `v1`, and with the reference `v1a` test vector.
 */
import { createHmac, sign as edSign, verify as edVerify, timingSafeEqual } from 'node:crypto';
import { checkOptions, invalidOption } from '../core/errors.js';
import { WebhookVerificationError } from './errors.js';
import type { SignOptions } from './hmac.js';
import { decodeBase64Strict, parseWebhookKeys, type WebhookKey } from './secrets.js';
import {
  checkClockOption,
  checkTolerance,
  checkToleranceOption,
  isPrintableId,
  MAX_SIGNATURE_HEADER_LENGTH,
  MAX_SIGNATURES,
  parseTimestamp,
  payloadBytes,
  readHeader,
  signingTimestamp,
  type VerifiedSignature,
  type WebhookHeaders,
  type WebhookPayload,
  type WebhookVerifier,
} from './verify.js';

/** The scheme name of {@link standardWebhooksVerifier}, in problems and logs. */
export const STANDARD_WEBHOOKS_SCHEME = 'standard-webhooks';
const SCHEME = STANDARD_WEBHOOKS_SCHEME;
const MODULE = 'webhooks';

/**
 * The three headers of a Standard Webhooks delivery, lower-case. A type rather
 * than an interface, so that it passes wherever a header record is expected.
 */
export type StandardWebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** Options of {@link standardWebhooksSigner}. */
export interface StandardWebhooksSignerOptions {
  /**
   * What to sign with: `whsec_` secrets (a `v1` signature each) and `whsk_`
   * ed25519 private keys (a `v1a` signature each). During a rotation list the
   * new and the old. Required.
   */
  secrets: string | readonly string[];
  /** The clock, in milliseconds since the epoch: the timestamp of each signature. @default Date.now */
  now?: () => number;
}

/** Options of one Standard Webhooks signature. */
export interface StandardSignOptions extends SignOptions {
  /**
   * The event's id, the same on every attempt of one event (receivers dedupe
   * by it): 1 to 256 printable ASCII characters, without `.` (the spec forbids
   * it, as the signed content is delimited by full stops). Required.
   */
  id: string;
}

/** Signs deliveries in the Standard Webhooks scheme; see {@link standardWebhooksSigner}. */
export interface StandardWebhooksSigner {
  /**
   * The three headers to send with `payload` (the exact body bytes). Pure: no
   * I/O, nothing but the clock (or `timestamp`) varies; call it for every
   * attempt, so that each carries its own timestamp.
   */
  sign(payload: WebhookPayload, options: StandardSignOptions): StandardWebhookHeaders;
}

function signedContent(id: string, timestamp: number, payload: Uint8Array): Buffer {
  const prefix = `${id}.${timestamp}.`;
  const content = Buffer.allocUnsafe(Buffer.byteLength(prefix) + payload.byteLength);
  const written = content.write(prefix, 0, 'utf8');
  content.set(payload, written);
  return content;
}

function hmacV1(key: Buffer, id: string, timestamp: number, payload: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(payload).digest();
}

/**
 * A signer for Standard Webhooks. Secrets and keys are checked here, once.
 *
 * @example
 * ```ts
 * const signer = standardWebhooksSigner({ secrets: [process.env.WEBHOOK_SECRET!] });
 * const body = JSON.stringify(event);
 * const headers = signer.sign(body, { id: event.id }); // webhook-id, webhook-timestamp, webhook-signature
 * ```
 */
export function standardWebhooksSigner(
  options: StandardWebhooksSignerOptions,
): StandardWebhooksSigner {
  checkOptions('webhooks', options, ['secrets', 'now']);
  const keys = parseWebhookKeys(MODULE, options?.secrets, 'sign');
  const now = checkClockOption(MODULE, options.now);
  return {
    sign(payload, signOptions) {
      const bytes = payloadBytes(MODULE, payload);
      const id = signOptions?.id;
      if (typeof id !== 'string' || !isPrintableId(id) || id.includes('.'))
        invalidOption(MODULE, 'id', 'an id of 1 to 256 printable ASCII characters without "."', id);
      const timestamp = signingTimestamp(MODULE, signOptions.timestamp, now);
      const signatures: string[] = [];
      let content: Buffer | undefined;
      for (const key of keys) {
        if (key.kind === 'symmetric') {
          signatures.push(`v1,${hmacV1(key.bytes, id, timestamp, bytes).toString('base64')}`);
        } else if (key.kind === 'ed25519-private') {
          content ??= signedContent(id, timestamp, bytes);
          signatures.push(`v1a,${edSign(null, content, key.privateKey).toString('base64')}`);
        }
      }
      return {
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatures.join(' '),
      };
    },
  };
}

/** Options of {@link standardWebhooksVerifier}. */
export interface StandardWebhooksVerifierOptions {
  /**
   * What a delivery may be signed with: `whsec_` secrets (for `v1`) and the
   * sender's `whpk_` public keys (for `v1a`; a `whsk_` private key works too,
   * through its public half). Several during a rotation. Required.
   */
  secrets: string | readonly string[];
  /**
   * Largest difference, in seconds, between `webhook-timestamp` and the
   * receiver's clock, in either direction (1 to 604800). @default 300
   */
  toleranceSeconds?: number;
  /** The clock, in milliseconds since the epoch; injectable for tests. @default Date.now */
  now?: () => number;
}

interface Candidate {
  readonly version: 'v1' | 'v1a';
  readonly bytes: Buffer;
}

/**
 * A verifier for Standard Webhooks. Secrets and keys are checked here, once;
 * `verify` is a pure function of the body, the headers and the clock, and
 * returns the `webhook-id` (the event's id, to dedupe by).
 *
 * @example
 * ```ts
 * const verifier = standardWebhooksVerifier({ secrets: [process.env.WEBHOOK_SECRET!] });
 * const { id, timestamp } = verifier.verify(rawBody, req.headers);
 * ```
 */
export function standardWebhooksVerifier(
  options: StandardWebhooksVerifierOptions,
): WebhookVerifier {
  checkOptions('webhooks', options, ['secrets', 'toleranceSeconds', 'now']);
  const keys: WebhookKey[] = parseWebhookKeys(MODULE, options?.secrets, 'verify');
  const toleranceSeconds = checkToleranceOption(MODULE, options.toleranceSeconds);
  const now = checkClockOption(MODULE, options.now);
  const hasSymmetric = keys.some((k) => k.kind === 'symmetric');
  const hasAsymmetric = keys.some((k) => k.kind !== 'symmetric');

  function verify(payload: WebhookPayload, headers: WebhookHeaders): VerifiedSignature {
    const bytes = payloadBytes(MODULE, payload);
    const signatureHeader = readHeader(headers, 'webhook-signature');
    if (signatureHeader === undefined || signatureHeader.trim() === '')
      throw new WebhookVerificationError('signature-missing', SCHEME);
    if (signatureHeader.length > MAX_SIGNATURE_HEADER_LENGTH)
      throw new WebhookVerificationError('signature-malformed', SCHEME);
    const id = readHeader(headers, 'webhook-id');
    if (id === undefined || id === '')
      throw new WebhookVerificationError('webhook-id-missing', SCHEME);
    if (!isPrintableId(id)) throw new WebhookVerificationError('webhook-id-invalid', SCHEME);
    const timestampText = readHeader(headers, 'webhook-timestamp');
    if (timestampText === undefined || timestampText === '')
      throw new WebhookVerificationError('timestamp-missing', SCHEME);
    const timestamp = parseTimestamp(timestampText);
    if (timestamp === undefined) throw new WebhookVerificationError('timestamp-invalid', SCHEME);

    const tokens = signatureHeader.split(/[ \t]+/);
    if (tokens.length > MAX_SIGNATURES + 1)
      throw new WebhookVerificationError('signature-malformed', SCHEME);
    const candidates: Candidate[] = [];
    let sawKnown = false;
    for (let token of tokens) {
      // Repeated header fields arrive joined by ", " (RFC 9110 §5.3): drop the joint.
      if (token.endsWith(',')) token = token.slice(0, -1);
      const comma = token.indexOf(',');
      if (comma <= 0) continue;
      const version = token.slice(0, comma);
      if (version !== 'v1' && version !== 'v1a') continue;
      sawKnown = true;
      const decoded = decodeBase64Strict(token.slice(comma + 1));
      // HMAC-SHA256 is 32 bytes, an ed25519 signature 64: anything else matches nothing.
      if (decoded === undefined) continue;
      if (version === 'v1' && decoded.length === 32 && hasSymmetric)
        candidates.push({ version, bytes: decoded });
      else if (version === 'v1a' && decoded.length === 64 && hasAsymmetric)
        candidates.push({ version, bytes: decoded });
    }
    if (!sawKnown)
      throw new WebhookVerificationError('signature-missing', SCHEME, {
        detail: 'The webhook-signature header has no v1 or v1a signature.',
      });
    checkTolerance(SCHEME, timestamp, now(), toleranceSeconds);
    if (candidates.length > 0) {
      let content: Buffer | undefined;
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        if (key.kind === 'symmetric') {
          const expected = hmacV1(key.bytes, id, timestamp, bytes);
          for (const c of candidates) {
            if (c.version === 'v1' && timingSafeEqual(c.bytes, expected))
              return { scheme: SCHEME, id, timestamp, secretIndex: k };
          }
        } else {
          for (const c of candidates) {
            if (c.version !== 'v1a') continue;
            content ??= signedContent(id, timestamp, bytes);
            if (edVerify(null, content, key.publicKey, c.bytes))
              return { scheme: SCHEME, id, timestamp, secretIndex: k };
          }
        }
      }
    }
    throw new WebhookVerificationError('signature-mismatch', SCHEME);
  }

  return {
    scheme: SCHEME,
    headers: ['webhook-signature', 'webhook-id', 'webhook-timestamp'],
    verify,
  };
}
