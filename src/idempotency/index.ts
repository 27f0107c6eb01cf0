/**
 * Idempotency keys, after draft-ietf-httpapi-idempotency-key-header and
 * Stripe's API: a client that retries a POST after a timeout is never charged
 * twice. The first request with a key runs and its response is recorded; a
 * retry with the same key and the same request gets the recorded response,
 * byte for byte, with `Idempotent-Replayed: true`.
 *
 * Exported from `restwell/idempotency`.
 *
 * - One atomic store step claims the key with an in-flight record that carries
 *   a fencing token and a lease; only the holder of that exact record can
 *   complete or release it, so a process whose lease ran out cannot overwrite
 *   the work of the one that took over. While the handler runs, the lease is
 *   renewed.
 * - Same key, different request (fingerprint) → 422; same key while the first
 *   is still running → 409 with `Retry-After`; 422 wins when both apply.
 * - Store round trips: two for a first request (claim, record), one for a replay.
 *
 * @example
 * ```ts
 * import { idempotency } from 'restwell/idempotency';
 * app.post('/v1/payments', rw(idempotency({ store, required: true })), createPayment);
 * ```
 */
import { createHash, randomUUID } from 'node:crypto';
import stableStringify from 'fast-json-stable-stringify';
import { bodyBytes, type Context, type Middleware, principalId } from '../core/context.js';
import { invalidOption, RestwellError } from '../core/errors.js';
import { assertLedger, type Store } from '../stores/types.js';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyMissingError,
  IdempotencyKeyReusedError,
} from './errors.js';
import { MAX_KEY_LENGTH, parseIdempotencyKey } from './key.js';

export * from './errors.js';
export { MAX_KEY_LENGTH, parseIdempotencyKey } from './key.js';

export interface IdempotencyOptions {
  /**
   * Where records live: a store that never evicts a live key (`new MemoryStore({ evict: false })`,
   * RedisStore on a server with `maxmemory-policy noeviction`, PostgresStore). Required.
   */
  store: Store;
  /** Answer 400 `idempotency-key-missing` when the header is absent. @default false */
  required?: boolean;
  /** Methods the middleware applies to; others pass through. @default ['POST', 'PATCH'] */
  methods?: readonly string[];
  /** The request header carrying the key. @default 'Idempotency-Key' */
  header?: string;
  /** Longest key accepted. @default 255 */
  maxKeyLength?: number;
  /**
   * How long a completed response is kept and replayed. The draft asks servers
   * to publish this; 24 hours matches Stripe. @default 86_400_000 (24 h)
   */
  ttlMs?: number;
  /**
   * How long an in-flight claim lasts without renewal. While the handler runs
   * the claim is renewed every third of this; if the process dies, a retry may
   * proceed once it has passed. @default 30_000
   */
  leaseMs?: number;
  /**
   * Whose key it is: keys of different scopes never collide. The default is the
   * authenticated principal (`ctx.state.principal.id`); without one it falls
   * back to the client IP, which is weak (clients behind one NAT share it), so
   * mount idempotency after authentication. @default principal id, else `ip:<client ip>`
   */
  scope?: (ctx: Context) => string | undefined;
  /** Request headers that are part of the fingerprint (e.g. `['stripe-account']`). @default [] */
  fingerprintHeaders?: readonly string[];
  /**
   * Response headers recorded and replayed besides Content-Type, Location, ETag
   * and Link. @default []
   */
  recordHeaders?: readonly string[];
  /** Largest response body recorded; a larger or streamed one is not made idempotent (logged). @default 1_048_576 */
  maxRecordedBodyBytes?: number;
  /**
   * When the store fails: `closed` answers 503 and runs nothing, since running
   * unguarded risks a double charge; `open` runs the request without
   * idempotency (logged). @default 'closed'
   */
  onStoreError?: 'closed' | 'open';
  /**
   * What a 5xx answer (or a thrown error) does to the key. `release` (default)
   * frees it so that the client may retry. `record` keeps the 5xx and replays
   * it, as Stripe does once execution began: safer against partial side
   * effects, but the client must use a new key to try again. @default 'release'
   */
  onServerError?: 'release' | 'record';
  /** `Retry-After` seconds sent with 409 in-flight answers. @default 1 */
  retryAfterSeconds?: number;
}

/** What is stored under a key. */
type IdempotencyRecord =
  | { v: 1; state: 'in-flight'; token: string; fp: string }
  | {
      v: 1;
      state: 'done';
      fp: string;
      status: number;
      headers: Array<[string, string]>;
      body: string;
    };

const DEFAULT_RECORDED = ['content-type', 'location', 'etag', 'link'];
// Transient answers that must not be replayed forever.
const NOT_RECORDED = new Set([408, 409, 425, 429]);

function defaultScope(ctx: Context): string {
  const principal = principalId(ctx.state);
  if (principal !== undefined) return `principal:${principal}`;
  return `ip:${ctx.request.ip ?? 'unknown'}`;
}

function sha256(parts: readonly (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\u0000');
  }
  return h.digest('base64url');
}

export function idempotency(options: IdempotencyOptions): Middleware {
  const {
    store,
    required = false,
    methods = ['POST', 'PATCH'],
    header = 'Idempotency-Key',
    maxKeyLength = MAX_KEY_LENGTH,
    ttlMs = 86_400_000,
    leaseMs = 30_000,
    scope = defaultScope,
    fingerprintHeaders = [],
    recordHeaders = [],
    maxRecordedBodyBytes = 1_048_576,
    onStoreError = 'closed',
    onServerError = 'release',
    retryAfterSeconds = 1,
  } = options ?? ({} as IdempotencyOptions);
  if (store === null || typeof store !== 'object' || typeof store.addOrGet !== 'function') {
    invalidOption(
      'idempotency',
      'store',
      'a Store (MemoryStore, RedisStore, PostgresStore)',
      store,
    );
  }
  assertLedger('idempotency', store);
  if (!Array.isArray(methods) || methods.some((m) => typeof m !== 'string')) {
    invalidOption('idempotency', 'methods', 'a list of HTTP methods', methods);
  }
  if (typeof header !== 'string' || header.length === 0)
    invalidOption('idempotency', 'header', 'a header name', header);
  for (const [name, value] of Object.entries({
    maxKeyLength,
    ttlMs,
    leaseMs,
    maxRecordedBodyBytes,
    retryAfterSeconds,
  })) {
    if (!Number.isFinite(value) || value <= 0)
      invalidOption('idempotency', name, 'a positive number', value);
  }
  if (onStoreError !== 'closed' && onStoreError !== 'open') {
    invalidOption('idempotency', 'onStoreError', "'closed' or 'open'", onStoreError);
  }
  if (onServerError !== 'release' && onServerError !== 'record') {
    invalidOption('idempotency', 'onServerError', "'release' or 'record'", onServerError);
  }
  if (typeof scope !== 'function') invalidOption('idempotency', 'scope', 'a function', scope);

  const methodSet = new Set(methods.map((m) => m.toUpperCase()));
  const headerName = header.toLowerCase();
  const fpHeaders = fingerprintHeaders.map((h) => h.toLowerCase());
  const recorded = [
    ...new Set([...DEFAULT_RECORDED, ...recordHeaders.map((h) => h.toLowerCase())]),
  ];

  function fingerprint(ctx: Context): string {
    const { request } = ctx;
    const body =
      request.body !== undefined ? stableStringify(request.body) : (request.rawBody ?? '');
    return sha256([
      request.method,
      request.url,
      body,
      ...fpHeaders.map((h) => `${h}:${request.header(h) ?? ''}`),
    ]);
  }

  function unavailable(err: unknown): RestwellError {
    return new RestwellError('service-unavailable', 503, 'Service Unavailable', {
      detail:
        'Idempotency keys cannot be checked right now, so the request was not executed. Retry later.',
      headers: { 'Retry-After': String(retryAfterSeconds) },
      cause: err,
    });
  }

  return async function idempotencyKeys(ctx, next) {
    if (!methodSet.has(ctx.request.method)) return next();
    const parsed = parseIdempotencyKey(ctx.request.header(headerName), maxKeyLength);
    if (!parsed.ok) {
      if (parsed.reason === 'missing') {
        if (!required) return next();
        throw new IdempotencyKeyMissingError(parsed.detail);
      }
      throw new IdempotencyKeyInvalidError(parsed.detail);
    }
    const owner = scope(ctx) ?? defaultScope(ctx);
    // Hashed: the store key has a fixed length and no characters a store could mind.
    const storeKey = `idem:${sha256([owner, ctx.request.method, ctx.request.route ?? ctx.request.path, parsed.key])}`;
    const fp = fingerprint(ctx);
    const claim = JSON.stringify({
      v: 1,
      state: 'in-flight',
      token: randomUUID(),
      fp,
    } satisfies IdempotencyRecord);

    let existing: string | null;
    try {
      existing = await store.addOrGet(storeKey, claim, leaseMs);
    } catch (err) {
      if (onStoreError === 'open') {
        ctx.log.warn('idempotency store failed; executing without idempotency', {
          traceId: ctx.traceId,
          err,
        });
        return next();
      }
      throw unavailable(err);
    }

    if (existing !== null) {
      let record: IdempotencyRecord;
      try {
        record = JSON.parse(existing) as IdempotencyRecord;
      } catch (err) {
        throw new RestwellError('internal-error', 500, 'Unreadable idempotency record', {
          cause: err,
        });
      }
      if (record.fp !== fp) throw new IdempotencyKeyReusedError();
      if (record.state === 'in-flight') throw new IdempotencyKeyInFlightError(retryAfterSeconds);
      replay(ctx, record);
      return;
    }

    // This request holds the key. Renew the lease while the handler runs.
    const renew = setInterval(
      () => {
        store.compareAndSet(storeKey, claim, claim, leaseMs).catch(() => {});
      },
      Math.max(10, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    const release = async (why: string) => {
      try {
        await store.compareAndDelete(storeKey, claim);
      } catch (err) {
        ctx.log.warn('idempotency key could not be released; it frees itself when its lease ends', {
          traceId: ctx.traceId,
          why,
          err,
        });
      }
    };

    try {
      await next();
    } catch (err) {
      clearInterval(renew);
      if (onServerError === 'release') await release('handler threw');
      else await complete(ctx, storeKey, claim, fp, 500, [], new Uint8Array(0));
      throw err;
    }
    clearInterval(renew);

    const { status } = ctx.response;
    if ((status >= 500 && onServerError === 'release') || NOT_RECORDED.has(status)) {
      await release(`status ${status}`);
      return;
    }
    const bytes = bodyBytes(ctx.response.body);
    if (bytes === undefined || bytes.byteLength > maxRecordedBodyBytes) {
      ctx.log.warn(
        'response not recorded for idempotency: streamed or larger than maxRecordedBodyBytes',
        {
          traceId: ctx.traceId,
          path: ctx.request.path,
        },
      );
      await release('unrecordable body');
      return;
    }
    const headers: Array<[string, string]> = [];
    for (const name of recorded) {
      const value = ctx.response.headers.get(name);
      if (value !== undefined) headers.push([name, value]);
    }
    await complete(ctx, storeKey, claim, fp, status, headers, bytes);
  };

  async function complete(
    ctx: Context,
    storeKey: string,
    claim: string,
    fp: string,
    status: number,
    headers: Array<[string, string]>,
    body: Uint8Array,
  ): Promise<void> {
    const done: IdempotencyRecord = {
      v: 1,
      state: 'done',
      fp,
      status,
      headers,
      body: Buffer.from(body).toString('base64'),
    };
    try {
      // Fenced: succeeds only while this request's own claim is in place.
      const stored = await store.compareAndSet(storeKey, claim, JSON.stringify(done), ttlMs);
      if (!stored) {
        ctx.log.warn('idempotency lease was lost before the response was recorded; raise leaseMs', {
          traceId: ctx.traceId,
        });
      }
    } catch (err) {
      // The client still gets its response; a retry will run again once the lease ends.
      ctx.log.error('idempotency record could not be stored', { traceId: ctx.traceId, err });
    }
  }
}

function replay(ctx: Context, record: Extract<IdempotencyRecord, { state: 'done' }>): void {
  ctx.response.status = record.status;
  for (const [name, value] of record.headers) ctx.response.headers.set(name, value);
  ctx.response.headers.set('Idempotent-Replayed', 'true');
  ctx.response.body = Buffer.from(record.body, 'base64');
}
