/**
 * Trace ids: the trace-id of a valid W3C `traceparent` header (Trace Context,
 * §3.2), otherwise a freshly generated one in the same format, so that a
 * client-supplied id and a generated one look alike in logs.
 */
import { randomFillSync } from 'node:crypto';

// version "-" trace-id "-" parent-id "-" trace-flags (Trace Context §3.2.2).
// Future versions may append fields after another "-" (§3.2.4), so only the
// first 55 characters are matched for versions other than 00.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO_TRACE = '00000000000000000000000000000000';
const ALL_ZERO_PARENT = '0000000000000000';

/**
 * The trace-id of a `traceparent` header value, or `undefined` when the value is
 * invalid: version `ff`, an all-zero trace-id or parent-id, upper-case hex, or
 * extra fields on version 00 are all rejected as the specification requires.
 */
export function parseTraceparent(value: string | undefined): string | undefined {
  if (value === undefined || value.length < 55 || value.length > 512) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (m === null) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (traceId === ALL_ZERO_TRACE || parentId === ALL_ZERO_PARENT) return undefined;
  return traceId;
}

// Random bytes are drawn 4 KiB at a time (256 ids), the batching
// crypto.randomUUID also uses, so that the per-request cost is a hex encoding
// of 16 bytes rather than a call into the system's random source.
const POOL = Buffer.alloc(4096);
let offset = POOL.length;

/** A new random trace id: 32 lower-case hex digits (128 bits). */
export function generateTraceId(): string {
  if (offset === POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.toString('hex', offset, offset + 16);
  offset += 16;
  return id;
}
