/**
 * Per-principal state: the version each principal is pinned to (a ledger: a
 * client's version must never change because a cache forgot its pin), and how
 * often each principal calls each version (counters in any store, a cache
 * included, updated atomically; counting never fails a request).
 *
 * @module
 */
import { sha256 } from '../core/hash.js';
import type { Logger } from '../core/logger.js';
import { LogThrottle } from '../core/logger.js';
import {
  type AtomicUpdates,
  assertLedger,
  MAX_TTL_MS,
  type ScriptRunner,
  type Store,
  type StoreScript,
} from '../stores/types.js';

const MAX_KEY = 128;
const PRINTABLE = /^[\x21-\x7e]+$/;

/**
 * A principal id as it goes into a key: as it is when short and printable,
 * else its hash after `#`. A short id that itself starts with `#` is hashed
 * too, so that no principal can name itself after another's hash.
 */
export function principalKey(id: string): string {
  return id.length <= MAX_KEY && PRINTABLE.test(id) && id.charCodeAt(0) !== 0x23 /* # */
    ? id
    : `#${sha256(id)}`;
}

/** The pins of one versioned API, in a ledger. */
export class VersionPins {
  constructor(
    private readonly store: Store,
    private readonly prefix: string,
  ) {
    assertLedger('versioning', store, 'pins');
  }

  private key(principal: string): string {
    return `${this.prefix}pin:${principalKey(principal)}`;
  }

  /** The pinned version's name, or `undefined` when the principal has none. */
  async get(principal: string): Promise<string | undefined> {
    return (await this.store.get(this.key(principal))) ?? undefined;
  }

  /**
   * The principal's pin, creating it with `version` when it has none: one
   * read when the pin exists (every call but the first), and one atomic
   * add-or-get otherwise, so that two first calls at once agree on one pin.
   */
  async getOrPin(principal: string, version: string): Promise<string> {
    const key = this.key(principal);
    const current = await this.store.get(key);
    if (current !== null) return current;
    return (await this.store.addOrGet(key, version, MAX_TTL_MS)) ?? version;
  }

  /** Pins the principal to `version`, replacing any pin. */
  async set(principal: string, version: string): Promise<void> {
    await this.store.set(this.key(principal), version, MAX_TTL_MS);
  }
}

/** How often a principal called one version. */
export interface VersionUsage {
  /** Calls counted while the counter lived (see `usageTtlMs`). */
  calls: number;
  /** The last call counted. */
  lastSeen: Date;
}

// KEYS[1] counter; ARGV[1] now (ms); ARGV[2] ttl (ms). One atomic step: the count, then the
// latest call's time (never moved back by a call that reaches the server late).
const INCREMENT_SCRIPT: StoreScript = {
  name: 'restwellVersionUsage',
  lua: `
local current = redis.call('GET', KEYS[1])
local calls, seen = 0, 0
if current then
  calls = tonumber(string.match(current, '^(%d+)')) or 0
  seen = tonumber(string.match(current, ':(%d+)$')) or 0
end
local now = tonumber(ARGV[1])
if seen > now then now = seen end
calls = calls + 1
redis.call('SET', KEYS[1], calls .. ':' .. string.format('%d', now), 'PX', ARGV[2])
return calls`,
};

/** The most compare-and-set rounds one batch tries on a store without atomic updates. */
const MAX_ROUNDS = 16;

function parseUsage(value: string | null): VersionUsage | undefined {
  if (value === null) return undefined;
  const m = /^([0-9]{1,15}):([0-9]{1,15})$/.exec(value);
  if (m === null) return undefined;
  return { calls: Number(m[1]), lastSeen: new Date(Number(m[2])) };
}

/** `value` with `calls` more, seen last at `now` or later. */
function added(value: string | null, calls: number, now: number): string {
  const usage = parseUsage(value);
  return `${(usage?.calls ?? 0) + calls}:${Math.max(now, usage?.lastSeen.getTime() ?? 0)}`;
}

/** Calls waiting for one key, stored together by one compare-and-set loop. */
interface Batch {
  calls: number;
  lastSeen: number;
  stored: Promise<void>;
}

/**
 * Calls per version per principal. Each call adds one in a single atomic step
 * where the store offers one (MemoryStore's `updateAtomically`, a Lua script on
 * Redis) and by compare-and-set otherwise (PostgreSQL), never by a read and a
 * blind write that would lose concurrent calls. On such a store, calls to one
 * counter that arrive while its last write is under way are added together by
 * the next, so that one process runs one compare-and-set loop per counter at
 * a time, however busy the principal. A counter lives `ttlMs` after its last
 * call. A store that fails is logged, once per interval, and the call goes
 * uncounted: counting never fails a request.
 */
export class UsageCounter {
  private readonly throttle: LogThrottle;
  /** Per key, the batch still taking calls. */
  private readonly filling = new Map<string, Batch>();
  /** Per key, the write under way. */
  private readonly writing = new Map<string, Promise<void>>();
  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {
    this.throttle = new LogThrottle(10_000, now);
  }

  private key(version: string, principal: string): string {
    return `${this.prefix}usage:${version}:${principalKey(principal)}`;
  }

  /** Counts one call, in the background; failures go to `log`, throttled. */
  count(version: string, principal: string, log: Logger): void {
    this.increment(version, principal).catch((err: unknown) => {
      const pass = this.throttle.pass();
      if (pass === undefined) return;
      try {
        log.warn(
          'restwell/versioning: a call could not be counted; counting resumes when the store answers',
          {
            version,
            store: this.store.kind,
            suppressed: pass.suppressed,
            err,
          },
        );
      } catch {
        // A logger that throws must not turn a count into an unhandled rejection.
      }
    });
  }

  /** Adds one call; resolves when it is stored. */
  async increment(version: string, principal: string): Promise<void> {
    const key = this.key(version, principal);
    const now = this.now();
    const atomic = this.store as Store & Partial<AtomicUpdates & ScriptRunner>;
    if (typeof atomic.updateAtomically === 'function') {
      atomic.updateAtomically([key], ([value]) => [
        { value: added(value ?? null, 1, now), ttlMs: this.ttlMs },
      ]);
      return;
    }
    if (typeof atomic.runScript === 'function') {
      await atomic.runScript(INCREMENT_SCRIPT, [key], [now, Math.ceil(this.ttlMs)]);
      return;
    }
    const filling = this.filling.get(key);
    if (filling !== undefined) {
      filling.calls++;
      filling.lastSeen = Math.max(filling.lastSeen, now);
      return filling.stored;
    }
    const previous = this.writing.get(key) ?? Promise.resolve();
    const batch: Batch = { calls: 1, lastSeen: now, stored: Promise.resolve() };
    this.filling.set(key, batch);
    // Starts once the previous write is done (at the earliest in the next
    // microtask): the calls that arrive until then join this batch.
    batch.stored = previous.then(() => {
      this.filling.delete(key);
      return this.add(key, batch.calls, batch.lastSeen);
    });
    const settled = batch.stored.then(
      () => undefined,
      () => undefined,
    );
    this.writing.set(key, settled);
    void settled.then(() => {
      if (this.writing.get(key) === settled) this.writing.delete(key);
    });
    return batch.stored;
  }

  /** Adds `calls` by compare-and-set, retrying while other writers win. */
  private async add(key: string, calls: number, lastSeen: number): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const current = await this.store.addOrGet(key, added(null, calls, lastSeen), this.ttlMs);
      if (current === null) return;
      const next = added(current, calls, lastSeen);
      if (await this.store.compareAndSet(key, current, next, this.ttlMs)) return;
    }
    throw new Error(
      `restwell/versioning: a usage counter stayed contended for ${MAX_ROUNDS} rounds; ${calls} calls went uncounted.`,
    );
  }

  /** The principal's usage of each of `versions` that it called. */
  async read(
    principal: string,
    versions: readonly string[],
  ): Promise<Record<string, VersionUsage>> {
    const values = await Promise.all(versions.map((v) => this.store.get(this.key(v, principal))));
    const out: Record<string, VersionUsage> = {};
    versions.forEach((version, i) => {
      const usage = parseUsage(values[i] ?? null);
      if (usage !== undefined) out[version] = usage;
    });
    return out;
  }
}
