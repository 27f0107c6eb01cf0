/**
 * JSON Patch (RFC 6902): the PATCH format that lists operations (`add`,
 * `remove`, `replace`, `move`, `copy`, `test`), each at a JSON Pointer (RFC
 * 6901). Unlike a merge patch it can set a member to `null`, insert into an
 * array, and guard a change with `test`.
 *
 * `applyJsonPatch` is atomic (RFC 6902 §5): it checks the whole patch first,
 * then applies the operations to a working copy made lazily (a container is
 * copied the first time an operation changes it), so the input document is
 * never changed and a patch that fails anywhere leaves nothing applied. It is
 * bounded: operations, pointer length, depth and the values `copy` may create
 * all have limits, so no patch can make it exhaust the stack, memory or time.
 */
import { checkOptions, invalidOption } from '../core/errors.js';
import {
  InvalidJsonPatchError,
  JsonPatchConflictError,
  type JsonPatchConflictReason,
  type JsonPatchIssue,
  JsonPatchUnprocessableError,
  type InvalidJsonPatchReason,
  quote,
} from './errors.js';
import { arrayIndex, formatJsonPointer, parseJsonPointer } from './json-pointer.js';
import {
  checkJsonValue,
  copyJson,
  isPlainObject,
  jsonEqual,
  member,
  put,
  serialised,
  shownMember,
} from './json-value.js';

/** The media type of a JSON Patch document (RFC 6902 §6), to advertise in `Accept-Patch`. */
export const JSON_PATCH_MEDIA_TYPE = 'application/json-patch+json';

/** One JSON Patch operation (RFC 6902 §4). Members an operation does not define are ignored. */
export type JsonPatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'move'; from: string; path: string }
  | { op: 'copy'; from: string; path: string }
  | { op: 'test'; path: string; value: unknown };

/** A JSON Patch document: the operations, applied in order (RFC 6902 §3). */
export type JsonPatch = readonly JsonPatchOperation[];

/** Options of {@link applyJsonPatch}. */
export interface JsonPatchOptions {
  /**
   * Most operations one patch may hold; a longer patch is refused (400
   * `invalid-json-patch`, reason `too-many-operations`) before any is read.
   * @default 1000
   */
  maxOperations?: number;
  /**
   * Deepest nesting of arrays and objects allowed in a `value`, and in the
   * document where an operation writes (`{}` is 1 deep). 64 is `jsonBody()`'s
   * and `mergePatch()`'s limit, so that a patched document can always be sent
   * back as a body. At most 1000.
   * @default 64
   */
  maxDepth?: number;
  /** Longest `path` or `from`, in characters. @default 1024 */
  maxPointerLength?: number;
  /**
   * Most values that the patch's `copy` operations may create together: each
   * object, array, number, boolean and `null` counts one, a string one per
   * character (at least one). Each copy duplicates a subtree, so without a
   * bound a few dozen copies of the root's children could double the
   * document a few dozen times, and a thousand copies of one large string
   * would make a result too large to send.
   * @default 100_000
   */
  maxCopiedValues?: number;
}

const OPTION_NAMES = ['maxOperations', 'maxDepth', 'maxPointerLength', 'maxCopiedValues'] as const;
const OPERATIONS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const;
type OperationName = (typeof OPERATIONS)[number];

/** Most faults listed in one 400; more are counted as truncated. */
const MAX_LISTED = 20;
const MAX_DEPTH_CEILING = 1000;

interface Limits {
  maxOperations: number;
  maxDepth: number;
  maxPointerLength: number;
  maxCopiedValues: number;
}

const DEFAULT_LIMITS: Limits = {
  maxOperations: 1000,
  maxDepth: 64,
  maxPointerLength: 1024,
  maxCopiedValues: 100_000,
};

/** The options resolved and checked; the same object for the same options object. */
const resolved = new WeakMap<object, Limits>();

/** Checks {@link JsonPatchOptions}: unknown names and bad values throw a `TypeError`. */
export function resolveJsonPatchOptions(
  options: JsonPatchOptions | undefined,
  module = 'applyJsonPatch',
): Limits {
  if (options === undefined) return DEFAULT_LIMITS;
  const known = resolved.get(options);
  if (known !== undefined) return known;
  checkOptions(module, options, OPTION_NAMES);
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const name of OPTION_NAMES) {
    const value = options[name];
    if (value === undefined) continue;
    const ceiling = name === 'maxDepth' ? MAX_DEPTH_CEILING : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(value) || value < 1 || value > ceiling) {
      invalidOption(
        module,
        name,
        name === 'maxDepth' ? `a positive integer up to ${ceiling}` : 'a positive integer',
        value,
      );
    }
    limits[name] = value;
  }
  resolved.set(options, limits);
  return limits;
}

/** An operation that passed every syntactic check, with its pointers parsed. */
interface CheckedOperation {
  op: OperationName;
  path: readonly string[];
  pathText: string;
  from: readonly string[];
  fromText: string;
  value: unknown;
  /** The nesting depth of `value`: 0 for a scalar. */
  depth: number;
}

function isProperPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  if (prefix.length >= of.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== of[i]) return false;
  return true;
}

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks the whole patch document before anything is applied (RFC 5789 §2.2:
 * a malformed patch document is a 400), and lists every fault found.
 */
function checkPatch(operations: unknown, limits: Limits): CheckedOperation[] {
  if (!Array.isArray(operations)) {
    throw new InvalidJsonPatchError([
      {
        pointer: '',
        reason: 'not-an-array',
        detail: 'A JSON Patch document is an array of operations (RFC 6902 §3).',
      },
    ]);
  }
  if (operations.length > limits.maxOperations) {
    throw new InvalidJsonPatchError(
      [
        {
          pointer: `/${limits.maxOperations}`,
          reason: 'too-many-operations',
          detail: `The patch has ${operations.length} operations; at most ${limits.maxOperations} are applied.`,
        },
      ],
      { operation: limits.maxOperations },
    );
  }
  const issues: JsonPatchIssue[] = [];
  let total = 0;
  let firstOperation: number | undefined;
  const report = (
    index: number,
    at: string,
    reason: InvalidJsonPatchReason,
    detail: string,
  ): void => {
    total++;
    firstOperation ??= index;
    if (issues.length < MAX_LISTED) {
      issues.push({ pointer: `/${index}${at}`, reason, detail: `Operation ${index}: ${detail}` });
    }
  };
  const pointer = (
    raw: Record<string, unknown>,
    name: 'path' | 'from',
    index: number,
  ): readonly string[] | undefined => {
    const text = member(raw, name);
    if (typeof text !== 'string') {
      report(
        index,
        `/${name}`,
        'invalid-pointer',
        text === undefined
          ? `"${name}" is missing; it is a JSON Pointer such as "/a/0".`
          : `"${name}" must be a string holding a JSON Pointer.`,
      );
      return undefined;
    }
    if (text.length > limits.maxPointerLength) {
      report(
        index,
        `/${name}`,
        'invalid-pointer',
        `"${name}" is longer than ${limits.maxPointerLength} characters.`,
      );
      return undefined;
    }
    const tokens = parseJsonPointer(text);
    if (tokens === undefined) {
      report(
        index,
        `/${name}`,
        'invalid-pointer',
        `"${name}" ${quote(text)} is not a JSON Pointer: it is "" or starts with "/", and "~" is written "~0" and "/" in a name "~1" (RFC 6901 §3).`,
      );
    }
    return tokens;
  };

  const checked: CheckedOperation[] = [];
  for (let index = 0; index < operations.length; index++) {
    const raw: unknown = operations[index];
    if (!isPlainObject(raw)) {
      report(index, '', 'not-an-object', 'an operation is a JSON object with "op" and "path".');
      continue;
    }
    const op = member(raw, 'op');
    if (typeof op !== 'string' || !(OPERATIONS as readonly string[]).includes(op)) {
      report(
        index,
        '/op',
        'invalid-op',
        `${
          op === undefined
            ? '"op" is missing'
            : typeof op === 'string'
              ? `"op" ${quote(op)} is unknown`
              : '"op" must be a string'
        }; it is one of ${OPERATIONS.join(', ')}.`,
      );
      continue;
    }
    const name = op as OperationName;
    const path = pointer(raw, 'path', index);
    const takesFrom = name === 'move' || name === 'copy';
    const from = takesFrom ? pointer(raw, 'from', index) : [];
    let value: unknown;
    let depth = 0;
    let valueOk = true;
    if (name === 'add' || name === 'replace' || name === 'test') {
      if (!Object.hasOwn(raw, 'value')) {
        valueOk = false;
        report(index, '/value', 'missing-value', `"${name}" needs a "value" member.`);
      } else {
        value = raw.value;
        const result = checkJsonValue(value, limits.maxDepth);
        if (typeof result === 'number') depth = result;
        else {
          valueOk = false;
          report(index, `/value${result.pointer}`, result.fault, `"value" ${result.detail}.`);
        }
      }
    }
    if (path === undefined || from === undefined || !valueOk) continue;
    // RFC 6902 §4.4: a location cannot be moved into one of its children.
    if (name === 'move' && isProperPrefix(from, path)) {
      report(
        index,
        '/from',
        'move-into-itself',
        'a value cannot be moved into one of its own children ("from" is a prefix of "path", RFC 6902 §4.4).',
      );
      continue;
    }
    checked.push({
      op: name,
      path,
      pathText: raw.path as string,
      from,
      fromText: takesFrom ? (raw.from as string) : '',
      value,
      depth,
    });
  }
  if (total > 0) {
    throw new InvalidJsonPatchError(issues as [JsonPatchIssue, ...JsonPatchIssue[]], {
      operation: firstOperation,
      truncated: total > issues.length,
    });
  }
  return checked;
}

type Container = unknown[] | Record<string, unknown>;

function isContainer(value: unknown): value is Container {
  return Array.isArray(value) || isPlainObject(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return 'neither an object nor an array';
  }
}

/** The result of one step of a pointer: the child, or why there is none. */
type Step = { found: true; value: unknown } | { found: false; reason: JsonPatchConflictReason };

/**
 * One step of a pointer, through the document as `JSON.stringify` writes it,
 * which is what the client read: a member that is not enumerable, or whose
 * value JSON leaves out (`undefined`), does not exist, so a patch cannot test
 * or copy what the representation does not show; an array element JSON
 * writes as `null` (a hole, `undefined`) is `null`.
 */
function childOf(container: unknown, token: string): Step {
  if (Array.isArray(container)) {
    const index = arrayIndex(token);
    if (index === undefined) return { found: false, reason: 'invalid-array-index' };
    if (index >= container.length) return { found: false, reason: 'index-out-of-range' };
    const element: unknown = container[index];
    return { found: true, value: serialised(element) === undefined ? null : element };
  }
  if (isPlainObject(container)) {
    return shownMember(container, token)
      ? { found: true, value: container[token] }
      : { found: false, reason: 'path-not-found' };
  }
  return { found: false, reason: 'not-a-container' };
}

/** Which member of an operation a failure is about. */
type Member = 'path' | 'from' | 'value';

/** The working document of one `applyJsonPatch` call. */
class Patcher {
  root: unknown;
  /** Containers made by this call: only these are changed in place. */
  private readonly owned = new WeakSet<object>();
  /**
   * The depth of subtrees a `move` measured, so that moving one large subtree
   * down and back a thousand times walks it once. A write below a container
   * forgets its depth (every container above a write is passed by `parentOf`).
   */
  private readonly depths = new WeakMap<object, number>();
  private copiesLeft: number;
  private index = 0;
  private operation: CheckedOperation | undefined;

  constructor(
    document: unknown,
    private readonly limits: Limits,
  ) {
    this.root = document;
    this.copiesLeft = limits.maxCopiedValues;
  }

  apply(operations: readonly CheckedOperation[]): unknown {
    for (let i = 0; i < operations.length; i++) {
      const op = operations[i]!;
      this.index = i;
      this.operation = op;
      switch (op.op) {
        case 'add':
          this.checkDepth(op.path, op.depth, 'value');
          this.add(op.path, copyJson(op.value, this.adopt));
          break;
        case 'remove':
          this.remove(op.path, 'path');
          break;
        case 'replace':
          this.checkDepth(op.path, op.depth, 'value');
          this.replace(op.path, copyJson(op.value, this.adopt));
          break;
        case 'move': {
          const value = this.read(op.from, 'from');
          if (sameTokens(op.from, op.path)) break;
          // Moving up, or across, cannot make the document deeper than it was.
          if (op.path.length > op.from.length) this.checkSubtreeDepth(op.path, value);
          this.remove(op.from, 'from');
          this.add(op.path, value);
          break;
        }
        case 'copy': {
          const value = this.read(op.from, 'from');
          this.checkDepth(op.path, 0, 'path');
          this.add(op.path, this.duplicate(value, op.path.length + 1));
          break;
        }
        case 'test':
          if (!jsonEqual(this.read(op.path, 'path'), op.value)) {
            throw this.conflict(
              'test-failed',
              'value',
              `the value at ${quote(op.pathText)} is not equal to "value" (RFC 6902 §4.6).`,
            );
          }
          break;
      }
    }
    // A fresh root even when nothing changed, so the result is never the input itself.
    if (isContainer(this.root) && !this.owned.has(this.root))
      this.root = this.shallowCopy(this.root);
    return this.root;
  }

  /** Records a container made by this call (a copied patch value). */
  private readonly adopt = (container: object): void => {
    this.owned.add(container);
  };

  private shallowCopy(container: Container): Container {
    let out: Container;
    if (Array.isArray(container)) {
      out = new Array<unknown>(container.length);
      for (let i = 0; i < container.length; i++) out[i] = container[i];
    } else {
      out = {};
      for (const name of Object.keys(container)) put(out, name, container[name]);
    }
    this.owned.add(out);
    return out;
  }

  private describe(): string {
    const op = this.operation!;
    return `Operation ${this.index} (${op.op} ${quote(op.pathText)})`;
  }

  private conflict(
    reason: JsonPatchConflictReason,
    at: Member,
    detail: string,
  ): JsonPatchConflictError {
    return new JsonPatchConflictError(
      reason,
      this.index,
      `/${this.index}/${at}`,
      `${this.describe()}: ${detail}`,
    );
  }

  /** The conflict for a pointer that could not be followed past `tokens[step]`. */
  private stepConflict(
    reason: JsonPatchConflictReason,
    tokens: readonly string[],
    step: number,
    parent: unknown,
    at: Member,
  ): JsonPatchConflictError {
    const upTo = quote(formatJsonPointer(tokens.slice(0, step + 1)));
    const parentText = quote(formatJsonPointer(tokens.slice(0, step)));
    const token = tokens[step]!;
    switch (reason) {
      case 'not-a-container':
        return this.conflict(
          reason,
          at,
          `${parentText} is ${kindOf(parent)}, which has no member ${quote(token)}.`,
        );
      case 'invalid-array-index':
        return this.conflict(
          reason,
          at,
          token === '-'
            ? `"-" names the element after the last of the array at ${parentText}, which does not exist (RFC 6901 §4).`
            : `${quote(token)} is not an index of the array at ${parentText}: an index is 0 or digits without a leading zero (RFC 6901 §4).`,
        );
      case 'index-out-of-range':
        return this.conflict(
          reason,
          at,
          `${upTo} is past the end of the array at ${parentText}, which has ${
            (parent as unknown[]).length
          } elements.`,
        );
      default:
        return this.conflict(
          at === 'from' ? 'from-not-found' : 'path-not-found',
          at,
          `${upTo} does not exist.`,
        );
    }
  }

  private read(tokens: readonly string[], at: Member): unknown {
    let current = this.root;
    for (let step = 0; step < tokens.length; step++) {
      const next = childOf(current, tokens[step]!);
      if (!next.found) throw this.stepConflict(next.reason, tokens, step, current, at);
      current = next.value;
    }
    return current;
  }

  /**
   * The container that holds the last token of `tokens`, made this call's own
   * (copied on first write) along with every container above it, so that a
   * change to it never reaches the input document.
   */
  private parentOf(tokens: readonly string[], at: Member): Container {
    if (!isContainer(this.root))
      throw this.stepConflict('not-a-container', tokens, 0, this.root, at);
    if (!this.owned.has(this.root)) this.root = this.shallowCopy(this.root);
    let container = this.root as Container;
    this.depths.delete(container);
    for (let step = 0; step < tokens.length - 1; step++) {
      const token = tokens[step]!;
      const next = childOf(container, token);
      if (!next.found) throw this.stepConflict(next.reason, tokens, step, container, at);
      let child = next.value;
      if (!isContainer(child))
        throw this.stepConflict('not-a-container', tokens, step + 1, child, at);
      if (!this.owned.has(child)) {
        child = this.shallowCopy(child);
        if (Array.isArray(container)) container[arrayIndex(token)!] = child;
        else put(container, token, child);
      }
      container = child as Container;
      this.depths.delete(container);
    }
    return container;
  }

  /** RFC 6902 §4.1. */
  private add(tokens: readonly string[], value: unknown): void {
    if (tokens.length === 0) {
      this.root = value;
      return;
    }
    const parent = this.parentOf(tokens, 'path');
    const last = tokens[tokens.length - 1]!;
    if (!Array.isArray(parent)) {
      put(parent, last, value);
      return;
    }
    if (last === '-') {
      parent.push(value);
      return;
    }
    const index = arrayIndex(last);
    if (index === undefined) {
      throw this.stepConflict('invalid-array-index', tokens, tokens.length - 1, parent, 'path');
    }
    // §4.1: the index may be the array's length (append), not more.
    if (index > parent.length) {
      throw this.stepConflict('index-out-of-range', tokens, tokens.length - 1, parent, 'path');
    }
    parent.splice(index, 0, value);
  }

  /** RFC 6902 §4.2: the location must exist. Returns the value removed. */
  private remove(tokens: readonly string[], at: Member): unknown {
    if (tokens.length === 0) {
      throw new JsonPatchUnprocessableError(
        'removes-document',
        this.index,
        `/${this.index}/${at}`,
        `${this.describe()}: removing the whole document would leave no representation.`,
      );
    }
    const parent = this.parentOf(tokens, at);
    const last = tokens[tokens.length - 1]!;
    const found = childOf(parent, last);
    if (!found.found) throw this.stepConflict(found.reason, tokens, tokens.length - 1, parent, at);
    if (Array.isArray(parent)) parent.splice(arrayIndex(last)!, 1);
    else delete parent[last];
    return found.value;
  }

  /** RFC 6902 §4.3: the location must exist. */
  private replace(tokens: readonly string[], value: unknown): void {
    if (tokens.length === 0) {
      this.root = value;
      return;
    }
    const parent = this.parentOf(tokens, 'path');
    const last = tokens[tokens.length - 1]!;
    const found = childOf(parent, last);
    if (!found.found) {
      throw this.stepConflict(found.reason, tokens, tokens.length - 1, parent, 'path');
    }
    if (Array.isArray(parent)) parent[arrayIndex(last)!] = value;
    else put(parent, last, value);
  }

  private tooDeep(at: Member): JsonPatchUnprocessableError {
    return new JsonPatchUnprocessableError(
      'result-too-deep',
      this.index,
      `/${this.index}/${at}`,
      `${this.describe()}: the document would nest arrays and objects deeper than ${this.limits.maxDepth} levels.`,
      this.limits.maxDepth,
    );
  }

  /** A value `depth` deep written at `tokens` reaches depth `tokens.length + depth`. */
  private checkDepth(tokens: readonly string[], depth: number, at: Member): void {
    if (tokens.length + depth > this.limits.maxDepth) throw this.tooDeep(depth > 0 ? at : 'path');
  }

  /**
   * The same for a subtree of the document: walked level by level, only as
   * deep as the limit, and skipping subtrees measured before.
   */
  private checkSubtreeDepth(tokens: readonly string[], value: unknown): void {
    const room = this.limits.maxDepth - tokens.length;
    if (room < 0) throw this.tooDeep('path');
    if (!isContainer(value)) return;
    const known = this.depths.get(value);
    if (known !== undefined) {
      if (known > room) throw this.tooDeep('from');
      return;
    }
    let deepest = 0;
    let level: Container[] = [value];
    for (let depth = 1; level.length > 0; depth++) {
      if (depth > room) throw this.tooDeep('from');
      deepest = Math.max(deepest, depth);
      const next: Container[] = [];
      for (const container of level) {
        for (const child of Array.isArray(container) ? container : Object.values(container)) {
          if (!isContainer(child)) continue;
          const measured = this.depths.get(child);
          if (measured === undefined) next.push(child);
          else if (depth + measured > room) throw this.tooDeep('from');
          else deepest = Math.max(deepest, depth + measured);
        }
      }
      level = next;
    }
    this.depths.set(value, deepest);
  }

  /**
   * RFC 6902 §4.5: a deep copy of `value` for `copy`, written at nesting
   * `level`. Counts every value made against `maxCopiedValues` (a string by
   * its length: copies share it in memory, but each is written out whole) and
   * refuses a copy that would nest deeper than `maxDepth`, before it is made.
   */
  private duplicate(value: unknown, level: number): unknown {
    this.copiesLeft -= typeof value === 'string' ? Math.max(1, value.length) : 1;
    if (this.copiesLeft < 0) {
      throw new JsonPatchUnprocessableError(
        'copy-too-large',
        this.index,
        `/${this.index}/from`,
        `${this.describe()}: the patch's copy operations would create more than ${this.limits.maxCopiedValues} values (a string counts one per character).`,
        this.limits.maxCopiedValues,
      );
    }
    if (!isContainer(value)) return value;
    if (level > this.limits.maxDepth) throw this.tooDeep('from');
    if (Array.isArray(value)) {
      const out = new Array<unknown>(value.length);
      this.owned.add(out);
      for (let i = 0; i < value.length; i++) out[i] = this.duplicate(value[i], level + 1);
      return out;
    }
    const out: Record<string, unknown> = {};
    this.owned.add(out);
    for (const name of Object.keys(value)) put(out, name, this.duplicate(value[name], level + 1));
    return out;
  }
}

/**
 * Applies a JSON Patch (RFC 6902) to `document` and returns the new document.
 * Neither argument is changed; the result shares no object with the patch
 * and shares unchanged subtrees with `document` (copy it before changing it in
 * place).
 *
 * Atomic (§5): the whole patch is checked first, and a failure anywhere throws
 * with nothing applied:
 * - 400 `invalid-json-patch` ({@link InvalidJsonPatchError}): not a JSON Patch
 *   document (not an array, an unknown `op`, a missing `path`, `from` or
 *   `value`, a bad pointer, a `value` that is not JSON), every fault listed;
 * - 409 `json-patch-conflict` ({@link JsonPatchConflictError}): an operation
 *   cannot be applied to the document as it is (a missing location, an index
 *   out of range, a failed `test`);
 * - 422 `json-patch-unprocessable` ({@link JsonPatchUnprocessableError}): the
 *   result would be deeper than `maxDepth`, the copies larger than
 *   `maxCopiedValues`, or there would be no document.
 *
 * Every problem names the operation (`operation`, its index) and the member
 * of it, as a pointer into the patch (`pointer`: `/3/path`).
 *
 * @example
 * ```ts
 * applyJsonPatch({ a: [1, 2] }, [
 *   { op: 'test', path: '/a/0', value: 1 },
 *   { op: 'add', path: '/a/-', value: 3 },
 *   { op: 'add', path: '/b', value: null },
 * ]);
 * // → { a: [1, 2, 3], b: null }
 * ```
 */
export function applyJsonPatch<T = unknown>(
  document: unknown,
  operations: unknown,
  options?: JsonPatchOptions,
): T {
  const limits = resolveJsonPatchOptions(options);
  const checked = checkPatch(operations, limits);
  return new Patcher(document, limits).apply(checked) as T;
}
