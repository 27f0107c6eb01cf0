/**
 * Parsing the `Idempotency-Key` header.
 *
 * draft-ietf-httpapi-idempotency-key-header §2.1 defines the field as an
 * RFC 8941 Item whose value is an sf-string (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`).
 * Most clients send the bare value instead, so a bare sf-token is accepted too.
 */

/** Longest key accepted, in characters. */
export const MAX_KEY_LENGTH = 255;

// RFC 8941 §3.3.3: sf-string is DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE,
// with unescaped = %x20-21 / %x23-5B / %x5D-7E.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;
// RFC 8941 §3.3.4: sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" ). Keys often
// start with a digit (UUIDs), so a leading digit is accepted as well.
const BARE_TOKEN = /^[A-Za-z0-9*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;

export type KeyParseResult =
  | { ok: true; key: string }
  | { ok: false; reason: 'missing' | 'invalid' | 'too-long'; detail: string };

/** Parses the header's value; `undefined` when the header is absent. */
export function parseIdempotencyKey(
  value: string | undefined,
  maxLength = MAX_KEY_LENGTH,
): KeyParseResult {
  if (value === undefined)
    return { ok: false, reason: 'missing', detail: 'The Idempotency-Key header is required.' };
  const raw = value.trim();
  let key: string;
  const quoted = SF_STRING.exec(raw);
  if (quoted) key = quoted[1]!.replace(/\\(["\\])/g, '$1');
  else if (BARE_TOKEN.test(raw)) key = raw;
  else {
    return {
      ok: false,
      reason: 'invalid',
      detail:
        'Idempotency-Key must be one quoted string ("...") or one token of letters, digits and !#$%&\'*+-.^_`|~:/ characters.',
    };
  }
  if (key.length === 0)
    return { ok: false, reason: 'invalid', detail: 'Idempotency-Key must not be empty.' };
  if (key.length > maxLength) {
    return {
      ok: false,
      reason: 'too-long',
      detail: `Idempotency-Key must be at most ${maxLength} characters.`,
    };
  }
  return { ok: true, key };
}
