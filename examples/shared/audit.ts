/**
 * The example's audit log: every write (POST, PUT, PATCH, DELETE) recorded
 * after its response, hash-chained, to stdout as JSON lines, or to a Redis
 * stream when the example runs on Redis (one chain shared by every process).
 * The chain key comes from AUDIT_KEY; without it a key is drawn at start and
 * printed, which is fine for a demo (a real deployment keeps the key in its
 * secret store, apart from the log, since whoever holds it can rewrite the chain).
 */
import { randomBytes } from 'node:crypto';
import { type AuditMiddleware, audit, redisStreamSink, streamSink } from 'restwell/audit';
import type { ExampleStores } from './stores.js';

export function createAuditLog(
  stores: Pick<ExampleStores, 'redis'>,
  env: NodeJS.ProcessEnv = process.env,
): AuditMiddleware {
  let key = env.AUDIT_KEY;
  if (key === undefined || key === '') {
    key = randomBytes(32).toString('base64url');
    console.error(`restwell example: AUDIT_KEY is not set; this run's audit chain key is ${key}`);
  }
  const sink =
    stores.redis === undefined
      ? streamSink(process.stdout)
      : redisStreamSink(stores.redis, {
          prefix: `${env.REDIS_PREFIX ?? 'restwell-example:'}audit:`,
        });
  return audit({ sink, key, log: 'example-api' });
}
