/**
 * The hash chain of an audit log. Each record carries its sequence number and
 * the hash of the record before it; its own hash is a keyed hash
 * (HMAC-SHA256) of its canonical JSON. Whoever edits, inserts or removes a
 * record in the middle breaks the chain; without the key nobody can compute a
 * replacement chain. (Dropping the newest records leaves a valid chain: the
 * signed checkpoints of checkpoint.ts catch that.)
 *
 * @module
 */

import { createHmac } from 'node:crypto';
import { canonicalJson } from '../idempotency/canonical-json.js';

/** What is recorded of one write, before it is chained. */
export interface AuditEvent {
  /** `request` for a write the middleware saw; `audit.dropped` when records were lost. */
  type: string;
  /** When it happened, RFC 3339 in UTC. */
  time: string;
  [field: string]: unknown;
}

/** A record as stored: the event, its place in the chain, and its hash. */
export interface ChainedRecord extends AuditEvent {
  /** The log (chain) it belongs to. */
  log: string;
  /** 1 for the first record of a log, then consecutive. */
  seq: number;
  /** The hash of record `seq - 1`; `''` for the first. */
  prev: string;
  /** base64url HMAC-SHA256 of the canonical JSON of every other member. */
  hash: string;
}

/** The newest record of a log: what the next record chains to. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Where records are appended: the serialization point of each log. An
 * implementation calls `make(head)` with the log's current head, stores the
 * record it returns, and moves the head, as one atomic step per log (across
 * processes for a shared backend), so that two appends never chain to the
 * same head (a fork).
 */
export interface AuditSink {
  /** For diagnostics: `stream`, `callback`, `redis`, `postgres`, ... */
  readonly name: string;
  append(log: string, make: (head: ChainHead | undefined) => ChainedRecord): Promise<ChainedRecord>;
  /**
   * Appends several records as one step: `makers[0]` chains to the log's
   * head, each next one to the record before. Optional: a sink with a round
   * trip per append (PostgreSQL, Redis) implements it so that a busy log
   * pays one round trip per batch, not per record.
   */
  appendMany?(
    log: string,
    makers: ReadonlyArray<(head: ChainHead | undefined) => ChainedRecord>,
  ): Promise<ChainedRecord[]>;
  /** Releases what the sink holds (timers, not the caller's connections). */
  close?(): Promise<void>;
}

/** The keyed hash of a record: base64url HMAC-SHA256 over its canonical JSON without `hash`. */
export function recordHash(
  key: Uint8Array,
  record: Omit<ChainedRecord, 'hash'> & { hash?: string },
): string {
  const { hash: _ignored, ...rest } = record;
  const text = canonicalJson(rest);
  if (text === undefined) throw new TypeError('restwell/audit: a record must be JSON.');
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** The next record of a chain, from its head. */
export function chainRecord(
  key: Uint8Array,
  log: string,
  event: AuditEvent,
  head: ChainHead | undefined,
): ChainedRecord {
  const unsigned = { ...event, log, seq: (head?.seq ?? 0) + 1, prev: head?.hash ?? '' };
  return { ...unsigned, hash: recordHash(key, unsigned) };
}

/** Runs `makers` in order, each chained to the record the one before made. */
export function chainAll(
  head: ChainHead | undefined,
  makers: ReadonlyArray<(head: ChainHead | undefined) => ChainedRecord>,
): ChainedRecord[] {
  const out: ChainedRecord[] = [];
  let at = head;
  for (const make of makers) {
    const record = make(at);
    out.push(record);
    at = { seq: record.seq, hash: record.hash };
  }
  return out;
}

/** The canonical JSON text of a record, as sinks store it. */
export function recordText(record: ChainedRecord): string {
  return canonicalJson(record) as string;
}

/**
 * Serializes the appends of one process per log: each waits for the one
 * before, so the in-process head is never read by two appends at once.
 */
export class LogQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(log: string, task: () => Promise<T>): Promise<T> {
    const before = this.tails.get(log) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(log, tail);
    void tail.then(() => {
      if (this.tails.get(log) === tail) this.tails.delete(log);
    });
    return result;
  }
}
