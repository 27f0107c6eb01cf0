/**
 * The delivery log: every event dispatched, every delivery (one event to one
 * endpoint, in one shape) with its state, and every attempt with its
 * timestamp, status, response excerpt, duration and failure reason. The
 * dead-letter queue is the deliveries in state `dead`, with their event and
 * attempts: nothing is copied elsewhere, so a replay starts from the whole
 * context.
 *
 * {@link DeliveryLog} is the contract a PostgreSQL log implements;
 * {@link MemoryDeliveryLog} is the embedded one. Queries are paged newest
 * first with opaque cursors from the pagination module, bound to the query:
 * a cursor of another query is a 400 `invalid-cursor`, never a 500.
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../../core/errors.js';
import { type CursorCodec, createCursorCodec } from '../../pagination/cursor.js';
import type { WebhookEvent } from './events.js';

/** Where a delivery stands. */
export type DeliveryStatus =
  /** queued, no attempt yet in this budget */
  | 'pending'
  /** an attempt failed, another is scheduled */
  | 'retrying'
  | 'delivered'
  /** kept for a disabled endpoint, queued again when it is enabled */
  | 'held'
  /** in the dead-letter queue: retries exhausted, or a fast failure (400, 401, 403) */
  | 'dead'
  /** its endpoint was deleted */
  | 'canceled';

/**
 * Why a delivery is dead: its retries ran out (`exhausted`), the receiver
 * refused it with 400, 401 or 403 (`fast-failure`), or its payload could not
 * be built for the endpoint (`payload`: a version migration threw, the pinned
 * version is no longer served, the shaped payload is not JSON), which no
 * retry mends; replay it once the cause is fixed.
 */
export type DeadReason = 'exhausted' | 'fast-failure' | 'payload';

/** One delivery's state. JSON-serializable. */
export interface DeliveryRecord {
  /** `<eventId>/<endpointId>`, `/<version>` more in dual delivery. */
  readonly id: string;
  readonly eventId: string;
  readonly eventType: string;
  /** The event's `createdAt`, in epoch ms: what replay's time range selects on. */
  readonly eventCreatedAt: number;
  readonly endpointId: string;
  readonly version?: string;
  readonly status: DeliveryStatus;
  /** Which retry budget: 0 first, one more per replay or resend. */
  readonly generation: number;
  /** Attempts in this budget. */
  readonly attempts: number;
  /** Attempts in all budgets. */
  readonly totalAttempts: number;
  readonly nextAttemptAt?: number;
  readonly deadReason?: DeadReason;
  readonly lastStatus?: number;
  readonly lastFailure?: string;
  readonly test?: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One attempt. JSON-serializable. */
export interface AttemptRecord {
  readonly deliveryId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly endpointId: string;
  readonly version?: string;
  readonly generation: number;
  /** 1-based within its retry budget. */
  readonly attempt: number;
  /** When it started, epoch ms. */
  readonly at: number;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly status?: number;
  /** `timeout`, `connection-refused`, `dns`, `tls`, `http-status`, … */
  readonly failure?: string;
  readonly message?: string;
  readonly responseExcerpt?: string;
  readonly test?: boolean;
}

/** A page of results, newest first. */
export interface LogPage<T> {
  readonly items: readonly T[];
  /** The cursor of the next page; absent on the last. */
  readonly nextCursor?: string;
}

/** Which attempts to list. Times are epoch ms, `from` inclusive, `to` exclusive. */
export interface AttemptQuery {
  endpointId?: string;
  eventId?: string;
  deliveryId?: string;
  /** Only attempts of events of these types. */
  types?: readonly string[];
  /** Only successes (`true`) or failures (`false`). */
  ok?: boolean;
  /** Only attempts answered with this HTTP status. */
  status?: number;
  from?: number;
  to?: number;
  /** 1 to 500. @default 50 */
  limit?: number;
  cursor?: string;
}

/** Which deliveries to list; times select on the event's `createdAt`. */
export interface DeliveryQuery {
  endpointId?: string;
  eventIds?: readonly string[];
  types?: readonly string[];
  status?: DeliveryStatus | readonly DeliveryStatus[];
  from?: number;
  to?: number;
  /** Include synthetic test deliveries. @default true */
  includeTests?: boolean;
  /** 1 to 500. @default 50 */
  limit?: number;
  cursor?: string;
}

/** What `stats()` reads from the log. */
export interface EndpointLogStats {
  readonly attempts: number;
  readonly succeeded: number;
  /** Attempt durations, ms; `undefined` without attempts. */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Deliveries in the dead-letter queue, held, and queued or retrying. */
  readonly dead: number;
  readonly held: number;
  readonly pending: number;
}

/** What one sweep removed. */
export interface SweepResult {
  readonly attempts: number;
  readonly deliveries: number;
  readonly events: number;
}

/**
 * Where events, deliveries and attempts are kept. Every method is one atomic
 * step; `updateDelivery` reads and writes under one lock.
 */
export interface DeliveryLog {
  /** Stores the event; an event already stored under its id is kept as it is. */
  putEvent(event: WebhookEvent): Promise<void>;
  getEvent(id: string): Promise<WebhookEvent | undefined>;
  /** Stores a new delivery; resolves `false` (storing nothing) when its id is taken. */
  insertDelivery(record: DeliveryRecord): Promise<boolean>;
  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  /** Applies `change` atomically; `undefined` when there is no such delivery. */
  updateDelivery(
    id: string,
    change: (current: DeliveryRecord) => DeliveryRecord,
  ): Promise<DeliveryRecord | undefined>;
  recordAttempt(attempt: AttemptRecord): Promise<void>;
  queryAttempts(query?: AttemptQuery): Promise<LogPage<AttemptRecord>>;
  queryDeliveries(query?: DeliveryQuery): Promise<LogPage<DeliveryRecord>>;
  /** Attempts to the endpoint since `since`, and its deliveries by state now. */
  endpointStats(endpointId: string, since: number): Promise<EndpointLogStats>;
  /**
   * Removes what is past retention at `now`: attempts, finished deliveries
   * (delivered, canceled) and events no delivery refers to after
   * `retentionMs`; dead and held deliveries after `deadRetentionMs`.
   */
  sweep(now: number): Promise<SweepResult>;
}

/** Options of {@link MemoryDeliveryLog}. */
export interface MemoryDeliveryLogOptions {
  /** How long attempts and finished deliveries are kept. @default 30 days */
  retentionMs?: number;
  /** How long dead (and held) deliveries are kept, at least `retentionMs`. @default 30 days */
  deadRetentionMs?: number;
}

const DAY = 24 * 60 * 60 * 1000;
/** The default retention of the log and of the dead-letter queue. */
export const DEFAULT_RETENTION_MS = 30 * DAY;
const MAX_LIMIT = 500;

interface Row<T> {
  readonly seq: number;
  value: T;
}

function check(query: { limit?: number; from?: number; to?: number }): number {
  const issues = [];
  const limit = query.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    issues.push({ pointer: '/limit', detail: `must be an integer from 1 to ${MAX_LIMIT}` });
  for (const key of ['from', 'to'] as const) {
    const v = query[key];
    if (v !== undefined && !Number.isFinite(v))
      issues.push({ pointer: `/${key}`, detail: 'must be a time in epoch milliseconds' });
  }
  if (issues.length > 0)
    throw new ValidationError(issues.map((i) => ({ ...i, in: 'query' as const })));
  return limit;
}

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  // Nearest rank: the smallest value with at least p of the values at or below it.
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/** The embedded {@link DeliveryLog}; see the module comment. */
export class MemoryDeliveryLog implements DeliveryLog {
  readonly retentionMs: number;
  readonly deadRetentionMs: number;
  private readonly events = new Map<string, { event: WebhookEvent; storedAt: number }>();
  private readonly deliveries = new Map<string, Row<DeliveryRecord>>();
  private attempts: Row<AttemptRecord>[] = [];
  private seq = 0;
  /** Cursors of this log only: a random key, as nothing outlives the process. */
  private readonly cursors: CursorCodec = createCursorCodec({ secrets: randomBytes(32) });

  constructor(options: MemoryDeliveryLogOptions = {}) {
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.deadRetentionMs =
      options.deadRetentionMs ?? Math.max(DEFAULT_RETENTION_MS, this.retentionMs);
    if (!Number.isSafeInteger(this.retentionMs) || this.retentionMs <= 0)
      throw new TypeError(
        'restwell/webhooks: option "retentionMs" must be a positive integer of ms.',
      );
    if (!Number.isSafeInteger(this.deadRetentionMs) || this.deadRetentionMs < this.retentionMs)
      throw new TypeError(
        'restwell/webhooks: option "deadRetentionMs" must be an integer of ms, at least retentionMs.',
      );
  }

  async putEvent(event: WebhookEvent): Promise<void> {
    if (this.events.has(event.id)) return;
    this.events.set(event.id, {
      event: Object.freeze(JSON.parse(JSON.stringify(event)) as WebhookEvent),
      storedAt: Date.parse(event.createdAt),
    });
  }

  async getEvent(id: string): Promise<WebhookEvent | undefined> {
    return this.events.get(id)?.event;
  }

  async insertDelivery(record: DeliveryRecord): Promise<boolean> {
    if (this.deliveries.has(record.id)) return false;
    this.deliveries.set(record.id, { seq: this.seq++, value: Object.freeze({ ...record }) });
    return true;
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return this.deliveries.get(id)?.value;
  }

  async updateDelivery(
    id: string,
    change: (current: DeliveryRecord) => DeliveryRecord,
  ): Promise<DeliveryRecord | undefined> {
    const row = this.deliveries.get(id);
    if (row === undefined) return undefined;
    row.value = Object.freeze({ ...change(row.value) });
    return row.value;
  }

  async recordAttempt(attempt: AttemptRecord): Promise<void> {
    this.attempts.push({ seq: this.seq++, value: Object.freeze({ ...attempt }) });
  }

  async queryAttempts(query: AttemptQuery = {}): Promise<LogPage<AttemptRecord>> {
    const limit = check(query);
    const { cursor, ...binding } = query;
    const match = (a: AttemptRecord) =>
      (query.endpointId === undefined || a.endpointId === query.endpointId) &&
      (query.eventId === undefined || a.eventId === query.eventId) &&
      (query.deliveryId === undefined || a.deliveryId === query.deliveryId) &&
      (query.types === undefined || query.types.includes(a.eventType)) &&
      (query.ok === undefined || a.ok === query.ok) &&
      (query.status === undefined || a.status === query.status) &&
      (query.from === undefined || a.at >= query.from) &&
      (query.to === undefined || a.at < query.to);
    const rows = this.attempts
      .filter((r) => match(r.value))
      .sort((x, y) => y.value.at - x.value.at || y.seq - x.seq);
    return this.page(rows, (r) => r.value.at, limit, cursor, { attempts: binding });
  }

  async queryDeliveries(query: DeliveryQuery = {}): Promise<LogPage<DeliveryRecord>> {
    const limit = check(query);
    const { cursor, ...binding } = query;
    const statuses =
      query.status === undefined
        ? undefined
        : typeof query.status === 'string'
          ? [query.status]
          : query.status;
    const ids = query.eventIds === undefined ? undefined : new Set(query.eventIds);
    const match = (d: DeliveryRecord) =>
      (query.endpointId === undefined || d.endpointId === query.endpointId) &&
      (ids === undefined || ids.has(d.eventId)) &&
      (query.types === undefined || query.types.includes(d.eventType)) &&
      (statuses === undefined || statuses.includes(d.status)) &&
      (query.from === undefined || d.eventCreatedAt >= query.from) &&
      (query.to === undefined || d.eventCreatedAt < query.to) &&
      (query.includeTests !== false || d.test !== true);
    const rows = [...this.deliveries.values()]
      .filter((r) => match(r.value))
      .sort((x, y) => y.value.createdAt - x.value.createdAt || y.seq - x.seq);
    return this.page(rows, (r) => r.value.createdAt, limit, cursor, { deliveries: binding });
  }

  async endpointStats(endpointId: string, since: number): Promise<EndpointLogStats> {
    const durations: number[] = [];
    let succeeded = 0;
    for (const { value: a } of this.attempts) {
      if (a.endpointId !== endpointId || a.at < since) continue;
      durations.push(a.durationMs);
      if (a.ok) succeeded++;
    }
    durations.sort((a, b) => a - b);
    let dead = 0;
    let held = 0;
    let pending = 0;
    for (const { value: d } of this.deliveries.values()) {
      if (d.endpointId !== endpointId) continue;
      if (d.status === 'dead') dead++;
      else if (d.status === 'held') held++;
      else if (d.status === 'pending' || d.status === 'retrying') pending++;
    }
    const p50Ms = percentile(durations, 0.5);
    const p99Ms = percentile(durations, 0.99);
    return {
      attempts: durations.length,
      succeeded,
      ...(p50Ms === undefined ? {} : { p50Ms }),
      ...(p99Ms === undefined ? {} : { p99Ms }),
      dead,
      held,
      pending,
    };
  }

  async sweep(now: number): Promise<SweepResult> {
    const before = this.attempts.length;
    this.attempts = this.attempts.filter((r) => r.value.at >= now - this.retentionMs);
    let deliveries = 0;
    const referenced = new Set<string>();
    for (const [id, { value: d }] of this.deliveries) {
      const kept =
        d.status === 'dead' || d.status === 'held'
          ? this.deadRetentionMs
          : d.status === 'delivered' || d.status === 'canceled'
            ? this.retentionMs
            : Number.POSITIVE_INFINITY;
      if (d.updatedAt < now - kept) {
        this.deliveries.delete(id);
        deliveries++;
      } else referenced.add(d.eventId);
    }
    let events = 0;
    for (const [id, { storedAt }] of this.events) {
      if (!referenced.has(id) && storedAt < now - this.retentionMs) {
        this.events.delete(id);
        events++;
      }
    }
    return { attempts: before - this.attempts.length, deliveries, events };
  }

  /** Keyset paging over rows sorted by (key desc, seq desc). */
  private page<T>(
    rows: readonly Row<T>[],
    key: (row: Row<T>) => number,
    limit: number,
    cursor: string | undefined,
    binding: unknown,
  ): LogPage<T> {
    // Absent members and the default limit spelled out: equal queries, equal bindings.
    binding = JSON.parse(JSON.stringify({ binding, limit }));
    let start = 0;
    if (cursor !== undefined) {
      const [k, s] = this.cursors.decode(cursor, binding) as [number, number];
      start = rows.findIndex((r) => key(r) < k || (key(r) === k && r.seq < s));
      if (start === -1) start = rows.length;
    }
    const slice = rows.slice(start, start + limit);
    const last = slice[slice.length - 1];
    const more = start + limit < rows.length;
    return {
      items: slice.map((r) => r.value),
      ...(more && last !== undefined
        ? { nextCursor: this.cursors.encode([key(last), last.seq], binding) }
        : {}),
    };
  }
}
