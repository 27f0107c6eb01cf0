/**
 * Version changes: each is declared once, where it happened, with how to
 * migrate an older request forward to it and how to migrate a response (or a
 * payload outside HTTP, a webhook event) back from it. Handlers are written
 * against the newest version only; the chain of changes serves every older one.
 *
 * Migrations are synchronous functions that change the message they are given
 * in place (or replace its `body`). The field helpers below do the common
 * edits on JSON objects and do nothing on anything else, so a migration reads
 * as a list of edits.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { checkOptions, invalidOption } from '../core/errors.js';
import { compilePathPattern, type PathPattern } from './paths.js';

/** Headers of a message a migration may read and change; names are case-insensitive. */
export interface MessageHeaders {
  /** The value; repeated fields are joined with `", "`. */
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  delete(name: string): void;
}

/** A request as a request migration sees it: in the previous version's shape, to be made this version's. */
export interface VersionedRequest {
  /** Upper-case method. */
  readonly method: string;
  /** The path as routed: without the version prefix (`/users/7` for `/v1/users/7`). */
  readonly path: string;
  /** The parameters of the migration's matched path pattern (`:id`), decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The version the client sent the request in. */
  readonly version: string;
  /** The parsed JSON body, `undefined` when there is none. Change it in place or replace it. */
  body: unknown;
  /**
   * The query, changed in place. It is the context's `ctx.request.query`, which
   * `validate({ query })` and restwell's modules read; the framework's own
   * `req.query` / `ctx.query` are parsed from the URL and keep the client's spelling.
   */
  readonly query: URLSearchParams;
  /** The request headers, changed in place: handlers and the framework see the changes. */
  readonly headers: MessageHeaders;
}

/** A response as a response migration sees it: in this version's shape, to be made the previous version's. */
export interface VersionedResponse {
  readonly method: string;
  /** The path as routed, as for requests. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  /** The version the response is being shaped for (the client's). */
  readonly version: string;
  /** The status; a migration may change it (a 201 that used to be a 200). */
  status: number;
  /**
   * The parsed JSON body (a problem document on an error response), or
   * `undefined` when the response has none. Setting it to a value gives the
   * response a JSON body; to `undefined`, none.
   */
  body: unknown;
  readonly headers: MessageHeaders;
}

/** A payload outside HTTP (a webhook event) as a payload migration sees it. */
export interface VersionedPayload {
  /** What the payload is, for example the event type `user.created`; `undefined` when not given. */
  readonly type: string | undefined;
  /** The version the payload is being shaped for. */
  readonly version: string;
  /** The payload, changed in place or replaced. */
  body: unknown;
}

/** How a request of the previous version becomes one of this version. */
export interface RequestMigrationInit {
  /**
   * Which requests: `'POST /users'`, `'/users/:id'` (every method), `'/files/*'`;
   * see the path rules in docs/versioning.md. @default every request
   */
  paths?: string | readonly string[];
  /**
   * The request body as clients of the previous version send it, as a Standard
   * Schema. A client on that version has its body validated against it before
   * any migration runs, so a 400 names the fields the client sent. Only the
   * schema of the oldest matching change in the chain is used: it is the
   * client's version of the body.
   * @default undefined (no validation here)
   */
  schema?: StandardSchemaV1;
  /** Changes the request in place. @default undefined (the schema alone) */
  migrate?: (request: VersionedRequest) => void;
}

/** How a response of this version becomes one of the previous version. */
export interface ResponseMigrationInit {
  /** Which requests' responses, as for {@link RequestMigrationInit.paths}. @default every response */
  paths?: string | readonly string[];
  /**
   * Which statuses: `false` for responses below 400 (successes, redirects),
   * `true` for every response, `'only'` for error responses (4xx, 5xx: problem
   * documents) only. @default false
   */
  errors?: boolean | 'only';
  migrate: (response: VersionedResponse) => void;
}

/** How a payload (a webhook event) of this version becomes one of the previous version. */
export interface PayloadMigrationInit {
  /** Which payload types (`user.created`). @default every payload */
  types?: string | readonly string[];
  migrate: (payload: VersionedPayload) => void;
}

/** What {@link versionChange} takes. */
export interface VersionChangeInit {
  /** One sentence for the changelog, written for the API's clients. Required. */
  description: string;
  /**
   * An additive change (a new optional field, a new endpoint): old clients are
   * unaffected, so it has no migrations and is only listed in the changelog.
   * A change that removes or renames something needs migrations, and so a
   * version of its own. @default false
   */
  additive?: boolean;
  request?: RequestMigrationInit | readonly RequestMigrationInit[];
  response?: ResponseMigrationInit | readonly ResponseMigrationInit[];
  payload?: PayloadMigrationInit | readonly PayloadMigrationInit[];
}

/** A compiled request migration. */
export interface RequestMigration {
  readonly paths: readonly PathPattern[] | undefined;
  readonly schema: StandardSchemaV1 | undefined;
  readonly migrate: ((request: VersionedRequest) => void) | undefined;
}

/** A compiled response migration. */
export interface ResponseMigration {
  readonly paths: readonly PathPattern[] | undefined;
  readonly errors: boolean | 'only';
  readonly migrate: (response: VersionedResponse) => void;
}

/** A compiled payload migration. */
export interface PayloadMigration {
  readonly types: ReadonlySet<string> | undefined;
  readonly migrate: (payload: VersionedPayload) => void;
}

/** One change between a version and the one before it, made by {@link versionChange}. */
export interface VersionChange {
  readonly description: string;
  readonly additive: boolean;
  readonly request: readonly RequestMigration[];
  readonly response: readonly ResponseMigration[];
  readonly payload: readonly PayloadMigration[];
}

const CHANGES = new WeakSet<VersionChange>();

/** Whether `value` was made by {@link versionChange}. */
export function isVersionChange(value: unknown): value is VersionChange {
  return typeof value === 'object' && value !== null && CHANGES.has(value as VersionChange);
}

function list<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

function compilePaths(value: unknown, where: string): readonly PathPattern[] | undefined {
  if (value === undefined) return undefined;
  const patterns = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(patterns) || patterns.length === 0) {
    invalidOption('versioning', where, 'a path pattern or a non-empty list of them', value);
  }
  return patterns.map((p, i) => compilePathPattern(p, `${where}[${i}]`));
}

function checkFunction(value: unknown, where: string, required: boolean): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'function') invalidOption('versioning', where, 'a function', value);
}

/**
 * Declares one version change. Checked now: an unknown option, a malformed
 * path pattern or a missing description throws a `TypeError`.
 *
 * @example
 * ```ts
 * const fullName = versionChange({
 *   description: 'Users: `name` is renamed `fullName`.',
 *   request: { paths: ['POST /users', 'PATCH /users/:id'], migrate: (req) => renameField(req.body, 'name', 'fullName') },
 *   response: {
 *     paths: ['/users', '/users/:id'],
 *     migrate: (res) => {
 *       for (const user of objectsAt(res.body, res.path === '/users' ? '/data/*' : '')) renameField(user, 'fullName', 'name');
 *     },
 *   },
 * });
 * ```
 */
export function versionChange(init: VersionChangeInit): VersionChange {
  checkOptions('versioning change', init, [
    'description',
    'additive',
    'request',
    'response',
    'payload',
  ]);
  if (init === undefined) invalidOption('versioning', 'change', 'an object', init);
  const { description, additive = false } = init;
  if (typeof description !== 'string' || description.trim() === '') {
    invalidOption('versioning', 'description', 'a non-empty string', description);
  }
  if (typeof additive !== 'boolean') invalidOption('versioning', 'additive', 'a boolean', additive);

  const request = list(init.request).map((m, i): RequestMigration => {
    const where = `request[${i}]`;
    checkOptions(`versioning ${where}`, m, ['paths', 'schema', 'migrate']);
    if (m === null || typeof m !== 'object') invalidOption('versioning', where, 'an object', m);
    checkFunction(m.migrate, `${where}.migrate`, false);
    if (m.schema !== undefined && typeof m.schema?.['~standard']?.validate !== 'function') {
      invalidOption('versioning', `${where}.schema`, 'a Standard Schema', m.schema);
    }
    if (m.migrate === undefined && m.schema === undefined) {
      invalidOption('versioning', where, 'an object with migrate, schema or both', m);
    }
    return Object.freeze({
      paths: compilePaths(m.paths, `${where}.paths`),
      schema: m.schema,
      migrate: m.migrate,
    });
  });
  const response = list(init.response).map((m, i): ResponseMigration => {
    const where = `response[${i}]`;
    checkOptions(`versioning ${where}`, m, ['paths', 'errors', 'migrate']);
    if (m === null || typeof m !== 'object') invalidOption('versioning', where, 'an object', m);
    checkFunction(m.migrate, `${where}.migrate`, true);
    const errors = m.errors ?? false;
    if (errors !== true && errors !== false && errors !== 'only') {
      invalidOption('versioning', `${where}.errors`, "true, false or 'only'", errors);
    }
    return Object.freeze({
      paths: compilePaths(m.paths, `${where}.paths`),
      errors,
      migrate: m.migrate,
    });
  });
  const payload = list(init.payload).map((m, i): PayloadMigration => {
    const where = `payload[${i}]`;
    checkOptions(`versioning ${where}`, m, ['types', 'migrate']);
    if (m === null || typeof m !== 'object') invalidOption('versioning', where, 'an object', m);
    checkFunction(m.migrate, `${where}.migrate`, true);
    let types: ReadonlySet<string> | undefined;
    if (m.types !== undefined) {
      const names = typeof m.types === 'string' ? [m.types] : m.types;
      if (
        !Array.isArray(names) ||
        names.length === 0 ||
        names.some((t) => typeof t !== 'string' || t === '')
      ) {
        invalidOption('versioning', `${where}.types`, 'a type name or a list of them', m.types);
      }
      types = new Set(names);
    }
    return Object.freeze({ types, migrate: m.migrate });
  });

  if (additive && request.length + response.length + payload.length > 0) {
    throw new TypeError(
      `restwell/versioning: the change "${description.slice(0, 60)}" is additive but has migrations. An additive change leaves old clients unaffected and needs none; a change that needs a migration removes or renames something, and is not additive.`,
    );
  }
  if (!additive && request.length + response.length + payload.length === 0) {
    throw new TypeError(
      `restwell/versioning: the change "${description.slice(0, 60)}" has no migrations. Give it request, response or payload migrations, or mark it additive: true if old clients are unaffected.`,
    );
  }
  const change: VersionChange = Object.freeze({
    description: description.trim(),
    additive,
    request: Object.freeze(request),
    response: Object.freeze(response),
    payload: Object.freeze(payload),
  });
  CHANGES.add(change);
  return change;
}

// ---------------------------------------------------------------------------
// Field helpers: edits of JSON objects that do nothing on anything else.

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Writes a member as data, so that a name like `__proto__` is a member, never the prototype. */
function define(target: JsonObject, name: string, value: unknown): void {
  if (name === '__proto__') {
    Object.defineProperty(target, name, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else target[name] = value;
}

/**
 * Renames member `from` to `to` of `target` when it is an object that has
 * `from`, in its place: the members after it are moved back behind it, so the
 * JSON reads in the same order. An existing `to` is replaced.
 */
export function renameField(target: unknown, from: string, to: string): void {
  if (!isObject(target) || !Object.hasOwn(target, from) || from === to) return;
  if (Object.hasOwn(target, to)) delete target[to];
  // Only the members from `from` on are taken out and put back: the rest stay where they are.
  let tail: Array<[string, unknown]> | undefined;
  for (const name of Object.keys(target)) {
    if (tail === undefined) {
      if (name !== from) continue;
      tail = [];
    }
    tail.push([name, target[name]]);
    delete target[name];
  }
  for (const [name, value] of tail ?? []) define(target, name === from ? to : name, value);
}

/**
 * Adds member `name` to `target` when it is an object without it: `value`, or
 * what `value(target)` computes from the object's other members.
 */
export function addField(
  target: unknown,
  name: string,
  value: unknown | ((object: Record<string, unknown>) => unknown),
): void {
  if (!isObject(target) || Object.hasOwn(target, name)) return;
  define(
    target,
    name,
    typeof value === 'function' ? (value as (o: JsonObject) => unknown)(target) : value,
  );
}

/** Removes member `name` from `target` when it is an object. */
export function removeField(target: unknown, name: string): void {
  if (isObject(target) && Object.hasOwn(target, name)) delete target[name];
}

/** Replaces member `name` of `target`, when present, with `transform(value, object)`. */
export function transformField(
  target: unknown,
  name: string,
  transform: (value: unknown, object: Record<string, unknown>) => unknown,
): void {
  if (!isObject(target) || !Object.hasOwn(target, name)) return;
  define(target, name, transform(target[name], target));
}

/**
 * The objects found at a JSON Pointer (RFC 6901) in `value`, where a `*`
 * segment stands for every element of an array or member of an object:
 * `''` is `value` itself, `'/data/*'` each element of `value.data`.
 * Only objects are returned (not arrays or scalars); a path that leads
 * nowhere gives none.
 *
 * @example
 * ```ts
 * for (const user of objectsAt(res.body, '/data/*')) renameField(user, 'fullName', 'name');
 * ```
 */
export function objectsAt(value: unknown, pointer: string): Record<string, unknown>[] {
  if (pointer !== '' && !pointer.startsWith('/')) {
    throw new TypeError(`restwell/versioning: ${JSON.stringify(pointer)} is not a JSON Pointer.`);
  }
  let current: unknown[] = [value];
  if (pointer !== '') {
    for (const raw of pointer.slice(1).split('/')) {
      const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
      const next: unknown[] = [];
      for (const node of current) {
        if (typeof node !== 'object' || node === null) continue;
        if (raw === '*') {
          // One push per element: spreading a long list into push() overflows the stack.
          for (const child of Array.isArray(node) ? node : Object.values(node)) next.push(child);
        } else if (Array.isArray(node)) {
          if (/^(0|[1-9][0-9]*)$/.test(segment) && Number(segment) < node.length) {
            next.push(node[Number(segment)]);
          }
        } else if (Object.hasOwn(node, segment)) {
          next.push((node as JsonObject)[segment]);
        }
      }
      current = next;
    }
  }
  return current.filter(isObject);
}
