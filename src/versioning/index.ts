/**
 * API versioning and deprecation: the version a request is in (by URI prefix,
 * header or media type, never the query), per-principal pins with a header
 * that overrides them (as `Stripe-Version` does), and migrations declared once
 * per change, so that handlers are written against the newest version only
 * while every older one keeps working (as Cadwyn does). Deprecated versions
 * and routes say so with RFC 9745 `Deprecation`, RFC 8594 `Sunset` and
 * RFC 8288 `Link`s, and answer 410 after their sunset when asked to.
 *
 * Exported from `restwell/versioning`.
 *
 * Mount order: inside `compression()` (migrations read the identity body),
 * after the body parser (`jsonBody()` or the framework's: request migrations
 * read the parsed body), after authentication when pins are used (the
 * principal picks the pin), and, under the header and media-type strategies,
 * outside a `conditional({ load })` (so that the validators it loads are
 * compared with the tags the client holds for its version). A `conditional()`
 * that hashes bodies works on either side: inside, `versioning()` labels the
 * tag it finds (`"v1~..."`); outside, it records the version with
 * `varyEntityTag()` and the tag hashed after it returns mixes the version in,
 * so that an older version's tag differs from every other version's even where
 * no migration changed the body. See docs/versioning.md.
 *
 * @example
 * ```ts
 * import { defineVersions, versionChange, versioning, renameField, objectsAt } from 'restwell/versioning';
 *
 * const fullName = versionChange({
 *   description: 'Users: `name` is renamed `fullName`.',
 *   request: { paths: ['POST /users', 'PATCH /users/:id'], migrate: (req) => renameField(req.body, 'name', 'fullName') },
 *   response: {
 *     paths: ['/users', '/users/:id'],
 *     migrate: (res) => {
 *       for (const u of objectsAt(res.body, res.path === '/users' ? '/data/*' : '')) renameField(u, 'fullName', 'name');
 *     },
 *   },
 * });
 * const api = defineVersions({ versions: [{ version: 'v1' }, { version: 'v2', changes: [fullName] }] });
 * const versions = versioning(api); // URI prefixes: /v1/..., /v2/...
 * app.use(rw(compression(), jsonBody(), versions, conditional()));
 * app.use(versions.prefixes, usersRouter); // one router, written for v2, under /v1 and /v2
 * ```
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Context,
  type ContextState,
  isStreamBody,
  type Middleware,
  type Next,
  principalId,
} from '../core/context.js';
import {
  checkOptions,
  invalidOption,
  type RestwellError,
  serviceUnavailable,
} from '../core/errors.js';
import { LogThrottle } from '../core/logger.js';
import { mediaTypeOf } from '../core/body.js';
import {
  buildProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemOptions,
  renderProblem,
} from '../core/problem.js';
import type { Store } from '../stores/types.js';
import { conditionsRead } from '../conditional/conditions-read.js';
import { varyEntityTag } from '../conditional/tag-labels.js';
import { vary } from '../conditional/vary.js';
import { type ApiVersion, ApiVersions } from './api.js';
import type { MessageHeaders } from './changes.js';
import { appendLinks, linkValue, writeDeprecationHeaders } from './deprecation.js';
import { ifMatchFor, ifNoneMatchFor, labelETag } from './etag.js';
import { VersionSunsetError, VersionUnsupportedError } from './errors.js';
import {
  acceptedVersions,
  headerVersion,
  locate,
  uriVersion,
  type VersioningStrategy,
  versionedContentType,
} from './negotiate.js';
import { UsageCounter, type VersionUsage, VersionPins } from './pins.js';
import { parseVersionId } from './version-id.js';

export {
  type ApiVersion,
  ApiVersions,
  type DefineVersionsOptions,
  defineVersions,
  type RequestToMigrate,
  type ResponseToMigrate,
  type ShapePayloadOptions,
  type VersionDefinition,
} from './api.js';
export {
  addField,
  type MessageHeaders,
  objectsAt,
  type PayloadMigration,
  type PayloadMigrationInit,
  removeField,
  renameField,
  type RequestMigration,
  type RequestMigrationInit,
  type ResponseMigration,
  type ResponseMigrationInit,
  transformField,
  type VersionChange,
  type VersionChangeInit,
  type VersionedPayload,
  type VersionedRequest,
  type VersionedResponse,
  versionChange,
} from './changes.js';
export {
  type Changelog,
  type ChangelogChange,
  type ChangelogOptions,
  type ChangelogVersion,
  changelog,
  changelogMarkdown,
  changelogOf,
} from './changelog.js';
export {
  type CompiledDeprecation,
  type DeprecatedOptions,
  type DeprecationLinks,
  type DeprecationPolicy,
  deprecated,
  formatStructuredDate,
} from './deprecation.js';
export { ResourceSunsetError, VersionSunsetError, VersionUnsupportedError } from './errors.js';
export type { VersioningStrategy } from './negotiate.js';
export type { VersionUsage } from './pins.js';
export { parseVersionId, type VersionId, type VersionKind } from './version-id.js';

/** How the request's version was chosen. */
export type VersionSource = 'uri' | 'header' | 'media-type' | 'pin' | 'default';

/**
 * What `versioning()` leaves in `ctx.state.version` for handlers and loggers;
 * read it typed with {@link versionOf}.
 */
export interface VersionState {
  /** The effective version: `v2` or `2025-06-01`. */
  readonly name: string;
  /** Where it came from: the request (`uri`, `header`, `media-type`), the principal's `pin`, or the `default`. */
  readonly source: VersionSource;
  /** Whether it is the newest version (no migrations ran). */
  readonly newest: boolean;
  /** Whether its deprecation date has passed. */
  readonly deprecated: boolean;
  /** Its sunset date, when one is set. */
  readonly sunset: Date | undefined;
}

const VERSION_STATE = 'version';

/**
 * The request's version, as `versioning()` chose it: from `ctx.state` (a
 * restwell context's, Koa's `ctx.state`, or `contextOf(req).state` on
 * Express). `undefined` before `versioning()` ran or when it let the request
 * pass (outside its `basePath`).
 *
 * @example
 * ```ts
 * app.get('/v1/payments', (req, res) => {
 *   const version = versionOf(contextOf(req).state); // { name: '2025-06-01', source: 'pin', ... }
 * });
 * ```
 */
export function versionOf(state: ContextState): VersionState | undefined {
  return state[VERSION_STATE] as VersionState | undefined;
}

/** Options of {@link versioning}. */
export interface VersioningOptions {
  /**
   * Where the client names its version: `'uri'` (`/v2/users`: public APIs),
   * `'header'` (`Api-Version: v2`: internal services) or `'media-type'`
   * (`Accept: application/vnd.acme.v2+json`, echoed in the response's
   * `Content-Type`). Never the query string. @default 'uri'
   */
  strategy?: VersioningStrategy;
  /** The request header that names the version (`'header'` strategy). @default 'Api-Version' */
  header?: string;
  /** The vendor in `application/vnd.<vendor>.<version>+json`; required by `'media-type'`. */
  vendor?: string;
  /**
   * Where the versioned API lives: the URI version comes right after it
   * (`/api` for `/api/v2/users`), and migration paths are matched on what
   * follows the version. Requests elsewhere pass through, as do, under the
   * URI strategy, requests whose first segment is not a version (`/health`).
   * @default '/'
   */
  basePath?: string;
  /** The response header that echoes the effective version; `false` for none. @default 'Api-Version' */
  echoHeader?: string | false;
  /**
   * Where each principal's version is pinned (`'header'` and `'media-type'`
   * strategies): a request that names no version gets its principal's pin,
   * created with the default version on the principal's first such request.
   * A ledger (a store that never drops a live key, checked now): a client's
   * version must never change because a cache forgot its pin. When it cannot
   * be read, the request is refused with 503 rather than served in another version.
   * @default undefined (no pins: the default version)
   */
  pins?: Store;
  /**
   * Where calls per version per principal are counted (see `usageOf`), so
   * that a team can see who still calls a deprecated version: any store, a
   * cache included. Counted after the response, in the background; a store
   * that fails is logged (throttled) and never fails a request.
   * @default undefined (not counted)
   */
  usage?: Store;
  /** How long a usage counter lives after its principal's last call. @default 7_776_000_000 (90 days) */
  usageTtlMs?: number;
  /** Prefix of every key written to `pins` and `usage`. @default 'versioning:' */
  keyPrefix?: string;
}

/** The versioning middleware, with the operations on its pins and usage. */
export interface VersioningMiddleware extends Middleware {
  readonly api: ApiVersions;
  /**
   * The URI prefix of every version, newest first (`['/v2', '/v1']`, under
   * `basePath`), to mount one router under all of them:
   * `app.use(versions.prefixes, router)`.
   */
  readonly prefixes: readonly string[];
  /** Pins a principal to a version (at sign-up, or on its request to upgrade). Needs `pins`. */
  pin(principal: string | number, version: string): Promise<void>;
  /** The version a principal is pinned to, or `undefined`. Needs `pins`. */
  pinOf(principal: string | number): Promise<string | undefined>;
  /** How often a principal called each version, for the versions it called. Needs `usage`. */
  usageOf(principal: string | number): Promise<Record<string, VersionUsage>>;
}

const OPTION_NAMES = [
  'strategy',
  'header',
  'vendor',
  'basePath',
  'echoHeader',
  'pins',
  'usage',
  'usageTtlMs',
  'keyPrefix',
] as const;
const OPTION_HINTS: Readonly<Record<string, string>> = {
  query:
    'Versions are never read from the query string: a cache keys on the URI, and a version there splits one resource into many URIs. Use strategy: uri, header or media-type.',
  queryParam:
    'Versions are never read from the query string. Use strategy: uri, header or media-type.',
  store: 'Use "pins" (a ledger, for per-principal pins) and "usage" (any store, for counters).',
  default: 'The default version is an option of defineVersions().',
};
const STRATEGIES: readonly VersioningStrategy[] = ['uri', 'header', 'media-type'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VENDOR = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const BASE_PATH = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@%]+(?:\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)*)?$/;
const DAY_MS = 86_400_000;

type Keyed = Record<symbol, unknown>;
const OWNER = Symbol.for('restwell.versioning.owner');

function isStore(value: unknown): value is Store {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Store).get === 'function' &&
    typeof (value as Store).addOrGet === 'function'
  );
}

/** The adapter's problem options, when an adapter built the context. */
function problemOptions(ctx: Context): ProblemOptions {
  return (ctx as { settings?: { problems?: ProblemOptions } }).settings?.problems ?? {};
}

/** The request headers, changed in place: the handler and the framework read the same object. */
function requestHeaders(ctx: Context): MessageHeaders {
  const raw = ctx.request.headers as IncomingHttpHeaders;
  return {
    get: (name) => ctx.request.header(name),
    set: (name, value) => {
      if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) {
        throw new TypeError(
          `restwell/versioning: a request migration set an invalid header (${JSON.stringify(name.slice(0, 40))}).`,
        );
      }
      raw[name.toLowerCase()] = value;
    },
    delete: (name) => {
      delete raw[name.toLowerCase()];
    },
  };
}

function hasUnparsedBody(ctx: Context): boolean {
  const req = ctx.request;
  if (req.body !== undefined || req.bodyConsumed) return false;
  const length = req.header('content-length');
  return (
    req.header('transfer-encoding') !== undefined || (length !== undefined && length.trim() !== '0')
  );
}

function isJsonType(contentType: string | undefined): boolean {
  const type = mediaTypeOf(contentType);
  return type !== undefined && (type === 'application/json' || type.endsWith('+json'));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The versioning middleware for `api`: chooses each request's version, sets
 * `ctx.state.version`, echoes it, signals deprecations, and runs the migration
 * chain on the request (forward) and the response (back). Options are checked
 * now; pins must be a ledger.
 *
 * @example
 * ```ts
 * // Stripe's scheme: a dated version per request, pinned per account.
 * const payments = versioning(paymentsApi, { strategy: 'header', pins: ledger, usage: counters });
 * router.use('/v1/payments', rw(payments));
 * ```
 */
export function versioning(
  api: ApiVersions,
  options: VersioningOptions = {},
): VersioningMiddleware {
  if (!(api instanceof ApiVersions)) {
    invalidOption('versioning', 'api', 'the result of defineVersions()', api);
  }
  checkOptions('versioning', options, OPTION_NAMES, OPTION_HINTS);
  const {
    strategy = 'uri',
    header = 'Api-Version',
    vendor,
    basePath = '/',
    echoHeader = 'Api-Version',
    pins: pinStore,
    usage: usageStore,
    usageTtlMs = 90 * DAY_MS,
    keyPrefix = 'versioning:',
  } = options ?? {};
  if (!STRATEGIES.includes(strategy)) {
    invalidOption('versioning', 'strategy', "'uri', 'header' or 'media-type'", strategy);
  }
  if (typeof header !== 'string' || !TOKEN.test(header)) {
    invalidOption('versioning', 'header', 'a header name', header);
  }
  if (echoHeader !== false && (typeof echoHeader !== 'string' || !TOKEN.test(echoHeader))) {
    invalidOption('versioning', 'echoHeader', 'a header name or false', echoHeader);
  }
  if (strategy === 'media-type') {
    if (typeof vendor !== 'string' || !VENDOR.test(vendor)) {
      invalidOption(
        'versioning',
        'vendor',
        "a vendor name in lower case ('acme' for application/vnd.acme.v2+json)",
        vendor,
      );
    }
  } else if (vendor !== undefined) {
    invalidOption('versioning', 'vendor', "absent unless strategy is 'media-type'", vendor);
  }
  if (typeof basePath !== 'string' || !BASE_PATH.test(basePath)) {
    invalidOption(
      'versioning',
      'basePath',
      "'/' or a path without a trailing slash ('/api')",
      basePath,
    );
  }
  if (pinStore !== undefined && !isStore(pinStore)) {
    invalidOption('versioning', 'pins', 'a Store', pinStore);
  }
  if (pinStore !== undefined && strategy === 'uri') {
    throw new TypeError(
      "restwell/versioning: option \"pins\" needs strategy 'header' or 'media-type': under 'uri' every request names its version in the path, so no pin is ever read.",
    );
  }
  if (usageStore !== undefined && !isStore(usageStore)) {
    invalidOption('versioning', 'usage', 'a Store', usageStore);
  }
  if (!Number.isSafeInteger(usageTtlMs) || usageTtlMs < 1000) {
    invalidOption(
      'versioning',
      'usageTtlMs',
      'an integer of milliseconds, at least 1000',
      usageTtlMs,
    );
  }
  if (typeof keyPrefix !== 'string')
    invalidOption('versioning', 'keyPrefix', 'a string', keyPrefix);

  /** The base path as configured, for the prefixes and links written; lower-cased, for matching. */
  const basePrefix = basePath === '/' ? '' : basePath;
  const base = basePrefix.toLowerCase();
  const pins = pinStore === undefined ? undefined : new VersionPins(pinStore, keyPrefix);
  const usage =
    usageStore === undefined
      ? undefined
      : new UsageCounter(usageStore, keyPrefix, usageTtlMs, api.now);
  const names = api.versions.map((v) => v.name);
  const uri = strategy === 'uri';
  const unsupportedStatus = uri ? 404 : strategy === 'header' ? 400 : 406;
  /**
   * Whether entity tags carry the version: under the header and media-type
   * strategies one URI has a representation per version, which must not share
   * a validator; under the URI strategy each version's resource has its own
   * URI, and validators are per resource (RFC 9110 §8.8.1).
   */
  const labels = strategy !== 'uri';
  /** The request field the answer varies on, for the header and media-type strategies. */
  const uriless = strategy === 'header' ? header : 'Accept';
  const supportedText = api.supported.join(', ');
  /** Where the version goes in a request, for messages. */
  const where = uri ? 'the path' : strategy === 'header' ? `the ${header} header` : 'Accept';
  // Configured successor links, formatted once.
  const successorLinks = new Map<ApiVersion, string>();
  for (const v of api.versions) {
    if (v.policy?.successor !== undefined) {
      successorLinks.set(
        v,
        linkValue({ href: v.policy.successor, rel: 'successor-version' }, 'links.successor'),
      );
    }
  }
  const pinFailures = new LogThrottle(10_000, api.now);
  const warned = { load: false, coded: false, unreadable: false };

  function unsupported(detail: string): VersionUnsupportedError {
    return new VersionUnsupportedError(unsupportedStatus, detail, api.supported);
  }

  /** The successor-version link of a deprecated version, for this request. */
  function successorLink(version: ApiVersion, routedPath: string, now: number): string | undefined {
    const configured = successorLinks.get(version);
    if (configured !== undefined || !uri) return configured;
    const successor = api.servedSuccessorOf(version, now);
    if (successor === undefined) return undefined;
    const path = `${basePrefix}/${successor.name}${routedPath === '/' ? '' : routedPath}`;
    return linkValue({ href: path, rel: 'successor-version' }, 'links.successor');
  }

  /** The version `Accept` asks for; `null` when it names none. */
  function fromAccept(ctx: Context): ApiVersion | null {
    const accepted = acceptedVersions(ctx.request.header('accept'), vendor as string);
    if (accepted.kind === 'parameter') {
      throw unsupported(
        `Accept names a version in a media-type parameter, which this API does not read; name it in the type, application/vnd.${vendor}.<version>+json, with one of: ${supportedText}.`,
      );
    }
    if (accepted.kind === 'none') return null;
    let best: ApiVersion | undefined;
    let bestQ = 0;
    for (const [token, q] of accepted.candidates) {
      const id = parseVersionId(token);
      const version = id === undefined ? undefined : api.get(id.name);
      if (version === undefined) continue;
      if (q > bestQ || (q === bestQ && best !== undefined && version.index > best.index)) {
        best = version;
        bestQ = q;
      }
    }
    if (best === undefined) {
      // RFC 9110 §15.5.7: 406 only when nothing acceptable is left; `*/*` accepts the default.
      if (accepted.fallback) return null;
      throw unsupported(
        `No version Accept asks for is supported; ask for application/vnd.${vendor}.<version>+json with one of: ${supportedText}.`,
      );
    }
    return best;
  }

  /** The principal's pinned version (creating the pin), the default without one; `undefined` when answered 503. */
  async function pinnedOrDefault(
    ctx: Context,
  ): Promise<{ version: ApiVersion; source: VersionSource } | undefined> {
    const principal = pins === undefined ? undefined : principalId(ctx.state);
    const fallback = api.defaultAt(api.now());
    if (pins === undefined || principal === undefined) {
      return { version: fallback, source: 'default' };
    }
    let name: string;
    try {
      name = await pins.getOrPin(principal, fallback.name);
    } catch (err) {
      refuseUnpinned(ctx, err);
      return undefined;
    }
    const version = api.get(name);
    if (version === undefined) {
      throw unsupported(
        `This client is pinned to version ${name.slice(0, 20)}, which this API no longer serves; name one of ${supportedText} in ${where}, or ask for the pin to be upgraded.`,
      );
    }
    return { version, source: 'pin' };
  }

  /**
   * Fails closed when the pin cannot be read: serving the default instead
   * could change the client's version without a word. Answered, not thrown,
   * and logged here once per interval: an outage must not log every request.
   */
  function refuseUnpinned(ctx: Context, err: unknown): void {
    const pass = pinFailures.pass();
    if (pass !== undefined) {
      ctx.log.error(
        'restwell/versioning: the pin store failed; requests that name no version get 503',
        {
          traceId: ctx.traceId,
          suppressed: pass.suppressed,
          err,
        },
      );
    }
    const problem: RestwellError = serviceUnavailable(
      `The API version pinned to this client cannot be read right now, so the request was not executed. Retry later, or name the version in ${where}.`,
      1,
    );
    const doc = buildProblem(
      {
        status: problem.status,
        code: problem.code,
        detail: problem.detail,
        exposeDetail: true,
        headers: problem.headers,
      },
      ctx,
      problemOptions(ctx),
    );
    const headers = ctx.response.headers;
    for (const [name, value] of Object.entries(problem.headers)) headers.set(name, value);
    headers.set('Content-Type', PROBLEM_CONTENT_TYPE);
    ctx.response.status = doc.status;
    ctx.response.body = JSON.stringify(doc);
  }

  /** Runs the request migrations and prepares the conditional fields for what runs inside. */
  function migrateRequest(ctx: Context, version: ApiVersion, routedPath: string): void {
    const req = ctx.request;
    const raw = req.headers as IncomingHttpHeaders;
    const newest = version === api.newest;
    const ifNoneMatch = labels ? req.header('if-none-match') : undefined;
    const ifMatch = labels ? req.header('if-match') : undefined;
    if (ifNoneMatch !== undefined || ifMatch !== undefined) {
      const noneMatch =
        ifNoneMatch === undefined
          ? undefined
          : ifNoneMatchFor(ifNoneMatch, version.name, newest, names);
      const match = ifMatch === undefined ? undefined : ifMatchFor(ifMatch, names);
      if (noneMatch === undefined) delete raw['if-none-match'];
      else raw['if-none-match'] = noneMatch;
      if (match !== undefined) raw['if-match'] = match;
      // A conditional() outside has read the fields already and keeps them for
      // every conditional() of the request: those inside must read these. The
      // outer one compares what it read with the labelled tags it gets back.
      conditionsRead(ctx, { forget: true });
    }
    if (newest || !api.hasRequestMigrations(version, req.method, routedPath)) return;
    if (hasUnparsedBody(ctx)) {
      // A body the migrations cannot see would reach the handler in the old
      // version's shape, and a write could lose fields without a word.
      throw new TypeError(
        "restwell/versioning: a request body arrived unparsed, so its migrations cannot run; mount jsonBody() (or the framework's JSON parser) before versioning().",
      );
    }
    const message = {
      method: req.method,
      path: routedPath,
      body: req.body,
      query: req.query,
      headers: requestHeaders(ctx),
      bodyBounded: req.rawBody !== undefined,
    };
    api.migrateRequest(version, message);
    if (message.body !== req.body) req.body = message.body;
  }

  /** Runs the response migrations on a JSON body (or none); streams and other bodies pass untouched. */
  function migrateResponse(ctx: Context, version: ApiVersion, routedPath: string): void {
    const { response } = ctx;
    const method = ctx.request.method;
    if (response.status === 304 || !api.hasResponseMigrations(version, method, routedPath)) return;
    const headers = response.headers;
    const body = response.body;
    if (isStreamBody(body)) return;
    let parsed: unknown;
    const present =
      body !== null && (typeof body === 'string' ? body.length > 0 : body.byteLength > 0);
    if (present) {
      if (!isJsonType(headers.get('content-type'))) return;
      const coding = headers.get('content-encoding')?.trim().toLowerCase();
      if (coding !== undefined && coding !== '' && coding !== 'identity') {
        if (!warned.coded) {
          warned.coded = true;
          ctx.log.warn(
            'restwell/versioning: a response arrived content-coded, so its migrations did not run; mount versioning() inside compression()',
            { traceId: ctx.traceId, path: ctx.request.path },
          );
        }
        return;
      }
      try {
        parsed = JSON.parse(typeof body === 'string' ? body : utf8.decode(body as Uint8Array));
      } catch (err) {
        if (!warned.unreadable) {
          warned.unreadable = true;
          ctx.log.warn(
            'restwell/versioning: a JSON response did not parse, so its migrations did not run',
            { traceId: ctx.traceId, path: ctx.request.path, err },
          );
        }
        return;
      }
    }
    const message = { method, path: routedPath, status: response.status, body: parsed, headers };
    api.migrateResponse(version, message);
    const status = message.status;
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new TypeError(
        `restwell/versioning: a response migration set the status to ${String(status).slice(0, 10)}; use an integer from 200 to 599.`,
      );
    }
    response.status = status;
    if (!present && message.body === undefined) return;
    // The bytes change: their length and digests must be recomputed, their tag labelled below.
    headers.delete('content-digest');
    headers.delete('repr-digest');
    if (message.body === undefined) {
      // Frameworks disagree on a bodyless 200 (Koa makes it a 204): the migration says which.
      if (status !== 204 && status !== 205) {
        throw new TypeError(
          `restwell/versioning: a response migration removed the body of a ${status}; set the status to 204 as well.`,
        );
      }
      headers.delete('content-type');
      response.body = null;
      return;
    }
    const text = JSON.stringify(message.body);
    if (!present || !headers.has('content-type')) {
      headers.set('Content-Type', 'application/json; charset=utf-8');
    }
    headers.set('Content-Length', Buffer.byteLength(text));
    response.body = text;
  }

  /**
   * Headers every answer of a chosen version carries (`Vary` was set when the
   * version was read); set before the handler, so that errors carry them too.
   */
  function announce(ctx: Context, version: ApiVersion, successor: string | undefined): void {
    if (echoHeader !== false) ctx.response.headers.set(echoHeader, version.name);
    if (version.policy !== undefined) writeDeprecationHeaders(ctx, version.policy, successor);
  }

  /** Counts the call for its principal, in the background; anonymous calls are not counted. */
  function countCall(ctx: Context, version: ApiVersion): void {
    if (usage === undefined) return;
    const principal = principalId(ctx.state);
    if (principal !== undefined) usage.count(version.name, principal, ctx.log);
  }

  const middleware = async function versioningRequests(ctx: Context, next: Next): Promise<void> {
    const located = locate(ctx.request.path, base, uri);
    if (located === undefined) return next();
    const state = ctx.state as Keyed;
    const owner = state[OWNER];
    if (owner === middleware) return next();
    if (owner !== undefined) {
      throw new TypeError(
        'restwell/versioning: two versioning() middlewares of different APIs met on one request; give each API its own basePath or mount.',
      );
    }
    state[OWNER] = middleware;
    const { routedPath } = located;
    const headers = ctx.response.headers;

    let version: ApiVersion;
    let source: VersionSource;
    if (uri) {
      const id = uriVersion(located.segment as string);
      const found = id === undefined ? undefined : api.get(id.name);
      if (found === undefined) {
        throw unsupported(
          `This API has no version ${JSON.stringify(located.segment)}; the supported versions are ${supportedText}.`,
        );
      }
      version = found;
      source = 'uri';
    } else {
      let named: ApiVersion | null;
      if (strategy === 'header') {
        vary(headers, header);
        const sent = headerVersion(ctx.request.header(header));
        if (sent.kind === 'invalid') {
          throw unsupported(
            `The ${header} header names no version; send one of ${supportedText}, or none for ${pins === undefined ? 'the default' : 'your pinned version'}.`,
          );
        }
        named = sent.kind === 'absent' ? null : (api.get(sent.id.name) ?? null);
        if (sent.kind === 'version' && named === null) {
          throw unsupported(
            `Version ${sent.id.name} is not supported; the supported versions are ${supportedText}.`,
          );
        }
      } else {
        vary(headers, 'Accept');
        named = fromAccept(ctx);
      }
      if (named !== null) {
        version = named;
        source = strategy === 'header' ? 'header' : 'media-type';
      } else {
        const chosen = await pinnedOrDefault(ctx);
        if (chosen === undefined) return;
        version = chosen.version;
        source = chosen.source;
      }
    }

    const now = api.now();
    const policy = version.policy;
    if (api.isGone(version, now)) {
      // Counted too: who still calls a retired version is what the counters are for.
      countCall(ctx, version);
      const successor = api.servedSuccessorOf(version, now);
      const links = [...(policy?.links ?? [])];
      const successorValue = successorLink(version, routedPath, now);
      if (successorValue !== undefined) links.push(successorValue);
      // The 410 says when the version was deprecated and retired, as its answers did before.
      if (policy?.deprecationHeader !== undefined) {
        headers.set('Deprecation', policy.deprecationHeader);
      }
      if (policy?.sunsetHeader !== undefined) headers.set('Sunset', policy.sunsetHeader);
      throw new VersionSunsetError(
        version.name,
        policy?.sunset as Date,
        successor?.name,
        links.length === 0 ? undefined : links.join(', '),
      );
    }
    ctx.state[VERSION_STATE] = {
      name: version.name,
      source,
      newest: version === api.newest,
      deprecated: policy?.deprecation !== undefined && now >= policy.deprecation.getTime(),
      sunset: policy?.sunset,
    } satisfies VersionState;
    const successor = policy === undefined ? undefined : successorLink(version, routedPath, now);
    announce(ctx, version, successor);
    const varied = headers.get('vary');

    if (
      labels &&
      version !== api.newest &&
      !warned.load &&
      conditionsRead(ctx)?.validatorsLoaded === true
    ) {
      warned.load = true;
      ctx.log.warn(
        'restwell/versioning: a conditional({ load }) ran outside versioning(), so it compared the tags of an older version with the newest validators; mount it inside versioning()',
        { traceId: ctx.traceId, path: ctx.request.path },
      );
    }
    migrateRequest(ctx, version, routedPath);

    const migratesErrors =
      version !== api.newest &&
      api.hasResponseMigrations(version, ctx.request.method, routedPath, 'errors');
    try {
      await next();
    } catch (err) {
      if (!migratesErrors) throw err;
      // Rendered here, as the adapter would, so that the error migrations see the problem document.
      renderProblem(ctx, err, problemOptions(ctx));
    } finally {
      countCall(ctx, version);
    }

    // The handler may have replaced Vary or Link: merge ours back.
    if (!uri && headers.get('vary') !== varied) vary(headers, uriless);
    if (policy !== undefined) {
      appendLinks(ctx, successor === undefined ? policy.links : [...policy.links, successor]);
    }
    if (version !== api.newest) {
      migrateResponse(ctx, version, routedPath);
      if (labels) {
        const etag = headers.get('etag');
        if (etag !== undefined) headers.set('ETag', labelETag(etag, version.name));
        // No tag yet: a hashing conditional() outside computes it after this returns, and
        // mixes the version in, so that a body no migration changed still gets this
        // version's own tag (RFC 9110 §8.8.1: the headers differ, so the validator must).
        else varyEntityTag(ctx, version.name);
      }
    }
    if (strategy === 'media-type') {
      const contentType = headers.get('content-type');
      const versioned =
        contentType === undefined
          ? undefined
          : versionedContentType(
              contentType,
              vendor as string,
              version.name,
              ctx.request.header('accept'),
            );
      if (versioned !== undefined) headers.set('Content-Type', versioned);
      // One version may be answered in more than one type (its vendor type, or plain JSON for
      // a client that accepts only that): a tag hashed after this returns must tell them apart
      // too (RFC 9110 §8.8.1), as it tells versions apart.
      const answered = headers.get('content-type');
      if (answered !== undefined && headers.get('etag') === undefined) {
        varyEntityTag(ctx, `type:${answered.toLowerCase()}`);
      }
    }
  } as VersioningMiddleware;

  const requirePins = (operation: string): VersionPins => {
    if (pins === undefined) {
      throw new TypeError(`restwell/versioning: ${operation}() needs the "pins" option.`);
    }
    return pins;
  };
  const principalText = (principal: unknown): string => {
    if (typeof principal === 'number' && Number.isFinite(principal)) return String(principal);
    if (typeof principal === 'string' && principal !== '') return principal;
    return invalidOption(
      'versioning',
      'principal',
      'a non-empty string or a finite number',
      principal,
    );
  };
  Object.defineProperties(middleware, {
    api: { value: api, enumerable: true },
    prefixes: {
      value: Object.freeze(api.supported.map((name) => `${basePrefix}/${name}`)),
      enumerable: true,
    },
    pin: {
      value: async (principal: string | number, name: string): Promise<void> => {
        const store = requirePins('pin');
        const id = principalText(principal);
        const version = typeof name === 'string' ? api.get(name) : undefined;
        if (version === undefined) {
          invalidOption('versioning', 'version', `one of ${supportedText}`, name);
        }
        if (api.isGone(version)) {
          // The principal would get 410 on every call that names no version.
          const served = api.versions.filter((v) => !api.isGone(v)).map((v) => v.name);
          invalidOption(
            'versioning',
            'version',
            `a version still served (${served.reverse().join(', ')}); ${version.name} is past its sunset`,
            name,
          );
        }
        await store.set(id, name);
      },
    },
    pinOf: {
      value: async (principal: string | number): Promise<string | undefined> =>
        requirePins('pinOf').get(principalText(principal)),
    },
    usageOf: {
      value: async (principal: string | number): Promise<Record<string, VersionUsage>> => {
        if (usage === undefined) {
          throw new TypeError('restwell/versioning: usageOf() needs the "usage" option.');
        }
        return usage.read(principalText(principal), names);
      },
    },
  });
  return middleware;
}
