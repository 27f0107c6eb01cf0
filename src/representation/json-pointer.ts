/**
 * JSON Pointers (RFC 6901): `""` names the whole document, `/a/0/b` the member
 * `b` of the first element of member `a`. In a reference token `~1` stands for
 * `/` and `~0` for `~` (§3); any other `~` is a syntax error.
 */
export { toJsonPointer as formatJsonPointer } from '../core/validate.js';

const BAD_ESCAPE = /~(?![01])/;

/**
 * The reference tokens of a JSON Pointer, unescaped; `undefined` when the text
 * is not a pointer (it neither is empty nor starts with `/`, or a `~` is not
 * followed by `0` or `1`). `~1` is decoded before `~0` (RFC 6901 §4), so that
 * `~01` is `~1` and never `/`.
 */
export function parseJsonPointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (pointer.charCodeAt(0) !== 0x2f) return undefined;
  const tokens = pointer.slice(1).split('/');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!token.includes('~')) continue;
    if (BAD_ESCAPE.test(token)) return undefined;
    tokens[i] = token.replaceAll('~1', '/').replaceAll('~0', '~');
  }
  return tokens;
}

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * A reference token read as an array index (RFC 6901 §4: `0`, or a digit 1-9
 * followed by digits; no sign, no leading zero, no fraction): the number, or
 * `undefined` for any other token, `-` included. An index too large to be
 * exact is returned as `Infinity`, past the end of every array.
 */
export function arrayIndex(token: string): number | undefined {
  if (!ARRAY_INDEX.test(token)) return undefined;
  const index = Number(token);
  return Number.isSafeInteger(index) ? index : Number.POSITIVE_INFINITY;
}
