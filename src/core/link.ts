/**
 * The `Link` header field of RFC 8288 (Web Linking): written by pagination
 * (`rel="next"`, `prev`, `first`) and versioning (`rel="deprecation"`,
 * `sunset`, `successor-version`), read back by tests and clients.
 *
 * ```
 * Link       = #link-value                                   ; §3
 * link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
 * link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
 * ```
 *
 * @module
 */

/** One link: a target, its relation types and its target attributes. */
export interface WebLink {
  /**
   * The target, a URI reference (RFC 3986 §4.1), relative ones resolved
   * against the request's URL (RFC 8288 §3.2). Characters a URI cannot hold
   * (spaces, `<`, `>`, `"`, non-ASCII) are percent-encoded when written.
   */
  href: string;
  /**
   * One relation type or several (RFC 8288 §3.3): registered ones in lower
   * case (`next`, `prev`, `deprecation`), or extension relation types as
   * absolute URIs.
   */
  rel: string | readonly string[];
  /** The target's media type hint (§3.4.1), e.g. `text/html`. */
  type?: string;
  /**
   * A human-readable label (§3.4.1). Non-ASCII labels are written as `title*`
   * in the RFC 8187 encoding, which §3.4.1 asks for.
   */
  title?: string;
  /** The target's language hint (§3.4.1), e.g. `en`. */
  hreflang?: string;
}

/** A link as `parseLinkHeader` reads it back. */
export interface ParsedWebLink {
  href: string;
  /** Relation types, lower-cased (they compare case-insensitively, §2.1.1). */
  rel: string[];
  /** Every other parameter, by lower-cased name; the first occurrence wins (§3). */
  params: Record<string, string>;
}

const REGISTERED_REL = /^[a-z][a-z0-9.-]*$/;
const EXTENSION_REL = /^[A-Za-z][A-Za-z0-9+.-]*:[!#-;=?-[\]_a-z~%]+$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// RFC 3986 §2: unreserved, reserved and `%` (kept when it starts a valid escape).
const URI_CHAR = /[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]/;
const utf8 = new TextEncoder();

function fail(message: string): never {
  throw new TypeError(`restwell/link: ${message}`);
}

/** Percent-encodes what a URI reference cannot hold, keeping valid escapes. */
export function toUriReference(href: string): string {
  let out = '';
  for (let i = 0; i < href.length; i++) {
    const ch = href[i] as string;
    if (ch === '%' && /^[0-9A-Fa-f]{2}$/.test(href.slice(i + 1, i + 3))) out += ch;
    else if (URI_CHAR.test(ch)) out += ch;
    else {
      const cp = href.codePointAt(i) as number;
      const char = String.fromCodePoint(cp);
      if (char.length === 2) i++;
      // A lone surrogate has no UTF-8 form: write U+FFFD's, as a WHATWG URL would.
      const encoded = cp >= 0xd800 && cp <= 0xdfff ? '\uFFFD' : char;
      for (const b of utf8.encode(encoded))
        out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

function quoted(value: string): string {
  // RFC 9110 §5.6.4: inside a quoted-string, `"` and `\` are escaped.
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function isVisibleAscii(value: string): boolean {
  return /^[\t\x20-\x7e]*$/.test(value);
}

/** RFC 8187 §3.2: `UTF-8''` then the value's UTF-8 bytes, percent-encoded except attr-char. */
function extValue(value: string): string {
  let out = "UTF-8''";
  for (const b of utf8.encode(value)) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9!#$&+.^_`|~-]/.test(ch)
      ? ch
      : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function relTypes(rel: WebLink['rel']): string[] {
  const list = typeof rel === 'string' ? rel.split(' ').filter((r) => r !== '') : [...rel];
  if (list.length === 0) fail('a link needs at least one relation type.');
  for (const r of list) {
    if (typeof r !== 'string' || !(REGISTERED_REL.test(r) || EXTENSION_REL.test(r))) {
      fail(
        `rel ${JSON.stringify(String(r))} is neither a registered relation type (lower case) nor an absolute URI (RFC 8288 §2.1).`,
      );
    }
  }
  return list;
}

/** One link-value: `<href>; rel="next"; title="..."`. */
export function formatLink(link: WebLink): string {
  if (link === null || typeof link !== 'object') fail('a link must be an object.');
  if (typeof link.href !== 'string') fail('a link needs an href string.');
  let out = `<${toUriReference(link.href)}>; rel=${quoted(relTypes(link.rel).join(' '))}`;
  if (link.type !== undefined) {
    if (
      typeof link.type !== 'string' ||
      !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(link.type)
    ) {
      fail('type must be a media type (type/subtype).');
    }
    out += `; type=${quoted(link.type)}`;
  }
  if (link.hreflang !== undefined) {
    if (
      typeof link.hreflang !== 'string' ||
      !/^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(link.hreflang)
    ) {
      fail('hreflang must be a language tag (RFC 5646), e.g. en or pt-BR.');
    }
    out += `; hreflang=${link.hreflang}`;
  }
  if (link.title !== undefined) {
    if (typeof link.title !== 'string') fail('title must be a string.');
    out += isVisibleAscii(link.title)
      ? `; title=${quoted(link.title)}`
      : `; title*=${extValue(link.title)}`;
  }
  return out;
}

/** A whole `Link` field value: the links' values joined by `, ` (§3). */
export function formatLinks(links: readonly WebLink[]): string {
  return links.map(formatLink).join(', ');
}

/** Longest `Link` value `parseLinkHeader` reads; longer ones give `[]`. */
const MAX_PARSE_LENGTH = 64 * 1024;

/**
 * Reads a `Link` field value into its links, leniently: a link-value that
 * does not parse is skipped, never thrown on, and empty parameters (a
 * trailing `;`) are passed over. Commas and semicolons inside
 * `<...>` and quoted strings do not split. Over 64 KiB, gives `[]`.
 */
export function parseLinkHeader(value: string | undefined): ParsedWebLink[] {
  if (value === undefined || value.length > MAX_PARSE_LENGTH) return [];
  const links: ParsedWebLink[] = [];
  let i = 0;
  const n = value.length;
  const skipWs = () => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  while (i < n) {
    skipWs();
    if (value[i] === ',') {
      i++;
      continue;
    }
    if (value[i] !== '<') {
      // Not a link-value: skip to the next top-level comma.
      i = nextComma(value, i);
      continue;
    }
    const close = value.indexOf('>', i + 1);
    if (close === -1) break;
    const href = value.slice(i + 1, close);
    i = close + 1;
    const params: Record<string, string> = Object.create(null);
    let ok = true;
    for (;;) {
      skipWs();
      if (i >= n || value[i] === ',') break;
      if (value[i] !== ';') {
        ok = false;
        i = nextComma(value, i);
        break;
      }
      i++;
      skipWs();
      // An empty parameter (`;;`, or `;` before a comma or the end) holds
      // nothing; Appendix B.3 reads past it, as servers write a trailing `;`.
      if (i >= n || value[i] === ';' || value[i] === ',') continue;
      let name = '';
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(value[i] as string)) name += value[i++];
      if (name === '') {
        ok = false;
        i = nextComma(value, i);
        break;
      }
      skipWs();
      let paramValue = '';
      if (value[i] === '=') {
        i++;
        skipWs();
        if (value[i] === '"') {
          i++;
          while (i < n && value[i] !== '"') {
            if (value[i] === '\\' && i + 1 < n) i++;
            paramValue += value[i++];
          }
          i++;
        } else {
          while (i < n && TOKEN.test(value[i] as string)) paramValue += value[i++];
        }
      }
      const key = name.toLowerCase();
      if (!(key in params)) params[key] = paramValue;
    }
    if (!ok) continue;
    const rel = (params.rel ?? '')
      .split(/[ \t]+/)
      .filter((r) => r !== '')
      .map((r) => r.toLowerCase());
    delete params.rel;
    links.push({ href, rel, params: { ...params } });
  }
  return links;
}

function nextComma(value: string, from: number): number {
  let i = from;
  let inQuotes = false;
  let inAngle = false;
  for (; i < value.length; i++) {
    const ch = value[i];
    if (inQuotes) {
      if (ch === '\\') i++;
      else if (ch === '"') inQuotes = false;
    } else if (inAngle) {
      if (ch === '>') inAngle = false;
    } else if (ch === '"') inQuotes = true;
    else if (ch === '<') inAngle = true;
    else if (ch === ',') return i + 1;
  }
  return i;
}
