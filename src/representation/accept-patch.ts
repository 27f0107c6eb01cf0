/**
 * PATCH media types (RFC 5789): `acceptPatch()` states which patch formats a
 * resource applies, advertises them in `Accept-Patch` (§3.1) and refuses any
 * other with 415 (§2.2); `applyPatch()` applies the request's patch in the
 * format its `Content-Type` names, so a handler needs one line.
 *
 * A plain `application/json` PATCH is refused rather than guessed at: a
 * client that sends a partial document as JSON may mean a merge patch, or may
 * be a PUT client that expects the members it left out to go, and a server
 * that guesses wrong loses data either way.
 */
import { mediaTypeOf } from '../core/body.js';
import { type Context, type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { PatchDocumentMissingError, UnsupportedPatchMediaTypeError } from './errors.js';
import {
  applyJsonPatch,
  JSON_PATCH_MEDIA_TYPE,
  type JsonPatchOptions,
  resolveJsonPatchOptions,
} from './json-patch.js';
import { MERGE_PATCH_MEDIA_TYPE, mergePatch } from './merge-patch.js';

/** The patch formats `applyPatch()` applies: JSON Merge Patch and JSON Patch. */
export const PATCH_MEDIA_TYPES: readonly string[] = Object.freeze([
  MERGE_PATCH_MEDIA_TYPE,
  JSON_PATCH_MEDIA_TYPE,
]);

/** Options of {@link acceptPatch}. */
export interface AcceptPatchOptions {
  /**
   * The patch media types this resource applies, most preferred first; sent
   * as `Accept-Patch` in this order. Merge patch alone by default: it is the
   * format most clients can write, and JSON Patch is opted into by listing it.
   * Types without parameters, compared case-insensitively (RFC 9110 §8.3.1).
   * @default [MERGE_PATCH_MEDIA_TYPE] (`application/merge-patch+json`)
   */
  types?: readonly string[];
  /**
   * Which responses carry `Accept-Patch`. `'always'`: every response of the
   * route (GET, HEAD, OPTIONS, PATCH, its 415, its errors), so a client learns
   * the formats from the representation it already read; RFC 5789 §3.1 makes
   * the header's presence on any response mean PATCH is allowed on the
   * resource. `'options'`: only OPTIONS responses (where §3.1 says it SHOULD
   * be) and the 415.
   * @default 'always'
   */
  advertise?: 'always' | 'options';
}

/** Where `acceptPatch()` leaves its list for `applyPatch()` on this request. */
const ACCEPTED = Symbol('restwell.acceptPatch');

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

function checkTypes(module: string, option: string, types: unknown): readonly string[] {
  if (!Array.isArray(types) || types.length === 0) {
    invalidOption(module, option, 'a non-empty array of media types', types);
  }
  const out: string[] = [];
  for (const type of types) {
    if (typeof type !== 'string' || !MEDIA_TYPE.test(type.trim().toLowerCase())) {
      invalidOption(module, option, 'media types such as "application/merge-patch+json"', type);
    }
    const normal = type.trim().toLowerCase();
    if (!out.includes(normal)) out.push(normal);
  }
  return Object.freeze(out);
}

/**
 * Whether the request has a body, by its framing (RFC 9112 §6.3: without
 * `Content-Length` or `Transfer-Encoding` there is none). The parsed body is
 * not asked: Express 4's parsers set `req.body` to `{}` when they read nothing.
 */
function hasBody(ctx: Context): boolean {
  const req = ctx.request;
  const length = req.header('content-length');
  return (
    req.header('transfer-encoding') !== undefined || (length !== undefined && length.trim() !== '0')
  );
}

/**
 * The 415 of RFC 5789 §2.2 for a PATCH whose `Content-Type` is not one of
 * `types`, or that has a body and no `Content-Type`; `undefined` when the
 * request is acceptable.
 */
function refusal(
  ctx: Context,
  types: readonly string[],
): UnsupportedPatchMediaTypeError | undefined {
  const contentType = ctx.request.header('content-type');
  if (contentType === undefined || contentType.trim() === '') {
    return hasBody(ctx) ? new UnsupportedPatchMediaTypeError(undefined, types) : undefined;
  }
  const type = mediaTypeOf(contentType);
  if (type !== undefined && types.includes(type)) return undefined;
  return new UnsupportedPatchMediaTypeError(type ?? contentType.trim(), types);
}

/**
 * Mount on a resource's routes (every method, so GET and OPTIONS advertise
 * too): answers a PATCH in another media type with 415 and `Accept-Patch`
 * (RFC 5789 §2.2), and sends `Accept-Patch` on the route's responses (§3.1).
 * Reads no body: mount it before or after `jsonBody()`. A body `jsonBody()`
 * cannot parse at all (`text/plain`) is refused by `jsonBody()` first when it
 * runs first, with its own 415; mount `jsonBody()` after this gate on the
 * route for that 415 to carry `Accept-Patch` too.
 *
 * @example
 * ```ts
 * import { acceptPatch, applyPatch, JSON_PATCH_MEDIA_TYPE, MERGE_PATCH_MEDIA_TYPE } from 'restwell/representation';
 *
 * const patchable = rw(acceptPatch({ types: [MERGE_PATCH_MEDIA_TYPE, JSON_PATCH_MEDIA_TYPE] }));
 * app.route('/v1/users/:id').all(patchable).get(...).patch((req, res) => {
 *   res.json(save(applyPatch(contextOf(req), load(req.params.id))));
 * });
 * ```
 */
export function acceptPatch(options: AcceptPatchOptions = {}): Middleware {
  checkOptions('acceptPatch', options, ['types', 'advertise'], {
    accept: 'Use types: [...], the media types listed in Accept-Patch.',
    mediaTypes: 'Use types: [...], the media types listed in Accept-Patch.',
  });
  const types =
    options.types === undefined
      ? Object.freeze([MERGE_PATCH_MEDIA_TYPE])
      : checkTypes('acceptPatch', 'types', options.types);
  const { advertise = 'always' } = options;
  if (advertise !== 'always' && advertise !== 'options') {
    invalidOption('acceptPatch', 'advertise', '"always" or "options"', advertise);
  }
  const header = types.join(', ');

  return responseBlind(function acceptPatchTypes(ctx, next) {
    const method = ctx.request.method;
    if (advertise === 'always' || method === 'OPTIONS') {
      ctx.response.headers.set('Accept-Patch', header);
    }
    if (method === 'PATCH') {
      (ctx.state as Record<symbol, unknown>)[ACCEPTED] = types;
      const refused = refusal(ctx, types);
      if (refused !== undefined) throw refused;
    }
    return next();
  });
}

/** Options of {@link applyPatch}. */
export interface ApplyPatchOptions {
  /**
   * The media types to apply, among `PATCH_MEDIA_TYPES`. A request in another
   * gets 415 with `Accept-Patch`.
   * @default the list of the `acceptPatch()` that ran on this request; else both formats
   * restwell applies (`PATCH_MEDIA_TYPES`)
   */
  types?: readonly string[];
  /** Limits for JSON Patch documents; see {@link JsonPatchOptions}. @default {} */
  jsonPatch?: JsonPatchOptions;
}

interface ResolvedApplyOptions {
  types: readonly string[] | undefined;
  jsonPatch: JsonPatchOptions | undefined;
}

const resolvedApply = new WeakMap<object, ResolvedApplyOptions>();
const NO_OPTIONS: ResolvedApplyOptions = { types: undefined, jsonPatch: undefined };

function resolveApplyOptions(options: ApplyPatchOptions | undefined): ResolvedApplyOptions {
  if (options === undefined) return NO_OPTIONS;
  const known = resolvedApply.get(options);
  if (known !== undefined) return known;
  checkOptions('applyPatch', options, ['types', 'jsonPatch']);
  const types =
    options.types === undefined ? undefined : checkTypes('applyPatch', 'types', options.types);
  for (const type of types ?? []) {
    if (!PATCH_MEDIA_TYPES.includes(type)) {
      invalidOption('applyPatch', 'types', `a list of ${PATCH_MEDIA_TYPES.join(' and ')}`, type);
    }
  }
  if (options.jsonPatch !== undefined)
    resolveJsonPatchOptions(options.jsonPatch, 'applyPatch jsonPatch');
  const out = { types, jsonPatch: options.jsonPatch };
  resolvedApply.set(options, out);
  return out;
}

function isContext(value: unknown): value is Context {
  if (value === null || typeof value !== 'object') return false;
  const { request, response } = value as Partial<Context>;
  return (
    typeof request?.header === 'function' &&
    typeof (response?.headers as { set?: unknown } | undefined)?.set === 'function'
  );
}

/**
 * An Express request or a Koa context given where the restwell context was
 * meant: both have a `get()` method and the raw request or response, which no
 * JSON document has.
 */
function isFrameworkObject(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const v = value as { get?: unknown; req?: unknown; res?: unknown };
  return (
    typeof v.get === 'function' &&
    ((v.req !== null && typeof v.req === 'object') || (v.res !== null && typeof v.res === 'object'))
  );
}

function apply(
  document: unknown,
  patch: unknown,
  type: string | undefined,
  types: readonly string[],
  jsonPatch: JsonPatchOptions | undefined,
): unknown {
  if (patch === undefined) throw new PatchDocumentMissingError();
  if (type === undefined || !types.includes(type)) {
    throw new UnsupportedPatchMediaTypeError(type, types);
  }
  switch (type) {
    case MERGE_PATCH_MEDIA_TYPE:
      return mergePatch(document, patch);
    case JSON_PATCH_MEDIA_TYPE:
      return applyJsonPatch(document, patch, jsonPatch);
    default:
      throw new TypeError(
        `restwell/applyPatch: ${type} is accepted on this route, but applyPatch() applies only ${PATCH_MEDIA_TYPES.join(
          ' and ',
        )}; apply it in the handler.`,
      );
  }
}

/**
 * Applies the request's patch to `document` in the format its `Content-Type`
 * names: a merge patch (RFC 7396, {@link mergePatch}) or a JSON Patch (RFC
 * 6902, {@link applyJsonPatch}), and returns the new document; `document` is
 * not changed. The body must have been parsed (`jsonBody()` reads both types:
 * they end in `+json`). Another media type gets 415 with `Accept-Patch`; an
 * empty body 400 `patch-document-missing`; a JSON Patch that fails, its 400,
 * 409 or 422.
 *
 * @example
 * ```ts
 * // Express
 * .patch((req, res) => res.json(repo.save(applyPatch(contextOf(req), repo.get(req.params.id)))))
 * // Koa
 * (ctx) => { ctx.body = repo.save(applyPatch(contextOf(ctx), repo.get(ctx.params.id))); }
 * ```
 */
export function applyPatch<T = unknown>(
  ctx: Context,
  document: unknown,
  options?: ApplyPatchOptions,
): T;
/**
 * Applies `patch` to `document` in the format `contentType` names (a
 * `Content-Type` value; parameters are ignored), for code that holds the
 * parts rather than a restwell context. Same answers as the context form;
 * the default `types` is both formats.
 *
 * @example
 * ```ts
 * const updated = applyPatch(user, req.body, req.get('content-type'));
 * ```
 */
export function applyPatch<T = unknown>(
  document: unknown,
  patch: unknown,
  contentType: string | undefined,
  options?: ApplyPatchOptions,
): T;
export function applyPatch(
  first: unknown,
  second?: unknown,
  third?: unknown,
  fourth?: unknown,
): unknown {
  // A JSON document never holds functions, so it is never taken for a context.
  if (isContext(first)) {
    const ctx = first;
    const options = resolveApplyOptions(third as ApplyPatchOptions | undefined);
    const types =
      options.types ??
      ((ctx.state as Record<symbol, unknown>)[ACCEPTED] as readonly string[] | undefined) ??
      PATCH_MEDIA_TYPES;
    const refused = refusal(ctx, types);
    if (refused !== undefined) throw refused;
    const req = ctx.request;
    const withBody = hasBody(ctx);
    // A body no parser read (express.json() reads only application/json by
    // default) is a server misconfiguration: applying `{}` instead would
    // answer 200 having changed nothing.
    if (withBody && !req.bodyConsumed) {
      throw new Error(
        'restwell/applyPatch: the PATCH body was not parsed. Mount jsonBody() (it reads every +json type) or a parser that reads the patch media types before the handler.',
      );
    }
    const patch = withBody ? req.body : undefined;
    return apply(second, patch, mediaTypeOf(req.header('content-type')), types, options.jsonPatch);
  }
  if (isFrameworkObject(first)) {
    throw new TypeError(
      "restwell/applyPatch: pass the restwell context, contextOf(req) on Express or contextOf(ctx) on Koa, not the framework's own object.",
    );
  }
  const options = resolveApplyOptions(fourth as ApplyPatchOptions | undefined);
  if (third !== undefined && typeof third !== 'string') {
    throw new TypeError('restwell/applyPatch: the third argument is the Content-Type, a string.');
  }
  const type = third === undefined ? undefined : mediaTypeOf(third);
  return apply(first, second, type, options.types ?? PATCH_MEDIA_TYPES, options.jsonPatch);
}
