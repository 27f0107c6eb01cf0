/**
 * `verifyAuditLog()`: checks a log's records and its checkpoints, and names
 * the first thing wrong.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import { type ChainedRecord, recordHash } from './chain.js';
import { type AuditCheckpoint, verifyCheckpoint } from './checkpoint.js';

/**
 * What is wrong, at the first record where it shows:
 * - `edited`: the record's hash is not the keyed hash of its content;
 * - `broken`: its `prev` is not the hash of the record before it;
 * - `missing`: its sequence number skips (records removed from the middle);
 * - `reordered`: its sequence number goes back;
 * - `inserted`: its sequence number repeats;
 * - `truncated`: the log ends before the newest checkpoint's record;
 * - `rewritten`: the record a checkpoint names has another hash;
 * - `malformed`: not a record at all;
 * - `checkpoint`: a checkpoint's signature does not verify.
 */
export type AuditDefect =
  | 'edited'
  | 'broken'
  | 'missing'
  | 'reordered'
  | 'inserted'
  | 'truncated'
  | 'rewritten'
  | 'malformed'
  | 'checkpoint';

/** The result of {@link verifyAuditLog}. */
export interface AuditVerification {
  ok: boolean;
  /** Records read. */
  records: number;
  /** Sequence numbers of the first and last records read. */
  first?: number;
  last?: number;
  /** The newest valid checkpoint the log was checked against. */
  checkpoint?: { seq: number; time: string };
  /** The first defect found. */
  defect?: { kind: AuditDefect; seq?: number; detail: string };
}

/** Options of {@link verifyAuditLog}. */
export interface VerifyAuditOptions {
  /** The chain key the records were hashed with. */
  key: string | Uint8Array;
  /** Checkpoints of this log (others are ignored); with them, a truncated tail is caught. */
  checkpoints?: readonly AuditCheckpoint[];
  /** The ed25519 public key checkpoints are signed with. Required with `checkpoints`. */
  publicKey?: KeyObject;
  /**
   * Whether the log may start after record 1 (retention removed the oldest):
   * then the first record's `prev` is taken on trust. @default false
   */
  allowTrimmedStart?: boolean;
}

function isRecord(value: unknown): value is ChainedRecord {
  const r = value as ChainedRecord;
  return (
    r !== null &&
    typeof r === 'object' &&
    typeof r.log === 'string' &&
    Number.isSafeInteger(r.seq) &&
    typeof r.prev === 'string' &&
    typeof r.hash === 'string'
  );
}

/**
 * Checks the records of one log, in the order given (oldest first), and the
 * checkpoints made of it. Records are objects, or JSON lines as the stream
 * sink writes them (pino-shaped or bare).
 */
export function verifyAuditLog(
  input: Iterable<ChainedRecord | string>,
  options: VerifyAuditOptions,
): AuditVerification {
  const key = typeof options.key === 'string' ? Buffer.from(options.key) : options.key;
  const result: AuditVerification = { ok: true, records: 0 };
  const fail = (kind: AuditDefect, detail: string, seq?: number): AuditVerification => ({
    ...result,
    ok: false,
    defect: { kind, detail, ...(seq === undefined ? {} : { seq }) },
  });

  let previous: ChainedRecord | undefined;
  const hashes = new Map<number, string>();
  let log: string | undefined;
  for (const item of input) {
    let record: unknown = item;
    if (typeof item === 'string') {
      if (item.trim() === '') continue;
      try {
        const parsed = JSON.parse(item) as { audit?: unknown };
        record =
          parsed !== null && typeof parsed === 'object' && 'audit' in parsed
            ? parsed.audit
            : parsed;
      } catch {
        return fail('malformed', `Line ${result.records + 1} is not JSON.`);
      }
    }
    if (!isRecord(record))
      return fail('malformed', `Entry ${result.records + 1} is not an audit record.`);
    log ??= record.log;
    if (record.log !== log) continue; // another log's record, e.g. in a shared file
    if (recordHash(key, record) !== record.hash) {
      return fail('edited', `Record ${record.seq}'s hash does not match its content.`, record.seq);
    }
    if (previous === undefined) {
      if (record.seq !== 1 && !options.allowTrimmedStart) {
        return fail('missing', `The log starts at record ${record.seq}, not 1.`, record.seq);
      }
      if (record.seq === 1 && record.prev !== '') {
        return fail('broken', 'Record 1 chains to a record before it.', 1);
      }
      result.first = record.seq;
    } else {
      if (record.seq === previous.seq) {
        return fail('inserted', `Record ${record.seq} appears twice.`, record.seq);
      }
      if (record.seq < previous.seq) {
        return fail(
          'reordered',
          `Record ${record.seq} comes after record ${previous.seq}.`,
          record.seq,
        );
      }
      if (record.seq !== previous.seq + 1) {
        return fail(
          'missing',
          `Records ${previous.seq + 1} to ${record.seq - 1} are missing.`,
          previous.seq + 1,
        );
      }
      if (record.prev !== previous.hash) {
        return fail(
          'broken',
          `Record ${record.seq} does not chain to record ${previous.seq}.`,
          record.seq,
        );
      }
    }
    hashes.set(record.seq, record.hash);
    previous = record;
    result.records++;
    result.last = record.seq;
  }

  const checkpoints = options.checkpoints ?? [];
  if (checkpoints.length > 0) {
    if (options.publicKey === undefined) {
      throw new TypeError(
        'restwell/audit: verifying checkpoints needs the publicKey they are signed with.',
      );
    }
    let newest: AuditCheckpoint | undefined;
    for (const cp of checkpoints) {
      if (log !== undefined && cp.log !== log) continue;
      if (!verifyCheckpoint(options.publicKey, cp)) {
        return fail(
          'checkpoint',
          `The checkpoint of record ${cp.seq} at ${cp.time} is not signed by this key.`,
        );
      }
      if (newest === undefined || cp.seq > newest.seq) newest = cp;
      const hash = hashes.get(cp.seq);
      if (hash !== undefined && hash !== cp.head) {
        return fail(
          'rewritten',
          `Record ${cp.seq} is not the one checkpointed at ${cp.time}.`,
          cp.seq,
        );
      }
    }
    if (newest !== undefined) {
      result.checkpoint = { seq: newest.seq, time: newest.time };
      if ((result.last ?? 0) < newest.seq) {
        return fail(
          'truncated',
          `The log ends at record ${result.last ?? 0}; a checkpoint at ${newest.time} says it had ${newest.seq}.`,
          (result.last ?? 0) + 1,
        );
      }
    }
  }
  return result;
}
