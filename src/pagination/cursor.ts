/**
 * Opaque pagination cursors: what a client hands back to get the next page,
 * made so that it cannot be forged, replayed against another query, or read.
 *
 * Format, version 1 (all of it base64url without padding, RFC 4648 §5):
 *
 * ```
 * header  = version (1 byte, 1) | mode (1 byte) | iat (6 bytes, ms, big-endian)
 *         | binding tag (16 bytes)
 * sealed  = header | nonce (16 bytes) | AES-256-GCM(payload) | GCM tag (16 bytes)
 * revealed= header | payload | HMAC-SHA256(header | payload) (32 bytes)
 * ```
 *
 * The payload is a small tagged JSON text (see {@link CursorValue}). The
 * binding tag is a keyed hash of the canonical JSON of what the cursor was
 * made for, so it says nothing about the binding to whoever reads it.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  timingSafeEqual,
} from 'node:crypto';
import { checkOptions, invalidOption } from '../core/errors.js';
import { InvalidCursorError } from './errors.js';

/**
 * A timestamp with more precision than a JS `Date` holds (PostgreSQL's
 * `timestamptz` has microseconds): the text is carried as given, so the
 * application passes the database's own text form and gets it back unchanged.
 */
export interface CursorTimestamp {
  readonly $ts: string;
}

/**
 * One key value a cursor can carry. Every kind comes back as the same kind
 * with the same value: a `bigint` beyond 2^53 stays a `bigint`, a `Date` a
 * `Date` (to the millisecond), `-0`, `NaN` and the infinities stay what they
 * were (PostgreSQL's float columns hold and sort them), a
 * {@link CursorTimestamp} its exact text, and a string every UTF-16 code unit,
 * lone surrogates included (they are written as JSON `\u` escapes).
 */
export type CursorValue = string | number | boolean | null | bigint | Date | CursorTimestamp;

/** What a cursor carries: the key values of the row it points after. */
export type CursorPayload = readonly CursorValue[];

/** A secret: a string (at least 32 bytes in UTF-8) or at least 32 bytes. */
export type CursorSecret = string | Uint8Array;

/** Options of {@link createCursorCodec}. */
export interface CursorCodecOptions {
  /**
   * The keys cursors are sealed or signed with: one, or several for rotation.
   * The first makes every new cursor; every one of them opens cursors, so a
   * new secret is put first and the old one removed once the cursors it made
   * no longer matter (after `maxAgeMs`). Each must be at least 32 bytes, from
   * a random source. Required.
   */
  secrets: CursorSecret | readonly CursorSecret[];
  /**
   * How long a cursor is accepted after it was made, in milliseconds: at
   * least this long, and less than 1/24 longer (at most one hour longer).
   * A cursor's date is rounded up to that step, so that every cursor made
   * for one position within a step is the same string, and a list page's
   * body (and its ETag) stays the same for as long. Whatever it says, a
   * cursor dated more than 60 seconds (plus the step) ahead of `now` is
   * refused as `expired`. Without it cursors carry no date at all; adding it
   * later expires the cursors made before.
   * @default undefined (no limit)
   */
  maxAgeMs?: number;
  /**
   * Sign only, leaving the payload readable by whoever holds the cursor
   * (base64url of JSON). Cursors are then tamper-proof but not secret; use it
   * only when the key values are public anyway and short cursors matter.
   * Cursors of either kind are decoded whatever this option says, so it can be
   * switched without breaking cursors already handed out.
   * @default false (the payload is encrypted)
   */
  reveal?: boolean;
  /**
   * The clock, in milliseconds since the epoch, for `iat` and `maxAgeMs`.
   * @default Date.now
   */
  now?: () => number;
}

/** Encodes and decodes the cursors of one kind of list. */
export interface CursorCodec {
  /**
   * Makes a cursor carrying `payload`, bound to `binding`: any JSON value
   * (objects, arrays, strings, numbers, booleans, null, and bigints) that
   * describes the query it belongs to, typically the sort, the filters and
   * the page size. Object member order does not matter.
   *
   * Throws `TypeError` for a value that is not a {@link CursorValue} (a plain
   * object, `undefined`) or a binding that is not JSON-like (a function, a
   * symbol, more than 64 levels deep), and `RangeError` when the cursor would
   * be longer than 4096 characters (the most `decode` accepts).
   */
  encode(payload: CursorPayload, binding: unknown): string;
  /**
   * Returns the payload of a cursor made by `encode` with an equal `binding`,
   * or throws {@link InvalidCursorError} (400) for anything else: never
   * another error, whatever the string. (The binding is the application's, so
   * a binding `encode` would refuse throws its `TypeError` here too.)
   */
  decode(cursor: string, binding: unknown): CursorValue[];
}

/** The longest cursor `decode` reads, checked before any decoding. */
const MAX_CURSOR_LENGTH = 4096;
/** How far in the future a cursor may be dated: clocks of servers differ. */
const MAX_CLOCK_SKEW_MS = 60_000;
const MIN_SECRET_BYTES = 32;
const VERSION = 1;
const MODE_SEALED = 0;
const MODE_REVEALED = 1;
const BINDING_TAG_BYTES = 16;
const HEADER_BYTES = 1 + 1 + 6 + BINDING_TAG_BYTES;
const NONCE_BYTES = 16;
const GCM_TAG_BYTES = 16;
const HMAC_BYTES = 32;
/** GCM's IV: each key seals one cursor only (see `sealKey`), so it can be constant. */
const ZERO_IV = Buffer.alloc(12);
const MAX_BINDING_DEPTH = 64;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Keys {
  readonly encryption: Buffer;
  readonly mac: Buffer;
  readonly binding: Buffer;
}

/** Independent keys for each use, from one secret (HKDF, RFC 5869). */
function deriveKeys(secret: Uint8Array): Keys {
  const derive = (info: string) =>
    Buffer.from(hkdfSync('sha256', secret, 'restwell/pagination cursor', info, 32));
  return {
    encryption: derive('v1 encryption'),
    mac: derive('v1 mac'),
    binding: derive('v1 binding'),
  };
}

/**
 * The nonce of a sealed cursor, synthetic (as in SIV, RFC 5297): the first 128
 * bits of an HMAC of the header and payload. The same payload, binding and
 * date give the same cursor, so a page's body is stable (ETags, 304s, a
 * compressed copy equal to the identity one); distinct plaintexts get
 * distinct nonces as random ones would. All it shows is that two cursors are
 * equal, which their holder can see anyway.
 */
function syntheticNonce(keys: Keys, header: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', keys.mac)
    .update('nonce')
    .update(header)
    .update(body)
    .digest()
    .subarray(0, NONCE_BYTES);
}

/**
 * The key that seals one cursor: HMAC-SHA256 of a 128-bit nonce under
 * the encryption key. GCM with random 96-bit IVs under one key is limited to
 * 2^32 messages (NIST SP 800-38D §8.3), which a busy API issuing cursors could
 * reach within weeks; a fresh key per cursor moves the collision bound to the
 * nonce's 128 bits. The GCM tag then authenticates the header (as additional
 * data) and the ciphertext, so no second MAC is needed.
 */
function sealKey(keys: Keys, nonce: Uint8Array): Buffer {
  return createHmac('sha256', keys.encryption).update(nonce).digest();
}

function toSecretBytes(secret: unknown, index: number, many: boolean): Uint8Array {
  const name = many ? `secrets[${index}]` : 'secrets';
  const expected = `a string of at least ${MIN_SECRET_BYTES} bytes or a Uint8Array of at least ${MIN_SECRET_BYTES} bytes`;
  // The message never shows a secret, not even truncated: only its kind and length.
  if (typeof secret === 'string') {
    const bytes = Buffer.from(secret, 'utf8');
    if (bytes.length >= MIN_SECRET_BYTES) return bytes;
    throw new TypeError(
      `restwell/pagination: option "${name}" must be ${expected}, got a string of ${bytes.length} bytes.`,
    );
  }
  if (secret instanceof Uint8Array) {
    if (secret.length >= MIN_SECRET_BYTES) return Uint8Array.from(secret);
    throw new TypeError(
      `restwell/pagination: option "${name}" must be ${expected}, got ${secret.length} bytes.`,
    );
  }
  const kind = secret === null ? 'null' : Array.isArray(secret) ? 'an array' : typeof secret;
  throw new TypeError(`restwell/pagination: option "${name}" must be ${expected}, got ${kind}.`);
}

/** Canonical text of a binding: members sorted, bigints tagged, depth bounded. */
function canonical(value: unknown, depth: number): string {
  if (depth > MAX_BINDING_DEPTH) {
    throw new TypeError(
      `restwell/pagination: a cursor binding must be at most ${MAX_BINDING_DEPTH} levels deep.`,
    );
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify({ $f: String(value) });
    case 'bigint':
      return JSON.stringify({ $n: value.toString() });
    case 'undefined':
      return 'null';
    case 'object': {
      if (value === null) return 'null';
      if (value instanceof Date) return JSON.stringify({ $d: value.toISOString() });
      if (Array.isArray(value)) return `[${value.map((v) => canonical(v, depth + 1)).join(',')}]`;
      const record = value as Record<string, unknown>;
      const parts: string[] = [];
      const names = Object.keys(record).sort();
      for (const key of names) {
        if (record[key] === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${canonical(record[key], depth + 1)}`);
      }
      const text = `{${parts.join(',')}}`;
      // An object with a `$` member is wrapped, so that it never has the text
      // of a tagged bigint, Date or float: `{ id: { $n: '5' } }` (a client's
      // JSON filter) and `{ id: 5n }` are different queries. Objects without
      // one keep their text, so the tags of cursors already issued hold.
      return names.some((key) => key.startsWith('$')) ? `{"$o":${text}}` : text;
    }
    default:
      throw new TypeError(`restwell/pagination: a cursor binding cannot hold a ${typeof value}.`);
  }
}

function bindingTag(keys: Keys, binding: unknown): Buffer {
  return createHmac('sha256', keys.binding)
    .update(canonical(binding, 0))
    .digest()
    .subarray(0, BINDING_TAG_BYTES);
}

/** The tagged JSON form of one value. */
function tagValue(value: CursorValue, index: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Object.is(value, -0)) return { $f: '-0' }; // String(-0) is "0"
      return Number.isFinite(value) ? value : { $f: String(value) };
    case 'bigint':
      return { $n: value.toString() };
    case 'object': {
      if (value === null) return null;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) break;
        return { $d: value.toISOString() };
      }
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === '$ts' && typeof value.$ts === 'string') {
        return { $ts: value.$ts };
      }
      break;
    }
  }
  throw new TypeError(
    `restwell/pagination: cursor value ${index} must be a string, number, boolean, null, bigint, valid Date or { $ts: string }.`,
  );
}

const FLOATS: Readonly<Record<string, number>> = {
  '-0': -0,
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** The value of one tagged JSON item, or undefined when it is not one. */
function untagValue(item: unknown): CursorValue | undefined {
  if (item === null || typeof item === 'string' || typeof item === 'boolean') return item;
  if (typeof item === 'number') return item;
  if (typeof item !== 'object' || Array.isArray(item)) return undefined;
  const keys = Object.keys(item);
  if (keys.length !== 1) return undefined;
  const text = (item as Record<string, unknown>)[keys[0]!];
  if (typeof text !== 'string') return undefined;
  switch (keys[0]) {
    case '$n':
      return /^-?\d{1,1000}$/.test(text) ? BigInt(text) : undefined;
    case '$d': {
      const date = new Date(text);
      return Number.isNaN(date.getTime()) ? undefined : date;
    }
    case '$f':
      return Object.hasOwn(FLOATS, text) ? FLOATS[text] : undefined;
    case '$ts':
      return { $ts: text };
  }
  return undefined;
}

/**
 * Creates the codec of one kind of list's cursors. The codec is stateless
 * apart from its keys: any server holding the same secrets reads the cursors
 * of any other.
 *
 * @example
 * ```ts
 * import { createCursorCodec } from 'restwell/pagination';
 *
 * const cursors = createCursorCodec({
 *   secrets: [process.env.CURSOR_SECRET!, process.env.CURSOR_SECRET_OLD!],
 *   maxAgeMs: 24 * 60 * 60 * 1000,
 * });
 * const binding = { sort: ['-createdAt', 'id'], filter: { status: 'active' }, limit: 50 };
 * const next = cursors.encode([last.createdAt, BigInt(last.id)], binding);
 * // …later, on the request that carries ?cursor=next:
 * const [createdAt, id] = cursors.decode(next, binding); // or InvalidCursorError (400)
 * ```
 */
export function createCursorCodec(options: CursorCodecOptions): CursorCodec {
  checkOptions('pagination', options, ['secrets', 'maxAgeMs', 'reveal', 'now']);
  if (options === undefined) {
    throw new TypeError('restwell/pagination: option "secrets" is required.');
  }
  const raw: unknown = options.secrets;
  if (raw === undefined) throw new TypeError('restwell/pagination: option "secrets" is required.');
  const many = Array.isArray(raw);
  const list: readonly unknown[] = many ? raw : [raw];
  if (list.length === 0) {
    throw new TypeError('restwell/pagination: option "secrets" must hold at least one secret.');
  }
  const keyring = list.map((secret, i) => deriveKeys(toSecretBytes(secret, i, many)));
  const signing = keyring[0]!;

  const { maxAgeMs } = options;
  if (
    maxAgeMs !== undefined &&
    (typeof maxAgeMs !== 'number' || !Number.isSafeInteger(maxAgeMs) || maxAgeMs <= 0)
  ) {
    invalidOption('pagination', 'maxAgeMs', 'a positive integer of milliseconds', maxAgeMs);
  }
  const reveal = options.reveal ?? false;
  if (typeof reveal !== 'boolean') invalidOption('pagination', 'reveal', 'a boolean', reveal);
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') invalidOption('pagination', 'now', 'a function', now);

  // Cursors made within one step share their date (see maxAgeMs).
  const step =
    maxAgeMs === undefined ? 0 : Math.min(3_600_000, Math.max(1, Math.floor(maxAgeMs / 24)));

  function clock(): number {
    const t = now();
    if (!Number.isSafeInteger(t) || t < 0 || t >= 2 ** 48) {
      throw new TypeError('restwell/pagination: "now" must return a non-negative integer of ms.');
    }
    return t;
  }

  function encode(payload: CursorPayload, binding: unknown): string {
    if (!Array.isArray(payload)) {
      throw new TypeError('restwell/pagination: a cursor payload must be an array of values.');
    }
    // Array.from visits holes (map skips them, and JSON writes them as null),
    // so a sparse payload is refused like one holding undefined.
    const body = Buffer.from(JSON.stringify(Array.from(payload, tagValue)), 'utf8');
    const header = Buffer.alloc(HEADER_BYTES);
    header[0] = VERSION;
    header[1] = reveal ? MODE_REVEALED : MODE_SEALED;
    header.writeUIntBE(step === 0 ? 0 : Math.ceil(clock() / step) * step, 2, 6);
    bindingTag(signing, binding).copy(header, 8);
    let bytes: Buffer;
    if (reveal) {
      const mac = createHmac('sha256', signing.mac).update(header).update(body).digest();
      bytes = Buffer.concat([header, body, mac]);
    } else {
      const nonce = syntheticNonce(signing, header, body);
      const cipher = createCipheriv('aes-256-gcm', sealKey(signing, nonce), ZERO_IV, {
        authTagLength: GCM_TAG_BYTES,
      });
      cipher.setAAD(header);
      const sealed = Buffer.concat([cipher.update(body), cipher.final()]);
      bytes = Buffer.concat([header, nonce, sealed, cipher.getAuthTag()]);
    }
    const cursor = bytes.toString('base64url');
    if (cursor.length > MAX_CURSOR_LENGTH) {
      throw new RangeError(
        `restwell/pagination: the cursor would be ${cursor.length} characters, more than the ${MAX_CURSOR_LENGTH} decode accepts; carry fewer or shorter values.`,
      );
    }
    return cursor;
  }

  /** The payload bytes and the keys that authenticated them, or undefined. */
  function open(bytes: Buffer): { body: Buffer; keys: Keys } | undefined {
    const header = bytes.subarray(0, HEADER_BYTES);
    const rest = bytes.subarray(HEADER_BYTES);
    for (const keys of keyring) {
      if (header[1] === MODE_REVEALED) {
        const body = rest.subarray(0, rest.length - HMAC_BYTES);
        const tag = rest.subarray(rest.length - HMAC_BYTES);
        const mac = createHmac('sha256', keys.mac).update(header).update(body).digest();
        if (timingSafeEqual(mac, tag)) return { body, keys };
        continue;
      }
      const nonce = rest.subarray(0, NONCE_BYTES);
      const sealed = rest.subarray(NONCE_BYTES, rest.length - GCM_TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', sealKey(keys, nonce), ZERO_IV, {
        authTagLength: GCM_TAG_BYTES,
      });
      decipher.setAAD(header);
      decipher.setAuthTag(rest.subarray(rest.length - GCM_TAG_BYTES));
      try {
        const body = Buffer.concat([decipher.update(sealed), decipher.final()]);
        return { body, keys };
      } catch {
        // the tag does not verify under this secret: try the next one
      }
    }
    return undefined;
  }

  function decode(cursor: string, binding: unknown): CursorValue[] {
    // Length and alphabet first, so no work is spent on a hostile string.
    if (
      typeof cursor !== 'string' ||
      cursor.length === 0 ||
      cursor.length > MAX_CURSOR_LENGTH ||
      !BASE64URL.test(cursor)
    ) {
      throw new InvalidCursorError('malformed');
    }
    const bytes = Buffer.from(cursor, 'base64url');
    // Only the canonical spelling: otherwise the unused low bits of the last
    // character would give one cursor several spellings (RFC 4648 §3.5).
    if (bytes.toString('base64url') !== cursor) throw new InvalidCursorError('malformed');
    if (bytes.length < 2) throw new InvalidCursorError('malformed');
    if (bytes[0] !== VERSION) throw new InvalidCursorError('version');
    const mode = bytes[1];
    const minimum =
      mode === MODE_SEALED
        ? HEADER_BYTES + NONCE_BYTES + GCM_TAG_BYTES
        : mode === MODE_REVEALED
          ? HEADER_BYTES + HMAC_BYTES
          : Number.POSITIVE_INFINITY;
    if (bytes.length < minimum) throw new InvalidCursorError('malformed');

    const opened = open(bytes);
    if (opened === undefined) throw new InvalidCursorError('signature');

    const iat = bytes.readUIntBE(2, 6);
    const t = clock();
    if (iat > t + MAX_CLOCK_SKEW_MS + step) throw new InvalidCursorError('expired');
    if (maxAgeMs !== undefined && t - iat > maxAgeMs) throw new InvalidCursorError('expired');

    const expected = bindingTag(opened.keys, binding);
    if (!timingSafeEqual(expected, bytes.subarray(8, HEADER_BYTES))) {
      throw new InvalidCursorError('mismatch');
    }

    // Authentic from here on: only a codec holding the secret wrote this text,
    // but it is still checked, as a cursor of a newer writer would be.
    let items: unknown;
    try {
      items = JSON.parse(utf8.decode(opened.body));
    } catch (cause) {
      throw new InvalidCursorError('malformed', { cause });
    }
    if (!Array.isArray(items)) throw new InvalidCursorError('malformed');
    const values: CursorValue[] = [];
    for (const item of items) {
      const value = untagValue(item);
      if (value === undefined) throw new InvalidCursorError('malformed');
      values.push(value);
    }
    return values;
  }

  return { encode, decode };
}
