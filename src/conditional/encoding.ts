/**
 * What `restwell/compression` tells `restwell/conditional` about a request, through
 * the request's state. Compression runs outside conditional: before calling
 * `next()` it records which content codings name their representations with an
 * ETag suffix (`"abc-br"`) and which coding it negotiated for this request, so
 * that conditional compares the identity tag behind a suffixed one and echoes
 * the variant the client holds on a 304.
 *
 * Keyed by a registered symbol, so that two copies of the package (ESM and CJS)
 * still understand each other.
 */
import type { Context } from '../core/context.js';

export interface EncodingNegotiation {
  /** Codings that may suffix a strong ETag, e.g. `['br', 'gzip']`. */
  readonly codings: readonly string[];
  /** The coding negotiated for this request, `undefined` for identity. */
  readonly coding: string | undefined;
}

const KEY = Symbol.for('restwell.compression.negotiation');
type Keyed = Record<symbol, EncodingNegotiation | undefined>;

/** Records the negotiation for the inner middlewares. */
export function setEncodingNegotiation(ctx: Context, value: EncodingNegotiation): void {
  (ctx.state as Keyed)[KEY] = value;
}

/** The negotiation recorded by an outer `compression()`, if one is mounted. */
export function getEncodingNegotiation(ctx: Context): EncodingNegotiation | undefined {
  return (ctx.state as Keyed)[KEY];
}
