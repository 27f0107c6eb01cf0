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
 *   when the response would otherwise be 2xx (§13.2.1): when `load` says the
 *   resource does not exist, a method that does not create it (GET, HEAD,
 *   PATCH, DELETE, POST) is left to its handler's 404, and one that does
 *   (`creates`, PUT by default) is evaluated against "no representation": a
 *   PUT with `If-Match` gets 412, one with `If-None-Match: *` creates.
 * - **Optimistic concurrency.** With `load`, a write's preconditions are checked
 *   against the current validators *before* the handler runs: a stale
 *   `If-Match` gets 412 and the write never happens. With `load` on a GET, a
 *   matching `If-None-Match` answers 304 without running the handler.
 * - **Labels.** A module mounted inside whose representations differ in more
 *   than the body (`versioning()` under the header and media-type strategies)
 *   calls `varyEntityTag(ctx, label)`; the tag hashed for that response mixes
 *   the label in, and the request's preconditions are compared with it. Tags
 *   the application states (an `ETag` it set, validators from `load`) are left
 *   alone.
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
import * as crypto from 'node:crypto';
import {
  answeredBy,
  type Context,
  claimPreconditions,
  isStreamBody,
  type Middleware,
} from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import {
  type CacheControlOptions,
  type CacheControlPreset,
  cacheControl,
  cacheControlValue,
} from './cache-control.js';
import {
  bodyBuffer,
  carriesDigest,
  getEncodingNegotiation,
  type RepresentationFacts,
  setReplacedRepresentation,
} from './encoding.js';
import { CONDITIONS, SUPPLIED } from './conditions-read.js';
import { entityTagLabels } from './tag-labels.js';
import { PreconditionFailedError, PreconditionRequiredError } from './errors.js';
import { parseEntityTag, toEntityTag } from './etag-list.js';
import { formatHttpDate, parseHttpDate } from './http-date.js';
import {
  type ConditionalHeaders,
  evaluatePreconditions,
  hasPreconditions,
  type Validators,
} from './preconditions.js';

export { type ConditionsRead, conditionsRead } from './conditions-read.js';
export * from './errors.js';
export { entityTagLabels, varyEntityTag } from './tag-labels.js';
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

/** Options of {@link conditional}. */
export interface ConditionalOptions {
  /**
   * Automatic ETags for GET/HEAD 2xx responses that have none: `'strong'`
   * (`"<length>-<sha1>"`), `'weak'` (`W/"..."`, for bodies that may differ in
   * insignificant bytes, e.g. re-serialised JSON), or `false` for none (only
   * validators the application supplies are used). A response that already has
   * an `ETag` is never hashed; neither is a streaming body, nor a response whose
   * validators a `load` (of this or another `conditional()` on the request)
   * supplied, even if that was only a `lastModified`.
   * @default 'strong'
   */
  etag?: 'strong' | 'weak' | false;
  /**
   * Loads the current validators of the target resource before the handler
   * runs; `undefined` (or `null`) when the resource has no current
   * representation (it does not exist). Called for GET and HEAD (to answer
   * 304 without running the handler, and to label the response without
   * hashing it), and for any other method that carries a precondition (so
   * that a failed one answers 412 and the method never runs). A bare `etag`
   * such as `v3` is quoted (`"v3"`).
   *
   * When it returns `undefined`, what happens depends on the method (RFC 9110
   * §13.2.1: preconditions are ignored when the answer without them would not
   * be 2xx): a method in `creates` is evaluated against "no representation"
   * (`If-Match` fails, `If-None-Match: *` passes, `If-Unmodified-Since` is
   * ignored, §13.1.1 to §13.1.4); any other method runs its handler, which
   * answers the 404.
   * @default undefined (validators come from the response, after the handler)
   */
  load?: (ctx: Context) => Validators | undefined | null | Promise<Validators | undefined | null>;
  /**
   * Methods that create the target resource when it does not exist, so that
   * their answer would be 2xx without preconditions (a `PUT` to a new id).
   * For these, a missing resource (`load` returned `undefined`) is evaluated:
   * `If-Match` fails with 412, `If-None-Match: *` lets the creation through.
   * For every other method a missing resource is the handler's 404, whatever
   * the preconditions. Add `'PATCH'` if your PATCH creates (RFC 5789 allows it).
   * @default ['PUT']
   */
  creates?: readonly string[];
  /**
   * Answer 428 Precondition Required (RFC 6585 §3) to a write that carries
   * neither `If-Match` nor `If-Unmodified-Since`: clients must prove which
   * version they are changing, so updates are never lost. Needs `load`: without
   * it the precondition a client sends could not be checked before the write,
   * so `requirePrecondition: true` without `load` throws at construction.
   * @default false
   */
  requirePrecondition?: boolean;
  /** Methods `requirePrecondition` treats as writes. @default ['PUT', 'PATCH', 'DELETE'] */
  writeMethods?: readonly string[];
  /**
   * `Cache-Control` set on GET/HEAD 2xx and 304 responses that have none: a
   * preset (`'immutable'`, `'private'`, `'no-cache'`, `'no-store'`), directives
   * (see `cacheControl()`) or a field value of known response directives (RFC
   * 9111 §5.2.2; a misspelt one throws, naming the nearest). Set here, it is
   * also on a 304 answered from `load` without running the handler.
   * @default undefined (none set)
   */
  cacheControl?: CacheControlPreset | CacheControlOptions | string;
}

const OPTION_NAMES = [
  'etag',
  'load',
  'creates',
  'requirePrecondition',
  'writeMethods',
  'cacheControl',
] as const;
const OPTION_HINTS: Record<string, string> = {
  weak: "Use etag: 'weak'.",
  required: 'Did you mean "requirePrecondition"?',
  validators: 'Did you mean "load"?',
};
const DEFAULT_WRITES = ['PUT', 'PATCH', 'DELETE'];
const DEFAULT_CREATES = ['PUT'];
/** Methods that select no representation: conditional fields are ignored (RFC 9110 §13.2.1). */
const UNCONDITIONAL = new Set(['CONNECT', 'OPTIONS', 'TRACE']);

type Keyed = Record<symbol, unknown>;

/**
 * The request's conditional fields, read once per request and kept in its
 * state, shared by a global conditional() and one on a route.
 */
function requestConditions(ctx: Context): ConditionalHeaders {
  const state = ctx.state as Keyed;
  const known = state[CONDITIONS] as ConditionalHeaders | undefined;
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

/**
 * Turns the response into a 304 Not Modified. The adapters keep only the fields
 * RFC 9110 §15.4.5 allows on every 304, and destroy the replaced body if it is a
 * stream (src/core/response.ts); this sets what only conditional() knows: the
 * entity tag the 304 validates.
 */
function notModified(ctx: Context, etag: string | undefined): void {
  const { response } = ctx;
  response.status = 304;
  response.body = null;
  if (etag !== undefined) response.headers.set('ETag', etag);
  answeredBy(ctx, 'conditional', '304 not modified');
}

/** Throws a failed precondition's 412, noted for the adapters' debug line. */
function failed(ctx: Context, error: PreconditionFailedError): never {
  answeredBy(ctx, 'conditional', 'precondition failed');
  throw error;
}

function normalise(loaded: Validators | undefined | null): Validators | undefined {
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

function checkMethods(option: string, value: unknown): readonly string[] {
  if (
    !Array.isArray(value) ||
    value.some((m) => typeof m !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(m))
  ) {
    invalidOption('conditional', option, 'a list of HTTP methods', value);
  }
  return value as readonly string[];
}

/**
 * The conditional-requests middleware. See the module documentation.
 */
export function conditional(options: ConditionalOptions = {}): Middleware {
  checkOptions('conditional', options, OPTION_NAMES, OPTION_HINTS);
  const {
    etag: etagMode = 'strong',
    load,
    creates = DEFAULT_CREATES,
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
  if (requirePrecondition && load === undefined) {
    // The 428 would push clients to send If-Match, which nothing would then check
    // before the write: the route would look protected and not be.
    throw new TypeError(
      'restwell/conditional: option "requirePrecondition" needs "load": without it the If-Match a client sends cannot be checked before the write. Pass load, or drop requirePrecondition and check the preconditions in the handler with evaluatePreconditions().',
    );
  }
  const writes = new Set(checkMethods('writeMethods', writeMethods).map((m) => m.toUpperCase()));
  const creating = new Set(checkMethods('creates', creates).map((m) => m.toUpperCase()));
  let cacheControlHeader: string | undefined;
  if (cacheControlOption !== undefined) {
    cacheControlHeader =
      typeof cacheControlOption === 'string'
        ? cacheControlValue('cacheControl', cacheControlOption)
        : cacheControl(cacheControlOption);
  }
  const weak = etagMode === 'weak';
  let warnedNoLoad = false;
  let warnedOrder = false;
  let warnedContradiction = false;

  /** Sets the validators (and Cache-Control) the response lacks; returns what it set. */
  function label(ctx: Context, v: Validators | undefined): Array<[string, string]> {
    const h = ctx.response.headers;
    const set: Array<[string, string]> = [];
    if (v?.etag !== undefined && !h.has('etag')) {
      h.set('ETag', v.etag);
      set.push(['etag', v.etag]);
    }
    if (v?.lastModified !== undefined && !h.has('last-modified')) {
      const date = formatHttpDate(v.lastModified);
      h.set('Last-Modified', date);
      set.push(['last-modified', date]);
    }
    if (cacheControlHeader !== undefined && !h.has('cache-control')) {
      h.set('Cache-Control', cacheControlHeader);
      set.push(['cache-control', cacheControlHeader]);
    }
    return set;
  }

  return async function conditionalRequests(ctx, next) {
    const method = ctx.request.method;
    if (UNCONDITIONAL.has(method)) return next();
    const safe = method === 'GET' || method === 'HEAD';
    const conditions = requestConditions(ctx);
    const conditionsSent = hasPreconditions(conditions);
    const state = ctx.state as Keyed;

    if (
      requirePrecondition &&
      writes.has(method) &&
      conditions.ifMatch === undefined &&
      // An If-Unmodified-Since that is not an HTTP-date is ignored by evaluation (§13.1.4),
      // so it cannot satisfy the requirement either.
      parseHttpDate(conditions.ifUnmodifiedSince) === undefined
    ) {
      answeredBy(ctx, 'conditional', 'precondition required');
      throw new PreconditionRequiredError();
    }

    const negotiation = getEncodingNegotiation(ctx);
    const codings = negotiation?.codings ?? [];

    let loaded: Validators | undefined;
    let missing = false;
    if (load !== undefined && (safe || conditionsSent)) {
      loaded = normalise(await load(ctx));
      missing = loaded === undefined;
      if (!missing) state[SUPPLIED] = true;
      // §13.2.1: with no current representation, a method that does not create
      // one would be answered 404 (by its handler) without preconditions, so
      // they are ignored; a method that creates would be 2xx, so they are
      // evaluated against "no representation" (§13.1.1: If-Match is false).
      if (conditionsSent && (!missing || creating.has(method))) {
        // Decided before the handler: the 200's body is unknown, so a 304's ETag
        // names the variant of the negotiated coding (see docs/caching.md).
        const result = evaluatePreconditions(method, conditions, loaded, {
          codings,
          preferredCoding: negotiation?.coding,
        });
        if (result.outcome === 'failed') failed(ctx, new PreconditionFailedError(result.by));
        if (result.outcome === 'not-modified') {
          label(ctx, loaded);
          notModified(ctx, result.etag);
          return;
        }
      }
    } else if (!safe && conditionsSent && load === undefined && !warnedNoLoad) {
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
    const labelled = safe && loaded !== undefined ? label(ctx, loaded) : undefined;
    await next();

    const { response } = ctx;
    const ok = response.status >= 200 && response.status <= 299;
    if (!safe) {
      if (ok && missing && conditionsSent && !warnedContradiction) {
        warnedContradiction = true;
        ctx.log.warn(
          `restwell/conditional: load found no resource for a conditional ${method}, so its preconditions were ignored (RFC 9110 §13.2.1), yet the handler answered ${response.status}; if this method creates the resource, list it in the \`creates\` option`,
          { traceId: ctx.traceId, method, path: ctx.request.path },
        );
      }
      return;
    }
    // §13.2.1: preconditions apply only to what would otherwise be a 2xx; and
    // an error answer does not carry the resource's validators.
    if (!ok) {
      for (const [name, value] of labelled ?? []) {
        if (response.headers.get(name) === value) response.headers.delete(name);
      }
      return;
    }
    label(ctx, loaded);

    // Validators from a `load` (this one's or a route's) stand for the resource:
    // hashing would invent a second, competing ETag; and that conditional()
    // has already decided the preconditions.
    if (loaded !== undefined || state[SUPPLIED] === true) return;

    const headers = response.headers;
    const body = response.body;
    const streaming = isStreamBody(body);
    // A HEAD body is often dropped by the framework before we see it (Express
    // does); an ETag of the empty body would be wrong, so none is sent.
    const bodyless = method === 'HEAD' && (body === null || (!streaming && body.length === 0));
    // Encoded only when hashed; compression() then reuses the bytes.
    let bytes: Buffer | undefined;
    let tag = headers.get('etag');
    // Only a complete representation (200) is hashed: a 206's validator must be the full
    // representation's (RFC 9110 §15.3.7), which a hash of the part is not.
    if (tag === undefined && etagMode !== false && response.status === 200) {
      if (headers.has('content-encoding') && !warnedOrder) {
        warnedOrder = true;
        ctx.log.warn(
          'restwell/conditional: the response is already content-coded; mount compression() before conditional() so that ETags name the identity body',
          { traceId: ctx.traceId },
        );
      }
      if (!streaming && !bodyless) {
        bytes = body === null ? EMPTY : bodyBuffer(ctx, body as string | Uint8Array);
        tag = entityTag(bytes, weak, entityTagLabels(ctx));
        headers.set('ETag', tag);
      }
    }

    if (!conditionsSent) return;
    const lastModified = parseHttpDate(headers.get('last-modified'));
    const current: Validators = {
      etag: tag !== undefined && parseEntityTag(tag) !== undefined ? tag : undefined,
      lastModified,
    };
    // Under compression(), the 200 this request would get: its coding decides the 304's ETag and Vary.
    const facts: RepresentationFacts | undefined =
      negotiation === undefined
        ? undefined
        : {
            contentType: headers.get('content-type'),
            contentEncoding: headers.get('content-encoding'),
            cacheControl: headers.get('cache-control'),
            digested: carriesDigest(headers),
            size: bodyless
              ? lengthOf(headers)
              : streaming
                ? undefined
                : (bytes?.byteLength ?? byteLengthOf(body as string | Uint8Array | null)),
          };
    const result = evaluatePreconditions(method, conditions, current, {
      codings,
      preferredCoding: facts === undefined ? undefined : negotiation?.plan(facts).coding,
    });
    if (result.outcome === 'failed') failed(ctx, new PreconditionFailedError(result.by));
    if (result.outcome === 'not-modified') {
      if (facts !== undefined) setReplacedRepresentation(ctx, facts);
      notModified(ctx, result.etag);
    }
  };
}

const EMPTY = Buffer.alloc(0);

/** One-shot hashing (Node 20.12+), which spares the Hash object; createHash() before that. */
const oneShot = (
  crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'base64') => string }
).hash;

/**
 * The entity-tag of a body: `"<length in hex>-<27 characters of base64 SHA-1>"`,
 * `W/` in front when weak. The format of the `etag` package that Express and
 * koa-etag use, so that tags stay the same for applications moving over.
 * SHA-1 is a change detector here, not a security boundary; the length prefix
 * keeps bodies of different sizes apart.
 *
 * With `labels` (see `varyEntityTag()`) the hash covers them too, framed
 * before the body (their count, then each one's byte length and bytes), so that
 * no two sets of labels frame alike. The tag keeps its shape, the length still
 * the body's: a labelled tag never equals the unlabelled tag of another body,
 * whose length would be the framed input's. No label is ever written into the
 * tag, so none can break its quoting (RFC 9110 §8.8.3 `etagc`) or pass for a
 * coding suffix.
 */
export function entityTag(bytes: Buffer, weak = false, labels: readonly string[] = []): string {
  let digest: string;
  if (labels.length > 0) {
    const hash = crypto.createHash('sha1');
    hash.update(`restwell-labels:${labels.length}:`);
    for (const label of labels) {
      const encoded = Buffer.from(label, 'utf8');
      hash.update(`${encoded.length}:`);
      hash.update(encoded);
    }
    digest = hash.update(bytes).digest('base64');
  } else {
    digest =
      oneShot === undefined
        ? crypto.createHash('sha1').update(bytes).digest('base64')
        : oneShot('sha1', bytes, 'base64');
  }
  const tag = `"${bytes.length.toString(16)}-${digest.slice(0, 27)}"`;
  return weak ? `W/${tag}` : tag;
}

function byteLengthOf(body: string | Uint8Array | null): number {
  if (body === null) return 0;
  return typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
}

/** The Content-Length a HEAD response's handler computed, when the framework dropped the body. */
function lengthOf(headers: Context['response']['headers']): number | undefined {
  const value = headers.get('content-length');
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
