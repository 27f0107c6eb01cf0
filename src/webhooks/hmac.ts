/**
 * The `t=,v1=` scheme: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`, with one `v1` element per active secret. It is Stripe's
 * `Stripe-Signature` scheme (set `header: 'Stripe-Signature'`), and as in
 * Stripe the HMAC key is the whole secret text, `whsec_` included: what
 * restwell signs, `stripe.webhooks.constructEvent` accepts, and the other way
 * round.
 *
 * Verification: every `v1` element is compared, in constant time, with the
 * HMAC under every configured secret (several during a rotation); elements of
 * other schemes (`v0`, future versions) are ignored; the timestamp must be a
 * plain decimal integer given once, and within the tolerance in both
 * directions.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkOptions } from '../core/errors.js';
import { WebhookVerificationError } from './errors.js';
import { parseWebhookKeys, type SymmetricKey } from './secrets.js';
import {
  checkClockOption,
  checkHeaderName,
  checkTolerance,
  checkToleranceOption,
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

/** The scheme name of {@link hmacVerifier}, in problems and logs. */
export const HMAC_SCHEME = 'hmac-sha256';
const MODULE = 'webhooks';
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** Options of {@link hmacSigner}. */
export interface HmacSignerOptions {
  /**
   * The secrets to sign with, each `whsec_` + base64 of 24 to 64 random bytes
   * (`generateWebhookSecret()`). During a rotation list the new one and the old
   * one: every delivery then carries one `v1` per secret, and receivers holding
   * either verify it. Required.
   */
  secrets: string | readonly string[];
  /** The header the signature goes in. @default 'X-Signature' */
  header?: string;
  /** The clock, in milliseconds since the epoch: the timestamp of each signature. @default Date.now */
  now?: () => number;
}

/** Options of one signature. */
export interface SignOptions {
  /** The timestamp to sign, in seconds since the epoch (or a Date). @default now */
  timestamp?: number | Date;
}

/** Signs deliveries in the `t=,v1=` scheme; see {@link hmacSigner}. */
export interface HmacSigner {
  /** The header name, as configured. */
  readonly header: string;
  /**
   * The headers to send with `payload` (the exact bytes of the body): one
   * entry, `{ [header]: 't=...,v1=...' }`. Pure: no I/O, and nothing but the
   * clock (or `timestamp`) varies. Call it for every attempt, so that each
   * carries its own timestamp.
   */
  sign(payload: WebhookPayload, options?: SignOptions): Record<string, string>;
  /** The header's value alone: `t=<timestamp>,v1=<hex>[,v1=<hex>...]`. */
  signature(payload: WebhookPayload, options?: SignOptions): string;
}

function hmac(key: Buffer, timestamp: number, payload: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${timestamp}.`).update(payload).digest();
}

function symmetricKeys(value: unknown): SymmetricKey[] {
  return parseWebhookKeys(MODULE, value, 'symmetric') as SymmetricKey[];
}

/**
 * A signer for the `t=,v1=` scheme (the seed's `X-Signature`, Stripe's
 * `Stripe-Signature`). Secrets are checked here, once.
 *
 * @example
 * ```ts
 * const signer = hmacSigner({ secrets: [process.env.WEBHOOK_SECRET!] });
 * const body = JSON.stringify(event);
 * await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...signer.sign(body) } });
 * ```
 */
export function hmacSigner(options: HmacSignerOptions): HmacSigner {
  checkOptions('webhooks', options, ['secrets', 'header', 'now']);
  const keys = symmetricKeys(options?.secrets);
  const header = options.header ?? 'X-Signature';
  checkHeaderName(MODULE, 'header', header);
  const now = checkClockOption(MODULE, options.now);
  const signature = (payload: WebhookPayload, signOptions: SignOptions = {}): string => {
    const bytes = payloadBytes(MODULE, payload);
    const t = signingTimestamp(MODULE, signOptions.timestamp, now);
    let value = `t=${t}`;
    for (const key of keys) value += `,v1=${hmac(key.text, t, bytes).toString('hex')}`;
    return value;
  };
  return {
    header,
    signature,
    sign: (payload, signOptions) => ({ [header]: signature(payload, signOptions) }),
  };
}

/** Options of {@link hmacVerifier}. */
export interface HmacVerifierOptions {
  /**
   * The secrets a delivery may be signed with: the current one, and during a
   * rotation the previous one too. Each `whsec_` + base64 of 24 to 64 bytes. Required.
   */
  secrets: string | readonly string[];
  /** The header the signature comes in, in any case. @default 'X-Signature' */
  header?: string;
  /**
   * Largest difference, in seconds, between the signed timestamp and the
   * receiver's clock, in either direction (1 to 604800). @default 300
   */
  toleranceSeconds?: number;
  /** The clock, in milliseconds since the epoch; injectable for tests. @default Date.now */
  now?: () => number;
}

/**
 * A verifier for the `t=,v1=` scheme. Secrets are checked here, once; `verify`
 * is a pure function of the body, the headers and the clock.
 *
 * @example
 * ```ts
 * const verifier = hmacVerifier({ secrets: [process.env.WEBHOOK_SECRET!] });
 * const { timestamp } = verifier.verify(rawBody, req.headers); // throws WebhookVerificationError
 * ```
 */
export function hmacVerifier(options: HmacVerifierOptions): WebhookVerifier {
  checkOptions('webhooks', options, ['secrets', 'header', 'toleranceSeconds', 'now']);
  const keys = symmetricKeys(options?.secrets);
  const header = checkHeaderName(MODULE, 'header', options.header ?? 'X-Signature');
  const toleranceSeconds = checkToleranceOption(MODULE, options.toleranceSeconds);
  const now = checkClockOption(MODULE, options.now);

  function verify(payload: WebhookPayload, headers: WebhookHeaders): VerifiedSignature {
    const bytes = payloadBytes(MODULE, payload);
    const value = readHeader(headers, header);
    if (value === undefined || value.trim() === '')
      throw new WebhookVerificationError('signature-missing', HMAC_SCHEME);
    if (value.length > MAX_SIGNATURE_HEADER_LENGTH)
      throw new WebhookVerificationError('signature-malformed', HMAC_SCHEME);
    const items = value.split(',');
    if (items.length > MAX_SIGNATURES + 1)
      throw new WebhookVerificationError('signature-malformed', HMAC_SCHEME);
    let timestampText: string | undefined;
    let sawV1 = false;
    const candidates: Buffer[] = [];
    for (const raw of items) {
      // Optional whitespace around list elements (RFC 9110 §5.6.1); none inside one.
      const item = raw.trim();
      const eq = item.indexOf('=');
      if (eq <= 0) continue;
      const name = item.slice(0, eq);
      const text = item.slice(eq + 1);
      if (name === 't') {
        // Two timestamps: which one was signed is unknown.
        if (timestampText !== undefined)
          throw new WebhookVerificationError('signature-malformed', HMAC_SCHEME, {
            detail: 'The webhook signature header gives the timestamp more than once.',
          });
        timestampText = text;
      } else if (name === 'v1') {
        sawV1 = true;
        // A value that is not 32 bytes of hex can match nothing; it still counts as sent.
        if (HEX_SHA256.test(text)) candidates.push(Buffer.from(text, 'hex'));
      }
    }
    if (timestampText === undefined)
      throw new WebhookVerificationError('timestamp-missing', HMAC_SCHEME);
    const timestamp = parseTimestamp(timestampText);
    if (timestamp === undefined)
      throw new WebhookVerificationError('timestamp-invalid', HMAC_SCHEME);
    if (!sawV1)
      throw new WebhookVerificationError('signature-missing', HMAC_SCHEME, {
        detail: 'The webhook signature header has no v1 signature.',
      });
    // The cheap check first: a stale or future delivery costs no HMAC.
    checkTolerance(HMAC_SCHEME, timestamp, now(), toleranceSeconds);
    if (candidates.length > 0) {
      for (let k = 0; k < keys.length; k++) {
        const expected = hmac(keys[k]!.text, timestamp, bytes);
        for (const candidate of candidates) {
          if (timingSafeEqual(candidate, expected))
            return { scheme: HMAC_SCHEME, id: undefined, timestamp, secretIndex: k };
        }
      }
    }
    throw new WebhookVerificationError('signature-mismatch', HMAC_SCHEME);
  }

  return { scheme: HMAC_SCHEME, headers: [header], verify };
}
