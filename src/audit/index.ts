/**
 * Audit log (`restwell/audit`): every write recorded after its response
 * (time, trace id, principal, client IP, method, route and path, status, the
 * SHA-256 of the payload, user agent, whether it was an idempotent replay),
 * with no secret in it; hash-chained with a keyed hash so an edit, insertion,
 * reordering or removal shows, and checkpointed with ed25519 signatures so a
 * truncated tail shows too. A failing or slow sink never fails or delays a
 * request. See docs/audit.md.
 *
 * @example
 * ```ts
 * import { audit, streamSink } from 'restwell/audit';
 *
 * const auditLog = audit({ sink: streamSink(process.stdout), key: process.env.AUDIT_KEY! });
 * app.use(rw(auditLog, jsonBody()));
 * ```
 */
export {
  type AuditEvent,
  type AuditSink,
  type ChainedRecord,
  type ChainHead,
  recordHash,
} from './chain.js';
export { type AuditCliIo, runAuditCli } from './cli.js';
export {
  type AuditCheckpoint,
  signCheckpoint,
  verifyCheckpoint,
} from './checkpoint.js';
export {
  type AuditCheckpointOptions,
  type AuditMiddleware,
  type AuditOptions,
  audit,
} from './middleware.js';
export {
  auditTableSql,
  migrateAudit,
  postgresSink,
  readPostgresLog,
  streamPostgresLog,
} from './postgres.js';
export {
  type RedisStreamSinkOptions,
  readRedisLog,
  redisStreamSink,
  streamRedisLog,
} from './redis.js';
export {
  callbackSink,
  type StreamSinkOptions,
  streamSink,
  type WritableLike,
} from './sinks.js';
export {
  type AuditDefect,
  type AuditVerification,
  type VerifyAuditOptions,
  verifyAuditLog,
  verifyAuditStream,
} from './verify.js';
