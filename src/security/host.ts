/**
 * `Host` values (RFC 9112 §3.2, RFC 3986 §3.2.2): a host name, an IPv4
 * address or a bracketed IPv6 literal, with an optional port. Kept strict: a
 * name is letters, digits, `-`, `_` and dots between non-empty labels, which
 * is every name DNS resolves; percent-encoded or sub-delimiter names, valid
 * in a URI, name nothing a client can reach and are refused.
 */
import { isIP } from 'node:net';

/** A parsed `Host` value: the host lower-cased, and the port when one was given. */
export interface HostAndPort {
  /** Lower case; an IPv6 literal keeps its brackets (`[::1]`). */
  readonly host: string;
  readonly port: number | undefined;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Whether `name` (lower case, no port) is a DNS-style host name or an IPv4 address. */
export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.endsWith('.') ? name.slice(0, -1).split('.') : name.split('.');
  return labels.every((label) => LABEL.test(label));
}

/**
 * Parses a `Host` value; `undefined` when it is not `host[:port]`. The empty
 * value (allowed by RFC 9112 §3.2 for a target without an authority) is
 * `undefined` too: it names no host to compare or redirect to.
 */
export function parseHost(value: string): HostAndPort | undefined {
  if (value.length === 0 || value.length > 261) return undefined;
  let host: string;
  let rest: string;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const end = value.indexOf(']');
    if (end < 0) return undefined;
    const literal = value.slice(1, end);
    if (isIP(literal) !== 6) return undefined;
    host = `[${literal.toLowerCase()}]`;
    rest = value.slice(end + 1);
  } else {
    const colon = value.indexOf(':');
    host = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
    rest = colon < 0 ? '' : value.slice(colon);
    if (!isHostName(host)) return undefined;
  }
  if (rest === '') return { host, port: undefined };
  // RFC 3986 §3.2.3: the port may be empty ("host:"), which means no port.
  if (!/^:\d{0,5}$/.test(rest)) return undefined;
  if (rest.length === 1) return { host, port: undefined };
  const port = Number(rest.slice(1));
  if (port > 65535) return undefined;
  return { host, port };
}
