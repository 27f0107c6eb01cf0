/**
 * Canonical JSON for request fingerprints: object members sorted by name, no
 * whitespace. The output is the same as fast-json-stable-stringify's for every
 * value that one accepts, but past a few dozen levels it walks the value with an
 * explicit stack instead of recursion: a body parser without a depth bound
 * (`express.json()` has none) hands over a 10,000-level array in a few
 * kilobytes, and a recursive walk of it overflows the call stack and turns a
 * client's request into a 500.
 *
 * Rules (those of `JSON.stringify`, applied in sorted key order):
 * - a value with a `toJSON()` method is replaced by its result, once;
 * - members whose value is `undefined`, a function or a symbol are left out;
 *   in an array they become `null`;
 * - non-finite numbers become `null`;
 * - a cycle throws `TypeError` (arrays included, where the recursive version
 *   would overflow).
 */

interface ArrayFrame {
  readonly array: true;
  readonly node: readonly unknown[];
  /** Index of the next element to write. */
  i: number;
  out: string;
}

interface ObjectFrame {
  readonly array: false;
  readonly node: Readonly<Record<string, unknown>>;
  readonly keys: readonly string[];
  /** Index of the next key to write. */
  i: number;
  /** The key whose value is being written. */
  key: string;
  out: string;
}

type Frame = ArrayFrame | ObjectFrame;

/** Marks that `enter` pushed a frame rather than producing a finished text. */
const PUSHED = Symbol('pushed');

/**
 * Nesting levels written by plain recursion, which is the faster walk for the
 * bodies APIs receive; a deeper subtree is handed to the explicit stack.
 */
const MAX_RECURSION = 64;

/** The value `JSON.stringify` would write in place of `node`: its `toJSON()` result, once. */
function converted(node: unknown): unknown {
  return node !== null &&
    node !== undefined &&
    typeof (node as { toJSON?: unknown }).toJSON === 'function'
    ? (node as { toJSON(): unknown }).toJSON()
    : node;
}

/** Canonical JSON text of `value`; `undefined` when `value` has no JSON form (`undefined`, a function). */
export function canonicalJson(value: unknown): string | undefined {
  return write(converted(value), [], 0);
}

/** `node` is already converted; `ancestors` are the containers being written around it. */
function write(node: unknown, ancestors: object[], depth: number): string | undefined {
  if (node === undefined) return undefined;
  if (typeof node === 'number') return Number.isFinite(node) ? `${node}` : 'null';
  if (typeof node !== 'object') return JSON.stringify(node) as string | undefined;
  if (node === null) return 'null';
  if (depth >= MAX_RECURSION) return walk(node, ancestors);
  if (ancestors.includes(node)) throw new TypeError('Converting circular structure to JSON');
  ancestors.push(node);
  let out: string;
  if (Array.isArray(node)) {
    out = '[';
    for (let i = 0; i < node.length; i++) {
      if (i > 0) out += ',';
      out += write(converted(node[i]), ancestors, depth + 1) ?? 'null';
    }
    out += ']';
  } else {
    const record = node as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    out = '';
    for (const key of keys) {
      const text = write(converted(record[key]), ancestors, depth + 1);
      if (text === undefined) continue;
      if (out.length > 0) out += ',';
      out += `${JSON.stringify(key)}:${text}`;
    }
    out = `{${out}}`;
  }
  ancestors.pop();
  return out;
}

/** The same walk as `write`, with an explicit stack: depth costs heap, not call stack. */
function walk(root: object, ancestors: readonly object[]): string {
  const stack: Frame[] = [];
  const open = new Set<object>(ancestors);

  // Either the JSON text of a scalar (or `undefined`), or PUSHED for a container.
  function enter(node: unknown): string | undefined | typeof PUSHED {
    if (node === undefined) return undefined;
    if (typeof node === 'number') return Number.isFinite(node) ? `${node}` : 'null';
    if (typeof node !== 'object') return JSON.stringify(node) as string | undefined;
    if (node === null) return 'null';
    if (open.has(node)) throw new TypeError('Converting circular structure to JSON');
    open.add(node);
    if (Array.isArray(node)) stack.push({ array: true, node, i: 0, out: '[' });
    else {
      const record = node as Record<string, unknown>;
      stack.push({
        array: false,
        node: record,
        keys: Object.keys(record).sort(),
        i: 0,
        key: '',
        out: '{',
      });
    }
    return PUSHED;
  }

  let done = enter(root);
  for (;;) {
    const top = stack[stack.length - 1];
    if (top === undefined) return done as string;
    if (done !== PUSHED) {
      // `done` is the text of the member just finished: append it to its container.
      if (top.array) {
        if (top.i > 0) top.out += ',';
        top.out += done ?? 'null';
      } else if (done !== undefined) {
        if (top.out.length > 1) top.out += ',';
        top.out += `${JSON.stringify(top.key)}:${done}`;
      }
      top.i++;
    }
    if (top.array) {
      if (top.i < top.node.length) {
        done = enter(converted(top.node[top.i]));
        continue;
      }
    } else if (top.i < top.keys.length) {
      top.key = top.keys[top.i]!;
      done = enter(converted(top.node[top.key]));
      continue;
    }
    stack.pop();
    open.delete(top.node);
    done = top.out + (top.array ? ']' : '}');
  }
}
