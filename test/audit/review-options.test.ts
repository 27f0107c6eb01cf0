/** Configuration errors of the audit module: loud, at construction, naming the option. */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainRecord } from '../../src/audit/chain.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { runAuditCli } from '../../src/audit/cli.js';
import { audit } from '../../src/audit/middleware.js';
import { callbackSink } from '../../src/audit/sinks.js';
import { verifyAuditLog } from '../../src/audit/verify.js';

const KEY = 'o'.repeat(32);

describe('audit() options', () => {
  it.each([
    [{ methods: 'POST' }, /"methods".*array of method names/],
    [{ methods: ['POST', 1] }, /"methods"/],
    [{ redactFields: 'password' }, /"redactFields".*array of member names/],
    [{ logger: {} }, /"logger"/],
    [{ now: 5 }, /"now"/],
  ])('refuses %o with the option named', (patch, message) => {
    expect(() =>
      audit({ sink: callbackSink(() => {}), key: KEY, ...(patch as object) } as Parameters<
        typeof audit
      >[0]),
    ).toThrow(message);
  });
});

describe('a public key that is not ed25519', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const record = chainRecord(Buffer.from(KEY), 'api', { type: 'request', time: 't' }, undefined);
  const cp = signCheckpoint(privateKey, { log: 'api', seq: 1, head: record.hash, time: 'T' });

  it('is a usage error, not a log whose checkpoints are forged', async () => {
    expect(() =>
      verifyAuditLog([record], { key: KEY, checkpoints: [cp], publicKey: rsa.publicKey }),
    ).toThrow(/ed25519/);
    const out: string[] = [];
    const err: string[] = [];
    const files: Record<string, string> = {
      'audit.jsonl': JSON.stringify(record),
      'cp.jsonl': JSON.stringify(cp),
      'rsa.pub': rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    const code = await runAuditCli(
      ['verify', 'audit.jsonl', '--checkpoints', 'cp.jsonl', '--public-key', 'rsa.pub'],
      {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        env: { AUDIT_KEY: KEY },
        readFile: (p) => files[p] as string,
      },
    );
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/ed25519/);
    expect(out).toEqual([]);
  });
});
