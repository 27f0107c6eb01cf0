/**
 * Conditional requests (RFC 9110 §8.8, §13): ETags, `Last-Modified`, 304 Not
 * Modified for reads and 412 Precondition Failed for writes that would
 * overwrite someone else's change.
 *
 * Exported from `restwell/conditional`.
 *
 * - **Validators.** A GET/HEAD 2xx response that has no `ETag` gets one from a
 *   hash of its final body (the `etag` package: the format Express and Koa use).
 *   An application that knows its validator (a row version, an `updated_at`)
 *   sets `ETag`/`Last-Modified` itself or returns them from `load`, and then no
 *   body is hashed. Streaming bodies are never hashed.
 * - **Preconditions** are evaluated in the order of RFC 9110 §13.2.2 and only
 *   when the response would otherwise be 2xx (§13.2.1).
 * - **Optimistic concurrency.** With `load`, a write's preconditions are checked
 *   against the current validators *before* the handler runs: a stale
 *   `If-Match` gets 412 and the write never happens. With `load` on a GET, a
 *   matching `If-None-Match` answers 304 without running the handler.
 *
 * Mount it inside `compression()` (compression first in the chain): it must see
 * and hash the identity body.
 *
 * @example
 * ```ts
 * import { conditional } from 'restwell/conditional';
 *
 * app.use(rw(compression(), conditional()));           // automatic ETags + 304s
 * app.put('/v1/docs/:id', rw(conditional({
 *   load: async (ctx) => {
 *     const row = await db.doc(ctx.request.params.id);
 *     return row && { etag: `"v${row.version}"`, lastModified: row.updatedAt };
 *   },
 *   requirePrecondition: true,
 * })), updateDoc);
 * ```
 */
import type { Readable } from 'node:stream';
import etagOf from 'etag';
import {
  type Context,
  claimPreconditions,
  isStreamBody,
  type Middleware,
} from '../core/context.js';
import { invalidOption } from '../core/errors.js';
import {
  type CacheControlOptions,
  type CacheControlPreset,
  cacheControl,
} from './cache-control.js';
import { getEncodingNegotiation } from './encoding.js';
import { PreconditionFailedError, PreconditionRequiredError } from './errors.js';
import { parseEntityTag, toEntityTag } from './etag-list.js';
import { formatHttpDate, parseHttpDate } from './http-date.js';
import {
  type ConditionalHeaders,
  evaluatePreconditions,
  hasPreconditions,
  type Validators,
} from './preconditions.js';

export * from './errors.js';
export {
  type EntityTag,
  type ETagList,
  encodingETag,
  formatEntityTag,
  parseEntityTag,
  parseETagList,
  stripEncodingSuffix,
  strongMatch,
  toEntityTag,
  weakMatch,
} from './etag-list.js';
export { formatHttpDate, parseHttpDate } from './http-date.js';
export {
  type ConditionalHeaders,
  type EvaluateOptions,
  evaluatePreconditions,
  hasPreconditions,
  type PreconditionField,
  type PreconditionResult,
  type Validators,
} from './preconditions.js';
export {
  type CacheControlOptions,
  type CacheControlPreset,
  cacheControl,
  hasDirective,
} from './cache-control.js';
export { mergeVary, vary } from './vary.js';

export interface ConditionalOptions {
  /**
   * Automatic ETags for GET/HEAD 2xx responses that have none: `'strong'`
   * (`"<length>-<sha1>"`), `'weak'` (`W/"..."`, for bodies that may differ in
   * insignificant bytes, e.g. re-serialised JSON), or `false` for none (only
   * validators the application supplies are used). A response that already has
   * an `ETag` is never hashed; neither is a streaming body.
   * @default 'strong'
   */
  etag?: 'strong' | 'weak' | false;
  /**
   * Loads the current validators of the target resource before the handler
   * runs; `undefined` when the resource does not exist. Called for GET and
   * HEAD (to answer 304 without running the handler, and to label the response
   * without hashing it), and for writes (`writeMethods`) that carry a
   * precondition (so that a failed one answers 412 and the write never runs).
   * A bare `etag` such as `v3` is quoted (`"v3"`).
   * @default undefined (validators come from the response, after the handler)
   */
  load?: (ctx: Context) => Validators | undefined | Promise<Validators | undefined>;
  /**
   * Answer 428 Precondition Required (RFC 6585 §3) to a write that carries
   * neither `If-Match` nor `If-Unmodified-Since`: clients must prove which
   * version they are changing, so updates are never lost.
   * @default false
   */
  requirePrecondition?: boolean;
  /** Methods treated as writes by `load` and `requirePrecondition`. @default ['PUT', 'PATCH', 'DELETE'] */
  writeMethods?: readonly string[];
  /**
   * `Cache-Control` set on GET/HEAD 2xx and 304 responses that have none: a
   * preset, directives (see `cacheControl()`) or a field value. Set here, it is
   * also on a 304 answered from `load` without running the handler.
   * @default undefined (none set)
   */
  cacheControl?: CacheControlPreset | CacheControlOptions | string;
}

const DEFAULT_WRITES = ['PUT', 'PATCH', 'DELETE'];
const PRESET_NAMES = new Set(['immutable', 'private', 'no-cache', 'no-store']);

/**
 * Representation metadata a 304 must not carry (RFC 9110 §15.4.5): it describes
 * content the 304 does not have. ETag, Cache-Control, Content-Location, Date,
 * Expires, Vary and Last-Modified are kept.
 */
const NOT_ON_304 = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-range',
  'content-disposition',
  'transfer-encoding',
];

const CONDITIONS = Symbol.for('restwell.conditional.conditions');
type WithConditions = Record<symbol, ConditionalHeaders | undefined>;

/**
 * The request's conditional fields, read once per request and kept in its
 * state, shared by a global conditional() and one on a route.
 */
function requestConditions(ctx: Context): ConditionalHeaders {
  const state = ctx.state as WithConditions;
  const known = state[CONDITIONS];
  if (known !== undefined) return known;
  const r = ctx.request;
  const conditions: ConditionalHeaders = {
    ifMatch: r.header('if-match'),
    ifNoneMatch: r.header('if-none-match'),
    ifModifiedSince: r.header('if-modified-since'),
    ifUnmodifiedSince: r.header('if-unmodified-since'),
  };
  state[CONDITIONS] = conditions;
  return conditions;
}

/** Turns the response into a 304 Not Modified that keeps the headers §15.4.5 asks for. */
function notModified(ctx: Context, etag: string | undefined): void {
  const { response } = ctx;
  const body = response.body;
  // A stream nobody will read would hold its producer (and memory) until it times out.
  if (isStreamBody(body)) {
    if (typeof (body as Readable).destroy === 'function') (body as Readable).destroy();
    else (body as ReadableStream<Uint8Array>).cancel().catch(() => {});
  }
  response.status = 304;
  response.body = null;
  for (const name of NOT_ON_304) response.headers.delete(name);
  if (etag !== undefined) response.headers.set('ETag', etag);
}

function normalise(loaded: Validators | undefined): Validators | undefined {
  if (loaded === undefined || loaded === null) return undefined;
  const out: Validators = {};
  // A row version may come back as a number or padded (`char(n)`): a value, not a programming error.
  if (loaded.etag !== undefined && loaded.etag !== null) {
    out.etag = toEntityTag(String(loaded.etag).trim());
  }
  const lm = loaded.lastModified;
  if (lm instanceof Date && !Number.isNaN(lm.getTime())) out.lastModified = lm;
  return out;
}

/**
 * The conditional-requests middleware. See the module documentation.
 */
export function conditional(options: ConditionalOptions = {}): Middleware {
  const {
    etag: etagMode = 'strong',
    load,
    requirePrecondition = false,
    writeMethods = DEFAULT_WRITES,
    cacheControl: cacheControlOption,
  } = options ?? {};
  if (etagMode !== 'strong' && etagMode !== 'weak' && etagMode !== false) {
    invalidOption('conditional', 'etag', "'strong', 'weak' or false", etagMode);
  }
  if (load !== undefined && typeof load !== 'function') {
    invalidOption('conditional', 'load', 'a function returning validators', load);
  }
  if (typeof requirePrecondition !== 'boolean') {
    invalidOption('conditional', 'requirePrecondition', 'a boolean', requirePrecondition);
  }
  if (
    !Array.isArray(writeMethods) ||
    writeMethods.some((m) => typeof m !== 'string' || m.length === 0)
  ) {
    invalidOption('conditional', 'writeMethods', 'a list of HTTP methods', writeMethods);
  }
  let cacheControlValue: string | undefined;
  if (cacheControlOption !== undefined) {
    if (typeof cacheControlOption === 'string' && !PRESET_NAMES.has(cacheControlOption)) {
      if (cacheControlOption.trim().length === 0 || /[\r\n]/.test(cacheControlOption)) {
        invalidOption(
          'conditional',
          'cacheControl',
          'a preset, directives or a field value',
          cacheControlOption,
        );
      }
      cacheControlValue = cacheControlOption;
    } else {
      cacheControlValue = cacheControl(
        cacheControlOption as CacheControlPreset | CacheControlOptions,
      );
    }
  }
  const writes = new Set(writeMethods.map((m) => m.toUpperCase()));
  const weak = etagMode === 'weak';
  let warnedNoLoad = false;
  let warnedOrder = false;

  /** Sets the validators (and Cache-Control) the response lacks; returns what it set. */
  function label(ctx: Context, v: Validators | undefined): Array<[string, string]> {
    const h = ctx.response.headers;
    const set: Array<[string, string]> = [];
    const put = (name: string, value: string) => {
      if (h.has(name)) return;
      h.set(name, value);
      set.push([name, value]);
    };
    if (v?.etag !== undefined) put('ETag', v.etag);
    if (v?.lastModified !== undefined) put('Last-Modified', formatHttpDate(v.lastModified));
    if (cacheControlValue !== undefined) put('Cache-Control', cacheControlValue);
    return set;
  }

  return async function conditionalRequests(ctx, next) {
    const method = ctx.request.method;
    const safe = method === 'GET' || method === 'HEAD';
    const write = writes.has(method);
    const conditions = requestConditions(ctx);
    const conditionsSent = hasPreconditions(conditions);

    if (
      write &&
      requirePrecondition &&
      conditions.ifMatch === undefined &&
      // An If-Unmodified-Since that is not an HTTP-date is ignored by evaluation (§13.1.4),
      // so it cannot satisfy the requirement either.
      parseHttpDate(conditions.ifUnmodifiedSince) === undefined
    ) {
      throw new PreconditionRequiredError();
    }

    const negotiation = getEncodingNegotiation(ctx);
    const evaluateOptions = {
      codings: negotiation?.codings ?? [],
      preferredCoding: negotiation?.coding,
    };

    let loaded: Validators | undefined;
    if (load !== undefined && (safe || (write && conditionsSent))) {
      loaded = normalise(await load(ctx));
      // A missing resource on a read: the answer will be an error (404), for
      // which preconditions are ignored (§13.2.1); let the handler give it.
      if (loaded !== undefined || !safe) {
        if (conditionsSent) {
          const result = evaluatePreconditions(method, conditions, loaded, evaluateOptions);
          if (result.outcome === 'failed') throw new PreconditionFailedError(result.by);
          if (result.outcome === 'not-modified') {
            label(ctx, loaded);
            notModified(ctx, result.etag);
            return;
          }
        }
      }
    } else if (write && conditionsSent && load === undefined && !warnedNoLoad) {
      warnedNoLoad = true;
      ctx.log.warn(
        'restwell/conditional: a conditional write arrived but no `load` option is set, so its preconditions are not checked before the handler; pass `load`, or evaluate them in the handler with evaluatePreconditions()',
        { traceId: ctx.traceId, method, path: ctx.request.path },
      );
    }

    // This module evaluates the preconditions after the handler, in the order
    // of §13.2.2; the framework must not answer 304 by its own, looser rules
    // (Express's res.send() consults req.fresh and drops the body).
    if (safe && conditionsSent) claimPreconditions(ctx);
    // Loaded validators describe the resource: stated before the handler runs,
    // so that a framework labelling responses itself (Express's weak ETag in
    // res.send()) keeps them instead of hashing the body.
    const labelled = safe && loaded !== undefined ? label(ctx, loaded) : [];
    await next();

    if (!safe) return;
    const { response } = ctx;
    // §13.2.1: preconditions apply only to what would otherwise be a 2xx; and
    // an error answer does not carry the resource's validators.
    if (response.status < 200 || response.status > 299) {
      for (const [name, value] of labelled) {
        if (response.headers.get(name) === value) response.headers.delete(name);
      }
      return;
    }
    label(ctx, loaded);

    const headers = response.headers;
    let tag = headers.get('etag');
    // Validators from `load` stand for the resource: hashing would invent a second, competing ETag.
    // Only a complete representation (200) is hashed: a 206's validator must be the full
    // representation's (RFC 9110 §15.3.7), which a hash of the part is not.
    if (
      tag === undefined &&
      etagMode !== false &&
      loaded === undefined &&
      response.status === 200
    ) {
      const body = response.body;
      if (headers.has('content-encoding') && !warnedOrder) {
        warnedOrder = true;
        ctx.log.warn(
          'restwell/conditional: the response is already content-coded; mount compression() before conditional() so that ETags name the identity body',
          { traceId: ctx.traceId },
        );
      }
      // A HEAD body is often dropped by the framework before we see it (Express
      // does); an ETag of the empty body would be wrong, so none is sent.
      if (!isStreamBody(body) && !(method === 'HEAD' && (body === null || body.length === 0))) {
        tag = etagOf(
          typeof body === 'string'
            ? body
            : body === null
              ? ''
              : Buffer.isBuffer(body)
                ? body
                : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          { weak },
        );
        headers.set('ETag', tag);
      }
    }

    // Already decided against `load`'s validators before the handler ran.
    if (!conditionsSent || loaded !== undefined) return;
    const lastModified = parseHttpDate(headers.get('last-modified'));
    const current: Validators = {
      etag: tag !== undefined && parseEntityTag(tag) !== undefined ? tag : undefined,
      lastModified,
    };
    const result = evaluatePreconditions(method, conditions, current, evaluateOptions);
    if (result.outcome === 'failed') throw new PreconditionFailedError(result.by);
    if (result.outcome === 'not-modified') notModified(ctx, result.etag);
  };
}
