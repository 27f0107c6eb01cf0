/**
 * The SSRF guard of webhook delivery. An endpoint URL is chosen by an API
 * client, so without a guard a delivery is a request the client makes from
 * inside the sender's network: to the cloud's metadata service
 * (169.254.169.254, which hands out credentials), to an admin port on
 * loopback, to a database on a private address.
 *
 * The guard refuses every address that is not public unicast, checked twice:
 * at registration (`check()`: the URL's form and every address its host
 * resolves to) and at connect time (`lookup`, given to `http.request`), so
 * that a name that resolved to a public address at registration and to
 * 127.0.0.1 since (DNS rebinding) is refused at the moment of connecting, and
 * the address connected to is the one that was checked.
 *
 * Addresses are classified by their bytes, never by their spelling: IPv4 in
 * IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is
 * classified by the IPv4 address inside; the deprecated IPv4-compatible
 * `::a.b.c.d` and SIIT `::ffff:0:a.b.c.d` likewise, except that a public one
 * is reserved; IPv6 outside the global unicast block 2000::/3 is reserved. The odd IPv4
 * spellings (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`) are
 * normalised to dotted decimal by the WHATWG URL parser before the guard sees
 * them.
 */
import { promises as dns } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { checkOptions, invalidOption } from '../../core/errors.js';
import { normalizeIp } from '../../core/ip.js';
import { WebhookUrlRefusedError } from './errors.js';

const MODULE = 'webhooks';
const MAX_URL_LENGTH = 2048;
const DEFAULT_RESOLVE_TIMEOUT_MS = 5000;

/** What the guard lets through besides public addresses. */
export interface SsrfPolicy {
  /** Allow loopback (127.0.0.0/8, ::1): for development and tests, never in production. @default false */
  allowLoopback?: boolean;
  /**
   * Allow private addresses (10/8, 172.16/12, 192.168/16, fc00::/7, and the
   * shared 100.64/10), for receivers inside the sender's own network. Cloud
   * metadata addresses stay refused. @default false
   */
  allowPrivate?: boolean;
  /**
   * Addresses or CIDR ranges always allowed, whatever their class (`10.1.2.0/24`,
   * `fd12:3456::/32`, `192.0.2.10`). The longest prefix among `allow` and
   * `deny` decides; on a tie `deny` wins.
   */
  allow?: readonly string[];
  /** Addresses or CIDR ranges refused besides the built-in ones, even when public. */
  deny?: readonly string[];
  /**
   * Resolves a host name to its addresses. @default `dns.lookup(host, { all: true })`,
   * the system resolver (`/etc/hosts` included) that `http.request` uses
   */
  resolve?: (host: string) => Promise<string[]>;
  /** How long `check()` waits for the resolver, in milliseconds. @default 5000 */
  resolveTimeoutMs?: number;
}

/**
 * The kind of an address:
 * - `public`: global unicast, the only kind allowed by default;
 * - `loopback`: 127.0.0.0/8, ::1;
 * - `private`: 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 (site-local), 64:ff9b:1::/48 (local NAT64);
 * - `link-local`: 169.254.0.0/16, fe80::/10;
 * - `metadata`: cloud instance metadata, 169.254.169.254, 169.254.170.2 (AWS
 *   ECS), 100.100.100.200 (Alibaba), fd00:ec2::254 (AWS IPv6);
 * - `unspecified`: 0.0.0.0/8 ("this network", which Linux connects to the
 *   local host), ::;
 * - `multicast`: 224.0.0.0/4, ff00::/8;
 * - `reserved`: documentation, benchmarking, 240.0.0.0/4 with the broadcast
 *   address, IETF protocol assignments (192.0.0.0/24, 2001::/23 with Teredo),
 *   discard (100::/64), and IPv6 outside 2000::/3;
 * - `shared`: 100.64.0.0/10, carrier-grade NAT (RFC 6598).
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'reserved'
  | 'shared';

/** The guard; see {@link ssrfGuard}. */
export interface SsrfGuard {
  /**
   * At registration: parses the URL (http or https, no user name or
   * password, any port), resolves its host and refuses it when any address it
   * resolves to is refused. Throws {@link WebhookUrlRefusedError} (a 422
   * problem, code `webhook-url-refused`, with the `reason`).
   */
  check(url: string): Promise<void>;
  /**
   * A `lookup` for `http.request` / `https.request` (and `net.connect`): it
   * resolves the host and fails with a {@link WebhookUrlRefusedError} when any
   * address is refused, so the address connected to is one that was checked.
   * Node does not call `lookup` for a literal IP host: check those with
   * {@link SsrfGuard.parseUrl} (as `sendAttempt` does).
   */
  readonly lookup: LookupFunction;
  /**
   * What can be checked without DNS: the URL's form, and the address when
   * the host is a literal IP. Returns the parsed URL; throws
   * {@link WebhookUrlRefusedError}.
   */
  parseUrl(url: string): URL;
  /** Throws {@link WebhookUrlRefusedError} when the policy refuses `address` (an IP address). */
  checkAddress(address: string): void;
}

type Bytes = readonly number[];

/** 4 bytes for IPv4, 16 for IPv6; `undefined` when `address` is not an IP address. */
function addressBytes(address: string): Bytes | undefined {
  const ip = normalizeIp(address);
  if (ip === undefined) return undefined;
  if (isIP(ip) === 4) return ip.split('.').map(Number);
  return ipv6Bytes(ip);
}

/** The 16 bytes of a valid IPv6 address (as `isIP` accepts it, zone removed). */
function ipv6Bytes(ip: string): number[] {
  let text = ip;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // a dotted IPv4 tail: the last 32 bits
    tail = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const hextets = (part: string) =>
    part === '' ? [] : part.split(':').map((h) => parseInt(h, 16));
  const left = hextets(head);
  const right = rest === undefined ? [] : hextets(rest);
  const words = [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function inPrefix(bytes: Bytes, prefix: Bytes, bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8]! ^ prefix[i / 8]!) & mask) !== 0) return false;
  }
  return true;
}

function classifyV4(b: Bytes): AddressClass {
  const [a = 0, x = 0, y = 0, z = 0] = b;
  if (a === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 10) return 'private';
  if (a === 169 && x === 254) {
    if ((y === 169 && z === 254) || (y === 170 && z === 2)) return 'metadata';
    return 'link-local';
  }
  if (a === 100 && x === 100 && y === 100 && z === 200) return 'metadata';
  if (a === 100 && (x & 0xc0) === 64) return 'shared';
  if (a === 172 && (x & 0xf0) === 16) return 'private';
  if (a === 192 && x === 168) return 'private';
  if (a === 192 && x === 0 && (y === 0 || y === 2)) return 'reserved';
  if (a === 192 && x === 88 && y === 99) return 'reserved';
  if (a === 198 && (x & 0xfe) === 18) return 'reserved';
  if (a === 198 && x === 51 && y === 100) return 'reserved';
  if (a === 203 && x === 0 && y === 113) return 'reserved';
  if ((a & 0xf0) === 224) return 'multicast';
  if ((a & 0xf0) === 240) return 'reserved';
  return 'public';
}

const V6 = (text: string) => ipv6Bytes(text);
const MAPPED = V6('::ffff:0:0');
const SIIT = V6('::ffff:0:0:0');
const NAT64 = V6('64:ff9b::');
const NAT64_LOCAL = V6('64:ff9b:1::');
const SIX_TO_FOUR = V6('2002::');
const IETF = V6('2001::');
const DOCUMENTATION = V6('2001:db8::');
const DOCUMENTATION_2 = V6('3fff::');
const DISCARD = V6('100::');
const EC2_METADATA = V6('fd00:ec2::254');
const UNIQUE_LOCAL = V6('fc00::');
const LINK_LOCAL = V6('fe80::');
const SITE_LOCAL = V6('fec0::');
const MULTICAST = V6('ff00::');
const GLOBAL_UNICAST = V6('2000::');
const COMPATIBLE = V6('::');

/** The IPv4 address an IPv6 address carries and stands for, if any. */
function embeddedV4(b: Bytes): Bytes | undefined {
  // mapped: the socket connects to the IPv4 address itself
  if (inPrefix(b, MAPPED, 96)) return b.slice(12);
  // translated by NAT64, or tunnelled by 6to4, to the IPv4 address
  if (inPrefix(b, NAT64, 96)) return b.slice(12);
  if (inPrefix(b, SIX_TO_FOUR, 16)) return b.slice(2, 6);
  return undefined;
}

/**
 * The IPv4 address inside a deprecated form (IPv4-compatible ::/96, RFC 4291
 * §2.5.5.1; SIIT ::ffff:0:0/96): classified as it, so that a stack that
 * still translates them reaches nothing it must not, and refused as
 * reserved when it is public, since no receiver is reached that way.
 */
function deprecatedV4(b: Bytes): Bytes | undefined {
  return inPrefix(b, COMPATIBLE, 96) || inPrefix(b, SIIT, 96) ? b.slice(12) : undefined;
}

function classifyV6(b: Bytes): AddressClass {
  if (b.every((x) => x === 0)) return 'unspecified';
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback';
  const inner = embeddedV4(b);
  if (inner !== undefined) return classifyV4(inner);
  const old = deprecatedV4(b);
  if (old !== undefined) {
    const kind = classifyV4(old);
    return kind === 'public' ? 'reserved' : kind;
  }
  if (inPrefix(b, NAT64_LOCAL, 48)) return 'private';
  if (b.every((x, i) => x === EC2_METADATA[i])) return 'metadata';
  if (inPrefix(b, UNIQUE_LOCAL, 7)) return 'private';
  if (inPrefix(b, LINK_LOCAL, 10)) return 'link-local';
  if (inPrefix(b, SITE_LOCAL, 10)) return 'private';
  if (inPrefix(b, MULTICAST, 8)) return 'multicast';
  if (inPrefix(b, DISCARD, 64)) return 'reserved';
  if (inPrefix(b, IETF, 23) || inPrefix(b, DOCUMENTATION, 32) || inPrefix(b, DOCUMENTATION_2, 20))
    return 'reserved';
  if (!inPrefix(b, GLOBAL_UNICAST, 3)) return 'reserved';
  return 'public';
}

/**
 * The kind of an IP address (IPv4 or IPv6, in any spelling `net.isIP`
 * accepts, brackets and zone allowed); see {@link AddressClass}. Throws a
 * TypeError when `address` is not an IP address.
 *
 * @example
 * ```ts
 * classifyAddress('169.254.169.254');     // 'metadata'
 * classifyAddress('::ffff:7f00:1');       // 'loopback' (127.0.0.1, mapped)
 * classifyAddress('64:ff9b::a00:1');      // 'private' (10.0.0.1 behind NAT64)
 * ```
 */
export function classifyAddress(address: string): AddressClass {
  const bytes = typeof address === 'string' ? addressBytes(address) : undefined;
  if (bytes === undefined) {
    throw new TypeError(`restwell/${MODULE}: classifyAddress expects an IP address.`);
  }
  return bytes.length === 4 ? classifyV4(bytes) : classifyV6(bytes);
}

/** The address compared against `allow`/`deny`: IPv4 for an IPv4-mapped IPv6 address. */
function matchBytes(bytes: Bytes): Bytes {
  return bytes.length === 16 && inPrefix(bytes, MAPPED, 96) ? bytes.slice(12) : bytes;
}

interface Cidr {
  bytes: Bytes;
  bits: number;
}

function parseCidrs(option: string, value: unknown): Cidr[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    invalidOption(MODULE, option, 'an array of IP addresses or CIDR ranges', value);
  return value.map((item: unknown, i) => {
    const name = `${option}[${i}]`;
    if (typeof item !== 'string') invalidOption(MODULE, name, 'an IP address or CIDR range', item);
    const [address = '', bitsText, extra] = item.split('/');
    const bytes = extra === undefined ? addressBytes(address) : undefined;
    if (bytes === undefined || address.includes('[')) {
      invalidOption(MODULE, name, 'an IP address or CIDR range (10.0.0.0/8, fd00::/8)', item);
    }
    // a mapped range (::ffff:10.0.0.0/104) is the IPv4 range it maps;
    // normalizeIp has already turned its address into IPv4
    const mapped = bytes.length === 4 && address.includes(':');
    const max = mapped ? 128 : bytes.length * 8;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (
      bitsText !== undefined &&
      (!/^\d{1,3}$/.test(bitsText) || bits > max || (mapped && bits < 96))
    ) {
      invalidOption(MODULE, name, `a CIDR prefix length from ${mapped ? 96 : 0} to ${max}`, item);
    }
    if (mapped) return { bytes, bits: bits - 96 };
    if (bytes.length === 16 && bits >= 96 && inPrefix(bytes, MAPPED, 96)) {
      return { bytes: bytes.slice(12), bits: bits - 96 };
    }
    return { bytes, bits };
  });
}

/** The longest prefix in `list` containing `bytes`, or -1. */
function longestMatch(list: readonly Cidr[], bytes: Bytes): number {
  let best = -1;
  for (const cidr of list) {
    if (
      cidr.bytes.length === bytes.length &&
      cidr.bits > best &&
      inPrefix(bytes, cidr.bytes, cidr.bits)
    )
      best = cidr.bits;
  }
  return best;
}

function checkBoolean(option: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') invalidOption(MODULE, option, 'a boolean', value);
  return value;
}

async function systemResolve(host: string): Promise<string[]> {
  const answers = await dns.lookup(host, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

/**
 * The SSRF guard: refuses endpoint URLs whose host is, or resolves to, an
 * address that is not public, at registration (`check`) and at connect time
 * (`lookup`). Options are checked here.
 *
 * @example
 * ```ts
 * const guard = ssrfGuard({ allowLoopback: process.env.NODE_ENV === 'development' });
 * await guard.check(url);                       // at registration: 422 when refused
 * await sendAttempt({ url, body, headers, guard }); // at connect time, again
 * ```
 */
export function ssrfGuard(policy: SsrfPolicy = {}): SsrfGuard {
  checkOptions(
    MODULE,
    policy,
    ['allowLoopback', 'allowPrivate', 'allow', 'deny', 'resolve', 'resolveTimeoutMs'],
    {
      allowLocalhost:
        'Use "allowLoopback" (localhost is refused by its addresses, 127.0.0.0/8 and ::1).',
      allowlist: 'Use "allow", a list of addresses or CIDR ranges.',
      denylist: 'Use "deny", a list of addresses or CIDR ranges.',
    },
  );
  const allowLoopback = checkBoolean('allowLoopback', policy.allowLoopback);
  const allowPrivate = checkBoolean('allowPrivate', policy.allowPrivate);
  const allow = parseCidrs('allow', policy.allow);
  const deny = parseCidrs('deny', policy.deny);
  const resolve = policy.resolve ?? systemResolve;
  if (typeof resolve !== 'function')
    invalidOption(MODULE, 'resolve', 'a function (host) => Promise<string[]>', resolve);
  const resolveTimeoutMs = policy.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  if (
    typeof resolveTimeoutMs !== 'number' ||
    !Number.isFinite(resolveTimeoutMs) ||
    resolveTimeoutMs <= 0
  ) {
    invalidOption(
      MODULE,
      'resolveTimeoutMs',
      'a finite number of milliseconds > 0',
      resolveTimeoutMs,
    );
  }

  const allowedClasses = new Set<AddressClass>(['public']);
  if (allowLoopback) allowedClasses.add('loopback');
  if (allowPrivate) {
    allowedClasses.add('private');
    allowedClasses.add('shared');
  }

  function checkAddress(address: string): void {
    const bytes = typeof address === 'string' ? addressBytes(address) : undefined;
    if (bytes === undefined) throw new WebhookUrlRefusedError('unresolvable');
    const matched = matchBytes(bytes);
    const allowed = longestMatch(allow, matched);
    const denied = longestMatch(deny, matched);
    if (denied >= 0 && denied >= allowed) throw new WebhookUrlRefusedError('denied');
    if (allowed >= 0) return;
    const kind = bytes.length === 4 ? classifyV4(bytes) : classifyV6(bytes);
    if (!allowedClasses.has(kind))
      throw new WebhookUrlRefusedError('address', { addressClass: kind });
  }

  /** The host to resolve, or the literal address (checked), from a URL. */
  function parseUrl(url: string): URL {
    if (typeof url !== 'string' || url.length > MAX_URL_LENGTH)
      throw new WebhookUrlRefusedError('invalid-url');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (cause) {
      throw new WebhookUrlRefusedError('invalid-url', { cause });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new WebhookUrlRefusedError('scheme');
    if (parsed.username !== '' || parsed.password !== '')
      throw new WebhookUrlRefusedError('credentials');
    const host = hostOf(parsed);
    // Port 0 is accepted by the URL parser but reaches nothing.
    if (host === '' || parsed.port === '0') throw new WebhookUrlRefusedError('invalid-url');
    if (isIP(host) !== 0) checkAddress(host);
    return parsed;
  }

  /** Resolves `host` and checks every address; throws WebhookUrlRefusedError or the resolver's error. */
  async function resolveChecked(host: string): Promise<string[]> {
    if (isIP(host) !== 0) {
      checkAddress(host);
      return [host];
    }
    const addresses = await resolve(host);
    if (!Array.isArray(addresses) || addresses.length === 0) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {
        code: 'ENOTFOUND',
        hostname: host,
      });
    }
    for (const address of addresses) checkAddress(address);
    return addresses.map((a) => normalizeIp(a) ?? a);
  }

  async function check(url: string): Promise<void> {
    const parsed = parseUrl(url);
    const host = hostOf(parsed);
    if (isIP(host) !== 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error('DNS resolution timed out'), { code: 'ETIMEOUT' })),
        resolveTimeoutMs,
      );
    });
    try {
      await Promise.race([resolveChecked(host), timeout]);
    } catch (cause) {
      if (cause instanceof WebhookUrlRefusedError) throw cause;
      throw new WebhookUrlRefusedError('unresolvable', { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  const lookup: LookupFunction = (hostname, options, callback) => {
    resolveChecked(hostname).then(
      (addresses) => {
        const wanted =
          options.family === 6 || options.family === 'IPv6'
            ? 6
            : options.family === 4 || options.family === 'IPv4'
              ? 4
              : 0;
        const found = addresses
          .map((address) => ({ address, family: isIP(address) }))
          .filter((a) => wanted === 0 || a.family === wanted);
        const first = found[0];
        if (first === undefined) {
          const err: NodeJS.ErrnoException = Object.assign(
            new Error(`getaddrinfo ENOTFOUND ${hostname}`),
            { code: 'ENOTFOUND', syscall: 'getaddrinfo' },
          );
          callback(err, '', 0);
        } else if (options.all === true) {
          callback(null, found);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (err: unknown) => {
        const error: NodeJS.ErrnoException =
          err instanceof Error ? err : new Error('The host could not be resolved.');
        callback(error, '', 0);
      },
    );
  };

  return { check, lookup, parseUrl, checkAddress };
}

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
