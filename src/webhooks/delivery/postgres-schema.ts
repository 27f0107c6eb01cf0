/**
 * The PostgreSQL tables of webhook delivery, and what the stores on them
 * share: table names from one schema and prefix, the DDL, the migration,
 * bounded statements and transactions, and error mapping.
 *
 * Tables (with the default prefix `restwell_webhook_delivery`):
 * `_events`, `_deliveries`, `_attempts` (the delivery log), `_endpoints`
 * (endpoints and their signing secrets), `_outbox` (events written in the
 * application's transactions, not yet dispatched) and `_meta` (the log's
 * cursor key when none is configured). They are created by an explicit
 * migration, never silently: `migrateWebhookDelivery(pool)` from a deploy
 * step, or `migrations/postgres/006_restwell_webhook_delivery.sql` (the same
 * SQL as `webhookDeliveryTableSql()`) with your migration tool.
 *
 * pg is an optional peer dependency: this file only uses the pool it is given.
 */
import { createHash } from 'node:crypto';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { checkOptions, invalidOption, StoreUnavailableError } from '../../core/errors.js';
import { bounded } from '../../stores/types.js';

/** Where the tables are: a schema (optional) and a prefix of their names. */
export interface WebhookDeliveryTablesOptions {
  /** A schema of your own; `migrateWebhookDelivery` creates it. @default the search path's */
  schema?: string;
  /** What every table's name starts with. @default 'restwell_webhook_delivery' */
  prefix?: string;
}

/** The default prefix of the tables' names. */
export const DEFAULT_PREFIX = 'restwell_webhook_delivery';
const SCHEMA_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;
// Short enough that `<prefix>_deliveries_endpoint_status_idx` fits PostgreSQL's 63 bytes: a longer
// name is truncated without an error, and two truncated index names could collide.
const PREFIX_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,29}$/;

/** The qualified names of the tables, and the outbox's notification channel. */
export interface WebhookDeliveryTables {
  /** The schema as SQL: quoted, in lower case. */
  readonly schema?: string;
  readonly prefix: string;
  readonly events: string;
  readonly deliveries: string;
  readonly attempts: string;
  readonly endpoints: string;
  readonly outbox: string;
  readonly meta: string;
  /**
   * The channel `NOTIFY` wakes outbox relays on: `<schema>_<prefix>_outbox` in lower case
   * (`LISTEN` folds it so), or a digest of it when that is too long for a channel name.
   */
  readonly channel: string;
}

/** Checks the options and names the tables. */
export function webhookDeliveryTables(
  module: string,
  options: WebhookDeliveryTablesOptions = {},
): WebhookDeliveryTables {
  const { schema, prefix = DEFAULT_PREFIX } = options;
  if (schema !== undefined && (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)))
    invalidOption(module, 'schema', 'a schema name (letters, digits, _; at most 63)', schema);
  if (typeof prefix !== 'string' || !PREFIX_NAME.test(prefix))
    invalidOption(
      module,
      'prefix',
      'a table name prefix (letters, digits, _; at most 30 characters)',
      prefix,
    );
  // The schema is quoted, as a name of identifier characters may still be a reserved word
  // (`user`, `select`), and folded to lower case first, as PostgreSQL folds an unquoted name: a
  // schema given as `Ops` is the `ops` it always was. A table name is `<prefix>_<table>`, which
  // no reserved word is, and folds the same quoted or not.
  const schemaName = schema === undefined ? undefined : `"${schema.toLowerCase()}"`;
  const q = (name: string) =>
    `${schemaName === undefined ? '' : `${schemaName}.`}${prefix}_${name}`;
  const channel = `${schema === undefined ? '' : `${schema}_`}${prefix}_outbox`.toLowerCase();
  return {
    ...(schemaName === undefined ? {} : { schema: schemaName }),
    prefix,
    events: q('events'),
    deliveries: q('deliveries'),
    attempts: q('attempts'),
    endpoints: q('endpoints'),
    outbox: q('outbox'),
    meta: q('meta'),
    // pg_notify() refuses a channel of 64 bytes or more (NAMEDATALEN), which would fail the
    // application's own transaction in writeOutboxEvent: a long one is a digest of the name.
    channel:
      channel.length < 64
        ? channel
        : `rw_outbox_${createHash('sha256').update(channel).digest('hex').slice(0, 40)}`,
  };
}

/**
 * The DDL of the delivery tables (also
 * `migrations/postgres/006_restwell_webhook_delivery.sql`). Idempotent. The
 * index names are unqualified: PostgreSQL puts an index in its table's schema.
 */
export function webhookDeliveryTableSql(options: WebhookDeliveryTablesOptions = {}): string {
  checkOptions('webhooks', options, ['schema', 'prefix']);
  const t = webhookDeliveryTables('webhooks', options);
  const p = t.prefix;
  return `${t.schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${t.schema};\n`}CREATE TABLE IF NOT EXISTS ${t.events} (
  id         text PRIMARY KEY,
  type       text NOT NULL,
  created_at timestamptz NOT NULL,
  event      json NOT NULL
);
CREATE INDEX IF NOT EXISTS ${p}_events_created_at_idx ON ${t.events} (created_at);
CREATE TABLE IF NOT EXISTS ${t.deliveries} (
  id               text PRIMARY KEY,
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  event_created_at timestamptz NOT NULL,
  endpoint_id      text NOT NULL,
  version          text,
  status           text NOT NULL,
  generation       integer NOT NULL,
  attempts         integer NOT NULL,
  total_attempts   integer NOT NULL,
  next_attempt_at  timestamptz,
  dead_reason      text,
  last_status      integer,
  last_failure     text,
  test             boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${p}_deliveries_created_idx ON ${t.deliveries} (created_at, seq);
CREATE INDEX IF NOT EXISTS ${p}_deliveries_endpoint_status_idx ON ${t.deliveries} (endpoint_id, status);
CREATE INDEX IF NOT EXISTS ${p}_deliveries_status_updated_idx ON ${t.deliveries} (status, updated_at);
CREATE INDEX IF NOT EXISTS ${p}_deliveries_event_idx ON ${t.deliveries} (event_id);
CREATE TABLE IF NOT EXISTS ${t.attempts} (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id      text NOT NULL,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  endpoint_id      text NOT NULL,
  version          text,
  generation       integer NOT NULL,
  attempt          integer NOT NULL,
  at               timestamptz NOT NULL,
  duration_ms      double precision NOT NULL,
  ok               boolean NOT NULL,
  status           integer,
  failure          text,
  message          text,
  response_excerpt text,
  test             boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS ${p}_attempts_at_idx ON ${t.attempts} (at, seq);
CREATE INDEX IF NOT EXISTS ${p}_attempts_endpoint_at_idx ON ${t.attempts} (endpoint_id, at, seq);
CREATE INDEX IF NOT EXISTS ${p}_attempts_delivery_idx ON ${t.attempts} (delivery_id);
CREATE INDEX IF NOT EXISTS ${p}_attempts_event_idx ON ${t.attempts} (event_id);
CREATE TABLE IF NOT EXISTS ${t.endpoints} (
  id         text PRIMARY KEY,
  record     json NOT NULL,
  secrets    json NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS ${t.outbox} (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id     text NOT NULL,
  event        json NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  available_at timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text
);
CREATE INDEX IF NOT EXISTS ${p}_outbox_available_idx ON ${t.outbox} (available_at, seq);
CREATE TABLE IF NOT EXISTS ${t.meta} (
  name  text PRIMARY KEY,
  value text NOT NULL
);
`;
}

/**
 * Creates the delivery tables (and the schema, when one is named) if they do
 * not exist. Call it deliberately, from a migration step.
 */
export async function migrateWebhookDelivery(
  pool: Pick<Pool, 'query'>,
  options: WebhookDeliveryTablesOptions = {},
): Promise<void> {
  await pool.query(webhookDeliveryTableSql(options));
}

/** Checks a `pool` option. */
export function checkPool(module: string, pool: unknown): Pool {
  if (
    pool === null ||
    typeof pool !== 'object' ||
    typeof (pool as Pool).query !== 'function' ||
    typeof (pool as Pool).connect !== 'function'
  )
    invalidOption(module, 'pool', 'a pg Pool', pool);
  return pool as Pool;
}

/** The largest `statement_timeout` PostgreSQL takes, in ms (an int). */
const MAX_SERVER_TIMEOUT_MS = 2_147_483_647;

/** Checks a `timeoutMs` option: it becomes the server's `statement_timeout`, an int of ms. */
export function checkTimeout(module: string, timeoutMs: unknown): number {
  if (
    !Number.isSafeInteger(timeoutMs) ||
    (timeoutMs as number) <= 0 ||
    (timeoutMs as number) > MAX_SERVER_TIMEOUT_MS
  )
    invalidOption(
      module,
      'timeoutMs',
      `a positive integer of ms, at most ${MAX_SERVER_TIMEOUT_MS}`,
      timeoutMs,
    );
  return timeoutMs as number;
}

/**
 * Checks a client out of the pool within `timeoutMs` (a 503 past it). A
 * checkout given up on is still pending in the pool: the client it yields
 * later goes straight back, or every timeout under a saturated pool would
 * keep one of its clients for good.
 */
export async function connectWithin(
  pool: Pool,
  timeoutMs: number,
  operation: string,
): Promise<PoolClient> {
  const pending = pool.connect();
  try {
    return await bounded(
      operation,
      timeoutMs,
      () => pending,
      (err) => storeError(operation, err),
    );
  } catch (err) {
    pending.then(
      (client) => client.release(),
      () => {},
    );
    throw err;
  }
}

/** The driver's error as the store's 503, naming the migration when a table is missing. */
export function storeError(operation: string, err: unknown): Error {
  return (err as { code?: string } | null)?.code === '42P01'
    ? new StoreUnavailableError(
        'A webhook delivery table does not exist: run migrateWebhookDelivery(pool) (or migrations/postgres/006_restwell_webhook_delivery.sql) first.',
        { cause: err },
      )
    : new StoreUnavailableError(`PostgreSQL ${operation} failed.`, { cause: err });
}

/** Runs one statement on the pool within `timeoutMs` (a 503 past it, or on a driver error). */
export function runQuery<R extends QueryResultRow>(
  pool: Pick<Pool, 'query'>,
  timeoutMs: number,
  operation: string,
  text: string,
  values: unknown[] = [],
): Promise<QueryResult<R>> {
  return bounded(
    operation,
    timeoutMs,
    () => pool.query<R>(text, values),
    (err) => storeError(operation, err),
  );
}

/** What the caller's own code threw inside {@link inTransaction}: rethrown as it is. */
export class CallerError {
  constructor(readonly error: unknown) {}
}

/** Runs the caller's `fn`, marking what it throws as the caller's (see {@link CallerError}). */
export function callerCode<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CallerError(err);
  }
}

/**
 * Runs `fn` in a transaction on a client of its own. The server bounds each
 * statement and each lock wait by `timeoutMs` (`SET LOCAL`, so the client goes
 * back to the pool with its settings unchanged); a client whose connection
 * broke is destroyed, not pooled again. Whatever the driver throws is a 503;
 * what the caller's code throws (through {@link callerCode}) is rethrown as it is.
 */
export async function inTransaction<T>(
  pool: Pool,
  timeoutMs: number,
  operation: string,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await connectWithin(pool, timeoutMs, operation);
  let broken: Error | undefined;
  // A checked-out client's 'error' events are ours: unheard, a dying connection ends the process.
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  let begun = false;
  try {
    await client.query(
      `BEGIN; SET LOCAL statement_timeout = ${timeoutMs}; SET LOCAL lock_timeout = ${timeoutMs}`,
    );
    begun = true;
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (begun)
      await client.query('ROLLBACK').catch((e: Error) => {
        broken ??= e;
      });
    throw err instanceof CallerError ? err.error : storeError(operation, err);
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * Text PostgreSQL can store: a `text` column refuses U+0000 (a receiver's
 * response excerpt may hold one), so it becomes U+FFFD.
 */
export function storable(text: string | undefined): string | null {
  return text === undefined
    ? null
    : text.includes('\u0000')
      ? text.replaceAll('\u0000', '\uFFFD')
      : text;
}

/** A time column's value as epoch ms. */
export function ms(value: Date): number {
  return value.getTime();
}
