import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ChainedRecord, chainRecord } from '../../src/audit/chain.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { verifyAuditLog } from '../../src/audit/verify.js';

const KEY = Buffer.from('a'.repeat(32));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

function chain(n: number, log = 'api'): ChainedRecord[] {
  const out: ChainedRecord[] = [];
  for (let i = 0; i < n; i++) {
    const head = out.at(-1);
    out.push(
      chainRecord(KEY, log, { type: 'request', time: `2026-01-01T00:00:0${i % 10}.000Z`, i }, head),
    );
  }
  return out;
}

describe('verifyAuditLog', () => {
  it('accepts an intact chain', () => {
    expect(verifyAuditLog(chain(10), { key: KEY })).toEqual({
      ok: true,
      records: 10,
      first: 1,
      last: 10,
    });
    expect(verifyAuditLog([], { key: KEY })).toEqual({ ok: true, records: 0 });
  });

  it('names an edited record', () => {
    const log = chain(10);
    (log[4] as ChainedRecord & { status?: number }).status = 200;
    expect(verifyAuditLog(log, { key: KEY }).defect).toMatchObject({ kind: 'edited', seq: 5 });
    // Recomputing the hash needs the key: one computed with another key is an edit too.
    const forged = chain(10);
    forged[4] = chainRecord(
      Buffer.from('b'.repeat(32)),
      'api',
      { type: 'request', time: 'x' },
      forged[3],
    );
    expect(verifyAuditLog(forged, { key: KEY }).defect).toMatchObject({ kind: 'edited', seq: 5 });
  });

  it('names a record removed from the middle, one moved, one repeated, and a broken link', () => {
    const removed = chain(10);
    removed.splice(3, 1);
    expect(verifyAuditLog(removed, { key: KEY }).defect).toMatchObject({ kind: 'missing', seq: 4 });

    const swapped = chain(10);
    [swapped[3], swapped[4]] = [swapped[4] as ChainedRecord, swapped[3] as ChainedRecord];
    expect(verifyAuditLog(swapped, { key: KEY }).defect).toMatchObject({ kind: 'missing', seq: 4 });

    const back = chain(10);
    back.splice(6, 0, back[2] as ChainedRecord);
    expect(verifyAuditLog(back, { key: KEY }).defect).toMatchObject({ kind: 'reordered', seq: 3 });

    const twice = chain(10);
    twice.splice(5, 0, twice[4] as ChainedRecord);
    expect(verifyAuditLog(twice, { key: KEY }).defect).toMatchObject({ kind: 'inserted', seq: 5 });

    // A valid record of another chain with the right sequence number does not link.
    const spliced = chain(10);
    spliced[6] = chainRecord(
      KEY,
      'api',
      { type: 'request', time: 'y' },
      { seq: 6, hash: 'another' },
    );
    expect(verifyAuditLog(spliced, { key: KEY }).defect).toMatchObject({ kind: 'broken', seq: 7 });
  });

  it('refuses a log that does not start at 1, unless retention trimmed it', () => {
    const log = chain(10).slice(3);
    expect(verifyAuditLog(log, { key: KEY }).defect).toMatchObject({ kind: 'missing', seq: 4 });
    expect(verifyAuditLog(log, { key: KEY, allowTrimmedStart: true })).toMatchObject({
      ok: true,
      first: 4,
      last: 10,
    });
  });

  it('catches a truncated tail only with a checkpoint', () => {
    const log = chain(10);
    const cp = signCheckpoint(privateKey, {
      log: 'api',
      seq: 8,
      head: log[7]!.hash,
      time: '2026-01-01T00:01:00.000Z',
    });
    const truncated = log.slice(0, 6);
    // Without a checkpoint, what remains is a valid chain: the reason checkpoints exist.
    expect(verifyAuditLog(truncated, { key: KEY }).ok).toBe(true);
    expect(
      verifyAuditLog(truncated, { key: KEY, checkpoints: [cp], publicKey }).defect,
    ).toMatchObject({
      kind: 'truncated',
      seq: 7,
    });
    expect(verifyAuditLog(log, { key: KEY, checkpoints: [cp], publicKey })).toMatchObject({
      ok: true,
      checkpoint: { seq: 8 },
    });
  });

  it('catches history rewritten by a key holder, and a forged checkpoint', () => {
    const log = chain(10);
    const cp = signCheckpoint(privateKey, { log: 'api', seq: 5, head: log[4]!.hash, time: 't' });
    // Whoever holds the chain key rebuilds the chain from record 3: the checkpoint still disagrees.
    const rebuilt = log.slice(0, 2);
    for (let i = 2; i < 10; i++) {
      rebuilt.push(
        chainRecord(KEY, 'api', { type: 'request', time: 'rewritten', i }, rebuilt.at(-1)),
      );
    }
    expect(verifyAuditLog(rebuilt, { key: KEY }).ok).toBe(true);
    expect(
      verifyAuditLog(rebuilt, { key: KEY, checkpoints: [cp], publicKey }).defect,
    ).toMatchObject({
      kind: 'rewritten',
      seq: 5,
    });
    const other = generateKeyPairSync('ed25519');
    const forged = signCheckpoint(other.privateKey, {
      log: 'api',
      seq: 3,
      head: log[2]!.hash,
      time: 't',
    });
    expect(
      verifyAuditLog(log, { key: KEY, checkpoints: [forged], publicKey }).defect,
    ).toMatchObject({
      kind: 'checkpoint',
    });
    expect(() => verifyAuditLog(log, { key: KEY, checkpoints: [cp] })).toThrow(/publicKey/);
  });

  it('reads JSON lines, pino-shaped or bare, and skips other logs', () => {
    const log = chain(3);
    const lines = [
      JSON.stringify({ level: 30, time: 1, msg: 'audit', audit: log[0] }),
      JSON.stringify(chain(1, 'other')[0]),
      JSON.stringify(log[1]),
      '',
      JSON.stringify({ level: 30, msg: 'audit', audit: log[2] }),
    ];
    expect(verifyAuditLog(lines, { key: KEY })).toMatchObject({ ok: true, records: 3 });
    expect(verifyAuditLog(['{not json'], { key: KEY }).defect?.kind).toBe('malformed');
    expect(verifyAuditLog(['{"a":1}'], { key: KEY }).defect?.kind).toBe('malformed');
  });
});
