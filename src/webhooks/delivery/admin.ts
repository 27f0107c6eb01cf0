/**
 * The webhook admin API: a mountable middleware that answers, under one base
 * path (`/v1/webhook-endpoints` by default), the operator's requests about
 * endpoints, their deliveries, attempts, dead letters and stats, replay,
 * resend and test events, over a {@link WebhookDelivery} engine.
 *
 * - Every error is a problem document: 404 for a path under the base that is
 *   no route, 405 with `Allow` for a method a route does not take, 400
 *   `validation-failed` listing every bad field with its JSON pointer, 404
 *   `webhook-endpoint-not-found` for an id no endpoint has.
 * - Operators only: every request under the base path passes the `authorize`
 *   guards first (by default `requireRole('admin')` of restwell/auth), before
 *   anything about the route is told: 401 anonymous, 403 another role.
 * - Bounded: a replay re-queues at most `maxReplay` events' dead letters per
 *   request (`hasMore` says more remain), a resend by event id goes only to an
 *   endpoint that had a delivery of the event, and a create of a taken id is a
 *   409 that leaves the existing endpoint and its secret alone.
 * - Secrets are shown twice in an endpoint's life, in the answer to its
 *   creation and to a rotation, both `Cache-Control: no-store`; every other
 *   answer shows the URL and never a secret, and nothing is logged of a body.
 *
 * Paths are matched as the routers match them (case-insensitive literals, an
 * optional trailing `/`, runs of `/`, encoded unreserved characters), and
 * split before decoding, so an encoded `/` never makes a new segment: see
 * `admin-routes.ts`.
 *
 * @example
 * ```ts
 * const delivery = webhookDelivery({ guard: ssrfGuard() });
 * app.use(rw(authenticate({ apiKeys }), webhookAdmin(delivery)));
 * ```
 */
import { randomBytes } from 'node:crypto';
import { requireRole, allowAnonymous, type Guard } from '../../auth/authorize.js';
import { JsonTooDeepError, jsonBody, mediaTypeOf, valueNestsDeeperThan } from '../../core/body.js';
import { answeredBy, type Context, type Middleware, principalId } from '../../core/context.js';
import {
  checkOptions,
  invalidOption,
  MethodNotAllowedError,
  NotFoundError,
  RestwellError,
  ValidationError,
  type ValidationIssue,
} from '../../core/errors.js';
import { canonicalAllow } from '../../core/response.js';
import { type CursorCodec, createCursorCodec } from '../../pagination/cursor.js';
import { keysetPagination } from '../../pagination/keyset-pages.js';
import { checkBaseUrl, pageHref, withParams, writeLinkHeader } from '../../pagination/links.js';
import { readInteger, single } from '../../pagination/params.js';
import { MERGE_PATCH_MEDIA_TYPE, mergePatch } from '../../representation/merge-patch.js';
import {
  below,
  compileBasePath,
  decodeSegment,
  matchRoute,
  pathSegments,
  type RoutePattern,
} from './admin-routes.js';
import {
  attemptView,
  bodyFields,
  checkQueryNames,
  deliveryView,
  endpointView,
  eventView,
  MAX_EVENT_IDS,
  readId,
  readLimit,
  readQueryRange,
  readRange,
  readStatuses,
  readTypes,
  statsView,
} from './admin-views.js';
import type { WebhookDelivery } from './delivery.js';
import type { UpdateEndpointInput, WebhookEndpoint } from './endpoints.js';
import { ID_PATTERN, isEventType } from './events.js';
import type { LogPage } from './log.js';
import { WebhookEndpointNotFoundError, WebhookEventNotFoundError } from './problems.js';

/** Options of {@link webhookAdmin}. */
export interface WebhookAdminOptions {
  /** Where the API answers; requests elsewhere pass on. @default '/v1/webhook-endpoints' */
  basePath?: string;
  /**
   * The guards every request under `basePath` must pass, all of them, before
   * routing: restwell/auth's `requireRole()`, `requireScope()`, `authorize()`.
   * `allowAnonymous()` opens the API, as a decision written down.
   * @default requireRole('admin')
   */
  authorize?: Guard | readonly Guard[];
  /**
   * The codec of the endpoint list's cursors. Several processes serving the
   * API must share its secret. @default a codec with a random key of this process
   */
  cursors?: CursorCodec;
  /** Write absolute `Location` and page links under this base URL. @default relative links */
  baseUrl?: string;
  /** Largest request body read, in bytes. @default 65536 */
  bodyLimit?: number;
  /**
   * Most events whose dead letters one replay request re-queues; when the
   * filter selects more, the answer says `hasMore: true` and the request is
   * repeated for the next batch. @default 1000
   */
  maxReplay?: number;
}

const OPTIONS = ['basePath', 'authorize', 'cursors', 'baseUrl', 'bodyLimit', 'maxReplay'] as const;
/** Bodies are flat (metadata is the deepest member, at depth 2): a few levels more is plenty. */
const MAX_BODY_DEPTH = 8;
/** The longest rotation overlap accepted: a leaked old secret must not stay valid for long. */
const MAX_OVERLAP_MS = 30 * 24 * 60 * 60 * 1000;
const MAX_WINDOW_MS = 90 * 24 * 60 * 60 * 1000;
const DEFAULT_DISABLE_REASON = 'Disabled by an operator.';

/** 404: the delivery is not one of this endpoint's, or is no longer kept. */
export class WebhookDeliveryNotFoundError extends RestwellError {
  override readonly name = 'WebhookDeliveryNotFoundError';
  constructor() {
    super('webhook-delivery-not-found', 404, 'Webhook delivery not found', {
      detail: 'This endpoint has no delivery of this id: it never had, or it is past retention.',
    });
  }
}

type Params = Readonly<Record<string, string>>;
type Handler = (ctx: Context, params: Params) => Promise<void>;

/** What a client's id may show in a problem: as sent, cut short. */
function shown(raw: string): string {
  return raw.length > 100 ? `${raw.slice(0, 100)}…` : raw;
}

/** An id from a path segment; an id no endpoint can have is one no endpoint has (404). */
function endpointIdOf(params: Params): string {
  const raw = params.id ?? '';
  const id = decodeSegment(raw);
  if (id === undefined || !ID_PATTERN.test(id)) throw new WebhookEndpointNotFoundError(shown(raw));
  return id;
}

function reply(
  ctx: Context,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  const { response } = ctx;
  response.status = status;
  // Operator data (and, twice, a secret): never kept by a cache (RFC 9111 §5.2.2.5).
  response.headers.set('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  if (body === undefined) {
    response.body = null;
    return;
  }
  response.headers.set('Content-Type', 'application/json; charset=utf-8');
  response.body = JSON.stringify(body);
}

function fail(issues: ValidationIssue[]): void {
  if (issues.length > 0) throw new ValidationError(issues);
}

const noop = async (): Promise<void> => {};

/**
 * The webhook admin API over `delivery`; see the module comment for what it
 * answers. Mount it on every request (it passes on those outside `basePath`),
 * after the authentication that sets `ctx.state.principal`.
 *
 * @example
 * ```ts
 * app.use(rw(authenticate({ apiKeys }), webhookAdmin(delivery, { basePath: '/v1/webhook-endpoints' })));
 * ```
 */
export function webhookAdmin(
  delivery: WebhookDelivery,
  options: WebhookAdminOptions = {},
): Middleware {
  checkOptions('webhookAdmin', options, OPTIONS);
  if (
    delivery === null ||
    typeof delivery !== 'object' ||
    typeof delivery.dispatch !== 'function' ||
    typeof delivery.endpoints?.create !== 'function'
  ) {
    invalidOption('webhookAdmin', 'delivery', 'an engine from webhookDelivery()', delivery);
  }
  const base = compileBasePath(options.basePath ?? '/v1/webhook-endpoints');
  const guards = (
    options.authorize === undefined
      ? [requireRole('admin')]
      : Array.isArray(options.authorize)
        ? options.authorize
        : [options.authorize]
  ) as unknown[];
  if (
    guards.length === 0 ||
    !guards.every((g) => typeof g === 'function' && typeof (g as Guard).check === 'function')
  ) {
    invalidOption(
      'webhookAdmin',
      'authorize',
      'a guard of restwell/auth (requireRole(), requireScope(), authorize(), allowAnonymous()) or a non-empty list of them',
      options.authorize,
    );
  }
  const checks = guards as Guard[];
  // Passing the checks covers the request for `authorization({ coverage: 'guards' })`, as a
  // route guard that passed would: a guard with nothing to check marks it so.
  const covered = allowAnonymous();
  const baseUrl = checkBaseUrl('webhookAdmin', options.baseUrl);
  const bodyLimit = options.bodyLimit ?? 65_536;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1)
    invalidOption('webhookAdmin', 'bodyLimit', 'a positive integer of bytes', bodyLimit);
  const maxReplay = options.maxReplay ?? MAX_EVENT_IDS;
  if (!Number.isSafeInteger(maxReplay) || maxReplay < 1 || maxReplay > 10_000)
    invalidOption('webhookAdmin', 'maxReplay', 'an integer of events from 1 to 10000', maxReplay);
  const parseBody = jsonBody({ limit: bodyLimit, maxDepth: MAX_BODY_DEPTH });
  const endpointPages = keysetPagination({
    cursors: options.cursors ?? createCursorCodec({ secrets: randomBytes(32) }),
    sortable: { createdAt: { column: 'createdAt' }, id: { column: 'id' } },
    unique: 'id',
    defaultSort: '-createdAt',
    filters: ['disabled'],
    ...(baseUrl === undefined ? {} : { baseUrl }),
  });
  const { endpoints } = delivery;

  const locationOf = (id: string) => `${baseUrl ?? ''}${base.path}/${encodeURIComponent(id)}`;

  /** The request body, parsed within bounds; `undefined` when there is none. */
  async function body(ctx: Context): Promise<unknown> {
    const req = ctx.request;
    const declared =
      req.header('transfer-encoding') !== undefined ||
      (req.header('content-length') ?? '0').trim() !== '0';
    // A framework parser that skipped a type it does not read (Express 4's json() on
    // merge-patch+json) leaves `{}` and the stream unread: the body is still to be read.
    if (
      declared &&
      !req.bodyConsumed &&
      req.body !== null &&
      typeof req.body === 'object' &&
      Object.keys(req.body).length === 0
    ) {
      req.body = undefined;
    }
    await parseBody(ctx, noop);
    const value = req.body;
    // A framework's parser bounds size, not depth.
    if (valueNestsDeeperThan(value, MAX_BODY_DEPTH)) throw new JsonTooDeepError(MAX_BODY_DEPTH);
    return value;
  }

  function audit(ctx: Context, action: string, fields: Record<string, unknown>): void {
    try {
      ctx.log.info(`restwell/webhooks: admin ${action}`, {
        ...fields,
        principal: principalId(ctx.state),
        traceId: ctx.traceId,
      });
    } catch {
      // The answer stands whatever the logger does.
    }
  }

  /** A page of the log as a list: `Link` header, body links, `nextCursor`. */
  async function listReply<T, V>(
    ctx: Context,
    page: LogPage<T>,
    limit: number,
    view: (item: T) => V | Promise<V>,
  ): Promise<void> {
    const query = ctx.request.query;
    const first = pageHref(ctx, baseUrl, withParams(query, { cursor: undefined }));
    const next =
      page.nextCursor === undefined
        ? undefined
        : pageHref(ctx, baseUrl, withParams(query, { cursor: page.nextCursor }));
    writeLinkHeader(ctx, { first, ...(next === undefined ? {} : { next }) });
    const data: V[] = [];
    for (const item of page.items) data.push(await view(item));
    reply(ctx, 200, {
      data,
      pagination: {
        limit,
        hasNext: page.nextCursor !== undefined,
        nextCursor: page.nextCursor ?? null,
      },
      links: {
        self: pageHref(ctx, baseUrl, query),
        first,
        ...(next === undefined ? {} : { next }),
      },
    });
  }

  // ---- endpoints --------------------------------------------------------------------------

  async function createEndpoint(ctx: Context): Promise<void> {
    const input = await body(ctx);
    let created: Awaited<ReturnType<typeof endpoints.create>>;
    try {
      created = await endpoints.create(input as Parameters<typeof endpoints.create>[0]);
    } catch (err) {
      throw await takenIdConflict(err, input);
    }
    const { endpoint, secret } = created;
    audit(ctx, 'created an endpoint', { endpointId: endpoint.id });
    reply(ctx, 201, { ...endpointView(endpoint), secret }, { Location: locationOf(endpoint.id) });
  }

  /**
   * The store refuses an id that is taken only once every field is valid, so a
   * refusal naming `/id` alone, for a well-formed id that an endpoint now has,
   * is that one: a 409 (RFC 9110 §15.5.10), as the loser of two concurrent
   * creates gets too. Nothing of the existing endpoint is shown.
   */
  async function takenIdConflict(err: unknown, input: unknown): Promise<unknown> {
    const id = (input as { id?: unknown } | null | undefined)?.id;
    if (
      !(err instanceof ValidationError) ||
      err.errors.length !== 1 ||
      err.errors[0]!.pointer !== '/id' ||
      typeof id !== 'string' ||
      !ID_PATTERN.test(id)
    )
      return err;
    try {
      await endpoints.get(id);
    } catch {
      return err;
    }
    return new RestwellError('conflict', 409, 'Conflict', {
      detail: 'Another endpoint has this id; choose another, or leave id out to have one drawn.',
      extensions: { endpointId: id },
    });
  }

  async function listEndpoints(ctx: Context): Promise<void> {
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    checkQueryNames(query, ['limit', 'sort', 'cursor', 'disabled'], issues);
    const disabledRaw = single(query, 'disabled', issues);
    if (disabledRaw !== undefined && disabledRaw !== 'true' && disabledRaw !== 'false')
      issues.push({ pointer: '/disabled', detail: 'disabled must be true or false.', in: 'query' });
    fail(issues);
    const page = endpointPages.request(ctx);
    let rows: WebhookEndpoint[] = await endpoints.list();
    if (disabledRaw !== undefined)
      rows = rows.filter((e) => (e.disabled !== undefined) === (disabledRaw === 'true'));
    const result = endpointPages.array(rows, page);
    const out = endpointPages.respond(ctx, result);
    reply(ctx, 200, { ...out, data: out.data.map(endpointView) });
  }

  async function getEndpoint(ctx: Context, params: Params): Promise<void> {
    const endpoint = await endpoints.get(endpointIdOf(params));
    reply(ctx, 200, endpointView(endpoint), { 'Accept-Patch': MERGE_PATCH_MEDIA_TYPE });
  }

  /**
   * A JSON Merge Patch (RFC 7396) of the mutable fields. `metadata` merges
   * member by member (a `null` member removes it); the other fields are
   * replaced whole. A URL change is checked by the SSRF guard again.
   */
  async function patchEndpoint(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const type = mediaTypeOf(ctx.request.header('content-type'));
    // RFC 5789 §2.2: a patch format the resource does not take is a 415 naming those it does.
    if (type !== undefined && type !== MERGE_PATCH_MEDIA_TYPE && type !== 'application/json') {
      throw new RestwellError('unsupported-media-type', 415, 'Unsupported Media Type', {
        detail: `Send a JSON Merge Patch (${MERGE_PATCH_MEDIA_TYPE}).`,
        headers: { 'Accept-Patch': MERGE_PATCH_MEDIA_TYPE },
      });
    }
    const patch = await body(ctx);
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
      throw new ValidationError([
        { pointer: '', detail: 'must be a JSON Merge Patch object', in: 'body' },
      ]);
    const current = await endpoints.get(id);
    const input: Record<string, unknown> = {};
    const issues: ValidationIssue[] = [];
    for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
      if (key === 'metadata') {
        input.metadata =
          value === null
            ? {}
            : value !== null && typeof value === 'object' && !Array.isArray(value)
              ? mergePatch(current.metadata ?? {}, value)
              : value;
      } else if (key === 'versions' && value !== null) {
        // The name the endpoint's representation shows (RFC 7396 patches what GET gave);
        // `version` is the name creation takes. One of the two, not both.
        if (Object.hasOwn(patch, 'version'))
          issues.push({
            pointer: '/versions',
            detail: 'give versions or version, not both',
            in: 'body',
          });
        else input.version = value;
      } else if (!MUTABLE.has(key)) {
        issues.push({
          pointer: pointerOf(key),
          detail: SHOWN.has(key)
            ? 'cannot change'
            : `is not a field of an endpoint; a patch may change ${[...MUTABLE].join(', ')}`,
          in: 'body',
        });
      } else if (value === null) {
        issues.push({
          pointer: pointerOf(key),
          detail: REMOVABLE.has(key) ? 'cannot be removed; give another value' : 'cannot be null',
          in: 'body',
        });
      } else input[key] = value;
    }
    fail(issues);
    const endpoint = await endpoints.update(id, input as UpdateEndpointInput);
    audit(ctx, 'changed an endpoint', { endpointId: id, fields: Object.keys(input) });
    reply(ctx, 200, endpointView(endpoint), { 'Accept-Patch': MERGE_PATCH_MEDIA_TYPE });
  }

  async function deleteEndpoint(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    await endpoints.delete(id);
    audit(ctx, 'deleted an endpoint', { endpointId: id });
    reply(ctx, 204);
  }

  async function rotateSecret(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const issues: ValidationIssue[] = [];
    const fields = bodyFields(await body(ctx), ['overlapMs'], issues);
    const overlap = fields.overlapMs;
    if (
      overlap !== undefined &&
      (typeof overlap !== 'number' ||
        !Number.isSafeInteger(overlap) ||
        overlap < 0 ||
        overlap > MAX_OVERLAP_MS)
    )
      issues.push({
        pointer: '/overlapMs',
        detail: `must be an integer of milliseconds from 0 to ${MAX_OVERLAP_MS} (30 days)`,
        in: 'body',
      });
    fail(issues);
    const rotated = await endpoints.rotateSecret(
      id,
      overlap === undefined ? {} : { overlapMs: overlap as number },
    );
    audit(ctx, 'rotated the secret of an endpoint', { endpointId: id });
    reply(ctx, 200, {
      secret: rotated.secret,
      previousExpiresAt: new Date(rotated.previousExpiresAt).toISOString(),
      endpoint: endpointView(rotated.endpoint),
    });
  }

  async function disableEndpoint(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const issues: ValidationIssue[] = [];
    const fields = bodyFields(await body(ctx), ['reason'], issues);
    const reason = fields.reason ?? DEFAULT_DISABLE_REASON;
    if (typeof reason !== 'string' || reason.length === 0 || reason.length > 500)
      issues.push({
        pointer: '/reason',
        detail: 'must be a string of 1 to 500 characters',
        in: 'body',
      });
    fail(issues);
    const endpoint = await endpoints.disable(id, reason as string, 'user');
    audit(ctx, 'disabled an endpoint', { endpointId: id });
    reply(ctx, 200, endpointView(endpoint));
  }

  async function enableEndpoint(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const issues: ValidationIssue[] = [];
    bodyFields(await body(ctx), [], issues);
    fail(issues);
    const endpoint = await endpoints.enable(id);
    audit(ctx, 'enabled an endpoint', { endpointId: id });
    reply(ctx, 200, endpointView(endpoint));
  }

  // ---- the log ----------------------------------------------------------------------------

  async function stats(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    checkQueryNames(query, ['windowMs'], issues);
    const raw = single(query, 'windowMs', issues);
    const windowMs =
      raw === undefined ? undefined : readInteger(raw, 'windowMs', 1, MAX_WINDOW_MS, issues);
    fail(issues);
    const s = await delivery.stats(id, windowMs === undefined ? {} : { windowMs });
    reply(ctx, 200, statsView(s));
  }

  async function listDeliveries(ctx: Context, params: Params, dead: boolean): Promise<void> {
    const id = endpointIdOf(params);
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    const names = ['type', 'eventId', 'from', 'to', 'limit', 'cursor'];
    checkQueryNames(query, dead ? names : [...names, 'status'], issues);
    const status = dead ? undefined : readStatuses(query, issues);
    const types = readTypes(query, issues);
    const eventId = readId(query, 'eventId', issues);
    const range = readQueryRange(query, issues);
    const limit = readLimit(query, issues);
    const cursor = single(query, 'cursor', issues);
    fail(issues);
    // Unknown ids are a 404, not an empty list.
    await endpoints.get(id);
    const page = await delivery.log.queryDeliveries({
      endpointId: id,
      ...(dead ? { status: 'dead' as const } : status === undefined ? {} : { status }),
      ...(types === undefined ? {} : { types }),
      ...(eventId === undefined ? {} : { eventIds: [eventId] }),
      ...range,
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    await listReply(ctx, page, limit, async (d) =>
      dead ? { ...deliveryView(d), event: await eventOf(d.eventId) } : deliveryView(d),
    );
  }

  async function eventOf(eventId: string) {
    const event = await delivery.log.getEvent(eventId);
    return event === undefined ? null : eventView(event);
  }

  async function listAttempts(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const query = ctx.request.query;
    const issues: ValidationIssue[] = [];
    checkQueryNames(
      query,
      ['outcome', 'httpStatus', 'eventId', 'deliveryId', 'type', 'from', 'to', 'limit', 'cursor'],
      issues,
    );
    const types = readTypes(query, issues);
    const outcome = single(query, 'outcome', issues);
    if (outcome !== undefined && outcome !== 'succeeded' && outcome !== 'failed')
      issues.push({
        pointer: '/outcome',
        detail: 'outcome must be succeeded or failed.',
        in: 'query',
      });
    const statusRaw = single(query, 'httpStatus', issues);
    const httpStatus =
      statusRaw === undefined ? undefined : readInteger(statusRaw, 'httpStatus', 100, 599, issues);
    const eventId = readId(query, 'eventId', issues);
    const deliveryRaw = single(query, 'deliveryId', issues);
    if (deliveryRaw !== undefined && !isDeliveryId(deliveryRaw))
      issues.push({
        pointer: '/deliveryId',
        detail: 'deliveryId must be the id of a delivery (eventId/endpointId, /version more).',
        in: 'query',
      });
    const range = readQueryRange(query, issues);
    const limit = readLimit(query, issues);
    const cursor = single(query, 'cursor', issues);
    fail(issues);
    await endpoints.get(id);
    const page = await delivery.log.queryAttempts({
      endpointId: id,
      ...(outcome === undefined ? {} : { ok: outcome === 'succeeded' }),
      ...(httpStatus === undefined ? {} : { status: httpStatus }),
      ...(eventId === undefined ? {} : { eventId }),
      ...(deliveryRaw === undefined ? {} : { deliveryId: deliveryRaw }),
      ...(types === undefined ? {} : { types }),
      ...range,
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    await listReply(ctx, page, limit, attemptView);
  }

  /** The delivery a path names, checked to be one of the endpoint's. */
  async function deliveryOf(id: string, params: Params) {
    const deliveryId = decodeSegment(params.deliveryId ?? '');
    const record =
      deliveryId === undefined || !isDeliveryId(deliveryId)
        ? undefined
        : await delivery.log.getDelivery(deliveryId);
    if (record === undefined || record.endpointId !== id) {
      await endpoints.get(id); // an unknown endpoint says so first
      throw new WebhookDeliveryNotFoundError();
    }
    return record;
  }

  async function getDelivery(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const record = await deliveryOf(id, params);
    const attempts = await delivery.log.queryAttempts({ deliveryId: record.id, limit: 100 });
    reply(ctx, 200, {
      ...deliveryView(record),
      event: await eventOf(record.eventId),
      recentAttempts: attempts.items.map(attemptView),
      links: {
        attempts: `${baseUrl ?? ''}${base.path}/${encodeURIComponent(id)}/attempts?deliveryId=${encodeURIComponent(record.id)}`,
      },
    });
  }

  // ---- replay, resend, test events --------------------------------------------------------

  async function replay(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const issues: ValidationIssue[] = [];
    const fields = bodyFields(await body(ctx), ['types', 'from', 'to', 'eventIds'], issues);
    const list = (
      name: 'types' | 'eventIds',
      max: number,
      check: (v: unknown) => boolean,
      what: string,
    ): string[] | undefined => {
      const value = fields[name];
      if (value === undefined) return undefined;
      if (!Array.isArray(value) || value.length === 0 || value.length > max) {
        issues.push({
          pointer: `/${name}`,
          detail: `must be a list of 1 to ${max} ${what}`,
          in: 'body',
        });
        return undefined;
      }
      let ok = true;
      value.forEach((v, i) => {
        if (check(v)) return;
        ok = false;
        if (issues.length < 100)
          issues.push({ pointer: `/${name}/${i}`, detail: `must be one of ${what}`, in: 'body' });
      });
      return ok ? [...new Set(value as string[])] : undefined;
    };
    const types = list('types', 100, isEventType, 'event types');
    const eventIds = list(
      'eventIds',
      MAX_EVENT_IDS,
      (v) => typeof v === 'string' && ID_PATTERN.test(v),
      'event ids',
    );
    const range = readRange(
      (name) => fields[name],
      (name, detail) => issues.push({ pointer: `/${name}`, detail, in: 'body' }),
    );
    fail(issues);
    await endpoints.get(id);
    const filter = {
      endpointId: id,
      ...(types === undefined ? {} : { types }),
      ...range,
    };
    // One request re-queues at most `maxReplay` events' dead letters: a body that names
    // nothing (the whole queue) or a wide range would otherwise re-queue, in one request, a
    // backlog of any size at once. The batch is chosen here and replayed by its event ids,
    // so that dead letters arriving meanwhile are not swept in.
    const batch = new Set<string>();
    let hasMore = false;
    let cursor: string | undefined;
    do {
      const page = await delivery.log.queryDeliveries({
        ...filter,
        status: 'dead',
        ...(eventIds === undefined ? {} : { eventIds }),
        limit: 500,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const d of page.items) {
        if (batch.has(d.eventId)) continue;
        if (batch.size === maxReplay) {
          hasMore = true;
          break;
        }
        batch.add(d.eventId);
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined && !hasMore);
    const result =
      batch.size === 0
        ? { replayed: 0, deliveryIds: [] as readonly string[] }
        : await delivery.replay({ ...filter, eventIds: [...batch] });
    audit(ctx, 'replayed dead letters', { endpointId: id, replayed: result.replayed, hasMore });
    reply(ctx, 202, { replayed: result.replayed, deliveryIds: result.deliveryIds, hasMore });
  }

  async function resend(ctx: Context, id: string, eventId: string): Promise<void> {
    const issues: ValidationIssue[] = [];
    bodyFields(await body(ctx), [], issues);
    fail(issues);
    const records = await delivery.resend(eventId, id);
    audit(ctx, 'resent an event', { endpointId: id, eventId });
    reply(ctx, 202, { deliveries: records.map(deliveryView) });
  }

  async function resendDelivery(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const record = await deliveryOf(id, params);
    await resend(ctx, id, record.eventId);
  }

  async function resendEvent(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const raw = params.eventId ?? '';
    const eventId = decodeSegment(raw);
    // An unknown endpoint says so first.
    await endpoints.get(id);
    if (eventId === undefined || !ID_PATTERN.test(eventId))
      throw new WebhookEventNotFoundError(shown(raw));
    // Sent *again*: only an event this endpoint had a delivery of. Any kept event would
    // otherwise go to any endpoint, one of another tenant or one not subscribed to its type.
    const had = await delivery.log.queryDeliveries({
      endpointId: id,
      eventIds: [eventId],
      limit: 1,
    });
    if (had.items.length === 0) {
      throw new RestwellError('webhook-event-not-found', 404, 'Webhook event not found', {
        detail:
          'This endpoint has no delivery of an event of this id: it never had, or it is past retention.',
        extensions: { eventId },
      });
    }
    await resend(ctx, id, eventId);
  }

  async function testEvent(ctx: Context, params: Params): Promise<void> {
    const id = endpointIdOf(params);
    const issues: ValidationIssue[] = [];
    const fields = bodyFields(await body(ctx), ['type'], issues);
    if (fields.type !== undefined && !isEventType(fields.type))
      issues.push({
        pointer: '/type',
        detail: 'must be an event type such as payment.succeeded',
        in: 'body',
      });
    fail(issues);
    const result = await delivery.sendTestEvent(
      id,
      ...(fields.type === undefined ? [] : [fields.type as string]),
    );
    audit(ctx, 'sent a test event', { endpointId: id, eventId: result.event.id });
    reply(ctx, 202, { event: eventView(result.event), deliveries: result.deliveries });
  }

  const routes: RoutePattern<Handler>[] = [
    { segments: [], methods: { GET: listEndpoints, POST: createEndpoint } },
    {
      segments: [':id'],
      methods: { GET: getEndpoint, PATCH: patchEndpoint, DELETE: deleteEndpoint },
    },
    { segments: [':id', 'rotate-secret'], methods: { POST: rotateSecret } },
    { segments: [':id', 'disable'], methods: { POST: disableEndpoint } },
    { segments: [':id', 'enable'], methods: { POST: enableEndpoint } },
    { segments: [':id', 'stats'], methods: { GET: stats } },
    { segments: [':id', 'deliveries'], methods: { GET: (c, p) => listDeliveries(c, p, false) } },
    { segments: [':id', 'dead-letters'], methods: { GET: (c, p) => listDeliveries(c, p, true) } },
    { segments: [':id', 'attempts'], methods: { GET: listAttempts } },
    { segments: [':id', 'deliveries', ':deliveryId'], methods: { GET: getDelivery } },
    { segments: [':id', 'deliveries', ':deliveryId', 'resend'], methods: { POST: resendDelivery } },
    { segments: [':id', 'events', ':eventId', 'resend'], methods: { POST: resendEvent } },
    { segments: [':id', 'replay'], methods: { POST: replay } },
    { segments: [':id', 'test-events'], methods: { POST: testEvent } },
  ];

  return async function webhookAdminApi(ctx, next) {
    const rest = below(pathSegments(ctx.request.path), base.segments);
    if (rest === undefined) return next();
    const method = ctx.request.method;
    const match = matchRoute(routes, rest, method);
    // Guards first, before anything about the route is told; they see the decoded parameters.
    const guardParams: Record<string, string> = {};
    if (match.found) {
      for (const [name, raw] of Object.entries(match.params))
        guardParams[name] = decodeSegment(raw) ?? raw;
    }
    for (const guard of checks) await guard.check(ctx, guardParams);
    await covered(ctx, noop);
    if (!match.found)
      throw new NotFoundError('The webhook admin API has no resource at this path.');
    const allow = canonicalAllow([...match.allow, 'OPTIONS']);
    if (match.handler === undefined) {
      if (method === 'OPTIONS') {
        reply(ctx, 204, undefined, { Allow: allow.join(', ') });
        answeredBy(ctx, 'webhooks', 'admin API OPTIONS');
        return;
      }
      throw new MethodNotAllowedError(method, allow);
    }
    await match.handler(ctx, match.params);
    answeredBy(ctx, 'webhooks', `admin API ${method}`);
  };
}

/** What a merge patch may change (the secret changes through rotate-secret). */
const MUTABLE = new Set([
  'url',
  'description',
  'eventTypes',
  'version',
  'versions',
  'payload',
  'concurrency',
  'rateLimitPerSecond',
  'metadata',
]);
/** Members of the representation that a patch cannot change. */
const SHOWN = new Set(['id', 'disabled', 'rotationEndsAt', 'createdAt', 'updatedAt', 'secret']);
/** Fields whose `null` in a merge patch would remove them, which the engine does not do yet. */
const REMOVABLE = new Set(['description', 'rateLimitPerSecond']);

/** A member name as a JSON pointer (RFC 6901 §3). */
function pointerOf(key: string): string {
  return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

/** `<eventId>/<endpointId>` or `<eventId>/<endpointId>/<version>`, each part bounded. */
function isDeliveryId(value: string): boolean {
  if (value.length > 400) return false;
  const parts = value.split('/');
  return (
    (parts.length === 2 || parts.length === 3) &&
    ID_PATTERN.test(parts[0]!) &&
    ID_PATTERN.test(parts[1]!) &&
    (parts[2] === undefined || /^[A-Za-z0-9._-]{1,100}$/.test(parts[2]))
  );
}
