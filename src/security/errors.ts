import { RestwellError, type RestwellErrorCode } from '../core/errors.js';

/** The problem codes `restwell/security` adds to the registry. */
export type SecurityProblemCode =
  | 'https-required'
  | 'cors-preflight-refused'
  | 'path-traversal'
  | 'ambiguous-path'
  | 'invalid-request-target'
  | 'null-byte'
  | 'invalid-percent-encoding'
  | 'duplicate-header'
  | 'invalid-host';

/** A code of this module as the base class takes it (the core registry lists it). */
function code(value: SecurityProblemCode): RestwellErrorCode {
  return value;
}

/**
 * 403, code `https-required`: the request came over plain HTTP (the socket,
 * or a trusted proxy's `X-Forwarded-Proto`, says so) and this API answers
 * HTTPS only. 403 rather than 421 (RFC 9110 §15.5.20), because a client may
 * retry a 421 on another connection whatever the method, resending the body
 * in clear; and rather than 426, which browsers do not act on. Whatever the
 * request carried has already crossed the network unencrypted: rotate
 * credentials that were sent this way.
 */
export class HttpsRequiredError extends RestwellError {
  override readonly name = 'HttpsRequiredError';
  constructor() {
    super(code('https-required'), 403, 'HTTPS required', {
      detail:
        'This API is served over HTTPS only. Repeat the request with https://, and treat any credential it carried as exposed.',
    });
  }
}

/** Why a CORS preflight was refused. */
export type CorsRefusal = 'origin' | 'method' | 'headers';

const CORS_DETAILS: Readonly<Record<CorsRefusal, string>> = {
  origin: 'Cross-origin requests from this origin are not allowed.',
  method: 'This method is not allowed in cross-origin requests.',
  headers: 'A requested header is not allowed in cross-origin requests.',
};

/**
 * 403, code `cors-preflight-refused`: a preflight (`OPTIONS` with `Origin`
 * and `Access-Control-Request-Method`) asked for something the policy does
 * not allow. The answer carries no CORS header at all, so the browser fails
 * the request (Fetch: a preflight fails without a matching
 * `Access-Control-Allow-Origin`, and without an ok status); the problem
 * document tells a developer looking at the network panel, and the log, why.
 * `reason` is also the `reason` extension member.
 */
export class CorsPreflightRefusedError extends RestwellError {
  override readonly name = 'CorsPreflightRefusedError';
  /** Which part of the preflight was refused. */
  readonly reason: CorsRefusal;
  constructor(reason: CorsRefusal) {
    super(code('cors-preflight-refused'), 403, `CORS preflight refused (${reason})`, {
      detail: CORS_DETAILS[reason],
      extensions: { reason },
    });
    this.reason = reason;
  }
}

/** Where in the request target a hygiene check found its problem. */
export type TargetPart = 'path' | 'query';

/** The codes of {@link MalformedTargetError}. */
export type MalformedTargetCode = Extract<
  SecurityProblemCode,
  | 'path-traversal'
  | 'ambiguous-path'
  | 'invalid-request-target'
  | 'null-byte'
  | 'invalid-percent-encoding'
>;

const TARGET_DETAILS: Readonly<Record<MalformedTargetCode, string>> = {
  'path-traversal': 'The path contains a dot-segment (".." or "."), in some spelling.',
  'ambiguous-path':
    'The path contains an encoded "/" or "\\", or a raw "\\"; send "/" only as a separator.',
  'invalid-request-target':
    'The request target has a fragment ("#"), which a request never carries (RFC 9112 §3.2.1); send "#" percent-encoded as %23.',
  'null-byte': 'The request target contains a NUL byte.',
  'invalid-percent-encoding':
    'The request target is not validly percent-encoded (RFC 3986 §2.1): a "%" must be followed by two hex digits, and a path must decode to UTF-8.',
};

/**
 * 400: the request target (its path or query) is malformed in a way that
 * serves only to confuse some component on the way (a router, a proxy, a file
 * system): a dot-segment in any spelling, an encoded separator, a fragment,
 * a NUL byte, broken percent-encoding. `in` says which part (also the `in` extension
 * member); the target itself is never echoed.
 */
export class MalformedTargetError extends RestwellError {
  override readonly name = 'MalformedTargetError';
  /** Which part of the target. */
  readonly part: TargetPart;
  /** The problem code, typed as one of this class's: the same value as `code`. */
  readonly reason: MalformedTargetCode;
  constructor(which: MalformedTargetCode, part: TargetPart) {
    super(code(which), 400, 'Bad Request', {
      detail: TARGET_DETAILS[which],
      extensions: { part },
    });
    this.part = part;
    this.reason = which;
  }
}

/**
 * 414 URI Too Long (RFC 9110 §15.5.15), code `uri-too-long`: the path or the
 * query is longer than the configured limit. `part` and `maxLength` are
 * also extension members.
 */
export class TargetTooLongError extends RestwellError {
  override readonly name = 'TargetTooLongError';
  /** Which part of the target. */
  readonly part: TargetPart;
  readonly maxLength: number;
  constructor(part: TargetPart, maxLength: number) {
    super('uri-too-long', 414, 'URI Too Long', {
      detail: `The ${part} is longer than ${maxLength} characters.`,
      extensions: { part, maxLength },
    });
    this.part = part;
    this.maxLength = maxLength;
  }
}

/**
 * 431 Request Header Fields Too Large (RFC 6585 §5), code
 * `request-header-fields-too-large`: one header's value is longer than the
 * configured limit. `header` (lower case) and `maxLength` are also extension
 * members; the value is never echoed.
 */
export class HeaderTooLargeError extends RestwellError {
  override readonly name = 'HeaderTooLargeError';
  /** The header's name, lower case. */
  readonly header: string;
  readonly maxLength: number;
  constructor(header: string, maxLength: number) {
    super('request-header-fields-too-large', 431, 'Request Header Fields Too Large', {
      detail: `The ${header} header is longer than ${maxLength} bytes.`,
      extensions: { header, maxLength },
    });
    this.header = header;
    this.maxLength = maxLength;
  }
}

/**
 * 431 Request Header Fields Too Large (RFC 6585 §5), code
 * `request-header-fields-too-large`: the request has more header field lines
 * than the configured limit. Past a count of its own (about a thousand lines
 * by default, `server.maxHeadersCount`), Node drops the remaining lines
 * without a word, so a second `Authorization` or `Host` placed after a
 * thousand filler lines would go unseen by every check here while a proxy in
 * front acted on it. `maxCount` is also an extension member.
 */
export class TooManyHeadersError extends RestwellError {
  override readonly name = 'TooManyHeadersError';
  readonly maxCount: number;
  constructor(maxCount: number) {
    super('request-header-fields-too-large', 431, 'Request Header Fields Too Large', {
      detail: `The request has more than ${maxCount} header fields.`,
      extensions: { maxCount },
    });
    this.maxCount = maxCount;
  }
}

/**
 * 400, code `duplicate-header`: a header that must be sent once came in more
 * than one field line (RFC 9110 §5.3; for `Host`, RFC 9112 §3.2 requires a
 * 400). Node keeps the first of several `Host`, `Authorization` or
 * `Content-Type` lines and drops the rest, while a proxy in front may have
 * acted on the last: the two would disagree about who is calling, or where.
 * `header` (lower case) is also an extension member.
 */
export class DuplicateHeaderError extends RestwellError {
  override readonly name = 'DuplicateHeaderError';
  /** The header's name, lower case. */
  readonly header: string;
  constructor(header: string) {
    super(code('duplicate-header'), 400, 'Bad Request', {
      detail: `The ${header} header must be sent once; the request has several.`,
      extensions: { header },
    });
    this.header = header;
  }
}

/**
 * 400, code `invalid-host`: the `Host` header is not `host[:port]` (RFC 9112
 * §3.2 requires a 400 for an invalid Host field value).
 */
export class InvalidHostError extends RestwellError {
  override readonly name = 'InvalidHostError';
  constructor() {
    super(code('invalid-host'), 400, 'Bad Request', {
      detail: 'The Host header is not a valid host name or address, with an optional port.',
    });
  }
}
