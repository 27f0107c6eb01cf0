/**
 * Events: what `dispatch()` takes and what every delivery's body is made of.
 *
 * An event is `{ id, type, createdAt, sequence?, resource?, data }`. The body
 * sent (before shaping for an endpoint's version) is its JSON envelope:
 *
 * ```json
 * { "id": "evt_…", "type": "payment.succeeded", "created_at": "2025-06-01T12:00:00.000Z",
 *   "sequence": 3, "resource": { "type": "payment", "id": "pay_123" }, "data": { … } }
 * ```
 *
 * A fat payload carries `data`, the resource's snapshot; a thin one (an
 * endpoint's `payload: 'thin'`) leaves `data` out and carries `resource`, for
 * the receiver to fetch the latest state (the re-fetch pattern). `sequence`
 * orders the events of one resource (apply only if newer); `created_at` is
 * the other ordering signal.
 */
import { randomBytes } from 'node:crypto';
import { ValidationError, type ValidationIssue } from '../../core/errors.js';

/** The resource an event is about: what a thin payload carries, and what sequences count per. */
export interface EventResource {
  /** `payment`. */
  readonly type: string;
  /** `pay_123`. */
  readonly id: string;
}

/** An event, as stored and delivered. JSON-serializable. */
export interface WebhookEvent<T = unknown> {
  /** `evt_` + 26 base32 characters unless given: what receivers dedupe by. */
  readonly id: string;
  /** `payment.succeeded`: dot-separated segments of `a-z`, `0-9`, `_` and `-`. */
  readonly type: string;
  /** When it happened, ISO 8601 in UTC (`created_at` on the wire). */
  readonly createdAt: string;
  /** Its place among the events of `resource`, from 1. */
  readonly sequence?: number;
  readonly resource?: EventResource;
  /** The payload: a snapshot of the resource (fat) or whatever the application sends. */
  readonly data: T;
  /** A synthetic event from `sendTestEvent()`: it never describes real data. */
  readonly test?: boolean;
}

/** What `dispatch()` accepts: an event whose id and `createdAt` may be left to the engine. */
export interface EventInput<T = unknown> {
  id?: string;
  type: string;
  /** A Date, epoch milliseconds or an ISO 8601 date-time. @default now */
  createdAt?: Date | number | string;
  sequence?: number;
  resource?: EventResource;
  data: T;
}

/** Ids: safe in a Standard Webhooks `webhook-id`, in a queue's job id and in a URL. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
/** Event types and filter segments. */
const TYPE_SEGMENT = /^[a-z0-9_-]+$/;
const MAX_TYPE_LENGTH = 200;
const MAX_TIME_MS = 8.64e15;
/** The default bound of an event's `data`, as JSON in UTF-8. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** A new id, `<prefix>_` and 26 random characters of Crockford base32 (130 bits). */
export function generateId(prefix: string): string {
  const bytes = randomBytes(26);
  let out = '';
  // 256 is a multiple of 32: each character is uniform.
  for (let i = 0; i < 26; i++) out += CROCKFORD[bytes[i]! % 32];
  return `${prefix}_${out}`;
}

/** Whether `type` is an event type: `payment.succeeded`. */
export function isEventType(type: unknown): type is string {
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TYPE_LENGTH) return false;
  return type.split('.').every((segment) => TYPE_SEGMENT.test(segment));
}

/**
 * Whether an event-type filter is valid: `*`, an exact type, or a type prefix
 * followed by `.*` (`payment.*` matches `payment.created` and
 * `payment.refund.created`, not `payment` itself).
 */
export function isEventFilter(filter: unknown): filter is string {
  if (filter === '*') return true;
  if (typeof filter !== 'string') return false;
  return filter.endsWith('.*') ? isEventType(filter.slice(0, -2)) : isEventType(filter);
}

/** Whether `type` matches one of `filters` (see {@link isEventFilter}). */
export function matchesFilters(type: string, filters: readonly string[]): boolean {
  for (const filter of filters) {
    if (filter === '*' || filter === type) return true;
    if (filter.endsWith('.*') && type.startsWith(filter.slice(0, -1))) return true;
  }
  return false;
}

function toIso(value: Date | number | string, issues: ValidationIssue[]): string {
  const ms =
    value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
  // ±8.64e15 ms is the range of a Date (ECMA-262 §21.4.1.1): past it toISOString throws.
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME_MS) {
    issues.push({ pointer: '/createdAt', detail: 'must be a date', in: 'body' });
    return '';
  }
  return new Date(ms).toISOString();
}

/**
 * Checks an event and completes it: an id when absent, `createdAt` from the
 * clock. Every problem at once, as a 400 `ValidationError`; `data` must be
 * JSON (it is stored and queued as JSON), which is checked by serializing it,
 * of at most `maxDataBytes` bytes.
 */
export function createEvent<T>(
  input: EventInput<T>,
  now: () => number,
  maxDataBytes: number = DEFAULT_MAX_EVENT_BYTES,
): WebhookEvent<T> {
  const issues: ValidationIssue[] = [];
  if (input === null || typeof input !== 'object') {
    throw new ValidationError([{ pointer: '', detail: 'must be an event object', in: 'body' }]);
  }
  const id = input.id ?? generateId('evt');
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    issues.push({
      pointer: '/id',
      detail: 'must be 1 to 100 characters of A-Z, a-z, 0-9, "_" and "-"',
      in: 'body',
    });
  }
  if (!isEventType(input.type)) {
    issues.push({
      pointer: '/type',
      detail: 'must be dot-separated segments of a-z, 0-9, "_" and "-" (payment.succeeded)',
      in: 'body',
    });
  }
  const createdAt = toIso(input.createdAt ?? now(), issues);
  if (
    input.sequence !== undefined &&
    (!Number.isSafeInteger(input.sequence) || input.sequence < 1)
  ) {
    issues.push({ pointer: '/sequence', detail: 'must be a positive integer', in: 'body' });
  }
  const resource = input.resource;
  if (resource !== undefined) {
    if (
      resource === null ||
      typeof resource !== 'object' ||
      typeof resource.type !== 'string' ||
      !TYPE_SEGMENT.test(resource.type) ||
      typeof resource.id !== 'string' ||
      resource.id.length === 0 ||
      resource.id.length > 200
    ) {
      issues.push({
        pointer: '/resource',
        detail:
          'must be { type, id }: a type of a-z, 0-9, "_" and "-", and an id of 1 to 200 characters',
        in: 'body',
      });
    }
  }
  let data: T = input.data;
  try {
    const text = JSON.stringify(input.data);
    if (text === undefined) throw new TypeError('not JSON');
    // Bounded: the event is stored, and sent on every attempt of every endpoint.
    if (text.length > maxDataBytes || Buffer.byteLength(text, 'utf8') > maxDataBytes) {
      issues.push({
        pointer: '/data',
        detail: `must be at most ${maxDataBytes} bytes as JSON`,
        in: 'body',
      });
    } else {
      data = JSON.parse(text) as T;
    }
  } catch {
    issues.push({
      pointer: '/data',
      detail: 'must be JSON data (no BigInt, no cycles, no functions)',
      in: 'body',
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return {
    id,
    type: input.type,
    createdAt,
    ...(input.sequence === undefined ? {} : { sequence: input.sequence }),
    ...(resource === undefined ? {} : { resource: { type: resource.type, id: resource.id } }),
    data,
  };
}

/** The JSON envelope of an event, as sent: see the module's comment. */
export function eventEnvelope(
  event: WebhookEvent,
  payload: 'fat' | 'thin',
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: event.id,
    type: event.type,
    created_at: event.createdAt,
  };
  if (event.sequence !== undefined) body.sequence = event.sequence;
  if (event.resource !== undefined) body.resource = { ...event.resource };
  if (payload === 'fat') body.data = event.data;
  if (event.test === true) body.test = true;
  return body;
}

/**
 * Numbers the events of each resource: 1, 2, 3… per key. A contract, so that
 * a database sequence (or a counter column updated in the business write's
 * own transaction) can stand in for the in-memory one.
 */
export interface EventSequencer {
  /** The next number for `resource` (`payment:pay_123`). */
  next(resource: string): number | Promise<number>;
}

/**
 * An in-memory {@link EventSequencer}. Numbers restart with the process: for
 * sequences that receivers compare across restarts, keep the counter beside
 * the resource in the database.
 */
export function memorySequencer(): EventSequencer & { peek(resource: string): number } {
  const counters = new Map<string, number>();
  return {
    next(resource) {
      const n = (counters.get(resource) ?? 0) + 1;
      counters.set(resource, n);
      return n;
    },
    peek: (resource) => counters.get(resource) ?? 0,
  };
}
