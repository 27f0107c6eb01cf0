/**
 * Who a request counts against. A key function returns the client's key for
 * one policy, or `undefined` when the policy does not apply to this request
 * (no API key sent, no principal yet).
 */
import { sha256 } from '../core/hash.js';
import { isIP } from 'node:net';
import { type Context, principalId } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';

/** SHA-256 in base64url, one-shot where Node has it (the core's one implementation). */
export { sha256 };

/** Returns the key a request counts against, or `undefined` to skip the policy. */
export type KeyFunction = (ctx: Context) => string | undefined;

function expandIpv6(ip: string): number[] | undefined {
  const [head = '', tail, extra] = ip.split('::');
  if (extra !== undefined) return undefined;
  const parse = (part: string) =>
    part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  const groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** Rewrites an embedded IPv4 tail (`::1.2.3.4`) as two hex groups (`::102:304`). */
function ipv4TailToHex(ip: string): string {
  const m = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (m === null) return ip;
  const [a = 0, b = 0, c = 0, d = 0] = m.slice(2).map(Number);
  return `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/**
 * The network a client address belongs to: an IPv6 address is cut to its
 * first `ipv6Prefix` bits (`2001:db8:1:2::/64`), since one subscriber is
 * usually handed a whole /64 and could rotate through it; an IPv4 address to
 * `ipv4Prefix` bits (default: the address itself). Addresses come from the
 * adapter, already normalised (no port, IPv4-mapped IPv6 unwrapped).
 */
export function ipNetwork(ip: string, ipv6Prefix = 64, ipv4Prefix = 32): string | undefined {
  checkPrefix('ipNetwork', 'ipv6Prefix', ipv6Prefix, 128);
  checkPrefix('ipNetwork', 'ipv4Prefix', ipv4Prefix, 32);
  return network(ip, ipv6Prefix, ipv4Prefix);
}

/**
 * A prefix length must be a whole number of bits the address has: NaN, a
 * fraction or 200 would silently key by something else (the whole address,
 * or a key ending in `/NaN`) instead of the network that was meant.
 */
function checkPrefix(where: string, name: string, bits: unknown, max: number): void {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 0 || bits > max) {
    invalidOption('rateLimit', `${where}: ${name}`, `an integer from 0 to ${max}`, bits);
  }
}

/** {@link ipNetwork} with prefixes already checked. */
function network(ip: string, ipv6Prefix: number, ipv4Prefix: number): string | undefined {
  const family = isIP(ip);
  if (family === 4) {
    if (ipv4Prefix >= 32) return ip;
    const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const mask = ipv4Prefix === 0 ? 0 : (0xffffffff << (32 - ipv4Prefix)) >>> 0;
    const net = (n & mask) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${ipv4Prefix}`;
  }
  if (family === 6) {
    const groups = expandIpv6(ipv4TailToHex(ip));
    if (groups === undefined) return undefined;
    // An IPv4 address in IPv6 clothing (::ffff:a.b.c.d mapped, ::a.b.c.d compatible)
    // is that IPv4 client, not a member of the ::/64 every such address shares.
    const [g0, g1, g2, g3, g4, g5 = 0, g6 = 0, g7 = 0] = groups;
    if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0) {
      const compatible = g5 === 0 && (g6 !== 0 || g7 > 1);
      if (g5 === 0xffff || compatible) {
        const v4 = `${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`;
        return network(v4, ipv6Prefix, ipv4Prefix);
      }
    }
    // Link-local addresses (fe80::/10) all share the prefix fe80::/64, on
    // every link: grouped by /64 every link-local client would share one
    // counter. Their interface identifier is the only part that tells them apart.
    const linkLocal = ((g0 ?? 0) & 0xffc0) === 0xfe80;
    if (ipv6Prefix >= 128 || linkLocal) return groups.map((g) => g.toString(16)).join(':');
    const kept = groups.map((g, i) => {
      const bitsBefore = i * 16;
      if (bitsBefore + 16 <= ipv6Prefix) return g;
      if (bitsBefore >= ipv6Prefix) return 0;
      const keep = ipv6Prefix - bitsBefore;
      return g & ((0xffff << (16 - keep)) & 0xffff);
    });
    return `${kept.map((g) => g.toString(16)).join(':')}/${ipv6Prefix}`;
  }
  return undefined;
}

/** How client addresses are grouped into one counter: IPv6 by prefix (default /64), IPv4 whole. */
export interface IpKeyOptions {
  /** Bits of an IPv6 address that identify one client. @default 64 */
  ipv6Prefix?: number;
  /** Bits of an IPv4 address that identify one client. @default 32 */
  ipv4Prefix?: number;
}

/**
 * Keys by client IP (as resolved by the adapter's `trustProxy` setting), IPv6
 * grouped by `/64`. A request without a known address is skipped rather than
 * lumped with every other such request under one key.
 */
export function byIp(options: IpKeyOptions = {}): KeyFunction {
  checkOptions('rateLimit: byIp()', options, ['ipv6Prefix', 'ipv4Prefix']);
  const { ipv6Prefix = 64, ipv4Prefix = 32 } = options;
  checkPrefix('byIp()', 'ipv6Prefix', ipv6Prefix, 128);
  checkPrefix('byIp()', 'ipv4Prefix', ipv4Prefix, 32);
  return (ctx) => {
    const ip = ctx.request.ip;
    return ip === undefined ? undefined : network(ip, ipv6Prefix, ipv4Prefix);
  };
}

/** Keys by the authenticated principal (`ctx.state.principal.id`); skips anonymous requests. */
export function byPrincipal(): KeyFunction {
  return (ctx) => principalId(ctx.state);
}

/**
 * Keys by an API key sent in a header (default `X-API-Key`), hashed so that
 * the secret itself never reaches the store. Skips requests without one.
 * Mount after authentication to count only keys that exist; before it, any
 * string a client invents gets its own counter.
 */
export function byHeader(name = 'x-api-key'): KeyFunction {
  const header = name.toLowerCase();
  return (ctx) => {
    const value = ctx.request.header(header);
    if (value === undefined || value.length === 0) return undefined;
    return sha256(value).slice(0, 22);
  };
}

/** Keys by principal when there is one, else by client IP. */
export function byPrincipalOrIp(options: IpKeyOptions = {}): KeyFunction {
  const principal = byPrincipal();
  const ip = byIp(options);
  return (ctx) => {
    const p = principal(ctx);
    if (p !== undefined) return `principal:${p}`;
    const i = ip(ctx);
    return i === undefined ? undefined : `ip:${i}`;
  };
}
