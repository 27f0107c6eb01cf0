/**
 * The example's audit log: every write (POST, PUT, PATCH, DELETE) recorded
 * after its response, hash-chained, to stdout as JSON lines; to a PostgreSQL
 * table when DATABASE_URL is set; or to a Redis stream when the example runs on
 * Redis (the last two: one chain shared by every process).
 *
 * - The chain key comes from AUDIT_KEY; without it a key is drawn at start and
 *   printed, which is fine for a demo (a real deployment keeps the key in its
 *   secret store, apart from the log, since whoever holds it can rewrite the chain).
 * - Checkpoints, signed with ed25519 (AUDIT_SIGNING_KEY, a PKCS#8 PEM; drawn at
 *   start when unset, its public key printed), go to stderr: somewhere other than
 *   the log, so that removing the log's newest records shows. A real deployment
 *   sends them to another store (a bucket, another team's system).
 * - On stdout each run is a chain of its own, named after its start
 *   (`example-api-<time>`), so that two runs' lines in one file never read as a
 *   rewritten chain. On PostgreSQL and Redis every run and process appends to
 *   one chain, AUDIT_LOG (default `example-api`).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import {
  type AuditMiddleware,
  audit,
  migrateAudit,
  postgresSink,
  redisStreamSink,
  streamSink,
} from 'restwell/audit';
import type { ExampleStores } from './stores.js';

/**
 * DATABASE_URL's pool, with the audit table created (`migrateAudit`, the same SQL as
 * migrations/postgres/003_restwell_audit.sql); none when unset. pg is loaded only then.
 */
export async function auditDatabase(
  env: NodeJS.ProcessEnv = process.env,
): Promise<Pool | undefined> {
  if (!env.DATABASE_URL) return undefined;
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 });
  await migrateAudit(pool);
  return pool;
}

export function createAuditLog(
  stores: Pick<ExampleStores, 'redis'> & { pool?: Pool },
  env: NodeJS.ProcessEnv = process.env,
  out: { records: NodeJS.WritableStream; checkpoints: NodeJS.WritableStream } = {
    records: process.stdout,
    checkpoints: process.stderr,
  },
): AuditMiddleware {
  let key = env.AUDIT_KEY;
  if (key === undefined || key === '') {
    key = randomBytes(32).toString('base64url');
    console.error(`restwell example: AUDIT_KEY is not set; this run's audit chain key is ${key}`);
  }
  const privateKey = env.AUDIT_SIGNING_KEY
    ? createPrivateKey(env.AUDIT_SIGNING_KEY)
    : generateKeyPairSync('ed25519').privateKey;
  if (!env.AUDIT_SIGNING_KEY) {
    const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' });
    console.error(
      `restwell example: AUDIT_SIGNING_KEY is not set; this run signs audit checkpoints with a key drawn at start, whose public key is\n${publicKey}`,
    );
  }
  const sink =
    stores.pool !== undefined
      ? postgresSink(stores.pool)
      : stores.redis !== undefined
        ? redisStreamSink(stores.redis, {
            prefix: `${env.REDIS_PREFIX ?? 'restwell-example:'}audit:`,
          })
        : streamSink(out.records);
  const log =
    stores.pool === undefined && stores.redis === undefined
      ? `example-api-${new Date().toISOString().replace(/[:.]/g, '-')}`
      : (env.AUDIT_LOG ?? 'example-api');
  return audit({
    sink,
    key,
    log,
    checkpoints: {
      privateKey,
      write: (checkpoint) => void out.checkpoints.write(`${JSON.stringify(checkpoint)}\n`),
      everyRecords: 100,
      everyMs: 60_000,
    },
  });
}
