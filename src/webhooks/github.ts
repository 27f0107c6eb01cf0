/**
 * GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
 * the raw body>`, keyed on the secret's text, with the delivery's id in
 * `X-GitHub-Delivery` (the same on GitHub's redeliveries of an event). GitHub
 * signs the body only: no timestamp, and not the delivery id, so a captured
 * delivery can be replayed with a delivery id of the replayer's choosing, and
 * deduplication by that id does not stop it. HTTPS, an allowlist of GitHub's
 * published hook ranges, and handlers idempotent on the payload's own ids do.
 * The SHA-1 `X-Hub-Signature` is never read.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkOptions, invalidOption } from '../core/errors.js';
import { WebhookVerificationError } from './errors.js';
import { MIN_SECRET_BYTES } from './secrets.js';
import {
  isPrintableId,
  MAX_SIGNATURE_HEADER_LENGTH,
  MAX_SIGNATURES,
  payloadBytes,
  readHeader,
  type VerifiedSignature,
  type WebhookHeaders,
  type WebhookPayload,
  type WebhookVerifier,
} from './verify.js';

/** The scheme name of {@link githubVerifier}, in problems and logs. */
export const GITHUB_SCHEME = 'github';
const MODULE = 'webhooks';
const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

/** Options of {@link githubVerifier}. */
export interface GithubVerifierOptions {
  /**
   * The webhook's secret as entered in GitHub (any text of at least 24 bytes;
   * GitHub keys the HMAC on the text itself), or several during a rotation. Required.
   */
  secrets: string | readonly string[];
}

function githubKeys(value: unknown): Buffer[] {
  if (value === undefined) throw new TypeError(`restwell/${MODULE}: option "secrets" is required.`);
  const many = Array.isArray(value);
  const list: readonly unknown[] = many ? value : [value];
  if (list.length === 0 || list.length > 16)
    invalidOption(MODULE, 'secrets', 'one to 16 secrets', value);
  return list.map((secret, i) => {
    const option = many ? `secrets[${i}]` : 'secrets';
    if (typeof secret !== 'string')
      throw new TypeError(`restwell/${MODULE}: option "${option}" must be a string.`);
    const bytes = Buffer.from(secret, 'utf8');
    // Never shown, not even in part: only its length.
    if (bytes.length < MIN_SECRET_BYTES)
      throw new TypeError(
        `restwell/${MODULE}: option "${option}" must be a secret of at least ${MIN_SECRET_BYTES} bytes; got ${bytes.length}. Generate a long random one (generateWebhookSecret() makes one) and enter it in GitHub.`,
      );
    if (secret.trim() !== secret)
      throw new TypeError(
        `restwell/${MODULE}: option "${option}" has leading or trailing whitespace, which GitHub would not have signed with.`,
      );
    return bytes;
  });
}

/**
 * A verifier for GitHub's `X-Hub-Signature-256`. `verify` returns the
 * `X-GitHub-Delivery` id, to dedupe by.
 *
 * @example
 * ```ts
 * const verifier = githubVerifier({ secrets: [process.env.GITHUB_WEBHOOK_SECRET!] });
 * ```
 */
export function githubVerifier(options: GithubVerifierOptions): WebhookVerifier {
  checkOptions('webhooks', options, ['secrets']);
  const keys = githubKeys(options?.secrets);

  function verify(payload: WebhookPayload, headers: WebhookHeaders): VerifiedSignature {
    const bytes = payloadBytes(MODULE, payload);
    const value = readHeader(headers, 'x-hub-signature-256');
    if (value === undefined || value.trim() === '')
      throw new WebhookVerificationError('signature-missing', GITHUB_SCHEME);
    if (value.length > MAX_SIGNATURE_HEADER_LENGTH)
      throw new WebhookVerificationError('signature-malformed', GITHUB_SCHEME);
    // One signature per field; a repeated field arrives joined by ", ".
    const parts = value.split(',');
    if (parts.length > MAX_SIGNATURES)
      throw new WebhookVerificationError('signature-malformed', GITHUB_SCHEME);
    const candidates: Buffer[] = [];
    for (const part of parts) {
      const m = SIGNATURE.exec(part.trim());
      if (m !== null) candidates.push(Buffer.from(m[1]!, 'hex'));
    }
    const delivery = readHeader(headers, 'x-github-delivery');
    const id = delivery !== undefined && isPrintableId(delivery) ? delivery : undefined;
    for (let k = 0; k < keys.length && candidates.length > 0; k++) {
      const expected = createHmac('sha256', keys[k]!).update(bytes).digest();
      for (const candidate of candidates) {
        if (timingSafeEqual(candidate, expected))
          return { scheme: GITHUB_SCHEME, id, timestamp: undefined, secretIndex: k };
      }
    }
    throw new WebhookVerificationError('signature-mismatch', GITHUB_SCHEME);
  }

  return { scheme: GITHUB_SCHEME, headers: ['x-hub-signature-256'], verify };
}
