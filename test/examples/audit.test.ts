/**
 * The example's audit log as `npm start` builds it (examples/shared/audit.ts): records to one
 * stream, signed checkpoints to another, a chain per run on stdout, and the whole verified with
 * the public key, truncation included.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { randomUUID } from 'node:crypto';
import { auditDatabase, createAuditLog } from '../../examples/shared/audit.js';
import { verifyAuditLog } from '../../src/audit/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { ADMIN_KEY, asClient, EXAMPLE_CREDENTIALS } from '../helpers/example-client.js';
import { services } from '../helpers/services.js';

function lines(stream: PassThrough): string[] {
  const text = (stream.read() as Buffer | null)?.toString('utf8') ?? '';
  return text.split('\n').filter((l) => l !== '');
}

describe('the example audit log', () => {
  it('signs checkpoints apart from the records, and verify() catches a removed newest record', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const publicKey = createPublicKey(privateKey);
    const env = {
      AUDIT_KEY: 'an-audit-chain-key-of-32-bytes-or-more',
      AUDIT_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    const records = new PassThrough();
    const checkpoints = new PassThrough();
    const auditLog = createAuditLog({}, env, { records, checkpoints });
    const app = asClient(
      createExpressApp({
        counters: new MemoryStore(),
        records: new MemoryStore({ evict: false }),
        logger: silentLogger,
        credentials: EXAMPLE_CREDENTIALS,
        auditLog,
      }) as unknown as RequestListener,
      ADMIN_KEY,
    );
    await request(app).post('/v1/users').send({ email: 'a@example.com', name: 'A' }).expect(201);
    await request(app).delete('/v1/users/usr_ada').expect(204);
    await auditLog.close();

    const written = lines(records);
    const signed = lines(checkpoints).map((l) => JSON.parse(l));
    expect(written).toHaveLength(2);
    expect(signed.at(-1)).toMatchObject({ seq: 2 });
    // One run, one chain, named after its start.
    // Pino-shaped lines: the record is the line's `audit` member.
    const log = JSON.parse(written[0]!).audit.log as string;
    expect(log).toMatch(/^example-api-\d{4}-\d{2}-\d{2}T/);
    const options = { key: env.AUDIT_KEY, checkpoints: signed, publicKey };
    expect(verifyAuditLog(written, options)).toMatchObject({ ok: true });
    // Without its newest record the chain is still a chain; the checkpoint says it was longer.
    expect(verifyAuditLog(written.slice(0, 1), options)).toMatchObject({
      ok: false,
      defect: expect.objectContaining({ kind: 'truncated' }),
    });
  });
});

describe.runIf(services.postgres)('the example audit log on PostgreSQL (DATABASE_URL)', () => {
  it('appends to one chain in the audit table, verified with its checkpoints', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const env = {
      DATABASE_URL: services.databaseUrl,
      AUDIT_KEY: 'an-audit-chain-key-of-32-bytes-or-more',
      AUDIT_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      AUDIT_LOG: `example-test-${randomUUID()}`,
    };
    const pool = await auditDatabase(env);
    expect(pool).toBeDefined();
    const checkpoints = new PassThrough();
    try {
      const auditLog = createAuditLog({ pool: pool! }, env, {
        records: new PassThrough(),
        checkpoints,
      });
      const app = asClient(
        createExpressApp({
          counters: new MemoryStore(),
          records: new MemoryStore({ evict: false }),
          logger: silentLogger,
          credentials: EXAMPLE_CREDENTIALS,
          auditLog,
        }) as unknown as RequestListener,
        ADMIN_KEY,
      );
      await request(app).post('/v1/users').send({ email: 'p@example.com', name: 'P' }).expect(201);
      await request(app).delete('/v1/users/usr_alan').expect(204);
      await auditLog.close();
      const { rows } = await pool!.query<{ record: string }>(
        'SELECT record FROM restwell_audit WHERE log = $1 ORDER BY seq',
        [env.AUDIT_LOG],
      );
      expect(rows.map((r) => JSON.parse(r.record).method)).toEqual(['POST', 'DELETE']);
      const signed = lines(checkpoints).map((l) => JSON.parse(l));
      expect(
        verifyAuditLog(
          rows.map((r) => r.record),
          {
            key: env.AUDIT_KEY,
            checkpoints: signed,
            publicKey: createPublicKey(privateKey),
          },
        ),
      ).toMatchObject({ ok: true });
    } finally {
      await pool!.query('DELETE FROM restwell_audit WHERE log = $1', [env.AUDIT_LOG]);
      await pool!.end();
    }
  });
});
