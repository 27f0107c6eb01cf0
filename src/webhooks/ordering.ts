/**
 * Deliveries arrive out of order: the seed's `payment.created` takes a slow
 * path and lands after `payment.success`, and applied naively it sets the
 * payment back to pending. Two remedies:
 *
 * - {@link EventOrder}: keep each resource's state with the position of the
 *   event that wrote it (a sequence number, or `created_at`), and apply an
 *   event only if its position is newer, as one atomic compare-and-set on a
 *   ledger store. For state in the application's own PostgreSQL tables,
 *   `upsertIfNewer()` does the same in one statement.
 * - {@link refetcher}: treat the event as a nudge and fetch the resource from
 *   the source of truth; ordering stops mattering, since whatever is fetched
 *   last is the latest.
 */
import { checkOptions, invalidOption } from '../core/errors.js';
import { assertLedger, MAX_TTL_MS, type Store } from '../stores/types.js';

/**
 * Where an event stands in its resource's history: a sequence number (a
 * non-negative integer, a bigint, or a string of decimal digits) or a time (a
 * `Date`, or an RFC 3339 date-time string, compared to the nanosecond). One
 * resource uses one kind throughout.
 */
export type EventPosition = number | bigint | string | Date;

/** A position reduced to something comparable: its kind, and a bigint. */
interface Ordinal {
  readonly kind: 'seq' | 'time';
  readonly at: bigint;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * Whether the fields of an RFC 3339 date-time are in range (§5.7): a day that
 * exists in its month, hours 00-23, minutes and seconds 00-59, an offset of at
 * most 23:59. `Date.parse` rolls `02-30` over to March and reads `24:00` as the
 * next day, which would give one instant two spellings. A leap second (`:60`)
 * is refused too: no webhook sender writes one, and it has no instant of its own.
 */
function validDateTime(m: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  if (day > days) return false;
  return m[9] === undefined || (Number(m[9]) <= 23 && Number(m[10]) <= 59);
}

/** The comparable form of a position, or a TypeError naming what is wrong with it. */
export function ordinalOf(position: EventPosition): Ordinal {
  if (typeof position === 'number') {
    if (Number.isSafeInteger(position) && position >= 0)
      return { kind: 'seq', at: BigInt(position) };
  } else if (typeof position === 'bigint') {
    if (position >= 0n) return { kind: 'seq', at: position };
  } else if (position instanceof Date) {
    const ms = position.getTime();
    if (Number.isFinite(ms)) return { kind: 'time', at: BigInt(ms) * 1_000_000n };
  } else if (typeof position === 'string') {
    if (/^(?:0|[1-9][0-9]{0,38})$/.test(position)) return { kind: 'seq', at: BigInt(position) };
    const m = RFC3339.exec(position);
    if (m !== null && validDateTime(m)) {
      const ms = Date.parse(
        `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]!.toUpperCase()}`,
      );
      if (Number.isFinite(ms)) {
        const fraction = BigInt((m[7] ?? '').padEnd(9, '0'));
        return { kind: 'time', at: BigInt(ms) * 1_000_000n + fraction };
      }
    }
  }
  throw new TypeError(
    'restwell/webhooks: an event position must be a non-negative integer (number, bigint or decimal string), a valid Date, or an RFC 3339 date-time.',
  );
}

/** Options of {@link EventOrder}. */
export interface EventOrderOptions {
  /** Where each resource's latest state is kept: a ledger store (never evicting). Required. */
  store: Store;
  /**
   * How long a resource's state is kept after its last change: longer than the
   * sender's retry window, or a late, older event could be applied once it
   * expired. @default 604_800_000 (7 days)
   */
  ttlMs?: number;
  /** Keeps several orders apart in one store. @default 'order' */
  namespace?: string;
}

/** A resource's state and the position of the event that wrote it. */
export interface OrderedState<T> {
  /**
   * The position, as a decimal string: a sequence, or nanoseconds since the epoch
   * for a time (negative before 1970).
   */
  readonly position: string;
  /** Whether `position` is a sequence or a time. */
  readonly kind: 'seq' | 'time';
  /** The state the event wrote. */
  readonly value: T;
}

/** What {@link EventOrder.apply} did. */
export interface ApplyOutcome<T> {
  /** `true` when this event was newer and its value is now the state. */
  readonly applied: boolean;
  /** The state after the call: this event's, or the newer one that was kept. */
  readonly current: OrderedState<T>;
}

interface StoredState {
  v: 1;
  k: 'seq' | 'time';
  p: string;
  value: unknown;
}

/**
 * Per-resource state written only by newer events, atomically, on a ledger
 * store: `apply(resource, position, value)` writes `value` when `position` is
 * newer than the stored one and keeps the stored state otherwise (an equal
 * position is a duplicate, kept too). Concurrent calls for one resource end
 * with the newest value, whatever order they run in: each is a
 * compare-and-set that retries when another write came first.
 *
 * @example
 * ```ts
 * const payments = new EventOrder({ store });
 * // payment.success (sequence 2) arrived first; payment.created (sequence 1) now:
 * const { applied, current } = await payments.apply('pay_123', event.sequence, { status: event.status });
 * // applied === false, current.value.status === 'succeeded'
 * ```
 */
export class EventOrder<T = unknown> {
  private readonly store: Store;
  private readonly ttlMs: number;
  private readonly namespace: string;

  constructor(options: EventOrderOptions) {
    checkOptions('webhooks', options, ['store', 'ttlMs', 'namespace']);
    const {
      store,
      ttlMs = 604_800_000,
      namespace = 'order',
    } = options ?? ({} as EventOrderOptions);
    if (store === null || typeof store !== 'object' || typeof store.compareAndSet !== 'function')
      invalidOption('webhooks', 'store', 'a Store (MemoryStore, RedisStore, PostgresStore)', store);
    assertLedger('webhooks', store);
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS)
      invalidOption(
        'webhooks',
        'ttlMs',
        `a positive number of milliseconds up to ${MAX_TTL_MS}`,
        ttlMs,
      );
    if (typeof namespace !== 'string' || !/^[\w.-]{1,64}$/.test(namespace))
      invalidOption(
        'webhooks',
        'namespace',
        'a name of letters, digits, _, . and - (at most 64)',
        namespace,
      );
    this.store = store;
    this.ttlMs = ttlMs;
    this.namespace = namespace;
  }

  private keyOf(resource: string): string {
    if (
      typeof resource !== 'string' ||
      resource.length === 0 ||
      resource.length > 512 ||
      resource.includes('\0')
    )
      throw new TypeError(
        'restwell/webhooks: a resource key must be a string of 1 to 512 characters without U+0000.',
      );
    return `${this.namespace}:${resource}`;
  }

  /** The resource's state, or `undefined` when none is kept. */
  async get(resource: string): Promise<OrderedState<T> | undefined> {
    const text = await this.store.get(this.keyOf(resource));
    return text === null ? undefined : this.read(text);
  }

  /**
   * Writes `value` as the resource's state if `position` is newer than the
   * stored one. `value` must be JSON-serialisable. Throws a TypeError for a
   * position that is not one (see {@link EventPosition}) or of another kind
   * than the stored one, and the store's error when it cannot answer.
   */
  async apply(resource: string, position: EventPosition, value: T): Promise<ApplyOutcome<T>> {
    const key = this.keyOf(resource);
    const incoming = ordinalOf(position);
    const record: StoredState = { v: 1, k: incoming.kind, p: incoming.at.toString(), value };
    const text = JSON.stringify(record);
    const mine: OrderedState<T> = { position: record.p, kind: record.k, value };
    // Lock-free: every lost race means another write landed, so this ends.
    for (;;) {
      const current = await this.store.get(key);
      if (current === null) {
        if (await this.store.add(key, text, this.ttlMs)) return { applied: true, current: mine };
        continue;
      }
      const stored = this.read(current);
      if (stored.kind !== incoming.kind)
        throw new TypeError(
          `restwell/webhooks: resource ${JSON.stringify(resource.slice(0, 64))} is ordered by ${stored.kind === 'seq' ? 'sequence' : 'time'}, and this event gives a ${incoming.kind === 'seq' ? 'sequence' : 'time'}.`,
        );
      if (incoming.at <= BigInt(stored.position)) return { applied: false, current: stored };
      if (await this.store.compareAndSet(key, current, text, this.ttlMs))
        return { applied: true, current: mine };
    }
  }

  private read(text: string): OrderedState<T> {
    const record = JSON.parse(text) as StoredState;
    // A time before 1970 is a negative count of nanoseconds; a sequence is never negative.
    const digits = record?.k === 'time' ? /^-?\d+$/ : /^\d+$/;
    if (
      record?.v !== 1 ||
      (record.k !== 'seq' && record.k !== 'time') ||
      typeof record.p !== 'string' ||
      !digits.test(record.p)
    )
      throw new TypeError(
        'restwell/webhooks: the store holds an ordering record this version cannot read.',
      );
    return { position: record.p, kind: record.k, value: record.value as T };
  }
}

/** Options of {@link refetcher}. */
export interface RefetcherOptions<R> {
  /** Fetches the resource's current state from the source of truth (`GET /payments/{id}`). Required. */
  fetch: (id: string) => Promise<R>;
  /** Stores what was fetched. Required. */
  apply: (id: string, resource: R) => void | Promise<void>;
}

/** Turns nudges into fetches; see {@link refetcher}. */
export interface Refetcher {
  /**
   * Says that resource `id` changed. Resolves once a fetch that started after
   * this call has been applied; rejects with that fetch's (or apply's) error.
   */
  nudge(id: string): Promise<void>;
  /** How many resources are being fetched right now. */
  readonly active: number;
}

interface FetchSlot {
  /** The fetch running now. */
  running: Promise<void>;
  /** The one fetch queued behind it, shared by every nudge that came meanwhile. */
  queued: Promise<void> | undefined;
}

/**
 * The re-fetch pattern as a helper: every event about a resource is a nudge,
 * its payload is ignored, and the resource is fetched from the source of
 * truth and applied. Nudges for one resource are coalesced: at most one fetch
 * runs per resource in this process, and nudges arriving while it runs share
 * one more fetch after it, so a burst of N events costs two fetches, and the
 * last fetch always starts after the last nudge. Across processes, apply with
 * {@link EventOrder} (or `upsertIfNewer`) on the resource's own version, so
 * that a slow fetch of an older state cannot overwrite a newer one.
 *
 * @example
 * ```ts
 * const payments = refetcher({
 *   fetch: (id) => api.get(`/v1/payments/${id}`),
 *   apply: (id, payment) => db.payments.put(id, payment),
 * });
 * await payments.nudge(event.data.paymentId);
 * ```
 */
export function refetcher<R>(options: RefetcherOptions<R>): Refetcher {
  checkOptions('webhooks', options, ['fetch', 'apply']);
  const { fetch, apply } = options ?? ({} as RefetcherOptions<R>);
  if (typeof fetch !== 'function') invalidOption('webhooks', 'fetch', 'a function', fetch);
  if (typeof apply !== 'function') invalidOption('webhooks', 'apply', 'a function', apply);
  const slots = new Map<string, FetchSlot>();

  const fetchAndApply = async (id: string): Promise<void> => {
    const resource = await fetch(id);
    await apply(id, resource);
  };

  function start(id: string, slot: FetchSlot | undefined): Promise<void> {
    const running = fetchAndApply(id);
    const current: FetchSlot = slot ?? { running, queued: undefined };
    current.running = running;
    slots.set(id, current);
    const after = (): void => {
      // The slot is freed only if nothing queued behind this fetch.
      if (current.queued === undefined && slots.get(id) === current) slots.delete(id);
    };
    running.then(after, after);
    return running;
  }

  return {
    nudge(id: string): Promise<void> {
      if (typeof id !== 'string' || id.length === 0)
        return Promise.reject(
          new TypeError('restwell/webhooks: a resource id must be a non-empty string.'),
        );
      const slot = slots.get(id);
      if (slot === undefined) return start(id, undefined);
      if (slot.queued === undefined) {
        const settled = slot.running.then(
          () => {},
          () => {},
        );
        slot.queued = settled.then(() => {
          slot.queued = undefined;
          return start(id, slot);
        });
      }
      return slot.queued;
    },
    get active() {
      return slots.size;
    },
  };
}
