/**
 * The receiver's record of event ids seen: exactly one delivery of an event is
 * processed, however many arrive and however concurrently, on any ledger
 * store (memory, Redis, PostgreSQL), across processes on the shared ones.
 *
 * - A claim is one atomic `addOrGet`: the first delivery writes a
 *   "processing" record carrying a token unique to it, with a lease renewed
 *   while it runs; every other delivery reads what it lost to.
 * - When processing succeeds the record becomes "processed" for `ttlMs`
 *   (default 72 h, the seed's retry window): every later delivery is a
 *   duplicate, answered 200 without being processed. When it fails, the claim
 *   is released (only by the holder of its token) and the sender's next retry
 *   is processed.
 * - A duplicate that arrives while the first is still processing waits for it,
 *   up to `waitMs`: if the first completes it is a duplicate, if the first
 *   failed it is processed itself, and if the first is still running it is
 *   answered 409 with `Retry-After` (never 200: the first might still fail, and
 *   the event would be lost).
 * - The store must be a ledger (never evicting): a cache that forgot an id
 *   would let a duplicate through. A full ledger refuses new claims (503).
 */
import { randomBytes } from 'node:crypto';
import { checkOptions, invalidOption } from '../core/errors.js';
import { sha256Parts } from '../core/hash.js';
import { defaultLogger, LogThrottle, type Logger } from '../core/logger.js';
import { assertLedger, MAX_TTL_MS, type Store } from '../stores/types.js';

/** Options of {@link WebhookEventLedger}. */
export interface WebhookEventLedgerOptions {
  /**
   * Where event ids are kept: a store that never evicts a live key
   * (`new MemoryStore({ evict: false })` in one process, RedisStore on a server
   * with `maxmemory-policy noeviction`, PostgresStore). Refused otherwise. Required.
   */
  store: Store;
  /**
   * How long a processed event's id is kept: at least the sender's retry
   * window, so that its last retry is still recognised. @default 259_200_000 (72 h)
   */
  ttlMs?: number;
  /**
   * How long a claim lasts without renewal. It is renewed every third of this
   * while the event is processed; a process that dies mid-event frees it once
   * the lease has passed, and the sender's retry is then processed. @default 30_000
   */
  leaseMs?: number;
  /**
   * Longest time a claim is renewed for: a handler that hangs stops holding the
   * event after this, and a retry may then process it. @default 300_000 (5 min)
   */
  maxProcessingMs?: number;
  /**
   * How long a duplicate that finds the event still processing waits for the
   * outcome before it is answered 409 `webhook-in-flight`. @default 2_000
   */
  waitMs?: number;
  /**
   * Keeps the ids of different senders apart when they share a store (one
   * ledger per sender, each with its own namespace). @default 'webhooks'
   */
  namespace?: string;
  /** Where the ledger's warnings go (lost leases, records it cannot write). @default the JSON stderr logger */
  logger?: Logger;
}

/** The first delivery of an event: this caller processes it. */
export interface ClaimedEvent {
  readonly outcome: 'claimed';
  /**
   * Records the event as processed, for `ttlMs`: every later delivery is a
   * duplicate. `false` when the claim had been lost meanwhile (its lease ran
   * out during a stall) or the record could not be written right now (it is
   * retried in the background while the claim holds); both are logged.
   */
  complete(): Promise<boolean>;
  /** Gives the claim up, unprocessed: the next delivery of the event is processed. */
  release(): Promise<void>;
}

/** What a claim found. */
export type EventClaim =
  | ClaimedEvent
  /** The event was processed already. */
  | { readonly outcome: 'duplicate' }
  /** Another delivery is still processing it after `waitMs`. */
  | { readonly outcome: 'in-flight' };

/** What the ledger holds for an event id. */
export type EventState = 'processed' | 'processing' | 'unknown';

const OPTION_NAMES = [
  'store',
  'ttlMs',
  'leaseMs',
  'maxProcessingMs',
  'waitMs',
  'namespace',
  'logger',
] as const;

const PROCESSED = '{"v":1,"s":"processed"}';

/**
 * A token unique to one claim: a random per-process prefix and a counter.
 * Only uniqueness matters (no claim may be completed or released by another).
 */
const TOKEN_PREFIX = randomBytes(12).toString('base64url');
let tokenCounter = 0;

function stateOf(value: string): EventState | 'unreadable' {
  if (value === PROCESSED) return 'processed';
  try {
    const record = JSON.parse(value) as { v?: unknown; s?: unknown };
    if (record?.v === 1 && record.s === 'processing') return 'processing';
    if (record?.v === 1 && record.s === 'processed') return 'processed';
  } catch {
    // fall through
  }
  return 'unreadable';
}

/**
 * The event ids a receiver has processed, on a ledger store. Framework-free:
 * `webhookReceiver({ dedupe })` uses it, and so can a queue consumer or a
 * script.
 *
 * @example
 * ```ts
 * const ledger = new WebhookEventLedger({ store: new RedisStore({ client: redis }) });
 * const claim = await ledger.claim(event.id);
 * if (claim.outcome === 'claimed') {
 *   try { await apply(event); await claim.complete(); } catch (err) { await claim.release(); throw err; }
 * }
 * ```
 */
export class WebhookEventLedger {
  /** How long a processed id is kept, in milliseconds. */
  readonly ttlMs: number;
  /** How long a claim lasts without renewal, in milliseconds. */
  readonly leaseMs: number;
  /** How long a duplicate waits for an in-flight first delivery, in milliseconds. */
  readonly waitMs: number;
  private readonly store: Store;
  private readonly maxProcessingMs: number;
  private readonly namespace: string;
  private readonly logger: Logger;
  /** Callers in this process waiting for a claim to end, by store key. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly lostLog = new LogThrottle();
  private readonly writeLog = new LogThrottle();
  private readonly unreadableLog = new LogThrottle();

  constructor(options: WebhookEventLedgerOptions) {
    checkOptions('webhooks', options, OPTION_NAMES);
    const {
      store,
      ttlMs = 259_200_000,
      leaseMs = 30_000,
      maxProcessingMs = 300_000,
      waitMs = 2_000,
      namespace = 'webhooks',
      logger = defaultLogger,
    } = options ?? ({} as WebhookEventLedgerOptions);
    if (store === null || typeof store !== 'object' || typeof store.addOrGet !== 'function')
      invalidOption('webhooks', 'store', 'a Store (MemoryStore, RedisStore, PostgresStore)', store);
    assertLedger('webhooks', store);
    for (const [name, value] of Object.entries({ ttlMs, leaseMs, maxProcessingMs })) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TTL_MS)
        invalidOption(
          'webhooks',
          name,
          `a positive number of milliseconds up to ${MAX_TTL_MS}`,
          value,
        );
    }
    if (ttlMs < leaseMs) invalidOption('webhooks', 'ttlMs', `at least leaseMs (${leaseMs})`, ttlMs);
    if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0)
      invalidOption('webhooks', 'waitMs', 'a non-negative number of milliseconds', waitMs);
    if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > 128)
      invalidOption(
        'webhooks',
        'namespace',
        'a non-empty string of at most 128 characters',
        namespace,
      );
    if (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function')
      invalidOption('webhooks', 'logger', 'a logger with error() and warn()', logger);
    this.store = store;
    this.ttlMs = ttlMs;
    this.leaseMs = leaseMs;
    this.maxProcessingMs = maxProcessingMs;
    this.waitMs = waitMs;
    this.namespace = namespace;
    this.logger = logger;
  }

  /** The store key of an event id: hashed, so that its length and characters never matter to a store. */
  private keyOf(eventId: string): string {
    return `wh:${sha256Parts([this.namespace, eventId])}`;
  }

  /**
   * Claims `eventId` for processing (see the file comment). Throws the store's
   * error when the store cannot answer (`StoreUnavailableError`,
   * `StoreTimeoutError`) or has no room (`StoreFullError`); nothing was
   * claimed then.
   */
  async claim(eventId: string): Promise<EventClaim> {
    if (typeof eventId !== 'string' || eventId.length === 0)
      throw new TypeError('restwell/webhooks: an event id must be a non-empty string.');
    const key = this.keyOf(eventId);
    tokenCounter += 1;
    const claim = JSON.stringify({ v: 1, s: 'processing', t: `${TOKEN_PREFIX}.${tokenCounter}` });
    const deadline = Date.now() + this.waitMs;
    let delay = 10;
    for (;;) {
      const existing = await this.store.addOrGet(key, claim, this.leaseMs);
      if (existing === null) return this.claimed(key, claim);
      const state = stateOf(existing);
      if (state === 'processed') return { outcome: 'duplicate' };
      if (state !== 'processing') {
        // Not a record this module wrote (corrupted, or another version's). Whether the
        // event was processed is unknown; processing it again could apply it twice.
        const pass = this.unreadableLog.pass();
        if (pass !== undefined)
          this.logger.error(
            'restwell/webhooks: the ledger holds a record it cannot read; the event is treated as processed until the record expires',
            { store: this.store.kind, suppressed: pass.suppressed },
          );
        return { outcome: 'duplicate' };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { outcome: 'in-flight' };
      await this.waitFor(key, Math.min(delay, remaining));
      delay = Math.min(delay * 2, 250);
    }
  }

  /** What the ledger holds for `eventId`. */
  async state(eventId: string): Promise<EventState> {
    const value = await this.store.get(this.keyOf(eventId));
    if (value === null) return 'unknown';
    const state = stateOf(value);
    return state === 'unreadable' ? 'processed' : state;
  }

  /**
   * Forgets `eventId`, so that its next delivery is processed again: for an
   * event whose processing failed after it was acknowledged (a queue's last
   * attempt), before the sender resends it. `true` when something was deleted.
   */
  forget(eventId: string): Promise<boolean> {
    return this.store.delete(this.keyOf(eventId));
  }

  /** Resolves after `ms`, or as soon as a claim on `key` ends in this process. */
  private waitFor(key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(key, set);
      }
      const waiters = set;
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiters.add(wake);
    });
  }

  private wake(key: string): void {
    const set = this.waiters.get(key);
    if (set === undefined) return;
    for (const wake of [...set]) wake();
  }

  private claimed(key: string, claim: string): ClaimedEvent {
    const started = Date.now();
    let ended = false;
    const renewEveryMs = Math.max(10, Math.floor(this.leaseMs / 3));
    const timer = setInterval(() => {
      if (Date.now() - started >= this.maxProcessingMs) {
        clearInterval(timer);
        this.logger.warn(
          'restwell/webhooks: an event has been processing for longer than maxProcessingMs; its claim is no longer renewed, and a retry may process it once the lease ends',
          { maxProcessingMs: this.maxProcessingMs },
        );
        return;
      }
      this.store.compareAndSet(key, claim, claim, this.leaseMs).then(
        (held) => {
          if (!held) clearInterval(timer);
        },
        () => {},
      );
    }, renewEveryMs);
    timer.unref();
    const end = (): boolean => {
      if (ended) return false;
      ended = true;
      clearInterval(timer);
      return true;
    };
    return {
      outcome: 'claimed',
      complete: async () => {
        if (!end()) return false;
        try {
          const stored = await this.store.compareAndSet(key, claim, PROCESSED, this.ttlMs);
          if (!stored) {
            const pass = this.lostLog.pass();
            if (pass !== undefined)
              this.logger.warn(
                'restwell/webhooks: a claim was lost before its event was recorded as processed (its lease ran out); a retry may process the event again. Raise leaseMs.',
                { leaseMs: this.leaseMs, suppressed: pass.suppressed },
              );
          }
          return stored;
        } catch (err) {
          // Processed, but not recorded: a retry would process it again once the lease
          // ends. Keep trying while the claim holds (fenced by its token, so a late
          // write can never overwrite a retry that took over).
          this.retryInBackground(
            () => this.store.compareAndSet(key, claim, PROCESSED, this.ttlMs).then(() => true),
            err,
          );
          return false;
        } finally {
          this.wake(key);
        }
      },
      release: async () => {
        if (!end()) return;
        try {
          await this.store.compareAndDelete(key, claim);
        } catch (err) {
          this.logger.warn(
            'restwell/webhooks: a claim could not be released; it frees itself when its lease ends',
            { leaseMs: this.leaseMs, err },
          );
        } finally {
          this.wake(key);
        }
      },
    };
  }

  /** Runs `attempt` with backoff until it resolves `true`, for about one lease. Timers never hold the process open. */
  private retryInBackground(attempt: () => Promise<boolean>, first: unknown): void {
    const pass = this.writeLog.pass();
    if (pass !== undefined)
      this.logger.error(
        'restwell/webhooks: a processed event could not be recorded; retrying while its claim holds',
        { store: this.store.kind, suppressed: pass.suppressed, err: first },
      );
    const deadline = Date.now() + this.leaseMs;
    let delay = 50;
    const run = (): void => {
      attempt().then(
        (done) => {
          if (!done) retry();
        },
        () => retry(),
      );
    };
    const retry = (): void => {
      if (Date.now() + delay > deadline) {
        this.logger.error(
          'restwell/webhooks: a processed event could not be recorded; a retry after its lease processes it again',
          { store: this.store.kind, leaseMs: this.leaseMs },
        );
        return;
      }
      setTimeout(run, delay).unref();
      delay = Math.min(delay * 2, Math.max(50, Math.floor(this.leaseMs / 4)));
    };
    setTimeout(run, delay).unref();
  }
}
