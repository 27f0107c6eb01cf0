/**
 * verifyAuditLog and the CLI under attack: what someone who can write the log
 * (but holds neither the chain key nor the signing key) can do to it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ChainedRecord, chainRecord, recordText } from '../../src/audit/chain.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { runAuditCli } from '../../src/audit/cli.js';
import { verifyAuditLog } from '../../src/audit/verify.js';

const KEY = Buffer.from('r'.repeat(32));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

function chain(n: number, log = 'api'): ChainedRecord[] {
  const out: ChainedRecord[] = [];
  for (let i = 0; i < n; i++) {
    out.push(chainRecord(KEY, log, { type: 'request', time: 't', status: 201, i }, out.at(-1)));
  }
  return out;
}

async function cli(argv: string[], files: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAuditCli(argv, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { AUDIT_KEY: KEY.toString() },
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('a record of another log spliced in front', () => {
  const a = chain(5, 'payments');
  const b = chain(1, 'payments-old');
  const edited = a.map((r) => ({ ...r, status: 500 }) as ChainedRecord);
  const cp = signCheckpoint(privateKey, { log: 'payments', seq: 5, head: a[4]!.hash, time: 'T' });

  it("does not have the log's own records passed over", () => {
    const lines = [recordText(b[0]!), ...edited.map(recordText)];
    expect(verifyAuditLog(lines, { key: KEY }).defect).toMatchObject({
      kind: 'edited',
      seq: 1,
      log: 'payments',
    });
  });

  it("does not have the log's checkpoints passed over", () => {
    // The whole log replaced by one valid record of another log of the same key.
    const result = verifyAuditLog([recordText(b[0]!)], {
      key: KEY,
      checkpoints: [cp],
      publicKey,
    });
    expect(result.defect).toMatchObject({ kind: 'truncated', log: 'payments' });
  });

  it('is passed over when the log to check is named, which is then checked in full', () => {
    const lines = [recordText(b[0]!), ...a.map(recordText)];
    expect(
      verifyAuditLog(lines, { key: KEY, log: 'payments', checkpoints: [cp], publicKey }),
    ).toMatchObject({ ok: true, records: 5, first: 1, last: 5, checkpoint: { seq: 5 } });
    const tampered = [recordText(b[0]!), ...edited.map(recordText)];
    expect(verifyAuditLog(tampered, { key: KEY, log: 'payments' }).defect?.kind).toBe('edited');
    // The other log's checkpoints do not apply to this one.
    const other = signCheckpoint(privateKey, {
      log: 'payments-old',
      seq: 9,
      head: 'x',
      time: 'T',
    });
    expect(
      verifyAuditLog(lines, { key: KEY, log: 'payments', checkpoints: [other], publicKey }).ok,
    ).toBe(true);
  });

  it('through the CLI, with and without --log', async () => {
    const files = {
      'audit.jsonl': [recordText(b[0]!), ...edited.map(recordText)].join('\n'),
      'cp.jsonl': JSON.stringify(cp),
      'audit.pub': PEM,
    };
    const plain = await cli(['verify', 'audit.jsonl'], files);
    expect(plain.code).toBe(1);
    expect(plain.out).toMatch(/^edited: /);
    const named = await cli(['verify', 'audit.jsonl', '--log', 'payments'], files);
    expect(named.code).toBe(1);
    expect(named.out).toMatch(/^edited: /);
  });

  it('a malformed line is a defect (exit 1) with --log too, not a read error', async () => {
    const files = { 'audit.jsonl': [recordText(a[0]!), '{not json', 'null'].join('\n') };
    const r = await cli(['verify', 'audit.jsonl', '--log', 'payments'], files);
    expect(r).toMatchObject({ code: 1 });
    expect(r.out).toMatch(/^malformed: Line 2 is not JSON/);
  });
});

describe('a line with a member name twice', () => {
  const [first, second] = chain(2);
  const text = recordText(first!);

  it('is malformed: readers disagree on which value it holds (RFC 8259 §4)', () => {
    // JSON.parse keeps the last "status" (the hashed one); a reader keeping the first sees 500.
    const doubled = text.replace('{', '{"status":500,');
    expect(verifyAuditLog([doubled, recordText(second!)], { key: KEY }).defect).toMatchObject({
      kind: 'malformed',
    });
    const escaped = text.replace('{', '{"st\\u0061tus":500,');
    expect(verifyAuditLog([escaped], { key: KEY }).defect?.kind).toBe('malformed');
    // In the pino wrapper too: a second "audit" member.
    const wrapped = `{"level":30,"audit":{"log":"api","seq":1,"prev":"","hash":"x"},"audit":${text}}`;
    expect(verifyAuditLog([wrapped], { key: KEY }).defect?.kind).toBe('malformed');
  });

  it('is told apart from the same name in two objects, and from a name-like value', () => {
    const nested = chainRecord(
      KEY,
      'api',
      { type: 'request', time: 't', a: { type: 'x', b: { type: 'y' } }, c: ['type', { type: 1 }] },
      undefined,
    );
    expect(verifyAuditLog([JSON.stringify(nested)], { key: KEY }).ok).toBe(true);
    // Values that look like members from inside a string (a hostile user agent, say).
    const hostile = chainRecord(
      KEY,
      'api',
      {
        type: 'request',
        time: 't',
        userAgent: '","type":"x\\",{"type":[\u0000\u2028',
        status: 201,
      },
      undefined,
    );
    expect(verifyAuditLog([recordText(hostile)], { key: KEY }).ok).toBe(true);
  });
});

describe('sequence numbers and checkpoints out of range', () => {
  it('refuses a record numbered below 1, even with allowTrimmedStart', () => {
    for (const seq of [0, -4]) {
      const record = chainRecord(
        KEY,
        'api',
        { type: 'request', time: 't' },
        { seq: seq - 1, hash: 'h' },
      );
      expect(verifyAuditLog([record], { key: KEY, allowTrimmedStart: true }).defect?.kind).toBe(
        'malformed',
      );
    }
    const huge = recordText(chain(1)[0]!).replace('"seq":1', '"seq":9007199254740993');
    expect(verifyAuditLog([huge], { key: KEY, allowTrimmedStart: true }).defect?.kind).toBe(
      'malformed',
    );
  });

  it('names a checkpoint that is not one, instead of throwing', () => {
    const log = chain(3);
    const signed = (seq: unknown) =>
      signCheckpoint(privateKey, { log: 'api', seq: seq as number, head: log[2]!.hash, time: 'T' });
    for (const cp of [null, 'x', {}, signed('3'), signed(2.5), signed(0)]) {
      const result = verifyAuditLog(log, {
        key: KEY,
        checkpoints: [cp as never],
        publicKey,
      });
      expect(result.defect?.kind).toBe('checkpoint');
    }
  });

  it('an old checkpoint replayed changes nothing; one beyond the log is a truncation', () => {
    const log = chain(6);
    const old = signCheckpoint(privateKey, { log: 'api', seq: 2, head: log[1]!.hash, time: 'T1' });
    const newest = signCheckpoint(privateKey, {
      log: 'api',
      seq: 6,
      head: log[5]!.hash,
      time: 'T2',
    });
    expect(
      verifyAuditLog(log.slice(0, 4), { key: KEY, checkpoints: [newest, old, old], publicKey })
        .defect,
    ).toMatchObject({ kind: 'truncated', seq: 5 });
    expect(
      verifyAuditLog(log, { key: KEY, checkpoints: [old, newest, old], publicKey }),
    ).toMatchObject({ ok: true, checkpoint: { seq: 6, time: 'T2' } });
  });
});

describe('restwell-audit verify --checkpoints', () => {
  const log = chain(2);
  const cp = signCheckpoint(privateKey, { log: 'api', seq: 2, head: log[1]!.hash, time: 'T' });
  const files = {
    'audit.jsonl': log.map(recordText).join('\n'),
    'cp.jsonl': `${JSON.stringify(cp)}\n\n{torn`,
    'good.jsonl': `\n${JSON.stringify(cp)}\n`,
    'audit.pub': PEM,
  };

  it('names the checkpoint line that is not JSON, and the missing public key', async () => {
    const torn = await cli(
      ['verify', 'audit.jsonl', '--checkpoints', 'cp.jsonl', '--public-key', 'audit.pub'],
      files,
    );
    expect(torn).toMatchObject({ code: 2, err: '--checkpoints: line 3 is not JSON.' });
    const keyless = await cli(['verify', 'audit.jsonl', '--checkpoints', 'good.jsonl'], files);
    expect(keyless.code).toBe(2);
    expect(keyless.err).toMatch(/^--checkpoints needs --public-key/);
    const ok = await cli(
      ['verify', 'audit.jsonl', '--checkpoints', 'good.jsonl', '--public-key', 'audit.pub'],
      files,
    );
    expect(ok).toMatchObject({ code: 0 });
  });
});
