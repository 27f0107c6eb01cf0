/**
 * What every signature scheme shares: the verifier contract, how headers are
 * read (any case, any common header shape), how a timestamp is parsed and
 * judged, and the bounds that keep hostile headers cheap.
 */
import { invalidOption } from '../core/errors.js';
import { WebhookVerificationError } from './errors.js';

/**
 * Request headers as verifiers read them: Node's `IncomingHttpHeaders` (lower-case names), any plain
 * record (names in any case), or a fetch `Headers` object.
 */
export type WebhookHeaders =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | { get(name: string): string | null };

/** A webhook body: the exact bytes received (or sent), or a string, which is taken as its UTF-8 bytes. */
export type WebhookPayload = string | Uint8Array;

/** What a verifier learnt from a delivery whose signature verified. */
export interface VerifiedSignature {
  /** The verifier's scheme. */
  readonly scheme: string;
  /** The event id the scheme carries in a header (`webhook-id`, `X-GitHub-Delivery`), if any. */
  readonly id: string | undefined;
  /** The signed timestamp, in seconds since the epoch, for schemes that sign one. */
  readonly timestamp: number | undefined;
  /**
   * Which of the verifier's secrets verified it (its index in `secrets`): during a
   * rotation, once no delivery verifies with the old one any more, remove it.
   */
  readonly secretIndex: number;
}

/**
 * A signature scheme's verifier: a pure function of the body and the headers
 * (and the verifier's clock), which either returns what it verified or throws
 * a {@link WebhookVerificationError}. Built by `hmacVerifier()`,
 * `standardWebhooksVerifier()` and `githubVerifier()`; an application may
 * write its own for another scheme.
 */
export interface WebhookVerifier {
  /** A short name for problems and logs: `hmac-sha256`, `standard-webhooks`, `github`. */
  readonly scheme: string;
  /**
   * The lower-case header names whose presence says a delivery is meant for this
   * verifier: when a receiver has several, it uses the first whose header is present.
   */
  readonly headers: readonly string[];
  /** Verifies `payload` (the exact bytes received) against `headers`. Throws WebhookVerificationError. */
  verify(payload: WebhookPayload, headers: WebhookHeaders): VerifiedSignature;
}

/**
 * Longest signature header read. Real ones are far shorter (a Standard Webhooks
 * header with 16 ed25519 signatures is under 1.5 KB); a longer one is refused
 * before it is split, so hostile headers cost nothing to refuse.
 */
export const MAX_SIGNATURE_HEADER_LENGTH = 8192;
/** Most signatures examined in one header: one per secret during a rotation, with room to spare. */
export const MAX_SIGNATURES = 32;
/** Longest event id accepted in a header. */
export const MAX_ID_LENGTH = 256;

/**
 * One header's value, looked up by its lower-case name in any header shape;
 * repeated fields are joined with `", "` as RFC 9110 §5.3 combines them (and
 * as Node does for fields it does not know). Header names are case-insensitive
 * (RFC 9110 §5.1): a record with `Webhook-Id` is read as well as one with
 * `webhook-id`.
 */
export function readHeader(headers: WebhookHeaders, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(name: string): string | null }).get(name);
    return typeof value === 'string' ? value : undefined;
  }
  const record = headers as Readonly<Record<string, unknown>>;
  let value = Object.hasOwn(record, name) ? record[name] : undefined;
  if (value === undefined) {
    for (const key of Object.keys(record)) {
      if (key.length === name.length && key.toLowerCase() === name) {
        value = record[key];
        break;
      }
    }
  }
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    return (value as string[]).join(', ');
  return undefined;
}

// An integer number of seconds, without sign, spaces or leading zeros; 12 digits reach year 33658.
const TIMESTAMP = /^(?:0|[1-9][0-9]{0,11})$/;

/**
 * A signed timestamp's value: a plain decimal integer of seconds. Anything
 * else (`+1700000000`, ` 1700000000`, `01700000000`, `1.7e9`, `1700000000.5`,
 * `0x6553f100`) is `undefined`: a parser that accepts more than one spelling
 * of a number (parseInt stops at the first non-digit) lets a signature made
 * for one spelling verify another.
 */
export function parseTimestamp(text: string): number | undefined {
  return TIMESTAMP.test(text) ? Number(text) : undefined;
}

/** Throws `timestamp-outside-tolerance` when `timestamp` is more than `toleranceSeconds` from `nowMs`, either way. */
export function checkTolerance(
  scheme: string,
  timestamp: number,
  nowMs: number,
  toleranceSeconds: number,
): void {
  // A clock that returns no number (\`now: () => Date.now\`, a Date's string) would make
  // the comparison below false for every timestamp, accepting them all: refuse instead.
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs))
    throw new TypeError(
      `restwell/webhooks: the verifier's clock (option "now") returned ${
        typeof nowMs === 'number' ? String(nowMs) : `a ${typeof nowMs}`
      }, not milliseconds since the epoch; no delivery can be checked against it.`,
    );
  const now = Math.floor(nowMs / 1000);
  // Both directions: a timestamp from the future is as suspect as one from the past
  // (a one-sided check lets a captured delivery dated ahead be replayed for as long).
  if (Math.abs(now - timestamp) > toleranceSeconds) {
    throw new WebhookVerificationError('timestamp-outside-tolerance', scheme, {
      detail: `The webhook timestamp is more than ${toleranceSeconds} seconds from the receiver's clock. Sign each attempt afresh, with a correct clock.`,
    });
  }
}

/** Checks a verifier's `toleranceSeconds`: a positive integer of seconds, at most one week. */
export function checkToleranceOption(module: string, value: unknown): number {
  if (value === undefined) return 300;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 604_800)
    invalidOption(
      module,
      'toleranceSeconds',
      'an integer number of seconds from 1 to 604800',
      value,
    );
  return value as number;
}

/** Checks a `now` option: a function returning milliseconds since the epoch. */
export function checkClockOption(module: string, value: unknown): () => number {
  if (value === undefined) return Date.now;
  if (typeof value !== 'function')
    invalidOption(module, 'now', 'a function returning milliseconds since the epoch', value);
  return value as () => number;
}

/** Checks a header name option (RFC 9110 §5.1 token) and returns it lower-cased. */
export function checkHeaderName(module: string, option: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(value))
    invalidOption(module, option, 'a header name', value);
  return value.toLowerCase();
}

/** The payload's bytes; a value that is neither bytes nor a string is a programming error, named. */
export function payloadBytes(module: string, payload: unknown): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  throw new TypeError(
    `restwell/${module}: the payload must be the raw body, as a string or bytes (Buffer, Uint8Array), got ${
      payload === null ? 'null' : typeof payload
    }. A parsed and re-serialised body is not the bytes that were signed: keep the raw body (webhookReceiver() does).`,
  );
}

/** The signing timestamp: a given one (seconds or a Date), else the clock's current second. */
export function signingTimestamp(
  module: string,
  given: number | Date | undefined,
  now: () => number,
): number {
  if (given === undefined) {
    const ms = now();
    // Else the header would carry `t=NaN`, which no receiver accepts.
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw new TypeError(
        `restwell/${module}: the signer's clock (option "now") returned no number of milliseconds since the epoch.`,
      );
    return Math.floor(ms / 1000);
  }
  if (given instanceof Date) {
    const ms = given.getTime();
    if (!Number.isFinite(ms) || ms < 0)
      invalidOption(module, 'timestamp', 'a valid date after 1970', given);
    return Math.floor(ms / 1000);
  }
  if (!Number.isSafeInteger(given) || given < 0 || given > 999_999_999_999)
    invalidOption(module, 'timestamp', 'a non-negative integer of seconds since the epoch', given);
  return given;
}

/** An id fit to be signed or deduplicated: 1 to 256 printable ASCII characters, no spaces. */
export function isPrintableId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_ID_LENGTH && /^[\x21-\x7e]+$/.test(id);
}
