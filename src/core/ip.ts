/**
 * Client IP resolution behind proxies.
 *
 * `X-Forwarded-For` is written by whoever sent the request, so it is believed
 * only as far as the operator says: by default not at all. The list is walked
 * from the right (the hop closest to us) and every address the `trustProxy`
 * setting trusts is skipped; the first untrusted one is the client. An entry
 * that is not an IP address (garbage, an obfuscated identifier) stops the walk,
 * so it can never become the client address or a rate-limit key.
 */
import { BlockList, isIP } from 'node:net';
import { invalidOption } from './errors.js';

/**
 * Which proxies to believe.
 * - `false` (default): the socket address is the client; `X-Forwarded-For` is ignored.
 * - `true`: trust every hop; the left-most valid address is the client. Only behind a proxy that overwrites the header.
 * - a number `n`: trust the `n` hops closest to the server.
 * - a list of addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`) or presets
 *   `loopback`, `linklocal`, `uniquelocal`.
 * - a function `(address, hopIndex) => boolean`.
 */
export type TrustProxy =
  | boolean
  | number
  | string
  | readonly string[]
  | ((address: string, hop: number) => boolean);

const PRESETS: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * Normalises one address: strips a port (`1.2.3.4:80`, `[::1]:80`) and an IPv6
 * zone, maps IPv4-mapped IPv6 (`::ffff:1.2.3.4`) to IPv4, lower-cases IPv6.
 * Returns `undefined` when what remains is not an IP address.
 */
export function normalizeIp(raw: string): string | undefined {
  let s = raw.trim();
  if (s.length === 0 || s.length > 64) return undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return undefined;
    s = s.slice(1, end);
  } else if (s.indexOf(':') > 0 && s.indexOf(':') === s.lastIndexOf(':') && s.includes('.')) {
    // exactly one colon and a dot: IPv4 with a port
    s = s.slice(0, s.indexOf(':'));
  }
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return s;
  if (family === 6) {
    s = s.toLowerCase();
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
    if (mapped?.[1] !== undefined && isIP(mapped[1]) === 4) return mapped[1];
    return s;
  }
  return undefined;
}

/** Compiles a `trustProxy` setting into a predicate, validating it once. */
export function compileTrust(trust: TrustProxy = false): (address: string, hop: number) => boolean {
  if (trust === false) return () => false;
  if (trust === true) return () => true;
  if (typeof trust === 'function') return trust;
  if (typeof trust === 'number') {
    if (!Number.isInteger(trust) || trust < 0) {
      invalidOption('core', 'trustProxy', 'a non-negative integer hop count', trust);
    }
    return (_address, hop) => hop < trust;
  }
  const items = typeof trust === 'string' ? trust.split(',').map((s) => s.trim()) : trust;
  if (!Array.isArray(items))
    invalidOption('core', 'trustProxy', 'a boolean, number, list or function', trust);
  const list = new BlockList();
  for (const item of items.flatMap((i) => PRESETS[i] ?? [i])) {
    // One `/` at most: `10.0.0.0/8/32` is no range, and must not be read as the wider `/8`.
    const [addr = '', bits, ...extra] = item.split('/');
    const ip = extra.length === 0 ? normalizeIp(addr) : undefined;
    if (ip === undefined)
      invalidOption('core', 'trustProxy', 'IP addresses, CIDR ranges or presets', item);
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) {
      list.addAddress(ip, type);
    } else {
      const prefix = Number(bits);
      const max = type === 'ipv6' ? 128 : 32;
      if (!/^\d{1,3}$/.test(bits) || prefix > max) {
        invalidOption('core', 'trustProxy', `a CIDR prefix length from 0 to ${max}`, item);
      }
      list.addSubnet(ip, prefix, type);
    }
  }
  return (address) => list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client address: the socket address, or, walking `X-Forwarded-For` from
 * the right, the first address not trusted by `trusted`.
 */
export function resolveClientIp(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  trusted: (address: string, hop: number) => boolean,
): string | undefined {
  const socket = socketAddress === undefined ? undefined : normalizeIp(socketAddress);
  if (socket === undefined || forwardedFor === undefined || !trusted(socket, 0)) return socket;
  const hops = forwardedFor.split(',');
  let client = socket;
  for (let i = hops.length - 1, hop = 1; i >= 0; i--, hop++) {
    const addr = normalizeIp(hops[i] ?? '');
    // Garbage ends the walk: the last good hop is the best we know.
    if (addr === undefined) return client;
    client = addr;
    if (!trusted(addr, hop)) return addr;
  }
  return client;
}

/**
 * Where the walk of {@link resolveClientIp} stops, as a position in
 * `X-Forwarded-For` counted from the right (0 for the rightmost entry), or -1
 * when it stops at the socket's peer itself (the rightmost entry is garbage).
 */
function clientPosition(
  forwardedFor: string | undefined,
  trusted: (address: string, hop: number) => boolean,
): number {
  if (forwardedFor === undefined) return 0;
  const hops = forwardedFor.split(',');
  let position = -1;
  for (let i = hops.length - 1, hop = 1; i >= 0; i--, hop++) {
    const addr = normalizeIp(hops[i] ?? '');
    if (addr === undefined) return position;
    position++;
    if (!trusted(addr, hop)) return position;
  }
  return position;
}

/**
 * The protocol the client used, from `X-Forwarded-Proto`, believed only when
 * the socket's peer is trusted. Each proxy appends the protocol of the
 * connection it received, as it appends that connection's peer to
 * `X-Forwarded-For`, so the two lists line up from the right: the value taken
 * is the one beside the client address the `X-Forwarded-For` walk stops at,
 * that is, the one the outermost trusted proxy added. A client's own
 * `X-Forwarded-Proto: https` in front of the list is never it. When the list
 * is shorter (a proxy that overwrites rather than appends), its leftmost value
 * is the one the trusted proxy wrote. Anything but `https` is `http`.
 */
export function resolveForwardedProto(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  forwardedProto: string | undefined,
  trusted: (address: string, hop: number) => boolean,
): 'http' | 'https' {
  const socket = socketAddress === undefined ? undefined : normalizeIp(socketAddress);
  if (socket === undefined || forwardedProto === undefined || !trusted(socket, 0)) return 'http';
  const values = forwardedProto.split(',');
  // With no X-Forwarded-For the peer speaks for itself: the rightmost value.
  const position = Math.max(0, clientPosition(forwardedFor, trusted));
  const index = Math.max(0, values.length - 1 - position);
  return values[index]?.trim().toLowerCase() === 'https' ? 'https' : 'http';
}
