/**
 * What the admin API reads and writes: the JSON representations of
 * endpoints, deliveries, attempts, dead letters and stats (times as RFC 3339
 * date-times in UTC, secrets never), and the strict readers of its query
 * parameters and bodies, which gather every problem into one 400.
 */
import type { ValidationIssue } from '../../core/errors.js';
import { echo, parseInstant, queryIssue, readInteger, single } from '../../pagination/params.js';
import type { EndpointStats } from './delivery.js';
import type { WebhookEndpoint } from './endpoints.js';
import type { EndpointHealthAlert } from './health.js';
import { ID_PATTERN, isEventType, type WebhookEvent } from './events.js';
import type { AttemptRecord, DeliveryRecord, DeliveryStatus } from './log.js';

/** An instant of the engine (epoch ms) as RFC 3339 in UTC. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** An endpoint as the admin API shows it: everything but its secrets, times as RFC 3339. */
export interface EndpointView {
  readonly id: string;
  readonly url: string;
  readonly description?: string;
  readonly eventTypes: readonly string[];
  readonly versions: readonly string[];
  readonly payload: 'fat' | 'thin';
  readonly concurrency: number;
  readonly rateLimitPerSecond?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly disabled?: { readonly by: string; readonly reason: string; readonly at: string };
  /** Until when a rotated-out secret still signs. */
  readonly rotationEndsAt?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * The view of an endpoint. Built member by member from what may be shown,
 * rather than by removing `secrets`: a field a store adds later is not shown
 * until it is listed here.
 */
export function endpointView(e: WebhookEndpoint): EndpointView {
  return {
    id: e.id,
    url: e.url,
    ...(e.description === undefined ? {} : { description: e.description }),
    eventTypes: e.eventTypes,
    versions: e.versions,
    payload: e.payload,
    concurrency: e.concurrency,
    ...(e.rateLimitPerSecond === undefined ? {} : { rateLimitPerSecond: e.rateLimitPerSecond }),
    ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
    ...(e.disabled === undefined
      ? {}
      : { disabled: { by: e.disabled.by, reason: e.disabled.reason, at: iso(e.disabled.at) } }),
    ...(e.rotationEndsAt === undefined ? {} : { rotationEndsAt: iso(e.rotationEndsAt) }),
    createdAt: iso(e.createdAt),
    updatedAt: iso(e.updatedAt),
  };
}

export function deliveryView(d: DeliveryRecord) {
  return {
    id: d.id,
    eventId: d.eventId,
    eventType: d.eventType,
    eventCreatedAt: iso(d.eventCreatedAt),
    endpointId: d.endpointId,
    ...(d.version === undefined ? {} : { version: d.version }),
    status: d.status,
    generation: d.generation,
    attempts: d.attempts,
    totalAttempts: d.totalAttempts,
    ...(d.nextAttemptAt === undefined ? {} : { nextAttemptAt: iso(d.nextAttemptAt) }),
    ...(d.deadReason === undefined ? {} : { deadReason: d.deadReason }),
    ...(d.lastStatus === undefined ? {} : { lastStatus: d.lastStatus }),
    ...(d.lastFailure === undefined ? {} : { lastFailure: d.lastFailure }),
    ...(d.test === true ? { test: true } : {}),
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

export function attemptView(a: AttemptRecord) {
  return {
    deliveryId: a.deliveryId,
    eventId: a.eventId,
    eventType: a.eventType,
    endpointId: a.endpointId,
    ...(a.version === undefined ? {} : { version: a.version }),
    generation: a.generation,
    attempt: a.attempt,
    at: iso(a.at),
    durationMs: a.durationMs,
    ok: a.ok,
    ...(a.status === undefined ? {} : { status: a.status }),
    ...(a.failure === undefined ? {} : { failure: a.failure }),
    ...(a.message === undefined ? {} : { message: a.message }),
    ...(a.responseExcerpt === undefined ? {} : { responseExcerpt: a.responseExcerpt }),
    ...(a.test === true ? { test: true } : {}),
  };
}

export function eventView(e: WebhookEvent) {
  return {
    id: e.id,
    type: e.type,
    createdAt: e.createdAt,
    ...(e.sequence === undefined ? {} : { sequence: e.sequence }),
    ...(e.resource === undefined ? {} : { resource: e.resource }),
    data: e.data,
    ...(e.test === true ? { test: true } : {}),
  };
}

export function statsView(s: EndpointStats) {
  const alert = s.health.alert;
  return {
    endpointId: s.endpointId,
    windowMs: s.windowMs,
    attempts: s.attempts,
    succeeded: s.succeeded,
    // JSON has no undefined: an endpoint without attempts has no rate yet, said as null.
    successRate: s.successRate ?? null,
    p50Ms: s.p50Ms ?? null,
    p99Ms: s.p99Ms ?? null,
    breaker: s.breaker,
    dlq: s.dlq,
    held: s.held,
    pending: s.pending,
    health: {
      attempts: s.health.attempts,
      failures: s.health.failures,
      failureRatio: s.health.failureRatio ?? null,
      ...(alert === undefined ? {} : { alert: alertView(alert) }),
    },
  };
}

function alertView(alert: EndpointHealthAlert) {
  return {
    failureRatio: alert.failureRatio,
    attempts: alert.attempts,
    failures: alert.failures,
    since: iso(alert.since),
    ...(alert.disableAt === undefined ? {} : { disableAt: iso(alert.disableAt) }),
  };
}

const STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'retrying',
  'delivered',
  'held',
  'dead',
  'canceled',
];

/** Most values in one comma-separated list parameter. */
const MAX_LIST = 100;
/** Most event ids a replay names. */
export const MAX_EVENT_IDS = 1000;

/** Refuses query parameters a list does not read: a misspelt filter must not list everything. */
export function checkQueryNames(
  query: URLSearchParams,
  known: readonly string[],
  issues: ValidationIssue[],
): void {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (known.includes(name) || seen.has(name)) continue;
    seen.add(name);
    if (seen.size > 20) break;
    issues.push(queryIssue(name, `is not a parameter of this list; it takes ${known.join(', ')}.`));
  }
}

/** A comma-separated list parameter, each value checked. */
export function readList(
  query: URLSearchParams,
  name: string,
  check: (value: string) => boolean,
  what: string,
  issues: ValidationIssue[],
): string[] | undefined {
  const raw = single(query, name, issues);
  if (raw === undefined) return undefined;
  const values = raw.split(',');
  if (values.length > MAX_LIST) {
    issues.push(queryIssue(name, `${name} takes at most ${MAX_LIST} values.`));
    return undefined;
  }
  const bad = values.find((v) => !check(v));
  if (bad !== undefined) {
    issues.push(
      queryIssue(name, `${name} must be a comma-separated list of ${what}; got ${echo(bad)}.`),
    );
    return undefined;
  }
  return [...new Set(values)];
}

export function readStatuses(
  query: URLSearchParams,
  issues: ValidationIssue[],
): DeliveryStatus[] | undefined {
  return readList(
    query,
    'status',
    (v) => (STATUSES as readonly string[]).includes(v),
    `delivery states (${STATUSES.join(', ')})`,
    issues,
  ) as DeliveryStatus[] | undefined;
}

export function readTypes(query: URLSearchParams, issues: ValidationIssue[]) {
  return readList(query, 'type', isEventType, 'event types', issues);
}

export function readId(
  query: URLSearchParams,
  name: string,
  issues: ValidationIssue[],
): string | undefined {
  const raw = single(query, name, issues);
  if (raw === undefined) return undefined;
  if (!ID_PATTERN.test(raw)) {
    issues.push(
      queryIssue(name, `${name} must be an id of A-Z, a-z, 0-9, "_" and "-"; got ${echo(raw)}.`),
    );
    return undefined;
  }
  return raw;
}

/** RFC 3339 to epoch ms, rounded up: events carry ms, so `[from, to)` keeps its meaning. */
export function instantMs(raw: string): number | undefined {
  const at = parseInstant(raw);
  if (at === undefined) return undefined;
  const { micros } = at;
  const ms = micros >= 0n ? (micros + 999n) / 1000n : micros / 1000n;
  const n = Number(ms);
  // The range of an ECMAScript Date, so that every instant renders back.
  return Math.abs(n) <= 8.64e15 ? n : undefined;
}

const TIME_DETAIL = 'must be an RFC 3339 date-time such as 2026-01-31T09:30:00Z';

/** `from` (inclusive) and `to` (exclusive), from the query or a body; `to` after `from`. */
export function readRange(
  get: (name: 'from' | 'to') => unknown,
  issue: (name: 'from' | 'to', detail: string) => void,
): { from?: number; to?: number } {
  const out: { from?: number; to?: number } = {};
  for (const name of ['from', 'to'] as const) {
    const raw = get(name);
    if (raw === undefined) continue;
    const ms = typeof raw === 'string' ? instantMs(raw) : undefined;
    if (ms === undefined) issue(name, TIME_DETAIL);
    else out[name] = ms;
  }
  if (out.from !== undefined && out.to !== undefined && out.to <= out.from)
    issue('to', 'must be later than from: the range is [from, to)');
  return out;
}

export function readQueryRange(query: URLSearchParams, issues: ValidationIssue[]) {
  return readRange(
    (name) => single(query, name, issues),
    (name, detail) => issues.push(queryIssue(name, `${name} ${detail}.`)),
  );
}

/** `limit`: 1 to 100, 20 when absent. */
export function readLimit(query: URLSearchParams, issues: ValidationIssue[]): number {
  const raw = single(query, 'limit', issues);
  if (raw === undefined) return 20;
  return readInteger(raw, 'limit', 1, 100, issues) ?? 20;
}

/** A body's members checked against the fields an action takes; an absent body is `{}`. */
export function bodyFields(
  body: unknown,
  known: readonly string[],
  issues: ValidationIssue[],
): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    issues.push({ pointer: '', detail: 'must be an object', in: 'body' });
    return {};
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!known.includes(key))
      issues.push({
        pointer: `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        detail:
          known.length === 0
            ? 'is not a field: this action takes no body'
            : `is not a field of this action; it takes ${known.join(', ')}`,
        in: 'body',
      });
  }
  return fields;
}
