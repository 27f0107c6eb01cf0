/**
 * Parsing the `Idempotency-Key` header.
 *
 * draft-ietf-httpapi-idempotency-key-header §2.1 defines the field as an
 * RFC 8941 Item whose value is an sf-string: `"8e03978e-40d5-43e8-bc93-6894a57f9324"`.
 * An Item may carry parameters (RFC 8941 §3.1.2): `"abc";foo=1` is the key
 * `abc`; the draft defines none, so they are parsed by the grammar and ignored.
 * Most clients send the bare value instead, so a bare token is accepted too.
 * A List (`"a", "b"`, or the same header sent twice) and an Inner List
 * (`("a")`) are refused: a request has one key.
 */

/** Longest key accepted, in characters. */
export const MAX_KEY_LENGTH = 255;

// RFC 8941 §3.3.3: sf-string = DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE,
// with unescaped = %x20-21 / %x23-5B / %x5D-7E.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"/;
// RFC 8941 §3.3.4: sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" ). Keys often
// start with a digit (UUIDs), so a leading digit is accepted as well.
const BARE_TOKEN = /^[A-Za-z0-9*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/;
// RFC 8941 §3.1.2: parameters = *( ";" *SP parameter ), parameter = param-key [ "=" param-value ],
// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ), param-value = bare-item:
// an integer (§3.3.1), a decimal (§3.3.2), an sf-string, an sf-token, a byte sequence (§3.3.5)
// or a boolean (§3.3.6).
const PARAMETER =
  /^; *[a-z*][a-z0-9_\-.*]*(?:=(?:-?\d{1,12}\.\d{1,3}|-?\d{1,15}|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*|:[A-Za-z0-9+/=]*:|\?[01]))?/;

export type KeyParseResult =
  | { ok: true; key: string }
  | { ok: false; reason: 'missing' | 'invalid' | 'too-long'; detail: string };

/**
 * Parses the header's value; `undefined` when the header is absent. `field` is
 * the header's name as configured, used in the details a client reads.
 */
export function parseIdempotencyKey(
  value: string | undefined,
  maxLength = MAX_KEY_LENGTH,
  field = 'Idempotency-Key',
): KeyParseResult {
  if (value === undefined)
    return { ok: false, reason: 'missing', detail: `The ${field} header is required.` };
  // RFC 8941 §4.2: leading and trailing spaces are discarded (HTTP already strips OWS).
  const raw = value.trim();
  let key: string | undefined;
  let rest = '';
  const quoted = SF_STRING.exec(raw);
  if (quoted) {
    key = quoted[1]!.replace(/\\(["\\])/g, '$1');
    rest = raw.slice(quoted[0].length);
  } else {
    const token = BARE_TOKEN.exec(raw);
    if (token) {
      key = token[0];
      rest = raw.slice(token[0].length);
    }
  }
  // What follows the bare item may only be its parameters (§4.2.3.2), then nothing.
  while (key !== undefined && rest.length > 0) {
    const parameter = PARAMETER.exec(rest);
    if (parameter === null) key = undefined;
    else rest = rest.slice(parameter[0].length);
  }
  if (key === undefined) {
    return {
      ok: false,
      reason: 'invalid',
      detail: `${field} must be one quoted string ("...") or one token of letters, digits and !#$%&'*+-.^_\`|~:/ characters, optionally followed by ;parameters.`,
    };
  }
  if (key.length === 0)
    return { ok: false, reason: 'invalid', detail: `${field} must not be empty.` };
  if (key.length > maxLength) {
    return {
      ok: false,
      reason: 'too-long',
      detail: `${field} must be at most ${maxLength} characters.`,
    };
  }
  return { ok: true, key };
}
