/**
 * JSON values as the representation helpers treat them: objects are plain
 * objects (prototype `Object.prototype` or `null`) whose members are their own
 * enumerable string-keyed properties, arrays are arrays, and anything else is a
 * leaf. Members are read with own-property checks and written as data
 * properties, so a member named `__proto__` or `constructor` is a member and
 * never reaches a prototype.
 */
import { toJsonPointer } from '../core/validate.js';

/** A plain object: what `JSON.parse` makes, or one made with `Object.create(null)`. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sets a member as data, so that a member named `__proto__` is a member, never the prototype. */
export function put(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** A member's value, read only when it is the object's own: inherited names do not exist. */
export function member(target: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(target, name) ? target[name] : undefined;
}

/** Why a value is not a JSON value this module accepts, and where in it. */
export interface JsonValueFault {
  /** `invalid-value`: not JSON; `too-deep`: nests deeper than allowed. */
  fault: 'invalid-value' | 'too-deep';
  /** JSON Pointer, inside the value, of the offending part (`""` for the value itself). */
  pointer: string;
  /** What is wrong, in a few words. */
  detail: string;
}

function leafFault(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${value} is not a JSON number`;
    case 'undefined':
      return 'undefined is not a JSON value';
    case 'bigint':
      return 'a bigint is not a JSON number';
    case 'function':
      return 'a function is not a JSON value';
    case 'symbol':
      return 'a symbol is not a JSON value';
  }
  if (value === null || Array.isArray(value) || isPlainObject(value)) return undefined;
  return 'only plain objects, arrays, strings, finite numbers, booleans and null are JSON values';
}

/**
 * Checks that `value` is a JSON value (a tree of plain objects, arrays,
 * strings, finite numbers, booleans and `null`) nesting at most `maxDepth`
 * levels (`{}` is 1 deep, a scalar 0). Returns its depth, or the first fault.
 * Walks with an explicit stack, so no value can exhaust the call stack; an
 * object met twice (a cycle, or one object shared by two members) is a fault,
 * since a JSON text can spell neither.
 */
export function checkJsonValue(value: unknown, maxDepth: number): number | JsonValueFault {
  const own = leafFault(value);
  if (own !== undefined) return { fault: 'invalid-value', pointer: '', detail: own };
  if (value === null || typeof value !== 'object') return 0;
  const seen = new Set<object>();
  const stack: Array<{ value: object; depth: number; path: Array<string | number> }> = [
    { value, depth: 1, path: [] },
  ];
  let deepest = 0;
  while (stack.length > 0) {
    const { value: container, depth, path } = stack.pop()!;
    if (depth > maxDepth) {
      return {
        fault: 'too-deep',
        pointer: toJsonPointer(path),
        detail: `nests arrays and objects deeper than ${maxDepth} levels`,
      };
    }
    if (seen.has(container)) {
      return {
        fault: 'invalid-value',
        pointer: toJsonPointer(path),
        detail:
          'the same object appears twice (a cycle, or a shared object); a JSON value is a tree',
      };
    }
    seen.add(container);
    if (depth > deepest) deepest = depth;
    const keys: Array<string | number> = Array.isArray(container)
      ? Array.from(container.keys())
      : Object.keys(container);
    for (const key of keys) {
      const child = (container as Record<string | number, unknown>)[key];
      const fault = leafFault(child);
      if (fault !== undefined) {
        return { fault: 'invalid-value', pointer: toJsonPointer([...path, key]), detail: fault };
      }
      if (child !== null && typeof child === 'object') {
        stack.push({ value: child, depth: depth + 1, path: [...path, key] });
      }
    }
  }
  return deepest;
}

/**
 * A deep copy of a JSON value (one {@link checkJsonValue} accepted), sharing no
 * object with it. Each array and object made is passed to `made`, for callers
 * that track which containers they may change in place.
 */
export function copyJson(value: unknown, made?: (container: object) => void): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    made?.(out);
    for (let i = 0; i < value.length; i++) out[i] = copyJson(value[i], made);
    return out;
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  made?.(out);
  for (const name of Object.keys(value)) put(out, name, copyJson(value[name], made));
  return out;
}

/**
 * A value as `JSON.stringify` writes it, one level down: an object with a
 * `toJSON()` method (a `Date`) is what that returns; `undefined`, a function
 * and a symbol are `undefined`, which JSON leaves out of an object and writes
 * as `null` in an array.
 */
export function serialised(value: unknown): unknown {
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
}

/** Whether `name` is a member of `target` as JSON writes it: own, enumerable, and not left out. */
export function shownMember(target: Record<string, unknown>, name: string): boolean {
  return (
    Object.prototype.propertyIsEnumerable.call(target, name) &&
    serialised(target[name]) !== undefined
  );
}

/**
 * JSON equality as RFC 6902 §4.6 defines it for `test`: numbers by value (`1`
 * equals `1.0`, `0` equals `-0`), strings by their code units, arrays by
 * length and element, objects by their set of members regardless of order.
 * `expected` must be a JSON value. `actual` is compared as `JSON.stringify`
 * writes it, which is what the client read: an object with a `toJSON()`
 * method (a `Date`) by what that returns, so a client that read
 * `"2026-01-01T00:00:00.000Z"` may send it back; a member whose value is
 * `undefined` (or a function) is not a member, and such an array element is
 * `null`. Other leaves equal nothing but themselves. Recursion follows
 * `expected`, whose depth the caller bounded.
 */
export function jsonEqual(actual: unknown, expected: unknown): boolean {
  return equalAsWritten(serialised(actual), expected);
}

function equalAsWritten(actual: unknown, expected: unknown): boolean {
  if (actual === expected) return true;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return false;
    for (let i = 0; i < expected.length; i++) {
      const element = serialised(actual[i]);
      if (!equalAsWritten(element === undefined ? null : element, expected[i])) return false;
    }
    return true;
  }
  if (isPlainObject(expected)) {
    if (!isPlainObject(actual)) return false;
    const names = Object.keys(expected);
    let shown = 0;
    for (const name of Object.keys(actual)) if (serialised(actual[name]) !== undefined) shown++;
    if (shown !== names.length) return false;
    for (const name of names) {
      if (!Object.prototype.propertyIsEnumerable.call(actual, name)) return false;
      const value = serialised(actual[name]);
      if (value === undefined || !equalAsWritten(value, expected[name])) return false;
    }
    return true;
  }
  return false;
}
