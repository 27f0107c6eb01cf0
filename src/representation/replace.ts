/**
 * PUT as a full replace (RFC 9110 §9.3.4: the state of the target is replaced
 * by the state the request encloses). The trap is the partial PUT: a client
 * sends `{"name":"Alice"}` and the server either keeps the old email (the PUT
 * was a patch in disguise) or erases it by accident. A replacement shape
 * states the rule instead: every member a PUT replaces is declared with the
 * value it takes when the body leaves it out (`null` or a default), members
 * the server owns (`id`, `version`, `createdAt`) are kept from the current
 * resource, and anything else in the body is refused or dropped, by option.
 */
import {
  checkOptions,
  invalidOption,
  ValidationError,
  type ValidationIssue,
} from '../core/errors.js';
import { PatchedRepresentationError } from './errors.js';
import { formatJsonPointer } from './json-pointer.js';
import { checkJsonValue, copyJson, isPlainObject, jsonEqual, put } from './json-value.js';

/** Options of {@link replacementShape}. */
export interface ReplacementShapeOptions<F extends Record<string, unknown>> {
  /**
   * Every member a PUT replaces, each with the value it takes when the body
   * leaves it out: `null`, or a default (`[]`, `'en'`, `false`). A JSON value,
   * copied for each result. Required; at least one.
   */
  fields: F;
  /**
   * Members the server owns (`id`, `version`, `createdAt`): kept from the
   * current resource, whatever the body says. List every one the
   * representation shows, so that a client may PUT back what it read.
   * @default []
   */
  readOnly?: readonly string[];
  /**
   * A body member that is neither a field nor read-only: `'refuse'` answers
   * 400 `validation-failed` listing every such member (a typo, `emial`, is
   * not silently lost); `'drop'` ignores them.
   * @default 'refuse'
   */
  unknownFields?: 'refuse' | 'drop';
  /**
   * A read-only member in the body with another value than the current one:
   * `'refuse'` answers 400 `validation-failed` naming it; `'ignore'` keeps the
   * current value. The same value (a client sending back what it read) is
   * always accepted. Compared as JSON, so a `Date` equals its ISO string.
   * @default 'refuse'
   */
  readOnlyChanges?: 'refuse' | 'ignore';
}

declare const shapeFields: unique symbol;

/** A checked replacement shape, made by {@link replacementShape}. */
export interface ReplacementShape<F extends Record<string, unknown> = Record<string, unknown>> {
  /** The replaceable fields and their defaults. */
  readonly fields: Readonly<F>;
  readonly readOnly: readonly string[];
  readonly unknownFields: 'refuse' | 'drop';
  readonly readOnlyChanges: 'refuse' | 'ignore';
  /** Carries `F` for the compiler only. */
  readonly [shapeFields]?: F;
}

const SHAPES = new WeakSet<object>();
const MODULE = 'replacementShape';

/**
 * Declares how a PUT replaces a resource; checked once, here. Unknown option
 * names, a field that is also read-only, and a default that is not a JSON
 * value throw a `TypeError`.
 *
 * @example
 * ```ts
 * const userShape = replacementShape({
 *   fields: { email: null, name: null, nickname: null, locale: 'en' },
 *   readOnly: ['id', 'version', 'createdAt', 'updatedAt'],
 * });
 * ```
 */
export function replacementShape<const F extends Record<string, unknown>>(
  options: ReplacementShapeOptions<F>,
): ReplacementShape<F> {
  checkOptions(MODULE, options, ['fields', 'readOnly', 'unknownFields', 'readOnlyChanges'], {
    defaults: 'Declare each field with its default in fields: { name: null, locale: "en" }.',
    strict: "Use unknownFields: 'refuse' (the default) or 'drop'.",
  });
  if (options === undefined || !isPlainObject(options.fields)) {
    invalidOption(MODULE, 'fields', 'an object of field names and defaults', options?.fields);
  }
  const names = Object.keys(options.fields);
  if (names.length === 0) invalidOption(MODULE, 'fields', 'at least one field', options.fields);
  const fields: Record<string, unknown> = {};
  for (const name of names) {
    const value = options.fields[name];
    if (typeof checkJsonValue(value, 64) !== 'number') {
      invalidOption(MODULE, `fields.${name}`, 'a JSON value (null, or a default)', value);
    }
    put(fields, name, copyJson(value));
  }
  const { readOnly = [], unknownFields = 'refuse', readOnlyChanges = 'refuse' } = options;
  if (!Array.isArray(readOnly) || readOnly.some((n) => typeof n !== 'string')) {
    invalidOption(MODULE, 'readOnly', 'an array of member names', readOnly);
  }
  for (const name of readOnly) {
    if (Object.hasOwn(fields, name)) {
      invalidOption(MODULE, 'readOnly', `names that are not also fields ("${name}" is both)`, name);
    }
  }
  if (unknownFields !== 'refuse' && unknownFields !== 'drop') {
    invalidOption(MODULE, 'unknownFields', '"refuse" or "drop"', unknownFields);
  }
  if (readOnlyChanges !== 'refuse' && readOnlyChanges !== 'ignore') {
    invalidOption(MODULE, 'readOnlyChanges', '"refuse" or "ignore"', readOnlyChanges);
  }
  const shape: ReplacementShape<F> = Object.freeze({
    fields: Object.freeze(fields) as Readonly<F>,
    readOnly: Object.freeze([...new Set(readOnly)]),
    unknownFields,
    readOnlyChanges,
  });
  SHAPES.add(shape);
  return shape;
}

/** Most issues listed in one 400, as `validate()` lists by default. */
const MAX_ISSUES = 50;

/**
 * The resource after a PUT of `input` (RFC 9110 §9.3.4): every field of
 * `shape` takes the body's value, or its default when the body leaves it out
 * (an explicit `null` stays `null`); read-only members keep the current
 * values; members of `current` the shape does not name (server-side state
 * the representation does not show) are kept as they are. Neither argument is
 * changed. `current` is `undefined` (or `null`) for a PUT that creates.
 *
 * A body that is not an object, unknown members (with `unknownFields:
 * 'refuse'`) and changed read-only members (with `readOnlyChanges: 'refuse'`)
 * are a 400 `validation-failed` listing every one at once, each with a JSON
 * Pointer into the body. For the result of a PATCH, use
 * {@link patchedRepresentation}.
 *
 * @example
 * ```ts
 * // PUT /v1/users/usr_ada  {"email":"ada@example.com","name":"Ada"}
 * const next = replaceRepresentation(current, req.body, userShape);
 * // → { ...current, email: 'ada@example.com', name: 'Ada', nickname: null, locale: 'en' }
 * ```
 */
export function replaceRepresentation<T extends object>(
  current: T | null | undefined,
  input: unknown,
  shape: ReplacementShape,
): T {
  return replaceWith(current, input, shape, 'put');
}

/**
 * The resource after a PATCH whose result is `patched`: the patch (a merge
 * patch or a JSON Patch, `applyPatch()`) applied to the representation the
 * client reads, passed through the PUT shape, so that whichever format the
 * patch was in, members the server owns and members the representation does
 * not show are kept, a member the patch removed takes its default, and no
 * unknown member is added.
 *
 * A PATCH is applied whole or not at all (RFC 5789 §2), so where a PUT may
 * leave a read-only member out, a patch that removes one (`remove /id`, a
 * `move` from it, `{"version": null}`) is refused rather than applied
 * without that operation. Refusals are a 422 {@link PatchedRepresentationError}
 * (RFC 5789 §2.2: the patch is well formed, but would make the resource
 * invalid) listing every member by a JSON Pointer into the patched
 * representation: a read-only member changed or removed (unless
 * `readOnlyChanges: 'ignore'`), an unknown member (unless `unknownFields:
 * 'drop'`), or a result that is not an object (a merge patch of `null`
 * replaces the whole document, RFC 7396 §2).
 *
 * @example
 * ```ts
 * const next = patchedRepresentation(row, applyPatch(ctx, representationOf(row)), userShape);
 * ```
 */
export function patchedRepresentation<T extends object>(
  current: T | null | undefined,
  patched: unknown,
  shape: ReplacementShape,
): T {
  return replaceWith(current, patched, shape, 'patch');
}

const PUT_DETAILS = {
  notObject: 'The body must be a JSON object holding the whole representation.',
  readOnly: 'Read-only: the server sets this member; send the current value or leave it out.',
  unknown: 'Unknown member; a PUT replaces',
};
const PATCH_DETAILS = {
  notObject: 'The patch makes the representation something other than a JSON object.',
  readOnly: 'Read-only: the server sets this member; a patch cannot change it.',
  removed: 'Read-only: the server sets this member; a patch cannot remove it.',
  unknown: 'Unknown member; a patch changes',
};

function replaceWith<T extends object>(
  current: T | null | undefined,
  input: unknown,
  shape: ReplacementShape,
  method: 'put' | 'patch',
): T {
  if (!SHAPES.has(shape)) {
    throw new TypeError(
      `restwell/${method === 'put' ? 'replaceRepresentation' : 'patchedRepresentation'}: the shape must come from replacementShape(), which checks it.`,
    );
  }
  const details = method === 'put' ? PUT_DETAILS : PATCH_DETAILS;
  const refuse = (issues: ValidationIssue[], truncated: boolean): never => {
    if (method === 'put') throw new ValidationError(issues, { truncated });
    throw new PatchedRepresentationError(issues, { truncated });
  };
  const at = method === 'put' ? ({ in: 'body' } as const) : {};
  if (!isPlainObject(input)) refuse([{ pointer: '', detail: details.notObject, ...at }], false);
  const body = input as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  let total = 0;
  const issue = (name: string, detail: string) => {
    total++;
    if (issues.length < MAX_ISSUES) {
      issues.push({ pointer: formatJsonPointer([name]), detail, ...at });
    }
  };
  const base = (current ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(base)) put(out, name, base[name]);

  for (const name of Object.keys(body)) {
    if (Object.hasOwn(shape.fields, name)) continue;
    if (shape.readOnly.includes(name)) {
      if (shape.readOnlyChanges === 'refuse' && !sameAsCurrent(base, name, body[name])) {
        issue(name, details.readOnly);
      }
      continue;
    }
    if (shape.unknownFields === 'refuse') {
      issue(name, `${details.unknown} ${Object.keys(shape.fields).join(', ')}.`);
    }
  }
  // RFC 5789 §2: the patched representation is whole, so a read-only member it lacks was removed.
  if (method === 'patch' && shape.readOnlyChanges === 'refuse') {
    for (const name of shape.readOnly) {
      if (Object.hasOwn(base, name) && !Object.hasOwn(body, name))
        issue(name, PATCH_DETAILS.removed);
    }
  }
  if (total > 0) refuse(issues, total > issues.length);

  for (const name of Object.keys(shape.fields)) {
    const given = Object.hasOwn(body, name) ? body[name] : undefined;
    put(out, name, given === undefined ? copyJson(shape.fields[name]) : given);
  }
  return out as T;
}

function sameAsCurrent(current: Record<string, unknown>, name: string, sent: unknown): boolean {
  if (!Object.hasOwn(current, name)) return false;
  // The sent value comes from a body; refuse to walk one nested beyond reason.
  if (typeof checkJsonValue(sent, 64) !== 'number') return false;
  return jsonEqual(current[name], sent);
}
