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
  /** Records read of the log checked (the `log` option's, else the first record's). */
  records: number;
  /** Sequence numbers of its first and last records read. */
  first?: number;
  last?: number;
  /** The newest valid checkpoint it was checked against. */
  checkpoint?: { seq: number; time: string };
  /** The first defect found, and the log it is in. */
  defect?: { kind: AuditDefect; seq?: number; log?: string; detail: string };
}

/** Options of {@link verifyAuditLog}. */
export interface VerifyAuditOptions {
  /** The chain key the records were hashed with. */
  key: string | Uint8Array;
  /**
   * The log to check: records and checkpoints of other logs are passed over
   * (a file several logs write to). Without it, every log in the input is
   * checked, each as its own chain, and every checkpoint against its log: a
   * record of another log in front of the log's own is no way to have them
   * passed over. @default undefined
   */
  log?: string;
  /** Signed checkpoints; with them, a truncated tail is caught. */
  checkpoints?: readonly AuditCheckpoint[];
  /** The ed25519 public key checkpoints are signed with. Required with `checkpoints`. */
  publicKey?: KeyObject;
  /**
   * Whether a log may start after record 1 (retention removed the oldest):
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
    r.seq >= 1 &&
    typeof r.prev === 'string' &&
    typeof r.hash === 'string'
  );
}

function isCheckpoint(value: unknown): value is AuditCheckpoint {
  const c = value as AuditCheckpoint;
  return (
    c !== null &&
    typeof c === 'object' &&
    typeof c.log === 'string' &&
    Number.isSafeInteger(c.seq) &&
    c.seq >= 1 &&
    typeof c.head === 'string' &&
    typeof c.time === 'string' &&
    typeof c.signature === 'string'
  );
}

/**
 * Whether a JSON text (already known to parse) has an object with one member
 * name twice. RFC 8259 §4 leaves the meaning of such an object open (I-JSON,
 * RFC 7493 §2.3, forbids it): `JSON.parse` keeps the last value, other readers
 * the first, so a line holding both could show a reader one record and verify
 * as another. A scan with an explicit stack: depth costs heap, not call stack.
 */
function hasRepeatedName(text: string): boolean {
  // One entry per open container: the names seen in an object, null for an array.
  const open: Array<Set<string> | null> = [];
  let atName = false;
  // The regular expressions jump over whitespace and the insides of strings.
  const structural = /["{}[\],]/g;
  const stringEnd = /\\.|"/g;
  for (let m = structural.exec(text); m !== null; m = structural.exec(text)) {
    const c = m[0];
    if (c === '"') {
      const start = m.index;
      let escaped = false;
      stringEnd.lastIndex = start + 1;
      let end = stringEnd.exec(text);
      while (end !== null && end[0] !== '"') {
        escaped = true;
        end = stringEnd.exec(text);
      }
      const close = end === null ? text.length : end.index;
      structural.lastIndex = close + 1;
      const names = open[open.length - 1];
      if (atName && names) {
        const name = escaped
          ? (JSON.parse(text.slice(start, close + 1)) as string)
          : text.slice(start + 1, close);
        if (names.has(name)) return true;
        names.add(name);
        atName = false;
      }
    } else if (c === '{') {
      open.push(new Set());
      atName = true;
    } else if (c === '[') {
      open.push(null);
      atName = false;
    } else if (c === '}' || c === ']') {
      open.pop();
      atName = false;
    } else {
      // A comma: in an object, a name comes next.
      atName = open.length > 0 && open[open.length - 1] !== null;
    }
  }
  return false;
}

/** What is known of one log while its records are read. */
interface LogState {
  previous: ChainedRecord | undefined;
  records: number;
  first?: number;
  last?: number;
}

/** The valid checkpoints of one log. */
interface LogCheckpoints {
  newest: AuditCheckpoint;
  bySeq: Map<number, AuditCheckpoint>;
}

/**
 * Checks records one at a time, so that a log of any length is checked in
 * constant memory: of the records it keeps the previous one per log, and of
 * the checkpoints all that verify.
 */
class AuditVerifier {
  private readonly key: Uint8Array;
  private readonly logs = new Map<string, LogState>();
  private readonly checkpoints = new Map<string, LogCheckpoints>();
  /** The first checkpoint that is not one or does not verify: reported after the records' own defects. */
  private readonly forged: { detail: string; log?: string } | undefined;
  /** The log the result describes. */
  private main: string | undefined;
  /** Position in the input, 1-based, blank lines included. */
  private position = 0;

  constructor(private readonly options: VerifyAuditOptions) {
    this.key = typeof options.key === 'string' ? Buffer.from(options.key) : options.key;
    this.main = options.log;
    const checkpoints = options.checkpoints ?? [];
    if (checkpoints.length === 0) return;
    const { publicKey } = options;
    if (publicKey === undefined) {
      throw new TypeError(
        'restwell/audit: verifying checkpoints needs the publicKey they are signed with.',
      );
    }
    // Another kind of key verifies nothing: every checkpoint would look forged.
    if (publicKey.asymmetricKeyType !== 'ed25519') {
      throw new TypeError(
        `restwell/audit: option "publicKey" must be an ed25519 key (got ${publicKey.asymmetricKeyType ?? 'a secret key'}).`,
      );
    }
    for (const [i, cp] of checkpoints.entries()) {
      if (!isCheckpoint(cp)) {
        this.forged ??= { detail: `Checkpoint ${i + 1} is not a checkpoint.` };
        continue;
      }
      if (options.log !== undefined && cp.log !== options.log) continue;
      if (!verifyCheckpoint(publicKey, cp)) {
        this.forged ??= {
          detail: `The checkpoint of record ${cp.seq} at ${cp.time} is not signed by this key.`,
          log: cp.log,
        };
        continue;
      }
      const known = this.checkpoints.get(cp.log);
      if (known === undefined) this.checkpoints.set(cp.log, { newest: cp, bySeq: new Map() });
      else if (cp.seq > known.newest.seq) known.newest = cp;
      this.checkpoints.get(cp.log)?.bySeq.set(cp.seq, cp);
    }
  }

  private result(): AuditVerification {
    const state = this.main === undefined ? undefined : this.logs.get(this.main);
    const result: AuditVerification = { ok: true, records: state?.records ?? 0 };
    if (state?.first !== undefined) result.first = state.first;
    if (state?.last !== undefined) result.last = state.last;
    return result;
  }

  private fail(kind: AuditDefect, detail: string, seq?: number, log?: string): AuditVerification {
    const inOther = log !== undefined && log !== this.main;
    return {
      ...this.result(),
      ok: false,
      defect: {
        kind,
        detail: inOther ? `Log ${JSON.stringify(log)}: ${detail}` : detail,
        ...(seq === undefined ? {} : { seq }),
        ...(log === undefined ? {} : { log }),
      },
    };
  }

  /** Checks one more entry; a result when it is a defect, else `undefined`. */
  add(item: ChainedRecord | string): AuditVerification | undefined {
    this.position++;
    let record: unknown = item;
    const what = typeof item === 'string' ? 'Line' : 'Entry';
    if (typeof item === 'string') {
      if (item.trim() === '') return undefined;
      try {
        const parsed = JSON.parse(item) as { audit?: unknown };
        record =
          parsed !== null && typeof parsed === 'object' && 'audit' in parsed
            ? parsed.audit
            : parsed;
      } catch {
        return this.fail('malformed', `Line ${this.position} is not JSON.`);
      }
      if (hasRepeatedName(item)) {
        return this.fail('malformed', `Line ${this.position} has a member name twice.`);
      }
    }
    if (!isRecord(record)) {
      return this.fail('malformed', `${what} ${this.position} is not an audit record.`);
    }
    const { log } = record;
    if (this.options.log !== undefined && log !== this.options.log) return undefined;
    this.main ??= log;
    let state = this.logs.get(log);
    if (state === undefined) {
      state = { previous: undefined, records: 0 };
      this.logs.set(log, state);
    }
    const previous = state.previous;
    if (recordHash(this.key, record) !== record.hash) {
      return this.fail(
        'edited',
        `Record ${record.seq}'s hash does not match its content.`,
        record.seq,
        log,
      );
    }
    if (previous === undefined) {
      if (record.seq !== 1 && !this.options.allowTrimmedStart) {
        return this.fail(
          'missing',
          `The log starts at record ${record.seq}, not 1.`,
          record.seq,
          log,
        );
      }
      if (record.seq === 1 && record.prev !== '') {
        return this.fail('broken', 'Record 1 chains to a record before it.', 1, log);
      }
      state.first = record.seq;
    } else {
      if (record.seq === previous.seq) {
        return this.fail('inserted', `Record ${record.seq} appears twice.`, record.seq, log);
      }
      if (record.seq < previous.seq) {
        return this.fail(
          'reordered',
          `Record ${record.seq} comes after record ${previous.seq}.`,
          record.seq,
          log,
        );
      }
      if (record.seq !== previous.seq + 1) {
        return this.fail(
          'missing',
          `Records ${previous.seq + 1} to ${record.seq - 1} are missing.`,
          previous.seq + 1,
          log,
        );
      }
      if (record.prev !== previous.hash) {
        return this.fail(
          'broken',
          `Record ${record.seq} does not chain to record ${previous.seq}.`,
          record.seq,
          log,
        );
      }
    }
    const cp = this.checkpoints.get(log)?.bySeq.get(record.seq);
    if (cp !== undefined && cp.head !== record.hash) {
      return this.fail(
        'rewritten',
        `Record ${cp.seq} is not the one checkpointed at ${cp.time}.`,
        cp.seq,
        log,
      );
    }
    state.previous = record;
    state.records++;
    state.last = record.seq;
    return undefined;
  }

  /** The result once every entry is read: a forged checkpoint, or a log that ends too early. */
  finish(): AuditVerification {
    if (this.forged !== undefined) {
      return this.fail('checkpoint', this.forged.detail, undefined, this.forged.log);
    }
    this.main ??= this.checkpoints.keys().next().value;
    const mainCheckpoint =
      this.main === undefined ? undefined : this.checkpoints.get(this.main)?.newest;
    const logs = [...this.checkpoints.keys()].sort((a, b) =>
      a === this.main ? -1 : b === this.main ? 1 : 0,
    );
    for (const log of logs) {
      const { newest } = this.checkpoints.get(log) as LogCheckpoints;
      const last = this.logs.get(log)?.last ?? 0;
      if (last < newest.seq) {
        const failed = this.fail(
          'truncated',
          `The log ends at record ${last}; a checkpoint at ${newest.time} says it had ${newest.seq}.`,
          last + 1,
          log,
        );
        if (mainCheckpoint !== undefined) {
          failed.checkpoint = { seq: mainCheckpoint.seq, time: mainCheckpoint.time };
        }
        return failed;
      }
    }
    const result = this.result();
    if (mainCheckpoint !== undefined) {
      result.checkpoint = { seq: mainCheckpoint.seq, time: mainCheckpoint.time };
    }
    return result;
  }
}

/**
 * Checks the records of a log, in the order given (oldest first), and the
 * checkpoints made of it. Records are objects, or JSON lines as the stream
 * sink writes them (pino-shaped or bare). Without the `log` option every log
 * in the input is checked; the result counts the first one's records.
 */
export function verifyAuditLog(
  input: Iterable<ChainedRecord | string>,
  options: VerifyAuditOptions,
): AuditVerification {
  const verifier = new AuditVerifier(options);
  for (const item of input) {
    const defect = verifier.add(item);
    if (defect !== undefined) return defect;
  }
  return verifier.finish();
}

/**
 * {@link verifyAuditLog} over records that arrive one at a time (a file read
 * line by line, a stream or table read a page at a time), in constant memory
 * however long the log: `streamRedisLog()` and `streamPostgresLog()` give such
 * an input.
 */
export async function verifyAuditStream(
  input: AsyncIterable<ChainedRecord | string> | Iterable<ChainedRecord | string>,
  options: VerifyAuditOptions,
): Promise<AuditVerification> {
  const verifier = new AuditVerifier(options);
  for await (const item of input) {
    const defect = verifier.add(item);
    if (defect !== undefined) return defect;
  }
  return verifier.finish();
}
