/**
 * JWT bearer tokens verified with jose, by the practices of RFC 8725 (JSON
 * Web Token Best Current Practices):
 *
 * - every key has an explicit list of algorithms (§3.1); `none` is refused at
 *   construction and never accepted; a token's `alg` selects nothing by
 *   itself, it must be one the key allows;
 * - an HMAC secret and a public key are configured under different names
 *   (`secret`, `publicKey`) and each only with its own family of algorithms,
 *   so no public key can ever be used as an HMAC secret (the HS256/RS256 key
 *   confusion, §2.1); a `secret` that looks like a PEM or a JWK is refused;
 * - HMAC secrets are at least as long as the hash (RFC 7518 §3.2), RSA keys at
 *   least 2048 bits, EC keys on the curve their algorithm names;
 * - `kid` only selects among configured keys (a map lookup, never a path, a
 *   query or a URL), and `jku`, `x5u`, `jwk` and `x5c` in a header are never
 *   followed (§3.10);
 * - `iss` and `aud` are checked (§3.8, §3.9), `exp` is required, `nbf` and
 *   `iat` are honoured with a clock tolerance, and `maxTokenAgeMs`,
 *   `requiredClaims` and `type` (explicit typing, §3.11) tighten it further;
 * - the RFC 9068 profile (`profile: 'rfc9068'`) checks `typ: at+jwt` and the
 *   claims every JWT access token must carry.
 *
 * `verify(token, { now })` is a pure function of the token, the configured
 * keys and the clock: with local keys, the same inputs give the same answer,
 * so recorded vectors can be replayed.
 */
import { createPublicKey, type JsonWebKey, KeyObject, webcrypto } from 'node:crypto';
import { checkOptions, invalidOption, ServiceUnavailableError } from '../core/errors.js';
import { InvalidTokenError, type InvalidTokenReason } from './errors.js';
import { type Jose, loadJose } from './jose.js';

type CryptoKey = import('jose').CryptoKey;
import {
  KeySetUnavailableError,
  type RemoteJwks,
  type RemoteJwksOptions,
  remoteJwks,
} from './jwks.js';
import {
  type AuthPrincipal,
  buildPrincipal,
  defaultPrincipal,
  type PrincipalInit,
} from './principal.js';

/** An HMAC algorithm (RFC 7518 §3.2). */
export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512';
/** A public-key signature algorithm (RFC 7518 §3.3-3.5, RFC 8037, RFC 9864). */
export type AsymmetricAlgorithm =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519';
/** A JWS algorithm restwell verifies. `none` is not one. */
export type JwsAlgorithm = HmacAlgorithm | AsymmetricAlgorithm;

interface AlgorithmRule {
  /** Node's asymmetric key type, or `secret` for HMAC. */
  type: 'secret' | 'rsa' | 'ec' | 'ed25519';
  /** EC curve, as Node names it. */
  curve?: string;
  /** HMAC: the least secret length in bytes (RFC 7518 §3.2: the hash size). */
  minBytes?: number;
}

const ALGORITHMS: Readonly<Record<JwsAlgorithm, AlgorithmRule>> = {
  HS256: { type: 'secret', minBytes: 32 },
  HS384: { type: 'secret', minBytes: 48 },
  HS512: { type: 'secret', minBytes: 64 },
  RS256: { type: 'rsa' },
  RS384: { type: 'rsa' },
  RS512: { type: 'rsa' },
  PS256: { type: 'rsa' },
  PS384: { type: 'rsa' },
  PS512: { type: 'rsa' },
  ES256: { type: 'ec', curve: 'prime256v1' },
  ES384: { type: 'ec', curve: 'secp384r1' },
  ES512: { type: 'ec', curve: 'secp521r1' },
  EdDSA: { type: 'ed25519' },
  Ed25519: { type: 'ed25519' },
};

const HMAC_HASH: Readonly<Record<HmacAlgorithm, string>> = {
  HS256: 'SHA-256',
  HS384: 'SHA-384',
  HS512: 'SHA-512',
};

/** Whether `alg` is a JWS algorithm restwell verifies. */
function isAlgorithm(alg: unknown): alg is JwsAlgorithm {
  return typeof alg === 'string' && Object.hasOwn(ALGORITHMS, alg);
}

/** An HMAC key: a shared secret, for HS* only. */
export interface SecretJwtKey {
  /** Selects this key when a token's header names it. Optional with a single key. */
  kid?: string;
  /** The HMAC algorithms this secret verifies. Required: there is no default (RFC 8725 §3.1). */
  algorithms: readonly HmacAlgorithm[];
  /** The shared secret: bytes, or a string used as its UTF-8 bytes. At least 32 bytes for HS256. */
  secret: string | Uint8Array;
}

/** A public key, for the asymmetric algorithms only. */
export interface PublicJwtKey {
  /** Selects this key when a token's header names it. */
  kid?: string;
  /** The algorithms this key verifies; they must fit its type (RSA, EC curve, Ed25519). */
  algorithms: readonly AsymmetricAlgorithm[];
  /** The key: a PEM (SPKI `PUBLIC KEY` or an X.509 `CERTIFICATE`), a public JWK, or a Node `KeyObject`. */
  publicKey: string | JsonWebKey | KeyObject;
}

/** A key tokens are verified with. */
export type JwtKey = SecretJwtKey | PublicJwtKey;

/** A remote key set and the algorithms its keys may verify. */
export interface JwksSource {
  /** The key set: made with `remoteJwks()`, or its options. */
  keys: RemoteJwks | RemoteJwksOptions;
  /** The algorithms accepted with its keys. Required: there is no default (RFC 8725 §3.1). */
  algorithms: readonly AsymmetricAlgorithm[];
}

/** Options of {@link jwtVerifier}. */
export interface JwtVerifierOptions {
  /** Local keys. At least one of `keys` and `jwks` is required. */
  keys?: readonly JwtKey[];
  /** A remote JSON Web Key Set, for keys an identity provider publishes and rotates. */
  jwks?: JwksSource;
  /** The accepted `iss` value(s). Required (RFC 8725 §3.8). */
  issuer: string | readonly string[];
  /**
   * The accepted `aud` value(s): a token must name one of them (RFC 8725
   * §3.9). `false` accepts tokens for any audience, only where one issuer
   * mints tokens for this API alone. Required.
   */
  audience: string | readonly string[] | false;
  /** Leeway for `exp`, `nbf` and `iat`, for clocks that drift apart. @default 5000 */
  clockToleranceMs?: number;
  /** Refuse tokens issued (`iat`) longer ago than this; makes `iat` required. @default no limit */
  maxTokenAgeMs?: number;
  /** Claims that must be present besides `exp` (always required) and those the options imply. @default [] */
  requiredClaims?: readonly string[];
  /**
   * The `typ` header the tokens must carry (RFC 8725 §3.11), compared as
   * RFC 7515 §4.1.9 says (case-insensitive, `application/` optional).
   * @default none required; `at+jwt` with `profile: 'rfc9068'`
   */
  type?: string;
  /**
   * `rfc9068`: tokens are OAuth 2.0 JWT access tokens (RFC 9068 §2, §4):
   * `typ` must be `at+jwt`, and `iss`, `exp`, `aud`, `sub`, `client_id`,
   * `iat` and `jti` are required. Needs an `audience`.
   * @default none
   */
  profile?: 'rfc9068';
  /** Maps the verified claims to the principal; `undefined` refuses the token. @default defaultPrincipal */
  principal?: (
    claims: Readonly<Record<string, unknown>>,
    header: Readonly<Record<string, unknown>>,
  ) => PrincipalInit | undefined;
  /** Longest token accepted, in characters; longer ones are refused unparsed. @default 8192 */
  maxTokenLength?: number;
  /** The clock, in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** A verified token. */
export interface VerifiedJwt {
  /** The verified claims. */
  payload: Readonly<Record<string, unknown>>;
  /** The protected header. */
  header: Readonly<Record<string, unknown>>;
  /** The principal the claims map to. */
  principal: AuthPrincipal;
}

/** Verifies JWT bearer tokens; made by {@link jwtVerifier}. */
export interface JwtVerifier {
  /** Discriminates verifiers for `authenticate()`. */
  readonly kind: 'jwt';
  /**
   * Verifies a compact JWS. Resolves with the claims and the principal, or
   * rejects with `InvalidTokenError` (401) whatever is wrong with the token,
   * or a 503 when a remote key set cannot be had. `now` (epoch ms) replaces
   * the clock for this call.
   */
  verify(token: string, options?: { now?: number }): Promise<VerifiedJwt>;
}

const OPTIONS = [
  'keys',
  'jwks',
  'issuer',
  'audience',
  'clockToleranceMs',
  'maxTokenAgeMs',
  'requiredClaims',
  'type',
  'profile',
  'principal',
  'maxTokenLength',
  'now',
] as const;
const HINTS = {
  secret: 'Put secrets in keys: [{ secret, algorithms: ["HS256"] }].',
  algorithms:
    'Algorithms are given per key (keys: [{ ..., algorithms }]) and for a JWKS (jwks: { keys, algorithms }).',
  clockTolerance: 'Did you mean "clockToleranceMs" (milliseconds)?',
  maxTokenAge: 'Did you mean "maxTokenAgeMs" (milliseconds)?',
  jwksUri: 'Use jwks: { keys: { url }, algorithms }.',
};

const RFC9068_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'];
const MAX_KID_LENGTH = 256;

interface CompiledKey {
  kid: string | undefined;
  algorithms: ReadonlySet<JwsAlgorithm>;
  /** What jose verifies with, per algorithm: imported once, on first use. */
  imported: Map<JwsAlgorithm, Promise<CryptoKey | Uint8Array>>;
  material: { secret: Uint8Array } | { publicKey: KeyObject };
}

function checkAlgorithms(
  where: string,
  list: unknown,
  family: 'secret' | 'public',
): JwsAlgorithm[] {
  if (!Array.isArray(list) || list.length === 0) {
    invalidOption(
      'auth jwtVerifier',
      `${where}.algorithms`,
      "a non-empty list of algorithms (such as ['RS256'])",
      list,
    );
  }
  for (const alg of list) {
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${where}.algorithms" lists "none": unsigned tokens are never accepted (RFC 8725 §3.1).`,
      );
    }
    if (!isAlgorithm(alg)) {
      invalidOption('auth jwtVerifier', `${where}.algorithms`, 'JWS algorithm names', alg);
    }
    const isSecret = ALGORITHMS[alg].type === 'secret';
    if (family === 'secret' && !isSecret) {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${where}.algorithms" lists ${alg} for an HMAC secret; a secret verifies HS256, HS384 or HS512 only.`,
      );
    }
    if (family === 'public' && isSecret) {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${where}.algorithms" lists ${alg} for a public key; a public key never verifies an HMAC algorithm (the key confusion of RFC 8725 §2.1). Give an HMAC secret as { secret }.`,
      );
    }
  }
  return [...new Set(list as JwsAlgorithm[])];
}

function looksLikeKeyDocument(secret: string): boolean {
  const s = secret.trim();
  return s.startsWith('-----BEGIN') || (s.startsWith('{') && /"kty"\s*:/.test(s));
}

function compileKey(key: unknown, index: number): CompiledKey {
  const where = `keys[${index}]`;
  if (key === null || typeof key !== 'object' || Array.isArray(key)) {
    invalidOption('auth jwtVerifier', where, 'a key object', key);
  }
  checkOptions(`auth jwtVerifier ${where}`, key, ['kid', 'algorithms', 'secret', 'publicKey']);
  const k = key as Partial<SecretJwtKey & PublicJwtKey>;
  if (
    k.kid !== undefined &&
    (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > MAX_KID_LENGTH)
  ) {
    invalidOption(
      'auth jwtVerifier',
      `${where}.kid`,
      `a string of 1 to ${MAX_KID_LENGTH} characters`,
      k.kid,
    );
  }
  const hasSecret = k.secret !== undefined;
  const hasPublic = k.publicKey !== undefined;
  if (hasSecret === hasPublic) {
    throw new TypeError(
      `restwell/auth jwtVerifier: option "${where}" needs exactly one of "secret" (HMAC) and "publicKey".`,
    );
  }
  if (hasSecret) {
    const algorithms = checkAlgorithms(where, k.algorithms, 'secret');
    let bytes: Uint8Array;
    if (typeof k.secret === 'string') {
      if (looksLikeKeyDocument(k.secret)) {
        throw new TypeError(
          `restwell/auth jwtVerifier: option "${where}.secret" looks like a PEM or a JWK: a public key must never be used as an HMAC secret (RFC 8725 §2.1). Pass it as publicKey with an asymmetric algorithm.`,
        );
      }
      bytes = new TextEncoder().encode(k.secret);
    } else if (k.secret instanceof Uint8Array) {
      bytes = new Uint8Array(k.secret);
    } else {
      invalidOption('auth jwtVerifier', `${where}.secret`, 'a string or bytes', k.secret);
    }
    for (const alg of algorithms) {
      const min = ALGORITHMS[alg].minBytes ?? 0;
      if (bytes.byteLength < min) {
        throw new TypeError(
          `restwell/auth jwtVerifier: option "${where}.secret" has ${bytes.byteLength} bytes; ${alg} needs at least ${min} (RFC 7518 §3.2).`,
        );
      }
    }
    return {
      kid: k.kid,
      algorithms: new Set(algorithms),
      imported: new Map(),
      material: { secret: bytes },
    };
  }
  const algorithms = checkAlgorithms(where, k.algorithms, 'public');
  const publicKey = toPublicKey(where, k.publicKey);
  for (const alg of algorithms) checkKeyFits(where, publicKey, alg);
  return {
    kid: k.kid,
    algorithms: new Set(algorithms),
    imported: new Map(),
    material: { publicKey },
  };
}

function toPublicKey(where: string, input: unknown): KeyObject {
  const option = `${where}.publicKey`;
  if (input instanceof KeyObject) {
    if (input.type !== 'public') {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${option}" is a ${input.type} KeyObject; give the public key only.`,
      );
    }
    return input;
  }
  if (typeof input === 'string') {
    if (/PRIVATE KEY/.test(input)) {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${option}" holds a private key; verification needs the public key only, and the private key must not be in this configuration.`,
      );
    }
    if (!/-----BEGIN (PUBLIC KEY|CERTIFICATE)-----/.test(input)) {
      invalidOption('auth jwtVerifier', option, 'a PEM public key or certificate', 'a string');
    }
    try {
      return createPublicKey(input);
    } catch (cause) {
      throw new TypeError(`restwell/auth jwtVerifier: option "${option}" is not a readable PEM.`, {
        cause,
      });
    }
  }
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const jwk = input as JsonWebKey;
    if (jwk.d !== undefined || jwk.k !== undefined) {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${option}" is a private or symmetric JWK; give a public JWK.`,
      );
    }
    try {
      return createPublicKey({ key: jwk, format: 'jwk' });
    } catch (cause) {
      throw new TypeError(
        `restwell/auth jwtVerifier: option "${option}" is not a usable public JWK.`,
        {
          cause,
        },
      );
    }
  }
  invalidOption('auth jwtVerifier', option, 'a PEM, a public JWK or a KeyObject', input);
}

function checkKeyFits(where: string, key: KeyObject, alg: JwsAlgorithm): void {
  const rule = ALGORITHMS[alg];
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let ok = type === rule.type;
  if (ok && rule.curve !== undefined) ok = details.namedCurve === rule.curve;
  if (!ok) {
    throw new TypeError(
      `restwell/auth jwtVerifier: option "${where}.publicKey" is ${describeKey(key)}, which cannot verify ${alg}.`,
    );
  }
  if (type === 'rsa' && (details.modulusLength ?? 0) < 2048) {
    throw new TypeError(
      `restwell/auth jwtVerifier: option "${where}.publicKey" is an RSA key of ${details.modulusLength} bits; at least 2048 are needed.`,
    );
  }
}

function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? 'unknown';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === undefined ? `an ${type} key` : `an ${type} key on ${curve}`;
}

/** Imports a key for one algorithm once; later calls share the promise. */
function importedKey(
  jose: Jose,
  key: CompiledKey,
  alg: JwsAlgorithm,
): Promise<CryptoKey | Uint8Array> {
  let imported = key.imported.get(alg);
  if (imported === undefined) {
    if ('secret' in key.material) {
      // A CryptoKey, so that jose does not import the raw secret again on every verification.
      imported = webcrypto.subtle.importKey(
        'raw',
        key.material.secret,
        { name: 'HMAC', hash: HMAC_HASH[alg as HmacAlgorithm] },
        false,
        ['verify'],
      ) as Promise<CryptoKey>;
    } else {
      const jwk = key.material.publicKey.export({ format: 'jwk' });
      imported = jose.importJWK(jwk as Parameters<Jose['importJWK']>[0], alg) as Promise<
        CryptoKey | Uint8Array
      >;
    }
    key.imported.set(alg, imported);
    imported.catch(() => key.imported.delete(alg));
  }
  return imported;
}

function list(value: string | readonly string[]): string[] {
  return typeof value === 'string' ? [value] : [...value];
}

function checkStrings(option: string, value: unknown, allowFalse: boolean): void {
  if (allowFalse && value === false) return;
  const ok =
    (typeof value === 'string' && value.length > 0) ||
    (Array.isArray(value) &&
      value.length > 0 &&
      value.every((v) => typeof v === 'string' && v.length > 0));
  if (!ok) {
    invalidOption(
      'auth jwtVerifier',
      option,
      allowFalse
        ? 'a string, a non-empty list of strings, or false'
        : 'a string or a non-empty list of strings',
      value,
    );
  }
}

/** What jose's errors mean for the client; `undefined` for what is not about the token. */
function reasonOf(err: unknown): InvalidTokenReason | undefined {
  const e = err as { code?: unknown; claim?: unknown; reason?: unknown } | null;
  switch (e?.code) {
    case 'ERR_JWT_EXPIRED':
      return e.claim === 'iat' ? 'too-old' : 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      switch (e.claim) {
        case 'iss':
          return 'issuer';
        case 'aud':
          return 'audience';
        case 'typ':
          return 'type';
        case 'nbf':
          return e.reason === 'check_failed' ? 'not-yet-valid' : 'claims';
        case 'iat':
          return e.reason === 'check_failed' ? 'not-yet-valid' : 'claims';
        default:
          return 'claims';
      }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'key';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
      return 'malformed';
    default:
      return undefined;
  }
}

/**
 * Whether a JSON text (already known to parse) has an object with the same
 * member name twice, compared after unescaping (`"sub"` and `"s\u0075b"` are
 * one name). RFC 7515 §5.2 and RFC 7519 §4 let a recipient either reject such
 * a header or claims set or take the lexically last member; this verifier
 * rejects, because "last wins" is only what JSON.parse does: a gateway or a
 * log pipeline that keeps the first `sub` or `roles` would read another
 * principal out of the same signed bytes.
 */
export function hasDuplicateMember(json: string): boolean {
  const objects: Array<Set<string> | null> = [];
  let expectName = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (end < json.length && json.charCodeAt(end) !== 0x22) {
        end += json.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      }
      const names = objects[objects.length - 1];
      if (expectName && names) {
        const name = JSON.parse(json.slice(i, end + 1)) as string;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = objects[objects.length - 1] != null;
    }
  }
  return false;
}

/**
 * Reads the protected header without trusting it: `undefined` when it is not
 * a JSON object, or names a member twice.
 */
function readHeader(token: string, firstDot: number): Record<string, unknown> | undefined {
  const encoded = token.slice(0, firstDot);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
  try {
    const text = Buffer.from(encoded, 'base64url').toString('utf8');
    const header = JSON.parse(text) as unknown;
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return undefined;
    return hasDuplicateMember(text) ? undefined : (header as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

/** Whether the verified token's claims set names a member twice (see {@link hasDuplicateMember}). */
function duplicateClaims(token: string): boolean {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  return hasDuplicateMember(
    Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'),
  );
}

function invalid(reason: InvalidTokenReason, cause?: unknown): InvalidTokenError {
  return new InvalidTokenError(reason, cause === undefined ? {} : { cause });
}

/**
 * Creates a JWT verifier. Every option is checked here, so a mistake (an
 * algorithm a key cannot do, `none`, a short secret, a private key) throws a
 * `TypeError` at start-up, never while serving.
 *
 * @example
 * ```ts
 * const verifier = jwtVerifier({
 *   keys: [{ kid: '2026-01', publicKey: pem, algorithms: ['ES256'] }],
 *   issuer: 'https://id.example.com',
 *   audience: 'https://api.example.com',
 * });
 * const { principal } = await verifier.verify(token);
 * ```
 */
export function jwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  checkOptions('auth jwtVerifier', options, OPTIONS, HINTS);
  if (options === undefined) invalidOption('auth jwtVerifier', 'options', 'an object', options);
  const keys = (options.keys ?? []) as unknown;
  if (!Array.isArray(keys)) invalidOption('auth jwtVerifier', 'keys', 'a list of keys', keys);
  const compiled = keys.map((k, i) => compileKey(k, i));
  const kids = new Map<string, CompiledKey[]>();
  const unnamed: CompiledKey[] = [];
  for (const key of compiled) {
    if (key.kid === undefined) unnamed.push(key);
    else {
      if (kids.has(key.kid)) {
        invalidOption('auth jwtVerifier', 'keys', 'keys with distinct kids', key.kid);
      }
      kids.set(key.kid, [key]);
    }
  }

  let jwks: RemoteJwks | undefined;
  let jwksAlgorithms: ReadonlySet<JwsAlgorithm> = new Set();
  if (options.jwks !== undefined) {
    const source = options.jwks as unknown;
    if (source === null || typeof source !== 'object') {
      invalidOption('auth jwtVerifier', 'jwks', '{ keys, algorithms }', source);
    }
    checkOptions('auth jwtVerifier jwks', source, ['keys', 'algorithms']);
    const s = source as JwksSource;
    jwksAlgorithms = new Set(checkAlgorithms('jwks', s.algorithms, 'public'));
    const k = s.keys as unknown;
    jwks =
      k !== null && typeof k === 'object' && typeof (k as RemoteJwks).getKey === 'function'
        ? (k as RemoteJwks)
        : remoteJwks(k as RemoteJwksOptions);
  }
  if (compiled.length === 0 && jwks === undefined) {
    throw new TypeError('restwell/auth jwtVerifier: give "keys", "jwks", or both.');
  }

  checkStrings('issuer', options.issuer, false);
  checkStrings('audience', options.audience, true);
  const issuer = list(options.issuer);
  const audience = options.audience === false ? undefined : list(options.audience);
  const clockToleranceMs = options.clockToleranceMs ?? 5000;
  if (
    typeof clockToleranceMs !== 'number' ||
    !Number.isFinite(clockToleranceMs) ||
    clockToleranceMs < 0
  ) {
    invalidOption(
      'auth jwtVerifier',
      'clockToleranceMs',
      'a non-negative number of milliseconds',
      clockToleranceMs,
    );
  }
  const maxTokenAgeMs = options.maxTokenAgeMs;
  if (
    maxTokenAgeMs !== undefined &&
    (typeof maxTokenAgeMs !== 'number' || !Number.isFinite(maxTokenAgeMs) || maxTokenAgeMs <= 0)
  ) {
    invalidOption(
      'auth jwtVerifier',
      'maxTokenAgeMs',
      'a positive number of milliseconds',
      maxTokenAgeMs,
    );
  }
  const extraClaims = (options.requiredClaims ?? []) as unknown;
  if (
    !Array.isArray(extraClaims) ||
    !extraClaims.every((c) => typeof c === 'string' && c.length > 0)
  ) {
    invalidOption('auth jwtVerifier', 'requiredClaims', 'a list of claim names', extraClaims);
  }
  if (options.profile !== undefined && options.profile !== 'rfc9068') {
    invalidOption('auth jwtVerifier', 'profile', "'rfc9068'", options.profile);
  }
  const rfc9068 = options.profile === 'rfc9068';
  if (rfc9068 && audience === undefined) {
    throw new TypeError(
      'restwell/auth jwtVerifier: profile "rfc9068" needs an audience: a resource server must check that a token was issued for it (RFC 9068 §4).',
    );
  }
  let type = options.type;
  if (type !== undefined && (typeof type !== 'string' || type.length === 0)) {
    invalidOption('auth jwtVerifier', 'type', 'a media type such as "at+jwt"', type);
  }
  if (rfc9068) {
    const normal = type?.toLowerCase().replace(/^application\//, '');
    if (type !== undefined && normal !== 'at+jwt') {
      invalidOption('auth jwtVerifier', 'type', '"at+jwt" with profile "rfc9068"', type);
    }
    type = 'at+jwt';
  }
  const requiredClaims = [
    ...new Set(['exp', ...(extraClaims as string[]), ...(rfc9068 ? RFC9068_CLAIMS : [])]),
  ];
  const mapPrincipal = options.principal ?? defaultPrincipal;
  if (typeof mapPrincipal !== 'function') {
    invalidOption('auth jwtVerifier', 'principal', 'a function of the claims', mapPrincipal);
  }
  const maxTokenLength = options.maxTokenLength ?? 8192;
  if (!Number.isInteger(maxTokenLength) || maxTokenLength <= 0) {
    invalidOption('auth jwtVerifier', 'maxTokenLength', 'a positive integer', maxTokenLength);
  }
  const clock = options.now ?? Date.now;
  if (typeof clock !== 'function') invalidOption('auth jwtVerifier', 'now', 'a function', clock);

  const allowed = new Set<JwsAlgorithm>([
    ...compiled.flatMap((k) => [...k.algorithms]),
    ...jwksAlgorithms,
  ]);
  // Start loading jose now; a missing package surfaces on the first verification.
  loadJose().catch(() => {});

  function candidatesFor(kid: string | undefined, alg: JwsAlgorithm): CompiledKey[] {
    const named = kid === undefined ? undefined : kids.get(kid);
    const pool = named ?? (kid === undefined ? compiled : unnamed);
    return pool.filter((k) => k.algorithms.has(alg));
  }

  async function verify(token: string, call: { now?: number } = {}): Promise<VerifiedJwt> {
    if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) {
      throw invalid('malformed');
    }
    const first = token.indexOf('.');
    const second = first < 0 ? -1 : token.indexOf('.', first + 1);
    // Exactly three parts: a JWE (five) or anything else is not a JWS.
    if (first <= 0 || second < 0 || token.indexOf('.', second + 1) >= 0) throw invalid('malformed');
    const header = readHeader(token, first);
    if (header === undefined) throw invalid('malformed');
    const alg = header.alg;
    if (!isAlgorithm(alg) || !allowed.has(alg)) throw invalid('algorithm');
    // `cty: JWT` says the payload is itself a JWT to be verified in turn
    // (RFC 7519 §5.2, §7.2 step 8). Nested tokens are not verified here, and
    // one that says it is nested was not minted as this API's access token.
    if (typeof header.cty === 'string' && /^(?:application\/)?jwt$/i.test(header.cty)) {
      throw invalid('malformed');
    }
    const kid = header.kid;
    if (
      kid !== undefined &&
      (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)
    ) {
      throw invalid('key');
    }
    const now = call.now ?? clock();
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new TypeError('restwell/auth jwtVerifier: now must be epoch milliseconds.');
    }
    const jose = await loadJose();
    const verifyOptions = {
      algorithms: [alg],
      issuer,
      ...(audience === undefined ? {} : { audience }),
      clockTolerance: clockToleranceMs / 1000,
      ...(maxTokenAgeMs === undefined ? {} : { maxTokenAge: maxTokenAgeMs / 1000 }),
      requiredClaims,
      ...(type === undefined ? {} : { typ: type }),
      currentDate: new Date(now),
    };

    let result: Awaited<ReturnType<Jose['jwtVerify']>> | undefined;
    const local = candidatesFor(kid, alg);
    try {
      if (local.length > 0) {
        for (let i = 0; i < local.length; i++) {
          try {
            result = await jose.jwtVerify(
              token,
              await importedKey(jose, local[i]!, alg),
              verifyOptions,
            );
            break;
          } catch (err) {
            // Without a kid several keys may fit: try the next one on a bad signature only.
            const last = i === local.length - 1;
            if (
              last ||
              (err as { code?: unknown }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
            ) {
              throw err;
            }
          }
        }
      } else if (jwks !== undefined && jwksAlgorithms.has(alg)) {
        const source = jwks;
        result = await jose.jwtVerify(
          token,
          source.getKey as unknown as import('jose').JWTVerifyGetKey,
          verifyOptions,
        );
      } else {
        throw invalid('key');
      }
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      if (err instanceof KeySetUnavailableError) {
        throw new ServiceUnavailableError(
          'The keys that verify access tokens cannot be fetched right now. Retry later.',
          err.retryAfterSeconds,
          err,
        );
      }
      const reason = reasonOf(err);
      // Whatever jose refuses is about the token; anything else is too, since
      // every key was checked at construction: no input reaches a 500.
      throw invalid(reason ?? 'malformed', err);
    }
    const payload = result!.payload as Record<string, unknown>;
    const protectedHeader = result!.protectedHeader as Record<string, unknown>;
    if (duplicateClaims(token)) throw invalid('malformed');
    // jose checks that `iat` is in the past only with maxTokenAge. A token
    // issued later than now (beyond the tolerance) comes from a clock or an
    // issuer that cannot be right, and with it `iat`-based age checks of any
    // later module would read a negative age: refuse it (RFC 7519 §4.1.6).
    if (typeof payload.iat === 'number' && payload.iat * 1000 - clockToleranceMs > now) {
      throw invalid('not-yet-valid');
    }
    let init: PrincipalInit | undefined;
    try {
      init = mapPrincipal(payload, protectedHeader);
    } catch (cause) {
      throw invalid('claims', cause);
    }
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    const principal = buildPrincipal(init, payload, 'jwt', exp);
    if (principal === undefined) throw invalid('claims');
    return { payload, header: protectedHeader, principal };
  }

  return { kind: 'jwt', verify };
}
