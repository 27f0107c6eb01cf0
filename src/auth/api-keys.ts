/**
 * API keys for machine clients.
 *
 * A key reads `<namespace>_<id>_<secret>`, for example
 * `rwk_4fT9aQ2mXc7L_Vq3...` (32 characters of secret):
 *
 * - the namespace (`rwk` by default) tells keys apart from other secrets, so
 *   that secret scanners and people recognise them;
 * - the id (12 base62 characters) is public: it finds the key's record in the
 *   store in one lookup, and names the key in logs;
 * - the secret (32 base62 characters, about 190 bits from the CSPRNG) is never
 *   stored. The store keeps the SHA-256 of the whole key, and a presented key
 *   is checked by hashing it and comparing the two digests in constant time
 *   (`crypto.timingSafeEqual`). An unknown id is compared with a fixed digest
 *   the same way, so the answer takes as long as for a wrong secret.
 *
 * Why SHA-256 and not bcrypt, scrypt or Argon2: those are slow on purpose, to
 * make guessing a *low-entropy* password from its stored hash expensive. A
 * 190-bit random secret cannot be guessed from its hash at any speed, so a
 * slow hash would add nothing but CPU on every request (tens of milliseconds
 * each, a ready-made denial of service), while SHA-256 costs about a
 * microsecond. The digest is still no secret to leave lying around: whoever
 * reads it cannot use it as a key, but can check guesses against it, which is
 * hopeless only because the secret is long and random.
 *
 * A key may carry roles, scopes, a tenant, an expiry, and an IP allowlist
 * (CIDR ranges, IPv4 and IPv6, matched against the client address the
 * adapter's `trustProxy` setting resolves); it can be revoked.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { checkOptions, invalidOption, ServiceUnavailableError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { compileTrust, normalizeIp } from '../core/ip.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { isScopeToken } from './challenge.js';
import { InvalidApiKeyError, IpNotAllowedError } from './errors.js';
import { type AuthPrincipal, buildPrincipal } from './principal.js';

/** A key's stored record. Everything but `hash` is public to its holder; `hash` is the key's SHA-256. */
export interface ApiKeyRecord {
  /** The key's public id (12 base62 characters), the lookup key in the store. */
  readonly id: string;
  /** SHA-256 of the whole key, base64url. Never the key itself. */
  readonly hash: string;
  /** Whose key it is: the principal id requests made with it get. */
  readonly subject: string;
  /** A label for people (`"CI deploy key"`). */
  readonly name?: string;
  /** Roles, for `requireRole()`. */
  readonly roles: readonly string[];
  /** Scopes, for `requireScope()`. */
  readonly scopes: readonly string[];
  /** The tenant the key belongs to. */
  readonly tenant?: string;
  /** CIDR ranges (or addresses) the key may be used from; absent means anywhere. */
  readonly allowedIps?: readonly string[];
  /** When the key was made, epoch ms. */
  readonly createdAt: number;
  /** When the key stops working, epoch ms. */
  readonly expiresAt?: number;
  /** When the key was revoked, epoch ms. Its presence revokes the key at once; the time is for the record. */
  readonly revokedAt?: number;
}

/**
 * Where key records live. Implementations: `MemoryApiKeyStore`,
 * `RedisApiKeyStore`, `PostgresApiKeyStore`; one contract suite runs against
 * all three. A store that cannot answer throws (the verifier answers 503:
 * keys are never accepted unchecked).
 */
export interface ApiKeyStore {
  /** A short name for logs: `memory`, `redis`, `postgres`. */
  readonly kind: string;
  /** The record of an id, revoked and expired ones included; `null` when there is none. */
  get(id: string): Promise<ApiKeyRecord | null>;
  /** Stores a new record; `false` (and nothing written) when its id exists. */
  create(record: ApiKeyRecord): Promise<boolean>;
  /** Marks the key revoked at `at` (epoch ms); `false` when there is no such key. A second revocation keeps the first time. */
  revoke(id: string, at: number): Promise<boolean>;
  /** Removes the record; `true` when there was one. */
  delete(id: string): Promise<boolean>;
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 12;
const SECRET_LENGTH = 32;
const ID = /^[A-Za-z0-9]{12}$/;
const SECRET = /^[A-Za-z0-9]{32}$/;
const NAMESPACE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
const MAX_NAMESPACE = 24;
/** The longest key that can be well-formed; longer input is refused unhashed. */
const MAX_KEY_LENGTH = MAX_NAMESPACE + 2 + ID_LENGTH + SECRET_LENGTH;

/** Uniform base62 characters from the CSPRNG: bytes of 248 or more are dropped, so no character is likelier. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Checks a namespace option. */
export function checkNamespace(where: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_NAMESPACE || !NAMESPACE.test(value)) {
    invalidOption(
      where,
      'namespace',
      `lower-case letters and digits (and inner _), at most ${MAX_NAMESPACE}, starting with a letter`,
      value,
    );
  }
  return value;
}

/** A key's parts, when it is well-formed. */
export interface ParsedApiKey {
  namespace: string;
  id: string;
}

/** Splits a key into namespace and id; `undefined` when it is not in the key format. */
export function parseApiKey(key: string): ParsedApiKey | undefined {
  if (key.length > MAX_KEY_LENGTH) return undefined;
  const last = key.lastIndexOf('_');
  const middle = last < 0 ? -1 : key.lastIndexOf('_', last - 1);
  if (middle <= 0) return undefined;
  const namespace = key.slice(0, middle);
  const id = key.slice(middle + 1, last);
  const secret = key.slice(last + 1);
  if (!NAMESPACE.test(namespace) || !ID.test(id) || !SECRET.test(secret)) return undefined;
  return { namespace, id };
}

/** The stored form of a key: its SHA-256, base64url. */
export function hashApiKey(key: string): string {
  return sha256(key);
}

// Compared with when a key's id is unknown or its record unreadable, so that
// the answer costs the same hash and the same comparison as a wrong secret.
const DUMMY_DIGEST = randomBytes(32);

/** Whether `key` hashes to `storedHash`, compared in constant time; a malformed stored hash never matches. */
export function apiKeyMatches(key: string, storedHash: string | undefined): boolean {
  const presented = Buffer.from(hashApiKey(key), 'base64url');
  const stored =
    typeof storedHash === 'string' && storedHash.length === 43
      ? Buffer.from(storedHash, 'base64url')
      : undefined;
  const usable = stored !== undefined && stored.byteLength === 32;
  const equal = timingSafeEqual(presented, usable ? stored : DUMMY_DIGEST);
  return usable && equal;
}

/** Options of {@link createApiKey} and {@link issueApiKey}. */
export interface CreateApiKeyOptions {
  /** Whose key it is (the principal id). @default the key's id */
  subject?: string;
  /** A label for people. */
  name?: string;
  /** @default [] */
  roles?: readonly string[];
  /** @default [] */
  scopes?: readonly string[];
  tenant?: string;
  /** CIDR ranges or addresses, IPv4 or IPv6, or the presets `loopback`, `linklocal`, `uniquelocal`. @default anywhere */
  allowedIps?: readonly string[];
  /** When the key stops working: epoch ms or a Date. @default never (unless `ttlMs`) */
  expiresAt?: number | Date;
  /** Lifetime from now, instead of `expiresAt`. */
  ttlMs?: number;
  /** The key's namespace. @default 'rwk' */
  namespace?: string;
  /** The clock, epoch ms. @default Date.now */
  now?: () => number;
}

/** A new key: the key itself, shown this once, and the record to store. */
export interface IssuedApiKey {
  /** The key. Give it to its holder now: it is stored nowhere and cannot be recovered. */
  key: string;
  /** What the store keeps (its hash, never the key). */
  record: ApiKeyRecord;
}

const CREATE_OPTIONS = [
  'subject',
  'name',
  'roles',
  'scopes',
  'tenant',
  'allowedIps',
  'expiresAt',
  'ttlMs',
  'namespace',
  'now',
] as const;

function tokens(where: string, option: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && isScopeToken(v))) {
    invalidOption(where, option, 'a list of names without spaces, quotes or backslashes', value);
  }
  return [...new Set(value as string[])];
}

/**
 * Compiles an IP allowlist as the adapter compiles `trustProxy`, and more
 * strictly: `compileTrust` reads `10.0.0.0/8/32` as `10.0.0.0/8`, so an entry
 * with more than one `/` (a typo that would allow a wider range than meant) is
 * refused here first.
 */
function compileAllowlist(ips: readonly string[]): (address: string, hop: number) => boolean {
  for (const ip of ips) {
    if (ip.indexOf('/') !== ip.lastIndexOf('/')) throw new TypeError('not a CIDR range');
  }
  return compileTrust(ips);
}

/** Checks an IP allowlist by compiling it. */
function checkAllowedIps(where: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
    invalidOption(where, 'allowedIps', 'a non-empty list of CIDR ranges or addresses', value);
  }
  try {
    compileAllowlist(value as string[]);
  } catch {
    invalidOption(
      where,
      'allowedIps',
      'CIDR ranges (10.0.0.0/8, 2001:db8::/32) or addresses',
      value,
    );
  }
  return [...(value as string[])];
}

/**
 * Makes a new key and its record, without storing anything: for seeding a
 * store, or a demo. {@link issueApiKey} also stores the record.
 *
 * @example
 * ```ts
 * const { key, record } = createApiKey({ subject: 'svc_billing', scopes: ['payments:write'] });
 * await store.create(record);
 * console.log(key); // shown once
 * ```
 */
export function createApiKey(options: CreateApiKeyOptions = {}): IssuedApiKey {
  const where = 'auth createApiKey';
  checkOptions(where, options, CREATE_OPTIONS);
  const namespace = checkNamespace(where, options.namespace ?? 'rwk');
  const id = randomBase62(ID_LENGTH);
  const key = `${namespace}_${id}_${randomBase62(SECRET_LENGTH)}`;
  return { key, record: buildRecord(where, key, id, options) };
}

/**
 * The record of a key you already have, in the key format: for keys given
 * in configuration (an environment variable) or moved from another store.
 * Only its hash goes into the record. Throws a `TypeError` (that never shows
 * the key) when it is not in the format.
 *
 * @example
 * ```ts
 * for (const [key, role] of pairs) await store.create(apiKeyRecordFor(key, { roles: [role] }));
 * ```
 */
export function apiKeyRecordFor(
  key: string,
  options: Omit<CreateApiKeyOptions, 'namespace'> = {},
): ApiKeyRecord {
  const where = 'auth apiKeyRecordFor';
  checkOptions(
    where,
    options,
    CREATE_OPTIONS.filter((o) => o !== 'namespace'),
  );
  const parsed = typeof key === 'string' ? parseApiKey(key) : undefined;
  if (parsed === undefined) {
    throw new TypeError(
      `restwell/${where}: the key is not in the key format <namespace>_<12 base62>_<32 base62>; make one with createApiKey().`,
    );
  }
  return buildRecord(where, key, parsed.id, options);
}

function buildRecord(
  where: string,
  key: string,
  id: string,
  options: CreateApiKeyOptions,
): ApiKeyRecord {
  const clock = options.now ?? Date.now;
  if (typeof clock !== 'function') invalidOption(where, 'now', 'a function', clock);
  const now = clock();
  const subject = options.subject ?? id;
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 256) {
    invalidOption(where, 'subject', 'a string of 1 to 256 characters', subject);
  }
  if (
    options.name !== undefined &&
    (typeof options.name !== 'string' || options.name.length > 256)
  ) {
    invalidOption(where, 'name', 'a string of at most 256 characters', options.name);
  }
  if (
    options.tenant !== undefined &&
    (typeof options.tenant !== 'string' || options.tenant.length === 0)
  ) {
    invalidOption(where, 'tenant', 'a non-empty string', options.tenant);
  }
  let expiresAt: number | undefined;
  if (options.expiresAt !== undefined && options.ttlMs !== undefined) {
    throw new TypeError(`restwell/${where}: give "expiresAt" or "ttlMs", not both.`);
  }
  if (options.expiresAt !== undefined) {
    expiresAt = options.expiresAt instanceof Date ? options.expiresAt.getTime() : options.expiresAt;
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt <= now) {
      invalidOption(
        where,
        'expiresAt',
        'a time in the future (epoch ms or a Date)',
        options.expiresAt,
      );
    }
  } else if (options.ttlMs !== undefined) {
    if (
      typeof options.ttlMs !== 'number' ||
      !Number.isFinite(options.ttlMs) ||
      options.ttlMs <= 0
    ) {
      invalidOption(where, 'ttlMs', 'a positive number of milliseconds', options.ttlMs);
    }
    expiresAt = now + options.ttlMs;
  }
  const allowedIps = checkAllowedIps(where, options.allowedIps);
  const record: ApiKeyRecord = {
    id,
    hash: hashApiKey(key),
    subject,
    ...(options.name === undefined ? {} : { name: options.name }),
    roles: tokens(where, 'roles', options.roles),
    scopes: tokens(where, 'scopes', options.scopes),
    ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
    ...(allowedIps === undefined ? {} : { allowedIps }),
    createdAt: now,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
  return record;
}

/**
 * Makes a new key and stores its record. Returns the key, shown this once:
 * only its hash is stored.
 *
 * @example
 * ```ts
 * const { key } = await issueApiKey(store, { subject: 'svc_ci', roles: ['deployer'], ttlMs: 90 * 86_400_000 });
 * ```
 */
export async function issueApiKey(
  store: ApiKeyStore,
  options: CreateApiKeyOptions = {},
): Promise<IssuedApiKey> {
  checkStore('auth issueApiKey', store);
  // A 71-bit random id collides practically never; a store that keeps refusing is broken.
  for (let attempt = 0; attempt < 3; attempt++) {
    const issued = createApiKey(options);
    if (await store.create(issued.record)) return issued;
  }
  throw new Error(
    'restwell/auth: issueApiKey could not store a new key: its id existed three times.',
  );
}

function checkStore(where: string, store: unknown): asserts store is ApiKeyStore {
  const s = store as Partial<ApiKeyStore> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.get !== 'function' ||
    typeof s.create !== 'function' ||
    typeof s.revoke !== 'function'
  ) {
    invalidOption(where, 'store', 'an ApiKeyStore (get, create, revoke, delete)', store);
  }
}

/** Whether a value read from a store is a usable record (a corrupted one is refused, never trusted). */
export function isApiKeyRecord(value: unknown): value is ApiKeyRecord {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
  const time = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));
  return (
    typeof r.id === 'string' &&
    typeof r.hash === 'string' &&
    typeof r.subject === 'string' &&
    r.subject.length > 0 &&
    strings(r.roles) &&
    strings(r.scopes) &&
    (r.allowedIps === undefined || strings(r.allowedIps)) &&
    (r.tenant === undefined || typeof r.tenant === 'string') &&
    (r.name === undefined || typeof r.name === 'string') &&
    typeof r.createdAt === 'number' &&
    time(r.expiresAt) &&
    time(r.revokedAt)
  );
}

/** Options of {@link apiKeyVerifier}. */
export interface ApiKeyVerifierOptions {
  /** Where records live. Required. */
  store: ApiKeyStore;
  /** The namespace(s) keys are accepted under (several while renaming). @default 'rwk' */
  namespace?: string | readonly string[];
  /** Longest wait for the store before the request is answered 503. @default 1000 */
  timeoutMs?: number;
  /**
   * Keep records read from the store in memory this long, so that a busy key
   * costs one store read per interval. A revocation then takes up to this long
   * to reach this process. 0 reads the store on every request. @default 0
   */
  cacheTtlMs?: number;
  /** Most records cached. @default 10_000 */
  cacheMaxEntries?: number;
  /** Where unreadable records and store failures are reported. @default restwell's default logger */
  logger?: Logger;
  /** The clock, epoch ms. @default Date.now */
  now?: () => number;
}

/** A key that checked out. */
export interface VerifiedApiKey {
  /** Its record. */
  record: ApiKeyRecord;
  /** The principal requests made with it get: the subject, type `api-key`, the key's roles and scopes. */
  principal: AuthPrincipal;
}

/** Checks API keys against a store; made by {@link apiKeyVerifier}. */
export interface ApiKeyVerifier {
  /** Discriminates verifiers for `authenticate()`. */
  readonly kind: 'api-key';
  /** Whether a string is in this verifier's key format (namespace included), without any lookup. */
  recognizes(key: string): boolean;
  /**
   * Checks a key: format, record, secret (in constant time), revocation,
   * expiry, then the IP allowlist against `ip`. Rejects with
   * `InvalidApiKeyError` (401), `IpNotAllowedError` (403), or a 503 when the
   * store cannot answer.
   */
  verify(key: string, options?: { ip?: string | undefined; now?: number }): Promise<VerifiedApiKey>;
}

const VERIFIER_OPTIONS = [
  'store',
  'namespace',
  'timeoutMs',
  'cacheTtlMs',
  'cacheMaxEntries',
  'logger',
  'now',
] as const;

/** Compiled allowlists, shared by every key with the same list. */
const MAX_COMPILED = 1000;

/**
 * Creates an API key verifier over a store. Options are checked here.
 *
 * @example
 * ```ts
 * const apiKeys = apiKeyVerifier({ store: new PostgresApiKeyStore({ pool }) });
 * app.use(rw(authenticate({ apiKeys })));
 * ```
 */
export function apiKeyVerifier(options: ApiKeyVerifierOptions): ApiKeyVerifier {
  const where = 'auth apiKeyVerifier';
  checkOptions(where, options, VERIFIER_OPTIONS);
  checkStore(where, options?.store);
  const store = options.store;
  const namespaces = new Set(
    (typeof options.namespace === 'string' || options.namespace === undefined
      ? [options.namespace ?? 'rwk']
      : [...(options.namespace as readonly string[])]
    ).map((n) => checkNamespace(where, n)),
  );
  if (namespaces.size === 0)
    invalidOption(where, 'namespace', 'a namespace or a non-empty list', options.namespace);
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    invalidOption(where, 'timeoutMs', 'a positive integer', timeoutMs);
  const cacheTtlMs = options.cacheTtlMs ?? 0;
  if (!Number.isInteger(cacheTtlMs) || cacheTtlMs < 0) {
    invalidOption(where, 'cacheTtlMs', 'a non-negative integer', cacheTtlMs);
  }
  const cacheMaxEntries = options.cacheMaxEntries ?? 10_000;
  if (!Number.isInteger(cacheMaxEntries) || cacheMaxEntries <= 0) {
    invalidOption(where, 'cacheMaxEntries', 'a positive integer', cacheMaxEntries);
  }
  const logger = options.logger ?? defaultLogger;
  const clock = options.now ?? Date.now;
  if (typeof clock !== 'function') invalidOption(where, 'now', 'a function', clock);

  const cache = new Map<string, { until: number; record: ApiKeyRecord | null }>();
  const allowlists = new Map<string, ((address: string) => boolean) | null>();

  function allowlist(ips: readonly string[]): ((address: string) => boolean) | null {
    const cacheKey = ips.join('\n');
    let compiled = allowlists.get(cacheKey);
    if (compiled === undefined) {
      try {
        const trusted = compileAllowlist(ips);
        compiled = (address: string) => trusted(address, 0);
      } catch {
        // An unreadable list in a stored record allows nothing.
        compiled = null;
        warn('an API key record has an unreadable IP allowlist; the key is refused', {});
      }
      if (allowlists.size >= MAX_COMPILED) allowlists.clear();
      allowlists.set(cacheKey, compiled);
    }
    return compiled;
  }

  function warn(message: string, fields: Record<string, unknown>): void {
    try {
      logger.warn(`restwell/auth: ${message}`, fields);
    } catch {
      // A failing logger changes nothing about the answer.
    }
  }

  async function read(id: string, now: number): Promise<ApiKeyRecord | null> {
    if (cacheTtlMs > 0) {
      const hit = cache.get(id);
      if (hit !== undefined && hit.until > now) return hit.record;
    }
    let timer: NodeJS.Timeout | undefined;
    let value: unknown;
    try {
      value = await Promise.race([
        store.get(id),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      warn('the API key store failed', { store: store.kind, keyId: id, err });
      throw new ServiceUnavailableError(
        'API keys cannot be checked right now; the request was not executed. Retry later.',
        1,
        err,
      );
    } finally {
      clearTimeout(timer);
    }
    let record: ApiKeyRecord | null = null;
    if (value !== null && value !== undefined) {
      if (isApiKeyRecord(value) && value.id === id) record = value;
      else
        warn('an API key record is unreadable; the key is refused', {
          store: store.kind,
          keyId: id,
        });
    }
    // Only keys that exist are cached: a key issued a moment ago works at once.
    if (cacheTtlMs > 0 && record !== null) {
      if (cache.size >= cacheMaxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(id, { until: now + cacheTtlMs, record });
    }
    return record;
  }

  function recognizes(key: string): boolean {
    const parsed = typeof key === 'string' ? parseApiKey(key) : undefined;
    return parsed !== undefined && namespaces.has(parsed.namespace);
  }

  async function verify(
    key: string,
    call: { ip?: string | undefined; now?: number } = {},
  ): Promise<VerifiedApiKey> {
    const parsed = typeof key === 'string' ? parseApiKey(key) : undefined;
    if (parsed === undefined || !namespaces.has(parsed.namespace))
      throw new InvalidApiKeyError('malformed');
    const now = call.now ?? clock();
    const record = await read(parsed.id, now);
    // Hash and compare whether or not the id exists: the same work either way.
    if (!apiKeyMatches(key, record?.hash) || record === null)
      throw new InvalidApiKeyError('unknown');
    // Revoked is revoked, whatever time the revocation carries: it is stamped
    // by the clock of whichever host revoked the key, and a clock ahead of
    // this one must not leave a leaked key working until it catches up.
    if (record.revokedAt !== undefined) throw new InvalidApiKeyError('revoked');
    if (record.expiresAt !== undefined && record.expiresAt <= now)
      throw new InvalidApiKeyError('expired');
    if (record.allowedIps !== undefined) {
      const allowed = allowlist(record.allowedIps);
      const ip = call.ip === undefined ? undefined : normalizeIp(call.ip);
      if (allowed === null || ip === undefined || !allowed(ip)) throw new IpNotAllowedError();
    }
    const claims: Record<string, unknown> = { keyId: record.id, sub: record.subject };
    if (record.name !== undefined) claims.name = record.name;
    const principal = buildPrincipal(
      {
        id: record.subject,
        type: 'api-key',
        roles: record.roles,
        scopes: record.scopes,
        ...(record.tenant === undefined ? {} : { tenant: record.tenant }),
      },
      claims,
      'api-key',
      record.expiresAt,
    )!;
    return { record, principal };
  }

  return { kind: 'api-key', recognizes, verify };
}
