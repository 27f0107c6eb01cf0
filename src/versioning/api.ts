/**
 * The framework-free core: an API's versions, their changes and policies,
 * checked once by {@link defineVersions}, and the migration chain that turns a
 * request of any version into one of the newest, and a response or payload of
 * the newest into one of any version.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { JsonTooDeepError, valueNestsDeeperThan } from '../core/body.js';
import { checkOptions, invalidOption, ValidationError } from '../core/errors.js';
import { toJsonPointer } from '../core/validate.js';
import {
  isVersionChange,
  type MessageHeaders,
  type RequestMigration,
  type ResponseMigration,
  type VersionChange,
  type VersionedPayload,
  type VersionedRequest,
  type VersionedResponse,
} from './changes.js';
import {
  type CompiledDeprecation,
  compileDeprecation,
  type DeprecationPolicy,
  isGone,
} from './deprecation.js';
import { matchPathPattern, type PathPattern } from './paths.js';
import { parseVersionId, type VersionId, type VersionKind } from './version-id.js';

/** One version of the API, as the application declares it. */
export interface VersionDefinition extends DeprecationPolicy {
  /** `v1`, `v2`, ... or a date, `2025-06-01`. Every version of one API is of one kind. */
  version: string;
  /**
   * What changed in this version since the one before it, each made by
   * `versionChange()`. The oldest version has none (there is nothing older to
   * migrate from). @default []
   */
  changes?: readonly VersionChange[];
}

/** Options of {@link defineVersions}. */
export interface DefineVersionsOptions {
  /** Every version served, in any order (they are sorted by number or date). Required. */
  versions: readonly VersionDefinition[];
  /**
   * The version of a request that names none and has no pin (header and
   * media-type strategies). @default the newest version
   */
  default?: string;
  /**
   * Most versions served at once: those not past a sunset with
   * `afterSunset: 'gone'`. Checked now, against `now()`. Two is the usual rule
   * for majors (each one served costs); dated APIs that keep every version
   * alive through migrations raise it. @default 2
   */
  maxActive?: number;
  /**
   * Deepest nesting of a request body that a framework's own parser produced
   * (`express.json()` bounds size, not depth) before a schema or a migration
   * walks it; deeper is a 400 `json-too-deep`. Bodies `jsonBody()` parsed were
   * bounded already. @default 64
   */
  maxDepth?: number;
  /** The clock, in epoch milliseconds: deprecations, sunsets and usage. @default Date.now */
  now?: () => number;
}

/** One version as {@link ApiVersions} knows it. */
export interface ApiVersion {
  /** The canonical name: `v2` or `2025-06-01`. */
  readonly name: string;
  /** Its place, 0 for the oldest. */
  readonly index: number;
  readonly changes: readonly VersionChange[];
  /** Its deprecation policy, checked and formatted. */
  readonly policy: CompiledDeprecation | undefined;
}

/** What {@link ApiVersions.shapePayload} takes besides the payload. */
export interface ShapePayloadOptions {
  /** The version to shape the payload for (an endpoint's pinned version). */
  version: string;
  /** What the payload is (`user.created`), for migrations that target types. */
  type?: string;
}

/** The request {@link ApiVersions.migrateRequest} migrates, in place. */
export interface RequestToMigrate {
  readonly method: string;
  /** The routed path (without the version prefix). */
  readonly path: string;
  body: unknown;
  readonly query: URLSearchParams;
  readonly headers: MessageHeaders;
  /** Whether the body came from `jsonBody()`, whose depth bound applies already. */
  readonly bodyBounded?: boolean;
}

/** The response {@link ApiVersions.migrateResponse} migrates, in place. */
export interface ResponseToMigrate {
  readonly method: string;
  readonly path: string;
  status: number;
  body: unknown;
  readonly headers: MessageHeaders;
}

const OPTIONS = ['versions', 'default', 'maxActive', 'maxDepth', 'now'] as const;
const VERSION_OPTIONS = ['version', 'changes', 'deprecation', 'sunset', 'links', 'afterSunset'];

/**
 * An API's versions and the migration chain between them, framework-free.
 * Made by {@link defineVersions}; used by `versioning()` for HTTP and by any
 * code that shapes a payload for a version (webhooks).
 */
export class ApiVersions {
  /** Oldest first. */
  readonly versions: readonly ApiVersion[];
  readonly kind: VersionKind;
  readonly newest: ApiVersion;
  /** The configured default version; the one a request gets at a moment is {@link defaultAt}'s. */
  readonly defaultVersion: ApiVersion;
  /** The names, newest first: what an unsupported-version problem lists. */
  readonly supported: readonly string[];
  /** The clock. */
  readonly now: () => number;
  private readonly byName: ReadonlyMap<string, ApiVersion>;
  private readonly maxDepth: number;

  /** Use {@link defineVersions}. */
  constructor(options: DefineVersionsOptions) {
    checkOptions('versioning', options, OPTIONS);
    if (options === undefined) invalidOption('versioning', 'options', 'an object', options);
    const { versions: defs, maxActive = 2, maxDepth = 64, now = Date.now } = options;
    if (typeof now !== 'function') invalidOption('versioning', 'now', 'a function', now);
    if (!Number.isSafeInteger(maxActive) || maxActive < 1) {
      invalidOption('versioning', 'maxActive', 'a positive integer', maxActive);
    }
    if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) {
      invalidOption('versioning', 'maxDepth', 'a positive integer', maxDepth);
    }
    if (!Array.isArray(defs) || defs.length === 0) {
      invalidOption('versioning', 'versions', 'a non-empty list of versions', defs);
    }
    const read: Array<{ id: VersionId; def: VersionDefinition; where: string }> = [];
    for (const [i, def] of defs.entries()) {
      const where = `versions[${i}]`;
      checkOptions(`versioning ${where}`, def, VERSION_OPTIONS);
      if (def === null || typeof def !== 'object')
        invalidOption('versioning', where, 'an object', def);
      const id = typeof def.version === 'string' ? parseVersionId(def.version) : undefined;
      if (id === undefined || id.name !== def.version) {
        invalidOption(
          'versioning',
          `${where}.version`,
          "a major ('v1', 'v2') or a date ('2025-06-01')",
          def.version,
        );
      }
      read.push({ id, def, where });
    }
    const kind = read[0]!.id.kind;
    const mixed = read.find((r) => r.id.kind !== kind);
    if (mixed !== undefined) {
      throw new TypeError(
        `restwell/versioning: option "${mixed.where}.version" is ${mixed.id.kind === 'major' ? 'a major' : 'a date'} but "versions[0].version" is ${kind === 'major' ? 'a major' : 'a date'}; one API uses one kind, so that its versions have one order.`,
      );
    }
    read.sort((a, b) => a.id.order - b.id.order);
    for (let i = 1; i < read.length; i++) {
      if (read[i]!.id.order === read[i - 1]!.id.order) {
        throw new TypeError(
          `restwell/versioning: version ${read[i]!.id.name} is declared twice (option "${read[i]!.where}").`,
        );
      }
    }
    // A change happens once, between one version and the one before it: declared
    // again, its migrations would run twice on every older request and response.
    const declared = new Map<VersionChange, string>();
    const versions = read.map(({ id, def, where }, index): ApiVersion => {
      const changes = def.changes ?? [];
      if (!Array.isArray(changes)) {
        invalidOption('versioning', `${where}.changes`, 'a list of versionChange()s', changes);
      }
      for (const [j, change] of changes.entries()) {
        if (!isVersionChange(change)) {
          invalidOption('versioning', `${where}.changes[${j}]`, 'a versionChange()', change);
        }
        const first = declared.get(change);
        if (first !== undefined) {
          throw new TypeError(
            `restwell/versioning: the change "${change.description.slice(0, 60)}" is declared twice (options "${first}" and "${where}.changes[${j}]"). A change belongs to the one version that made it; a later change to the same field is a new versionChange().`,
          );
        }
        declared.set(change, `${where}.changes[${j}]`);
      }
      if (index === 0 && changes.some((c: VersionChange) => !c.additive)) {
        throw new TypeError(
          `restwell/versioning: ${id.name} is the oldest version, so it has no earlier version to migrate from; its changes can only be additive (option "${where}.changes").`,
        );
      }
      const { deprecation, sunset, links, afterSunset } = def;
      const policy =
        deprecation === undefined &&
        sunset === undefined &&
        links === undefined &&
        afterSunset === undefined
          ? undefined
          : compileDeprecation({ deprecation, sunset, links, afterSunset }, `${where}.`);
      return Object.freeze({ name: id.name, index, changes: Object.freeze([...changes]), policy });
    });
    const newest = versions[versions.length - 1]!;
    if (newest.policy?.afterSunset === 'gone') {
      throw new TypeError(
        `restwell/versioning: the newest version, ${newest.name}, has afterSunset: 'gone'; after its sunset no version would be served. Add its successor first.`,
      );
    }
    const byName = new Map(versions.map((v) => [v.name, v]));
    let defaultVersion = newest;
    if (options.default !== undefined) {
      const found = typeof options.default === 'string' ? byName.get(options.default) : undefined;
      if (found === undefined) {
        invalidOption(
          'versioning',
          'default',
          `one of the versions (${versions.map((v) => v.name).join(', ')})`,
          options.default,
        );
      }
      defaultVersion = found;
    }
    const at = now();
    const active = versions.filter((v) => !isGone(v.policy, at));
    if (active.length > maxActive) {
      throw new TypeError(
        `restwell/versioning: ${active.length} versions are active (${active.map((v) => v.name).join(', ')}), more than maxActive (${maxActive}). Sunset the oldest with afterSunset: 'gone', remove it, or raise maxActive.`,
      );
    }
    if (isGone(defaultVersion.policy, at)) {
      throw new TypeError(
        `restwell/versioning: the default version, ${defaultVersion.name}, is past its sunset and gone; choose a version that is served.`,
      );
    }
    this.versions = Object.freeze(versions);
    this.kind = kind;
    this.newest = newest;
    this.defaultVersion = defaultVersion;
    this.supported = Object.freeze(versions.map((v) => v.name).reverse());
    this.now = now;
    this.byName = byName;
    this.maxDepth = maxDepth;
  }

  /** The version of this name, or `undefined` when the API has none. */
  get(name: string): ApiVersion | undefined {
    return this.byName.get(name);
  }

  /** Whether `version` answers 410 at `now` (past its sunset, with `afterSunset: 'gone'`). */
  isGone(version: ApiVersion, now: number = this.now()): boolean {
    return isGone(version.policy, now);
  }

  /**
   * Migrates a request of `version` forward to the newest version, in place:
   * first validates its body against the schema of the oldest matching change
   * that has one (the client's own version of the body; a failure is a 400
   * `validation-failed` listing every field, with pointers into what the
   * client sent), then runs each later change's request migrations in order.
   */
  migrateRequest(version: ApiVersion, request: RequestToMigrate): void {
    if (version.index === this.newest.index) return;
    let validated = false;
    let bounded = request.bodyBounded === true;
    for (let i = version.index + 1; i < this.versions.length; i++) {
      for (const change of this.versions[i]!.changes) {
        for (const migration of change.request) {
          const params = matches(migration.paths, request.method, request.path);
          if (params === undefined) continue;
          if (!bounded) {
            // Before a schema or a migration walks it: a framework's parser bounds size, not depth.
            bounded = true;
            if (valueNestsDeeperThan(request.body, this.maxDepth)) {
              throw new JsonTooDeepError(this.maxDepth);
            }
          }
          if (!validated && migration.schema !== undefined) {
            validated = true;
            request.body = this.validateBody(migration, request);
          }
          migration.migrate?.(requestMessage(request, params, version.name));
        }
      }
    }
  }

  /**
   * Migrates a response of the newest version back to `version`, in place:
   * each change's response migrations, newest change first. Migrations for
   * errors see problem documents (status 400 and above) only when they ask
   * for them (`errors: true` or `'only'`).
   */
  migrateResponse(version: ApiVersion, response: ResponseToMigrate): void {
    for (let i = this.versions.length - 1; i > version.index; i--) {
      const changes = this.versions[i]!.changes;
      for (let c = changes.length - 1; c >= 0; c--) {
        const migrations = changes[c]!.response;
        for (let m = migrations.length - 1; m >= 0; m--) {
          const migration = migrations[m]!;
          if (!appliesToStatus(migration, response.status)) continue;
          const params = matches(migration.paths, response.method, response.path);
          if (params === undefined) continue;
          migration.migrate(responseMessage(response, params, version.name));
        }
      }
    }
  }

  /** Whether any change after `version` has request migrations (or schemas) for this request. */
  hasRequestMigrations(version: ApiVersion, method: string, path: string): boolean {
    for (let i = version.index + 1; i < this.versions.length; i++) {
      for (const change of this.versions[i]!.changes) {
        for (const migration of change.request) {
          if (matches(migration.paths, method, path) !== undefined) return true;
        }
      }
    }
    return false;
  }

  /**
   * Whether any change after `version` has response migrations for this
   * request (with `statuses: 'errors'`, migrations of error responses): when
   * none has, a response need not be parsed at all.
   */
  hasResponseMigrations(
    version: ApiVersion,
    method: string,
    path: string,
    statuses: 'any' | 'errors' = 'any',
  ): boolean {
    for (let i = version.index + 1; i < this.versions.length; i++) {
      for (const change of this.versions[i]!.changes) {
        for (const migration of change.response) {
          if (statuses === 'errors' && migration.errors === false) continue;
          if (matches(migration.paths, method, path) !== undefined) return true;
        }
      }
    }
    return false;
  }

  /**
   * The version of a request that names none and has no pin, at `now`: the
   * configured default, or, once it is past its sunset and gone, the first
   * version after it that is still served (the newest never goes). A client
   * is never given, nor pinned to, a version that only answers 410.
   */
  defaultAt(now: number = this.now()): ApiVersion {
    const configured = this.defaultVersion;
    if (!isGone(configured.policy, now)) return configured;
    return this.servedSuccessorOf(configured, now) ?? this.newest;
  }

  /** The first version after `version` that is served at `now`, or `undefined`. */
  servedSuccessorOf(version: ApiVersion, now: number = this.now()): ApiVersion | undefined {
    for (let i = version.index + 1; i < this.versions.length; i++) {
      const next = this.versions[i]!;
      if (!isGone(next.policy, now)) return next;
    }
    return undefined;
  }

  /**
   * Shapes a payload of the newest version for `options.version`, outside
   * HTTP: a webhook event for an endpoint pinned to an older version. The
   * payload is copied first (the same event may go to endpoints of several
   * versions), then each later change's payload migrations run, newest first.
   * Throws a `TypeError` for a version the API does not have, and
   * `structuredClone`'s error for a payload that is not plain data.
   *
   * @example
   * ```ts
   * const body = api.shapePayload(event, { version: endpoint.version, type: 'user.created' });
   * ```
   */
  shapePayload<T = unknown>(payload: T, options: ShapePayloadOptions): unknown {
    checkOptions('versioning shapePayload', options, ['version', 'type']);
    const version = typeof options?.version === 'string' ? this.get(options.version) : undefined;
    if (version === undefined) {
      invalidOption(
        'versioning',
        'version',
        `one of the versions (${this.supported.join(', ')})`,
        options?.version,
      );
    }
    if (options.type !== undefined && typeof options.type !== 'string') {
      invalidOption('versioning', 'type', 'a string', options.type);
    }
    if (version.index === this.newest.index) return structuredClone(payload);
    const message: VersionedPayload = {
      type: options.type,
      version: version.name,
      body: structuredClone(payload),
    };
    for (let i = this.versions.length - 1; i > version.index; i--) {
      const changes = this.versions[i]!.changes;
      for (let c = changes.length - 1; c >= 0; c--) {
        const migrations = changes[c]!.payload;
        for (let m = migrations.length - 1; m >= 0; m--) {
          const migration = migrations[m]!;
          if (migration.types !== undefined) {
            if (options.type === undefined || !migration.types.has(options.type)) continue;
          }
          migration.migrate(message);
        }
      }
    }
    return message.body;
  }

  private validateBody(migration: RequestMigration, request: RequestToMigrate): unknown {
    const schema = migration.schema as StandardSchemaV1;
    const result = schema['~standard'].validate(request.body);
    if (result instanceof Promise) {
      throw new TypeError(
        'restwell/versioning: a request schema validated asynchronously; migrations are synchronous, so use a schema without async refinements.',
      );
    }
    if (result.issues === undefined) return result.value;
    const MAX = 50;
    const issues = result.issues.slice(0, MAX).map((issue) => ({
      pointer: toJsonPointer(issue.path),
      detail: issue.message,
      in: 'body' as const,
    }));
    throw new ValidationError(issues, { truncated: result.issues.length > MAX });
  }
}

function matches(
  paths: readonly PathPattern[] | undefined,
  method: string,
  path: string,
): Readonly<Record<string, string>> | undefined {
  if (paths === undefined) return NO_PARAMS;
  for (const pattern of paths) {
    const params = matchPathPattern(pattern, method, path);
    if (params !== undefined) return params;
  }
  return undefined;
}

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

function appliesToStatus(migration: ResponseMigration, status: number): boolean {
  const error = status >= 400;
  return migration.errors === true || (migration.errors === 'only' ? error : !error);
}

/** The message a request migration sees: the request itself, with the match's params and the version. */
function requestMessage(
  request: RequestToMigrate,
  params: Readonly<Record<string, string>>,
  version: string,
): VersionedRequest {
  return {
    method: request.method,
    path: request.path,
    params,
    version,
    get body() {
      return request.body;
    },
    set body(value: unknown) {
      request.body = value;
    },
    query: request.query,
    headers: request.headers,
  };
}

function responseMessage(
  response: ResponseToMigrate,
  params: Readonly<Record<string, string>>,
  version: string,
): VersionedResponse {
  return {
    method: response.method,
    path: response.path,
    params,
    version,
    get status() {
      return response.status;
    },
    set status(value: number) {
      response.status = value;
    },
    get body() {
      return response.body;
    },
    set body(value: unknown) {
      response.body = value;
    },
    headers: response.headers,
  };
}

/**
 * Declares an API's versions: their changes, deprecations and sunsets,
 * checked now. Every mistake is a `TypeError` naming the option: a version
 * that is neither a major nor a date, majors mixed with dates, a version
 * declared twice, changes on the oldest version, a sunset before its
 * deprecation, a malformed link, more active versions than `maxActive`.
 *
 * @example
 * ```ts
 * const api = defineVersions({
 *   versions: [
 *     { version: 'v1', deprecation: '2025-01-01', sunset: '2025-07-01', links: { deprecation: 'https://api.example.com/docs/v2-migration' } },
 *     { version: 'v2', changes: [fullName] },
 *   ],
 * });
 * ```
 */
export function defineVersions(options: DefineVersionsOptions): ApiVersions {
  return new ApiVersions(options);
}
