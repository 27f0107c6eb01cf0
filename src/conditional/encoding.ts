/**
 * What `restwell/compression` and `restwell/conditional` tell each other about
 * a request, through the request's state. Compression runs outside
 * conditional: before calling `next()` it records which content codings name
 * their representations with an ETag suffix (`"abc-br"`), which coding it
 * negotiated for this request, and how it decides whether a response is
 * coded. Conditional uses that to compare the identity tag behind a suffixed
 * one, and to give a 304 the ETag its 200 would carry; when it turns a 200
 * into a 304 it records what the 200 would have been, so that compression
 * gives the 304 the `Vary` of that 200 (RFC 9110 §15.4.5).
 *
 * Keyed by registered symbols, so that two copies of the package (ESM and CJS)
 * still understand each other.
 */
import type { Context } from '../core/context.js';

/** What decides whether a response is content-coded: the facts of its 200. */
export interface RepresentationFacts {
  /** `Content-Type` field value. */
  readonly contentType: string | undefined;
  /** `Content-Encoding` field value (a body coded already is left alone). */
  readonly contentEncoding: string | undefined;
  /** `Cache-Control` field value (`no-transform` forbids coding). */
  readonly cacheControl: string | undefined;
  /**
   * Whether the response carries a digest of its bytes (`Content-Digest`,
   * `Repr-Digest`, `Digest`, `Content-MD5`): computed over the content as
   * coded (RFC 9530 §2, §3), so coding it would make the digest a lie.
   */
  readonly digested: boolean;
  /** Length of the identity body in bytes; `undefined` for a stream. */
  readonly size: number | undefined;
}

/** How compression would send a 200 with given facts. */
export interface EncodingPlan {
  /** Whether the answer depends on `Accept-Encoding` (so carries `Vary: Accept-Encoding`). */
  readonly varies: boolean;
  /** The coding applied for this request; `undefined` for identity. */
  readonly coding: string | undefined;
}

/** Fields whose value is a digest of the (coded) content: a response carrying one is sent as is. */
const DIGEST_FIELDS = ['content-digest', 'repr-digest', 'digest', 'content-md5'] as const;

/** Whether `headers` carry a digest of the response's bytes (see `RepresentationFacts.digested`). */
export function carriesDigest(headers: { has(name: string): boolean }): boolean {
  return DIGEST_FIELDS.some((name) => headers.has(name));
}

export interface EncodingNegotiation {
  /** Codings that may suffix a strong ETag, e.g. `['br', 'gzip']`. */
  readonly codings: readonly string[];
  /** The coding negotiated for this request, `undefined` for identity. */
  readonly coding: string | undefined;
  /** What compression does with a 200 of these facts for this request. */
  plan(facts: RepresentationFacts): EncodingPlan;
}

const NEGOTIATION = Symbol.for('restwell.compression.negotiation');
const REPLACED = Symbol.for('restwell.conditional.replaced');
const UTF8 = Symbol.for('restwell.body.utf8');
type Keyed = Record<symbol, unknown>;

/** Records the negotiation for the inner middlewares. */
export function setEncodingNegotiation(ctx: Context, value: EncodingNegotiation): void {
  (ctx.state as Keyed)[NEGOTIATION] = value;
}

/** The negotiation recorded by an outer `compression()`, if one is mounted. */
export function getEncodingNegotiation(ctx: Context): EncodingNegotiation | undefined {
  return (ctx.state as Keyed)[NEGOTIATION] as EncodingNegotiation | undefined;
}

/** Records what the 200 a 304 replaces would have been. */
export function setReplacedRepresentation(ctx: Context, facts: RepresentationFacts): void {
  (ctx.state as Keyed)[REPLACED] = facts;
}

/**
 * What the 200 a 304 replaced would have been, when the module that answered
 * 304 knew it (after the handler ran); `undefined` for a 304 decided before
 * the handler (from `load`) or by anyone else.
 */
export function getReplacedRepresentation(ctx: Context): RepresentationFacts | undefined {
  return (ctx.state as Keyed)[REPLACED] as RepresentationFacts | undefined;
}

interface Utf8Memo {
  readonly source: string;
  readonly bytes: Buffer;
}

/**
 * A complete body as bytes. A string is UTF-8 encoded once per request: the
 * ETag hash and the compressor share the result (comparing the same string
 * against itself is a pointer comparison).
 */
export function bodyBuffer(ctx: Context, body: string | Uint8Array): Buffer {
  if (typeof body !== 'string') {
    return Buffer.isBuffer(body)
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
  const state = ctx.state as Keyed;
  const memo = state[UTF8] as Utf8Memo | undefined;
  if (memo !== undefined && memo.source === body) return memo.bytes;
  const bytes = Buffer.from(body, 'utf8');
  state[UTF8] = { source: body, bytes } satisfies Utf8Memo;
  return bytes;
}
