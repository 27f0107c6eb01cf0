import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ChainedRecord, chainRecord } from '../../src/audit/chain.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { runAuditCli } from '../../src/audit/cli.js';

const KEY = 'c'.repeat(32);
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

function files(records: ChainedRecord[], extra: Record<string, string> = {}) {
  return {
    'audit.jsonl': records
      .map((r) => JSON.stringify({ level: 30, msg: 'audit', audit: r }))
      .join('\n'),
    'audit.pub': publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ...extra,
  } as Record<string, string>;
}

async function run(
  argv: string[],
  fs: Record<string, string>,
  env: Record<string, string> = { AUDIT_KEY: KEY },
) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAuditCli(argv, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
    readFile: (p) => {
      const text = fs[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('restwell-audit verify', () => {
  const records: ChainedRecord[] = [];
  for (let i = 0; i < 5; i++) {
    records.push(
      chainRecord(Buffer.from(KEY), 'api', { type: 'request', time: 't', i }, records.at(-1)),
    );
  }
  const cp = signCheckpoint(privateKey, { log: 'api', seq: 5, head: records[4]!.hash, time: 'T' });

  it('exits 0 on an intact log and names the checkpoint it checked', async () => {
    const r = await run(
      ['verify', 'audit.jsonl', '--checkpoints', 'cp.jsonl', '--public-key', 'audit.pub'],
      files(records, { 'cp.jsonl': JSON.stringify(cp) }),
    );
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toBe('ok: 5 records (1 to 5), checked against the checkpoint of record 5 at T');
  });

  it('exits 1 and names a truncated tail', async () => {
    const r = await run(
      ['verify', 'audit.jsonl', '--checkpoints', 'cp.jsonl', '--public-key', 'audit.pub'],
      files(records.slice(0, 3), { 'cp.jsonl': JSON.stringify(cp) }),
    );
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^truncated: The log ends at record 3/);
  });

  it('reads the key from the environment only, and exits 2 on usage errors', async () => {
    expect((await run(['verify', 'audit.jsonl'], files(records), {})).err).toMatch(/Set AUDIT_KEY/);
    expect(
      (await run(['verify', 'audit.jsonl', '--key-env', 'K'], files(records), { K: KEY })).code,
    ).toBe(0);
    expect((await run(['verify', 'audit.jsonl', '--key', KEY], files(records))).code).toBe(2);
    expect((await run(['check'], files(records))).code).toBe(2);
    expect((await run(['verify', 'missing.jsonl'], files(records))).err).toMatch(/Could not read/);
    expect((await run(['verify', '--redis', 'redis://x'], files(records))).err).toMatch(
      /--log is required/,
    );
  });
});
