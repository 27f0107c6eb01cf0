/**
 * `audit()`: records every write after its response, chained and optionally
 * checkpointed, without ever failing or delaying the request. Records go to a
 * bounded in-memory buffer that one background loop appends to the sink, in
 * order, retrying with backoff while the sink fails. When the buffer is full
 * a record is dropped and counted, and the count is itself appended as an
 * `audit.dropped` record once the sink takes records again.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import { type Context, type Middleware, type Next, principalId } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { defaultLogger, type Logger, LogThrottle, serializeError } from '../core/logger.js';
import { problemInitFrom } from '../core/problem.js';
import { canonicalJson } from '../idempotency/canonical-json.js';
import {
  type AuditEvent,
  type AuditSink,
  type ChainedRecord,
  type ChainHead,
  chainRecord,
} from './chain.js';
import { type AuditCheckpoint, checkEd25519, signCheckpoint } from './checkpoint.js';

/** Options of the checkpoints `audit()` signs. */
export interface AuditCheckpointOptions {
  /** The ed25519 private key checkpoints are signed with. Required. */
  privateKey: KeyObject;
  /**
   * Where checkpoints go: somewhere other than the log (another store, a
   * bucket, another team's system), or they prove nothing. Required.
   */
  write: (checkpoint: AuditCheckpoint) => void | Promise<void>;
  /** A checkpoint after this many records. @default 1000 */
  everyRecords?: number;
  /** A checkpoint after this long, when records were appended since the last. @default 60000 */
  everyMs?: number;
}

/** Options of {@link audit}. */
export interface AuditOptions {
  /** Where records are appended (`streamSink`, `callbackSink`, `redisStreamSink`, `postgresSink`). Required. */
  sink: AuditSink;
  /**
   * The chain key (HMAC-SHA256), at least 32 bytes, kept apart from the log:
   * whoever holds it can recompute a chain. Required.
   */
  key: string | Uint8Array;
  /** The log's name: one chain. @default 'api' */
  log?: string;
  /** The methods recorded. @default ['POST', 'PUT', 'PATCH', 'DELETE'] */
  methods?: readonly string[];
  /**
   * Body members (at any depth, names compared case-insensitively) replaced
   * by `"[redacted]"` before the payload is hashed: a hash of a low-entropy
   * secret can be reversed by guessing.
   * @default password, secret, token, apiKey, api_key, cardNumber, cvc
   */
  redactFields?: readonly string[];
  /** Signed checkpoints; without them a truncated tail cannot be detected. @default undefined */
  checkpoints?: AuditCheckpointOptions;
  /** Records held while the sink is slow or down; beyond it they are dropped and counted. @default 10000 */
  maxBuffer?: number;
  /** The longest one append may take before it is retried. @default 2000 */
  timeoutMs?: number;
  /** Where sink failures are reported, at most one line per 10 s. @default the default JSON logger */
  logger?: Logger;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** What `audit()` returns: the middleware, and control of its background loop. */
export interface AuditMiddleware extends Middleware {
  /**
   * Resolves once every buffered record is appended, or after `withinMs`
   * (default: `timeoutMs` for each buffered record, plus one) while the sink
   * is failing.
   */
  flush(withinMs?: number): Promise<void>;
  /** Flushes, signs a last checkpoint, and stops. */
  close(): Promise<void>;
  /** Records appended, dropped and waiting. */
  stats(): { appended: number; dropped: number; pending: number };
}

const KNOWN = [
  'sink',
  'key',
  'log',
  'methods',
  'redactFields',
  'checkpoints',
  'maxBuffer',
  'timeoutMs',
  'logger',
  'now',
];
const DEFAULT_REDACT = ['password', 'secret', 'token', 'apiKey', 'api_key', 'cardNumber', 'cvc'];
const MAX_USER_AGENT = 512;
/** Most records one batch append carries (sinks with `appendMany`). */
const MAX_BATCH = 100;

class TimeoutError extends Error {}

/** `promise`, or a TimeoutError after `ms`; the timer never keeps the process alive. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`${what} took more than ${ms} ms`)), ms);
        timer.unref?.();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function names(
  option: string,
  value: unknown,
  fallback: readonly string[],
  what: string,
): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    invalidOption('audit', option, `an array of ${what}`, value);
  }
  return value as string[];
}

function integer(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalidOption('audit', name, 'an integer from 1', value);
  }
  return value;
}

/** The value `JSON.stringify` writes in place of `value`: its `toJSON()` result, once. */
function jsonValue(value: unknown): unknown {
  return value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
}

type Step =
  | { source: unknown; target: Record<string, unknown> | unknown[]; key: string | number }
  | { leave: object };

/**
 * A copy of a JSON value with the named members replaced by `"[redacted]"`,
 * at any depth: an explicit stack, so that a body nested 10,000 levels (which
 * `express.json()` lets through) costs heap, not call stack. Copies are
 * objects without a prototype, so that a member named `__proto__` stays a
 * member. A cycle throws, as it does in `JSON.stringify`.
 */
function redact(value: unknown, names: ReadonlySet<string>): unknown {
  const root: Record<string, unknown> = Object.create(null);
  const open = new Set<object>();
  const steps: Step[] = [{ source: value, target: root, key: 'value' }];
  for (let step = steps.pop(); step !== undefined; step = steps.pop()) {
    if ('leave' in step) {
      open.delete(step.leave);
      continue;
    }
    const source = jsonValue(step.source);
    const { target, key } = step;
    if (source === null || typeof source !== 'object' || source instanceof Uint8Array) {
      (target as Record<string | number, unknown>)[key] = source;
      continue;
    }
    if (open.has(source)) throw new TypeError('Converting circular structure to JSON');
    open.add(source);
    steps.push({ leave: source });
    if (Array.isArray(source)) {
      const copy: unknown[] = new Array(source.length);
      (target as Record<string | number, unknown>)[key] = copy;
      for (let i = source.length - 1; i >= 0; i--) {
        steps.push({ source: source[i], target: copy, key: i });
      }
    } else {
      const copy: Record<string, unknown> = Object.create(null);
      (target as Record<string | number, unknown>)[key] = copy;
      for (const [k, v] of Object.entries(source)) {
        if (names.has(k.toLowerCase())) copy[k] = '[redacted]';
        else steps.push({ source: v, target: copy, key: k });
      }
    }
  }
  return root.value;
}

function isContainer(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !(value instanceof Uint8Array);
}

/** The canonical JSON of a value, redacted; `undefined` when it has none (a cycle, a BigInt). */
function redactedJson(value: unknown, names: ReadonlySet<string>): string | undefined {
  try {
    return canonicalJson(redact(value, names));
  } catch {
    return undefined;
  }
}

/** The JSON object or array the bytes hold, if they hold one. */
function jsonContainerOf(bytes: Uint8Array): object | undefined {
  let i = 0;
  // JSON's whitespace (RFC 8259 §2), then "{" or "[": otherwise not worth parsing.
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)
  )
    i++;
  if (bytes[i] !== 0x7b && bytes[i] !== 0x5b) return undefined;
  try {
    const value: unknown = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    );
    return isContainer(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The SHA-256 of the payload: of the canonical JSON of a JSON body, redacted,
 * else of its bytes. The raw bytes come first when a parser kept them: after
 * `next()` the parsed body may be what a validator made of it (members
 * stripped, values coerced), not what the client sent.
 */
function payloadHash(ctx: Context, names: ReadonlySet<string>): string | null {
  const { body, rawBody } = ctx.request;
  const raw = rawBody !== undefined && rawBody.length > 0 ? rawBody : undefined;
  const sent = raw === undefined ? undefined : jsonContainerOf(raw);
  if (sent !== undefined) {
    const text = redactedJson(sent, names);
    if (text !== undefined) return sha256(text);
  }
  if (isContainer(body)) {
    const text = redactedJson(body, names);
    if (text !== undefined) return sha256(text);
  }
  if (raw !== undefined) return sha256(raw);
  if (body instanceof Uint8Array && body.length > 0) return sha256(body);
  if (typeof body === 'string' && body.length > 0) return sha256(body);
  return null;
}

/**
 * The status an error is answered with: the adapter's own reading of it (a
 * `status`, else a `statusCode`, an integer from 400 to 599, else 500). An
 * adapter's `problems.map` may still answer it with another.
 */
function statusOf(err: unknown): number {
  return problemInitFrom(err).status;
}

/**
 * Records writes after their response (see the module's comment). Mount it
 * first in the global chain, so that writes refused by later middleware
 * (429, 413, 415) are recorded too.
 *
 * @example
 * ```ts
 * const auditLog = audit({ sink: streamSink(process.stdout), key: process.env.AUDIT_KEY! });
 * app.use(rw(auditLog, rateLimit(...), jsonBody()));
 * ```
 */
export function audit(options: AuditOptions): AuditMiddleware {
  checkOptions('audit', options, KNOWN);
  if (options === undefined) invalidOption('audit', 'options', 'an object', options);
  const { sink } = options;
  if (sink === null || typeof sink !== 'object' || typeof sink.append !== 'function') {
    invalidOption(
      'audit',
      'sink',
      'an audit sink (streamSink, redisStreamSink, postgresSink, ...)',
      sink,
    );
  }
  const key = typeof options.key === 'string' ? Buffer.from(options.key) : options.key;
  if (!(key instanceof Uint8Array) || key.length < 32) {
    throw new TypeError(
      'restwell/audit: option "key" must be at least 32 bytes (a string or a Uint8Array).',
    );
  }
  const log = options.log ?? 'api';
  if (typeof log !== 'string' || log === '' || log.length > 200) {
    invalidOption('audit', 'log', 'a non-empty string of at most 200 characters', log);
  }
  const methods = new Set(
    names('methods', options.methods, ['POST', 'PUT', 'PATCH', 'DELETE'], 'method names').map((m) =>
      m.toUpperCase(),
    ),
  );
  const redactNames = new Set(
    names('redactFields', options.redactFields, DEFAULT_REDACT, 'member names').map((f) =>
      f.toLowerCase(),
    ),
  );
  const maxBuffer = integer('maxBuffer', options.maxBuffer, 10_000);
  const timeoutMs = integer('timeoutMs', options.timeoutMs, 2000);
  const logger = options.logger ?? defaultLogger;
  if (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function') {
    invalidOption('audit', 'logger', 'a logger (with warn())', logger);
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') invalidOption('audit', 'now', 'a function returning ms', now);
  const cp = options.checkpoints;
  if (cp !== undefined) {
    checkOptions('audit', cp, ['privateKey', 'write', 'everyRecords', 'everyMs']);
    checkEd25519('checkpoints.privateKey', cp.privateKey, 'private');
    if (typeof cp.write !== 'function')
      invalidOption('audit', 'checkpoints.write', 'a function', cp.write);
  }
  const everyRecords = integer('checkpoints.everyRecords', cp?.everyRecords, 1000);
  const everyMs = integer('checkpoints.everyMs', cp?.everyMs, 60_000);

  const buffer: AuditEvent[] = [];
  const throttle = new LogThrottle();
  let appended = 0;
  let dropped = 0;
  let droppedSinceReport = 0;
  let failures = 0;
  let pumping: Promise<void> | undefined;
  /** Records built but for their payload hash, taken after the response (see the middleware). */
  let hashing = 0;
  /** Set by close(): the loop gives up after a few failures instead of retrying for ever. */
  let closing = false;
  let closingFailures = 0;
  /** Ends the loop's backoff early, so that close() does not wait out a long one. */
  let wake: (() => void) | undefined;
  let closed = false;
  let head: ChainedRecord | undefined;
  let sinceCheckpoint = 0;
  let lastCheckpointAt = now();

  /** A warning, never an exception: a logger that throws must fail no request and stop no retry. */
  function warn(message: string, fields: Record<string, unknown>): void {
    try {
      logger.warn(message, fields);
    } catch {
      // Nowhere left to say it.
    }
  }

  function report(message: string, err?: unknown): void {
    const pass = throttle.pass();
    if (pass === undefined) return;
    warn(message, {
      module: 'audit',
      sink: sink.name,
      pending: buffer.length,
      dropped,
      ...(pass.suppressed > 0 ? { suppressed: pass.suppressed } : {}),
      ...(err === undefined ? {} : { err: serializeError(err) }),
    });
  }

  function enqueue(event: AuditEvent): void {
    if (closed) {
      dropped++;
      return;
    }
    if (buffer.length >= maxBuffer) {
      dropped++;
      droppedSinceReport++;
      report('restwell/audit: the buffer is full; records are being dropped.');
      return;
    }
    buffer.push(event);
    pumping ??= pump().finally(() => {
      pumping = undefined;
    });
  }

  /**
   * An append that outlived `timeoutMs`. It may still land, so the next
   * attempt waits for it again rather than appending its records a second
   * time: a sink slower than `timeoutMs` would otherwise get the first record
   * again and again, and never the ones after it. After ten timeouts it is
   * given up and made again (its records may then appear twice): a
   * connection that died without a word may never answer.
   */
  let inFlight: { records: Promise<ChainedRecord[]>; count: number; since: number } | undefined;

  /** Appends the first records of the buffer (a batch where the sink takes one), within `timeoutMs`. */
  async function appendNext(): Promise<{ records: ChainedRecord[]; count: number }> {
    if (inFlight === undefined) {
      const events = buffer.slice(0, sink.appendMany === undefined ? 1 : MAX_BATCH);
      const makers = events.map(
        (event) => (h: ChainHead | undefined) => chainRecord(key, log, event, h),
      );
      // An async function: a sink that throws instead of rejecting fails the attempt.
      const records = (async () =>
        sink.appendMany !== undefined
          ? sink.appendMany(log, makers)
          : [await sink.append(log, makers[0] as (typeof makers)[number])])();
      inFlight = { records, count: events.length, since: Date.now() };
    }
    const attempt = inFlight;
    try {
      const records = await within(attempt.records, timeoutMs, 'the sink');
      inFlight = undefined;
      return { records, count: attempt.count };
    } catch (err) {
      // Timed out: still in flight, waited for again. Failed, or waited for too long: made again.
      if (!(err instanceof TimeoutError) || Date.now() - attempt.since >= 10 * timeoutMs) {
        if (inFlight === attempt) inFlight = undefined;
      }
      throw err;
    }
  }

  /**
   * The checkpoint due `everyMs` after the last: records appended before a
   * quiet time are covered by then, not only once the next record comes.
   */
  let checkpointTimer: NodeJS.Timeout | undefined;

  function scheduleCheckpoint(): void {
    if (cp === undefined || closed || checkpointTimer !== undefined || sinceCheckpoint === 0)
      return;
    const delay = Math.max(0, lastCheckpointAt + everyMs - now());
    checkpointTimer = setTimeout(() => {
      checkpointTimer = undefined;
      if (!closed) void checkpoint(true);
    }, delay);
    checkpointTimer.unref?.();
  }

  async function checkpoint(force: boolean): Promise<void> {
    if (cp === undefined || head === undefined || sinceCheckpoint === 0) return;
    if (!force && sinceCheckpoint < everyRecords && now() - lastCheckpointAt < everyMs) {
      scheduleCheckpoint();
      return;
    }
    const statement = signCheckpoint(cp.privateKey, {
      log,
      seq: head.seq,
      head: head.hash,
      time: new Date(now()).toISOString(),
    });
    sinceCheckpoint = 0;
    lastCheckpointAt = now();
    clearTimeout(checkpointTimer);
    checkpointTimer = undefined;
    try {
      // Bounded as an append is: a store that never answers must not hold up the records.
      await within((async () => cp.write(statement))(), timeoutMs, 'writing the checkpoint');
    } catch (err) {
      report('restwell/audit: a checkpoint could not be written.', err);
    }
  }

  async function pump(): Promise<void> {
    while (buffer.length > 0 && !closed) {
      try {
        const { records, count } = await appendNext();
        buffer.splice(0, count);
        head = records[records.length - 1];
        appended += records.length;
        sinceCheckpoint += records.length;
        failures = 0;
        if (droppedSinceReport > 0 && !closed) {
          // What was lost is itself on the record, next in the chain.
          buffer.unshift({
            type: 'audit.dropped',
            time: new Date(now()).toISOString(),
            count: droppedSinceReport,
          });
          droppedSinceReport = 0;
        }
        // After close() its last checkpoint was the last: the store may be gone.
        if (!closed) await checkpoint(false);
      } catch (err) {
        failures++;
        report('restwell/audit: the sink failed; records wait in the buffer and are retried.', err);
        if (closing && ++closingFailures >= 3) return;
        const backoff = Math.min(30_000, 100 * 2 ** Math.min(failures, 9));
        const wait = backoff * (0.5 + Math.random() / 2);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, closing ? Math.min(wait, timeoutMs) : wait).unref?.();
        });
        wake = undefined;
      }
    }
  }

  const middleware = (async (ctx: Context, next: Next) => {
    if (!methods.has(ctx.request.method)) return next();
    let status: number | undefined;
    try {
      await next();
      status = ctx.response.status;
    } catch (err) {
      status = statusOf(err);
      throw err;
    } finally {
      try {
        const id = principalId(ctx.state);
        const type = ctx.state.principal?.type;
        const userAgent = ctx.request.header('user-agent');
        const event: AuditEvent = {
          type: 'request',
          time: new Date(now()).toISOString(),
          traceId: ctx.traceId,
          principal:
            id === undefined ? null : { id, ...(typeof type === 'string' ? { type } : {}) },
          ip: ctx.request.ip ?? null,
          method: ctx.request.method,
          route: ctx.request.route ?? null,
          path: ctx.request.path,
          status: status ?? 500,
          payloadSha256: null,
          userAgent: userAgent === undefined ? null : userAgent.slice(0, MAX_USER_AGENT),
          replayed: ctx.response.headers.get('idempotent-replayed') === 'true',
        };
        // The payload is hashed once the response has gone: about 200 ms of CPU for a
        // 1 MB body, which the client need not wait for.
        hashing++;
        setImmediate(() => {
          hashing--;
          try {
            event.payloadSha256 = payloadHash(ctx, redactNames);
            enqueue(event);
          } catch (err) {
            lost(err);
          }
        });
      } catch (err) {
        lost(err);
      }
    }
  }) as AuditMiddleware;

  /** Recording must never fail the request it records; a record that could not be built is counted. */
  function lost(err: unknown): void {
    dropped++;
    droppedSinceReport++;
    report('restwell/audit: a record could not be built.', err);
  }

  middleware.flush = async (withinMs = timeoutMs * (buffer.length + 1)) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, withinMs);
      timer.unref?.();
    });
    const drained = (async () => {
      while (pumping !== undefined || hashing > 0) {
        if (pumping !== undefined) await pumping;
        else await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
  };
  middleware.close = async () => {
    // While the sink fails, three more attempts, without the long backoff.
    closing = true;
    wake?.();
    await middleware.flush();
    closed = true;
    clearTimeout(checkpointTimer);
    if (buffer.length > 0) {
      const lost = buffer.length;
      buffer.length = 0;
      dropped += lost;
      warn(`restwell/audit: closed with ${lost} records not appended.`, {
        module: 'audit',
        sink: sink.name,
        lost,
        dropped,
      });
    }
    await checkpoint(true);
    await sink.close?.();
  };
  middleware.stats = () => ({ appended, dropped, pending: buffer.length + hashing });
  return middleware;
}
