/**
 * The transactional outbox: an event is dispatched if and only if the
 * application's business write commits.
 *
 * 1. {@link writeOutboxEvent} inserts the event into the `_outbox` table on
 *    the application's own client, inside its own transaction: the row
 *    commits with the business write, or rolls back with it. The event's id
 *    and `createdAt` are fixed here, so every later dispatch of it is the
 *    same event. A `NOTIFY` in the same transaction wakes the relays when
 *    (and only when) it commits.
 * 2. An {@link OutboxRelay} claims committed rows with `SELECT … FOR UPDATE
 *    SKIP LOCKED` in a transaction of its own, calls `delivery.dispatch(event)`
 *    for each, deletes them and commits. Several relays share the table: each
 *    row is claimed by one of them at a time, and a row a relay has claimed
 *    is skipped by the others instead of waited for.
 *
 * At least once: a relay that dies between a dispatch and its commit leaves
 * the row in place (its transaction rolls back), and the row is dispatched
 * again by the next pass. `dispatch` is idempotent by event id (each delivery
 * has a deterministic id, and the queue ignores a job id it holds), so the
 * second dispatch queues nothing twice. A dispatch that fails (the log or
 * the queue unavailable) leaves its row for a later pass, after a backoff.
 * A row `dispatch` refuses outright (a 4xx problem: an event written by an
 * older version, or larger than the engine's `maxEventBytes`) would fail
 * every pass alike: it is logged and parked (`available_at = 'infinity'`,
 * the error in `last_error`), and the rows after it go on. Look parked rows
 * up with `WHERE available_at = 'infinity'`; set `available_at = now()` to
 * relay one again once the cause is fixed.
 *
 * Rows are claimed in the order they were written, but two relays dispatch
 * side by side: receivers order by the event's `sequence`, not by arrival.
 *
 * pg is an optional peer dependency: this file only uses the pool and
 * clients it is given.
 */
import type { Notification, Pool, PoolClient } from 'pg';
import { checkOptions, invalidOption, RestwellError } from '../../core/errors.js';
import { defaultLogger, type Logger } from '../../core/logger.js';
import type { WebhookDelivery } from './delivery.js';
import {
  createEvent,
  DEFAULT_MAX_EVENT_BYTES,
  type EventInput,
  type WebhookEvent,
} from './events.js';
import {
  checkPool,
  checkTimeout,
  connectWithin,
  storable,
  storeError,
  type WebhookDeliveryTables,
  type WebhookDeliveryTablesOptions,
  webhookDeliveryTables,
} from './postgres-schema.js';

/** Options of {@link writeOutboxEvent}. */
export interface WriteOutboxEventOptions extends WebhookDeliveryTablesOptions {
  /** The clock for an event without `createdAt`, epoch ms. @default Date.now */
  now?: () => number;
  /** Wake listening relays when the transaction commits. @default true */
  notify?: boolean;
  /**
   * Most bytes of the event's `data` as JSON: give the engine's `maxEventBytes` when you lowered
   * it, so that an event the engine would refuse is refused here, inside the business
   * transaction, rather than parked by the relay later. @default 1 MiB, the engine's default
   */
  maxEventBytes?: number;
}

/**
 * Writes an event to the outbox on `client`, which should be in the
 * application's open transaction (the same `PoolClient` as the business
 * write): it is dispatched once that transaction commits, and never if it
 * rolls back. The event is checked as `dispatch()` checks it (a 400
 * `validation-failed` listing every field) and completed with its id and
 * `createdAt`; the complete event is returned.
 *
 * @example
 * ```ts
 * const client = await pool.connect();
 * try {
 *   await client.query('BEGIN');
 *   await client.query('INSERT INTO payments (id, amount) VALUES ($1, $2)', [id, amount]);
 *   await writeOutboxEvent(client, { type: 'payment.created', data: { id, amount } });
 *   await client.query('COMMIT');
 * } catch (err) {
 *   await client.query('ROLLBACK');
 *   throw err;
 * } finally {
 *   client.release();
 * }
 * ```
 */
export async function writeOutboxEvent<T>(
  client: Pick<PoolClient, 'query'>,
  input: EventInput<T>,
  options: WriteOutboxEventOptions = {},
): Promise<WebhookEvent<T>> {
  checkOptions('webhooks', options, ['schema', 'prefix', 'now', 'notify', 'maxEventBytes']);
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (!Number.isSafeInteger(maxEventBytes) || maxEventBytes < 1)
    invalidOption('webhooks', 'maxEventBytes', 'a positive integer of bytes', maxEventBytes);
  if (client === null || typeof client !== 'object' || typeof client.query !== 'function')
    invalidOption('webhooks', 'client', 'a pg client (PoolClient) in your transaction', client);
  const t = webhookDeliveryTables('webhooks', options);
  const event = createEvent(input, options.now ?? Date.now, maxEventBytes);
  const text = JSON.stringify(event);
  try {
    // One round trip. NOTIFY is transactional: sent at commit, dropped at rollback.
    await client.query(
      options.notify === false
        ? `INSERT INTO ${t.outbox} (event_id, event) VALUES ($1, $2)`
        : `WITH written AS (INSERT INTO ${t.outbox} (event_id, event) VALUES ($1, $2) RETURNING seq)
           SELECT pg_notify($3, '') FROM written`,
      options.notify === false ? [event.id, text] : [event.id, text, t.channel],
    );
  } catch (err) {
    throw storeError('writeOutboxEvent', err);
  }
  return event;
}

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions extends WebhookDeliveryTablesOptions {
  /** Your `pg` Pool. The relay never ends it. Required. */
  pool: Pool;
  /** What the events are dispatched to: the engine, `webhookDelivery(...)`. Required. */
  delivery: Pick<WebhookDelivery, 'dispatch'>;
  /** How often the table is polled (a notification wakes the relay sooner). @default 1000 */
  intervalMs?: number;
  /** Most rows one pass claims; a full pass is followed by another at once. @default 100 */
  batchSize?: number;
  /**
   * LISTEN for the outbox's notifications on a client of its own (one
   * connection of the pool, held while the relay runs), so that a committed
   * event is relayed at once rather than at the next poll. @default true
   */
  listen?: boolean;
  /** Longest time one statement, or one lock wait, may take. @default 5000 */
  timeoutMs?: number;
  /**
   * Longest time a pass may hold its claimed rows. Past it the server ends
   * the pass's session, its rows go back to the table, and the next pass
   * dispatches them again (deduplicated by `dispatch`). @default 60000
   */
  claimTimeoutMs?: number;
  /** The first wait after a failed dispatch of a row; it doubles, to 5 minutes. @default 1000 */
  retryDelayMs?: number;
  /** Faults: failed dispatches, failed passes. @default the JSON stderr logger */
  logger?: Logger;
}

const MAX_RETRY_DELAY_MS = 5 * 60 * 1000;

/**
 * A refusal of the event by `dispatch` (a 4xx problem: `validation-failed`,
 * an event too large), as opposed to a fault that passes (the log, the queue
 * or the engine unavailable: 503s, and errors that are not problems).
 */
function isRefusal(err: unknown): boolean {
  return err instanceof RestwellError && err.status >= 400 && err.status < 500;
}

/** The id of a row's event, for the log, whatever the row holds. */
function eventIdOf(event: unknown): unknown {
  return event !== null && typeof event === 'object' ? (event as { id?: unknown }).id : undefined;
}

/** Relays committed outbox rows to `delivery.dispatch`; see the module comment. */
export class OutboxRelay {
  readonly tables: WebhookDeliveryTables;
  private readonly pool: Pool;
  private readonly delivery: Pick<WebhookDelivery, 'dispatch'>;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly listen: boolean;
  private readonly timeoutMs: number;
  private readonly claimTimeoutMs: number;
  private readonly retryDelayMs: number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private listener: { client: PoolClient; detach: () => void } | undefined;

  constructor(options: OutboxRelayOptions) {
    const module = 'webhooks OutboxRelay';
    checkOptions(module, options, [
      'pool',
      'delivery',
      'schema',
      'prefix',
      'intervalMs',
      'batchSize',
      'listen',
      'timeoutMs',
      'claimTimeoutMs',
      'retryDelayMs',
      'logger',
    ]);
    const o = options ?? ({} as OutboxRelayOptions);
    this.pool = checkPool(module, o.pool);
    if (o.delivery === null || typeof o.delivery?.dispatch !== 'function')
      invalidOption(module, 'delivery', 'the delivery engine (webhookDelivery())', o.delivery);
    this.delivery = o.delivery;
    this.tables = webhookDeliveryTables(module, o);
    const positive = (name: string, value: unknown, fallback: number) => {
      const v = value ?? fallback;
      if (!Number.isSafeInteger(v) || (v as number) < 1)
        invalidOption(module, name, 'a positive integer', v);
      return v as number;
    };
    this.intervalMs = positive('intervalMs', o.intervalMs, 1000);
    this.batchSize = positive('batchSize', o.batchSize, 100);
    this.claimTimeoutMs = positive('claimTimeoutMs', o.claimTimeoutMs, 60_000);
    this.retryDelayMs = positive('retryDelayMs', o.retryDelayMs, 1000);
    this.timeoutMs = checkTimeout(module, o.timeoutMs ?? 5000);
    this.listen = o.listen ?? true;
    this.logger = o.logger ?? defaultLogger;
  }

  /**
   * One pass: claims up to `batchSize` committed rows that are due, dispatches
   * each, deletes the dispatched ones and commits. Resolves the number
   * dispatched. A row whose dispatch fails is kept, with a backoff, and ends
   * the pass (the rest wait for the next one: a store that is down fails them
   * all alike). A row whose event `dispatch` refuses (a 4xx) is parked: kept,
   * with the error in `last_error`, its `available_at` set to `infinity`, and
   * the pass goes on with the rest.
   */
  async runOnce(): Promise<number> {
    const t = this.tables.outbox;
    const client = await connectWithin(this.pool, this.timeoutMs, 'outboxRelay');
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken ??= err;
    };
    client.on('error', onError);
    try {
      await client.query(
        `BEGIN; SET LOCAL statement_timeout = ${this.timeoutMs}; SET LOCAL lock_timeout = ${this.timeoutMs}; SET LOCAL idle_in_transaction_session_timeout = ${this.claimTimeoutMs}`,
      );
      try {
        const { rows } = await client.query<{ seq: string; event: WebhookEvent; attempts: number }>(
          `SELECT seq::text AS seq, event, attempts FROM ${t}
            WHERE available_at <= now() ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [this.batchSize],
        );
        const done: string[] = [];
        let parked = 0;
        for (const row of rows) {
          try {
            await this.delivery.dispatch(row.event);
            done.push(row.seq);
          } catch (err) {
            const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
            if (isRefusal(err)) {
              // The engine refused the event itself (a 4xx: a row an older version wrote, an
              // event over the engine's maxEventBytes): no retry mends it, and retrying it
              // would spend every pass on it. Parked, never claimed again, kept to be looked at.
              this.logger.error(
                'restwell/webhooks: an outbox event was refused by dispatch; it is parked, not retried',
                { eventId: eventIdOf(row.event), seq: row.seq, err },
              );
              await client.query(
                `UPDATE ${t} SET attempts = attempts + 1, last_error = $2, available_at = 'infinity'
                  WHERE seq = $1`,
                [row.seq, storable(message.slice(0, 1000))],
              );
              parked++;
              continue;
            }
            const delay = Math.min(
              this.retryDelayMs * 2 ** Math.min(row.attempts, 30),
              MAX_RETRY_DELAY_MS,
            );
            this.logger.error('restwell/webhooks: an outbox event could not be dispatched', {
              eventId: eventIdOf(row.event),
              attempts: row.attempts + 1,
              retryInMs: delay,
              err,
            });
            await client.query(
              `UPDATE ${t} SET attempts = attempts + 1, last_error = $2,
                      available_at = now() + ($3::double precision * interval '1 millisecond')
                WHERE seq = $1`,
              [row.seq, storable(message.slice(0, 1000)), delay],
            );
            break;
          }
        }
        if (done.length > 0)
          await client.query(`DELETE FROM ${t} WHERE seq = ANY($1::bigint[])`, [done]);
        await client.query('COMMIT');
        // A full batch: there may be more waiting.
        if (rows.length === this.batchSize && done.length + parked === rows.length)
          this.again = true;
        return done.length;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken ??= e;
        });
        throw err;
      }
    } catch (err) {
      throw storeError('outboxRelay', err);
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** Starts polling (and listening, unless `listen: false`). Idempotent. */
  start(): this {
    if (this.started) return this;
    this.started = true;
    if (this.listen) void this.startListening();
    this.wake();
    return this;
  }

  /** Stops: no new pass starts; resolves once the pass in progress has committed or rolled back. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const listener = this.listener;
    this.listener = undefined;
    if (listener !== undefined) {
      await listener.client.query(`UNLISTEN "${this.tables.channel}"`).catch(() => {});
      listener.detach();
      listener.client.release();
    }
    await this.running;
  }

  /** Runs a pass now (or right after the one in progress), then polls again after `intervalMs`. */
  private wake(): void {
    if (!this.started) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.runOnce();
        } catch (err) {
          this.logger.error('restwell/webhooks: an outbox relay pass failed', { err });
        }
      } while (this.again && this.started);
    })().finally(() => {
      this.running = undefined;
      if (this.started) this.timer = setTimeout(() => this.wake(), this.intervalMs);
    });
  }

  private async startListening(): Promise<void> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.logger.warn('restwell/webhooks: the outbox relay cannot listen; it polls only', {
        err,
      });
      return;
    }
    const onNotification = (message: Notification) => {
      if (message.channel === this.tables.channel) this.wake();
    };
    const onError = (err: Error) => {
      // The connection is gone: polling goes on, and listening starts again on a new one.
      detach();
      if (this.listener?.client === client) this.listener = undefined;
      client.release(err);
      this.logger.warn('restwell/webhooks: the outbox relay lost its listening connection', {
        err,
      });
      if (this.started) setTimeout(() => void this.startListening(), this.intervalMs);
    };
    // Removed before the client goes back to the pool, which hands it to others.
    const detach = () => {
      client.off('notification', onNotification);
      client.off('error', onError);
    };
    client.on('notification', onNotification);
    client.on('error', onError);
    try {
      // The channel is made of checked identifier characters; quoted, as pg_notify keeps its case.
      await client.query(`LISTEN "${this.tables.channel}"`);
    } catch (err) {
      detach();
      client.release(err as Error);
      this.logger.warn('restwell/webhooks: the outbox relay cannot listen; it polls only', {
        err,
      });
      return;
    }
    if (!this.started) {
      await client.query(`UNLISTEN "${this.tables.channel}"`).catch(() => {});
      detach();
      client.release();
      return;
    }
    this.listener = { client, detach };
  }
}

/**
 * Starts an {@link OutboxRelay}: `const relay = startOutboxRelay({ pool, delivery })`,
 * and `await relay.stop()` at shutdown. Run one in every process that should
 * relay; they share the table safely.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  return new OutboxRelay(options).start();
}
