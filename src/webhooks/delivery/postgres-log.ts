/**
 * `PostgresDeliveryLog`: the durable {@link DeliveryLog}, shared by every
 * process on the same tables (`migrateWebhookDelivery(pool)` creates them).
 *
 * - `updateDelivery` locks the row (`SELECT … FOR UPDATE` in a transaction),
 *   calls `change` exactly once on what it read, writes the result and
 *   commits: concurrent workers serialize on the row and no update is lost.
 *   (A compare-and-swap retried on conflict would call `change` more than
 *   once, and the engine's `change` functions record what they decided.)
 * - Queries are keyset-paged newest first on `(time, seq)` with the
 *   pagination module's sealed cursors, bound to the query and to these
 *   tables: a cursor of another query or another log is a 400 `invalid-cursor`.
 * - `endpointStats` takes p50 and p99 with `percentile_disc`, the nearest-rank
 *   percentile `MemoryDeliveryLog` computes: the smallest duration with at
 *   least that share of the durations at or below it (`percentile_cont`
 *   would interpolate a duration no attempt took).
 * - `sweep` deletes in batches, skipping rows another transaction holds
 *   (`FOR UPDATE SKIP LOCKED`): a delivery a worker is settling is left for
 *   the next sweep, and the sweep never waits on it.
 *
 * pg is an optional peer dependency: this file only uses the pool it is given.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { checkOptions, ValidationError, type ValidationIssue } from '../../core/errors.js';
import { type CursorCodec, type CursorSecret, createCursorCodec } from '../../pagination/cursor.js';
import { InvalidCursorError } from '../../pagination/errors.js';
import type { WebhookEvent } from './events.js';
import {
  type AttemptQuery,
  type AttemptRecord,
  DEFAULT_RETENTION_MS,
  type DeliveryLog,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryStatus,
  type EndpointLogStats,
  type LogPage,
  type SweepResult,
} from './log.js';
import {
  callerCode,
  checkPool,
  checkTimeout,
  inTransaction,
  ms,
  runQuery,
  storable,
  type WebhookDeliveryTables,
  type WebhookDeliveryTablesOptions,
  webhookDeliveryTables,
} from './postgres-schema.js';

/** Options of {@link PostgresDeliveryLog}. */
export interface PostgresDeliveryLogOptions extends WebhookDeliveryTablesOptions {
  /** Your `pg` Pool. The log never ends it. Required. */
  pool: Pool;
  /** How long attempts and finished deliveries are kept. @default 30 days */
  retentionMs?: number;
  /** How long dead (and held) deliveries are kept, at least `retentionMs`. @default 30 days */
  deadRetentionMs?: number;
  /**
   * The keys the log's cursors are sealed with (the first seals, all open:
   * put a new one first to rotate). Each at least 32 bytes from a random
   * source. @default a random key kept in the `_meta` table, made by the
   * first process that needs it, so that a cursor from one process opens in
   * every other one on the same tables
   */
  cursorSecrets?: CursorSecret | readonly CursorSecret[];
  /** Longest time one statement, or one lock wait, may take. @default 5000 */
  timeoutMs?: number;
  /** Most rows one sweep statement deletes; the sweep repeats until done. @default 1000 */
  sweepBatchSize?: number;
}

const MAX_LIMIT = 500;
const STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'retrying',
  'delivered',
  'held',
  'dead',
  'canceled',
];

interface DeliveryRow {
  id: string;
  seq: string;
  event_id: string;
  event_type: string;
  event_created_at: Date;
  endpoint_id: string;
  version: string | null;
  status: DeliveryStatus;
  generation: number;
  attempts: number;
  total_attempts: number;
  next_attempt_at: Date | null;
  dead_reason: DeliveryRecord['deadReason'] | null;
  last_status: number | null;
  last_failure: string | null;
  test: boolean;
  created_at: Date;
  updated_at: Date;
}

interface AttemptRow {
  seq: string;
  delivery_id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  version: string | null;
  generation: number;
  attempt: number;
  at: Date;
  duration_ms: number;
  ok: boolean;
  status: number | null;
  failure: string | null;
  message: string | null;
  response_excerpt: string | null;
  test: boolean;
}

const DELIVERY_COLUMNS =
  'id, event_id, event_type, event_created_at, endpoint_id, version, status, generation, attempts, total_attempts, next_attempt_at, dead_reason, last_status, last_failure, test, created_at, updated_at';
const ATTEMPT_COLUMNS =
  'delivery_id, event_id, event_type, endpoint_id, version, generation, attempt, at, duration_ms, ok, status, failure, message, response_excerpt, test';

/**
 * An id a row can have: a string without U+0000 (which a `text` column
 * refuses). Anything else (a job written by another version, a NUL from a
 * client) is no record, as in MemoryDeliveryLog, never a driver's error.
 */
const storableId = (id: unknown): id is string => typeof id === 'string' && !id.includes('\u0000');

const date = (value: number | undefined) => (value === undefined ? null : new Date(value));

function deliveryValues(d: DeliveryRecord): unknown[] {
  return [
    d.id,
    d.eventId,
    d.eventType,
    new Date(d.eventCreatedAt),
    d.endpointId,
    d.version ?? null,
    d.status,
    d.generation,
    d.attempts,
    d.totalAttempts,
    date(d.nextAttemptAt),
    d.deadReason ?? null,
    d.lastStatus ?? null,
    storable(d.lastFailure),
    d.test === true,
    new Date(d.createdAt),
    new Date(d.updatedAt),
  ];
}

function fromDeliveryRow(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.id,
    eventId: r.event_id,
    eventType: r.event_type,
    eventCreatedAt: ms(r.event_created_at),
    endpointId: r.endpoint_id,
    ...(r.version === null ? {} : { version: r.version }),
    status: r.status,
    generation: r.generation,
    attempts: r.attempts,
    totalAttempts: r.total_attempts,
    ...(r.next_attempt_at === null ? {} : { nextAttemptAt: ms(r.next_attempt_at) }),
    ...(r.dead_reason === null ? {} : { deadReason: r.dead_reason }),
    ...(r.last_status === null ? {} : { lastStatus: r.last_status }),
    ...(r.last_failure === null ? {} : { lastFailure: r.last_failure }),
    ...(r.test ? { test: true } : {}),
    createdAt: ms(r.created_at),
    updatedAt: ms(r.updated_at),
  };
}

function fromAttemptRow(r: AttemptRow): AttemptRecord {
  return {
    deliveryId: r.delivery_id,
    eventId: r.event_id,
    eventType: r.event_type,
    endpointId: r.endpoint_id,
    ...(r.version === null ? {} : { version: r.version }),
    generation: r.generation,
    attempt: r.attempt,
    at: ms(r.at),
    durationMs: r.duration_ms,
    ok: r.ok,
    ...(r.status === null ? {} : { status: r.status }),
    ...(r.failure === null ? {} : { failure: r.failure }),
    ...(r.message === null ? {} : { message: r.message }),
    ...(r.response_excerpt === null ? {} : { responseExcerpt: r.response_excerpt }),
    ...(r.test ? { test: true } : {}),
  };
}

/**
 * Checks a query as `MemoryDeliveryLog` does (limit, times), and the types of
 * its filters too: a value PostgreSQL would refuse (a status that is not a
 * number, a NUL in an id) is a 400 here, never the driver's error as a 503.
 */
function checkQuery(
  query: Record<string, unknown>,
  strings: readonly string[],
  lists: readonly string[],
): number {
  const issues: ValidationIssue[] = [];
  const issue = (pointer: string, detail: string) => issues.push({ pointer, detail, in: 'query' });
  const limit = query.limit ?? 50;
  if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_LIMIT)
    issue('/limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  for (const key of ['from', 'to']) {
    const v = query[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 8.64e15))
      issue(`/${key}`, 'must be a time in epoch milliseconds');
  }
  const text = (v: unknown) => typeof v === 'string' && !v.includes('\u0000') && v.length <= 1000;
  for (const key of strings) {
    if (query[key] !== undefined && !text(query[key])) issue(`/${key}`, 'must be a string');
  }
  for (const key of lists) {
    const v = query[key];
    if (v !== undefined && (!Array.isArray(v) || v.length > 1000 || !v.every(text)))
      issue(`/${key}`, 'must be a list of strings');
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return limit as number;
}

/** A cursor's payload, `[time ms, seq]`, checked: the codec vouches for its origin, not its shape. */
function position(payload: readonly unknown[]): [number, string] {
  const [at, seq] = payload;
  if (
    payload.length !== 2 ||
    typeof at !== 'number' ||
    !Number.isSafeInteger(at) ||
    typeof seq !== 'string' ||
    !/^[0-9]{1,19}$/.test(seq)
  )
    throw new InvalidCursorError('malformed');
  return [at, seq];
}

/** The durable {@link DeliveryLog} on PostgreSQL; see the module comment. */
export class PostgresDeliveryLog implements DeliveryLog {
  readonly retentionMs: number;
  readonly deadRetentionMs: number;
  readonly timeoutMs: number;
  readonly tables: WebhookDeliveryTables;
  private readonly pool: Pool;
  private readonly batch: number;
  private cursors: Promise<CursorCodec> | undefined;

  constructor(options: PostgresDeliveryLogOptions) {
    const module = 'webhooks PostgresDeliveryLog';
    checkOptions(module, options, [
      'pool',
      'schema',
      'prefix',
      'retentionMs',
      'deadRetentionMs',
      'cursorSecrets',
      'timeoutMs',
      'sweepBatchSize',
    ]);
    const o = options ?? ({} as PostgresDeliveryLogOptions);
    this.pool = checkPool(module, o.pool);
    this.tables = webhookDeliveryTables(module, o);
    this.timeoutMs = checkTimeout(module, o.timeoutMs ?? 5000);
    this.retentionMs = o.retentionMs ?? DEFAULT_RETENTION_MS;
    this.deadRetentionMs = o.deadRetentionMs ?? Math.max(DEFAULT_RETENTION_MS, this.retentionMs);
    if (!Number.isSafeInteger(this.retentionMs) || this.retentionMs <= 0)
      throw new TypeError(
        'restwell/webhooks: option "retentionMs" must be a positive integer of ms.',
      );
    if (!Number.isSafeInteger(this.deadRetentionMs) || this.deadRetentionMs < this.retentionMs)
      throw new TypeError(
        'restwell/webhooks: option "deadRetentionMs" must be an integer of ms, at least retentionMs.',
      );
    this.batch = o.sweepBatchSize ?? 1000;
    if (!Number.isSafeInteger(this.batch) || this.batch < 1)
      throw new TypeError('restwell/webhooks: option "sweepBatchSize" must be a positive integer.');
    // Made now, so that a short secret is a construction error and not a 503 at the first query.
    if (o.cursorSecrets !== undefined)
      this.cursors = Promise.resolve(createCursorCodec({ secrets: o.cursorSecrets }));
  }

  private run<R extends object>(operation: string, text: string, values: unknown[] = []) {
    return runQuery<R>(this.pool, this.timeoutMs, operation, text, values);
  }

  /** The codec: the configured keys, or the key in `_meta` (made once, by whoever is first). */
  private codec(): Promise<CursorCodec> {
    this.cursors ??= (async () => {
      const { rows } = await this.run<{ value: string }>(
        'deliveryLogCursorKey',
        `WITH made AS (
           INSERT INTO ${this.tables.meta} (name, value) VALUES ('cursor-key', $1)
           ON CONFLICT (name) DO NOTHING RETURNING value)
         SELECT value FROM made UNION ALL
         SELECT value FROM ${this.tables.meta} WHERE name = 'cursor-key'`,
        [randomBytes(32).toString('base64url')],
      );
      const value = rows[0]?.value;
      if (value === undefined) throw new Error('restwell/webhooks: no cursor key was stored.');
      return createCursorCodec({ secrets: Buffer.from(value, 'base64url') });
    })().catch((err: unknown) => {
      // Not cached: the next query tries again (the table may have been migrated meanwhile).
      this.cursors = undefined;
      throw err;
    });
    return this.cursors;
  }

  async putEvent(event: WebhookEvent): Promise<void> {
    await this.run(
      'deliveryLogPutEvent',
      `INSERT INTO ${this.tables.events} (id, type, created_at, event) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO NOTHING`,
      // `json`, not `jsonb`: the event's text is kept as written (member order, and a \u0000
      // in a string, which jsonb refuses).
      [event.id, event.type, new Date(Date.parse(event.createdAt)), JSON.stringify(event)],
    );
  }

  async getEvent(id: string): Promise<WebhookEvent | undefined> {
    if (!storableId(id)) return undefined;
    const { rows } = await this.run<{ event: WebhookEvent }>(
      'deliveryLogGetEvent',
      `SELECT event FROM ${this.tables.events} WHERE id = $1`,
      [id],
    );
    return rows[0]?.event;
  }

  async insertDelivery(record: DeliveryRecord): Promise<boolean> {
    const values = deliveryValues(record);
    const result = await this.run(
      'deliveryLogInsertDelivery',
      `INSERT INTO ${this.tables.deliveries} (${DELIVERY_COLUMNS})
       VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (id) DO NOTHING`,
      values,
    );
    return result.rowCount === 1;
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    if (!storableId(id)) return undefined;
    const { rows } = await this.run<DeliveryRow>(
      'deliveryLogGetDelivery',
      `SELECT ${DELIVERY_COLUMNS} FROM ${this.tables.deliveries} WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : fromDeliveryRow(rows[0]);
  }

  async updateDelivery(
    id: string,
    change: (current: DeliveryRecord) => DeliveryRecord,
  ): Promise<DeliveryRecord | undefined> {
    if (!storableId(id)) return undefined;
    const t = this.tables.deliveries;
    return inTransaction(this.pool, this.timeoutMs, 'deliveryLogUpdateDelivery', async (tx) => {
      const { rows } = await tx.query<DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM ${t} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (rows[0] === undefined) return undefined;
      const next = callerCode(() => change(fromDeliveryRow(rows[0]!)));
      // The id is the row's: a `change` that returns another id does not move the row.
      const values = deliveryValues({ ...next, id });
      const sets = DELIVERY_COLUMNS.split(', ')
        .slice(1)
        .map((c, i) => `${c} = $${i + 2}`)
        .join(', ');
      const updated = await tx.query<DeliveryRow>(
        `UPDATE ${t} SET ${sets} WHERE id = $1 RETURNING ${DELIVERY_COLUMNS}`,
        values,
      );
      return fromDeliveryRow(updated.rows[0]!);
    });
  }

  async recordAttempt(a: AttemptRecord): Promise<void> {
    const values = [
      a.deliveryId,
      a.eventId,
      a.eventType,
      a.endpointId,
      a.version ?? null,
      a.generation,
      a.attempt,
      new Date(a.at),
      a.durationMs,
      a.ok,
      a.status ?? null,
      storable(a.failure),
      storable(a.message),
      storable(a.responseExcerpt),
      a.test === true,
    ];
    await this.run(
      'deliveryLogRecordAttempt',
      `INSERT INTO ${this.tables.attempts} (${ATTEMPT_COLUMNS})
       VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
  }

  async queryAttempts(query: AttemptQuery = {}): Promise<LogPage<AttemptRecord>> {
    const q = query as Record<string, unknown>;
    const limit = checkQuery(q, ['endpointId', 'eventId', 'deliveryId', 'cursor'], ['types']);
    const issues: ValidationIssue[] = [];
    if (query.ok !== undefined && typeof query.ok !== 'boolean')
      issues.push({ pointer: '/ok', detail: 'must be true or false', in: 'query' });
    if (
      query.status !== undefined &&
      (!Number.isSafeInteger(query.status) || query.status < 100 || query.status > 999)
    )
      issues.push({ pointer: '/status', detail: 'must be an HTTP status', in: 'query' });
    if (issues.length > 0) throw new ValidationError(issues);
    const { cursor, ...binding } = query;
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (query.endpointId !== undefined) add('endpoint_id = ?', query.endpointId);
    if (query.eventId !== undefined) add('event_id = ?', query.eventId);
    if (query.deliveryId !== undefined) add('delivery_id = ?', query.deliveryId);
    if (query.types !== undefined) add('event_type = ANY(?::text[])', [...query.types]);
    if (query.ok !== undefined) add('ok = ?', query.ok);
    if (query.status !== undefined) add('status = ?', query.status);
    if (query.from !== undefined) add('at >= ?', new Date(query.from));
    if (query.to !== undefined) add('at < ?', new Date(query.to));
    const page = await this.page<AttemptRow>(
      this.tables.attempts,
      ATTEMPT_COLUMNS,
      'at',
      where,
      values,
      limit,
      cursor,
      { attempts: binding },
    );
    return { items: page.rows.map(fromAttemptRow), ...page.next };
  }

  async queryDeliveries(query: DeliveryQuery = {}): Promise<LogPage<DeliveryRecord>> {
    const q = query as Record<string, unknown>;
    const limit = checkQuery(q, ['endpointId', 'cursor'], ['eventIds', 'types']);
    const statuses =
      query.status === undefined
        ? undefined
        : typeof query.status === 'string'
          ? [query.status]
          : query.status;
    const issues: ValidationIssue[] = [];
    if (
      statuses !== undefined &&
      (!Array.isArray(statuses) || !statuses.every((s) => STATUSES.includes(s)))
    )
      issues.push({
        pointer: '/status',
        detail: `must be one or more of ${STATUSES.join(', ')}`,
        in: 'query',
      });
    if (query.includeTests !== undefined && typeof query.includeTests !== 'boolean')
      issues.push({ pointer: '/includeTests', detail: 'must be true or false', in: 'query' });
    if (issues.length > 0) throw new ValidationError(issues);
    const { cursor, ...binding } = query;
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (query.endpointId !== undefined) add('endpoint_id = ?', query.endpointId);
    if (query.eventIds !== undefined) add('event_id = ANY(?::text[])', [...query.eventIds]);
    if (query.types !== undefined) add('event_type = ANY(?::text[])', [...query.types]);
    if (statuses !== undefined) add('status = ANY(?::text[])', [...statuses]);
    if (query.from !== undefined) add('event_created_at >= ?', new Date(query.from));
    if (query.to !== undefined) add('event_created_at < ?', new Date(query.to));
    if (query.includeTests === false) where.push('NOT test');
    const page = await this.page<DeliveryRow>(
      this.tables.deliveries,
      DELIVERY_COLUMNS,
      'created_at',
      where,
      values,
      limit,
      cursor,
      { deliveries: binding },
    );
    return { items: page.rows.map(fromDeliveryRow), ...page.next };
  }

  /**
   * Keyset paging on `(key, seq)` descending, as MemoryDeliveryLog pages: the
   * cursor carries the last row's key (ms) and seq, and is bound to the query,
   * the page size and these tables.
   */
  private async page<R extends { seq: string }>(
    table: string,
    columns: string,
    key: 'at' | 'created_at',
    where: string[],
    values: unknown[],
    limit: number,
    cursor: string | undefined,
    query: unknown,
  ): Promise<{ rows: R[]; next: { nextCursor?: string } }> {
    // Absent members and the default limit spelled out: equal queries, equal bindings.
    const binding = JSON.parse(
      JSON.stringify({ binding: query, limit, log: this.tables.deliveries }),
    ) as unknown;
    const codec = await this.codec();
    const conditions = [...where];
    const params = [...values];
    if (cursor !== undefined) {
      const [at, seq] = position(codec.decode(cursor, binding));
      params.push(new Date(at), seq);
      conditions.push(`(${key}, seq) < ($${params.length - 1}, $${params.length}::bigint)`);
    }
    params.push(limit + 1);
    const { rows } = await this.run<R & Record<string, unknown>>(
      'deliveryLogQuery',
      `SELECT ${columns}, seq::text AS seq FROM ${table}
       ${conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`}
       ORDER BY ${key} DESC, seq DESC LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      rows: page,
      next:
        more && last !== undefined
          ? { nextCursor: codec.encode([ms(last[key] as Date), last.seq], binding) }
          : {},
    };
  }

  async endpointStats(endpointId: string, since: number): Promise<EndpointLogStats> {
    if (!storableId(endpointId)) return { attempts: 0, succeeded: 0, dead: 0, held: 0, pending: 0 };
    const { rows } = await this.run<{
      attempts: number;
      succeeded: number;
      p50: number | null;
      p99: number | null;
      dead: number;
      held: number;
      pending: number;
    }>(
      'deliveryLogEndpointStats',
      `SELECT a.attempts, a.succeeded, a.p50, a.p99, d.dead, d.held, d.pending FROM
         (SELECT count(*)::int AS attempts, count(*) FILTER (WHERE ok)::int AS succeeded,
                 percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
                 percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99
            FROM ${this.tables.attempts} WHERE endpoint_id = $1 AND at >= $2) a,
         (SELECT count(*) FILTER (WHERE status = 'dead')::int AS dead,
                 count(*) FILTER (WHERE status = 'held')::int AS held,
                 count(*) FILTER (WHERE status IN ('pending', 'retrying'))::int AS pending
            FROM ${this.tables.deliveries} WHERE endpoint_id = $1) d`,
      [endpointId, new Date(since)],
    );
    const r = rows[0]!;
    return {
      attempts: r.attempts,
      succeeded: r.succeeded,
      ...(r.p50 === null ? {} : { p50Ms: r.p50 }),
      ...(r.p99 === null ? {} : { p99Ms: r.p99 }),
      dead: r.dead,
      held: r.held,
      pending: r.pending,
    };
  }

  async sweep(now: number): Promise<SweepResult> {
    const t = this.tables;
    const kept = new Date(now - this.retentionMs);
    const deadKept = new Date(now - this.deadRetentionMs);
    const attempts = await this.drain(
      'deliveryLogSweepAttempts',
      `DELETE FROM ${t.attempts} WHERE seq IN (
         SELECT seq FROM ${t.attempts} WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [kept],
    );
    // Pending and retrying deliveries are never swept: they are work still to do.
    const deliveries = await this.drain(
      'deliveryLogSweepDeliveries',
      `DELETE FROM ${t.deliveries} WHERE id IN (
         SELECT id FROM ${t.deliveries}
          WHERE (status IN ('delivered', 'canceled') AND updated_at < $1)
             OR (status IN ('dead', 'held') AND updated_at < $3)
          LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [kept, deadKept],
    );
    const events = await this.drain(
      'deliveryLogSweepEvents',
      `DELETE FROM ${t.events} WHERE id IN (
         SELECT e.id FROM ${t.events} e
          WHERE e.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.event_id = e.id)
          LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [kept],
    );
    return { attempts, deliveries, events };
  }

  /** Repeats a batched DELETE (its `$2` is the batch size) until a batch comes back short. */
  private async drain(operation: string, text: string, values: unknown[]): Promise<number> {
    let total = 0;
    for (;;) {
      const params = [values[0], this.batch, ...values.slice(1)];
      const result = await this.run(operation, text, params);
      const n = result.rowCount ?? 0;
      total += n;
      if (n < this.batch) return total;
    }
  }
}
