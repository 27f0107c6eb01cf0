/**
 * `Accept-Encoding` (RFC 9110 §12.5.3) and content-coding negotiation.
 * Framework-free: a header value in, a coding out.
 *
 * ```
 * Accept-Encoding = #( codings [ weight ] )
 * codings         = content-coding / "identity" / "*"
 * weight          = OWS ";" OWS "q=" qvalue
 * qvalue          = ( "0" [ "." *3DIGIT ] ) / ( "1" [ "." *3("0") ] )
 * ```
 */

/** The content codings restwell can produce, with Node's built-in zlib. */
export type Coding = 'br' | 'gzip' | 'deflate';

/** One member of an `Accept-Encoding` list. */
export interface AcceptedCoding {
  /** Lower-case coding name (`x-gzip` is read as `gzip`, §8.4.1.3). */
  readonly coding: string;
  /** Quality, 0 to 1; 0 means "not acceptable". */
  readonly q: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Parses an `Accept-Encoding` value. A member whose name is not a token (a
 * stray character) is skipped; a member that names a coding with a weight
 * that breaks the grammar (`br;q=2`, `gzip;q=0.0001`, `br;q`) is kept with
 * `q: 0`. A garbled member thus never makes the whole header unusable, and
 * never reads as "acceptable": skipping it would let a `*` in the same header
 * accept the coding the client tried to weigh (`br;q=0.00000, *` refuses br).
 * Parameters other than `q` are ignored.
 */
export function parseAcceptEncoding(value: string): AcceptedCoding[] {
  const out: AcceptedCoding[] = [];
  for (const member of value.split(',')) {
    const [rawName, ...params] = member.split(';');
    const name = rawName!.trim().toLowerCase();
    if (name.length === 0 || !TOKEN.test(name)) continue;
    let q = 1;
    let valid = true;
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq < 0) {
        valid = false;
        break;
      }
      const key = param.slice(0, eq).trim().toLowerCase();
      if (key !== 'q') continue;
      const raw = param.slice(eq + 1).trim();
      if (!QVALUE.test(raw)) {
        valid = false;
        break;
      }
      q = Number(raw);
    }
    out.push({ coding: name === 'x-gzip' ? 'gzip' : name, q: valid ? q : 0 });
  }
  return out;
}

/**
 * The outcome of negotiation: a coding to apply, `identity` (send as is), or
 * `undefined` when the client refused identity and accepts none of ours
 * (`identity;q=0` or `*;q=0`); a server may then answer 406 or, as restwell
 * does, send identity anyway (RFC 9110 §12.1: a server may disregard a
 * preference it cannot meet rather than fail the request).
 */
export type Negotiated = Coding | 'identity' | undefined;

/**
 * Picks the content coding for a response (RFC 9110 §12.5.3).
 *
 * - No header: identity. The RFC lets a server pick any coding then, but a
 *   client that did not ask (curl, a health check) most likely cannot decode.
 * - Empty header: identity only.
 * - Otherwise the highest q among `available` wins; ties go to the server's
 *   order in `available` (br before gzip). `*` stands for every coding not
 *   listed, identity included. Identity is acceptable unless `identity;q=0`,
 *   or `*;q=0` without an `identity` member, refuses it; when listed with a
 *   higher q than every coding, identity wins. A coding and identity with the
 *   same q: the coding wins (it saves bytes, and the client said both are fine).
 */
export function negotiateEncoding(
  header: string | undefined,
  available: readonly Coding[],
): Negotiated {
  if (header === undefined) return 'identity';
  const accepted = parseAcceptEncoding(header);
  if (accepted.length === 0) return 'identity';
  let star: number | undefined;
  let identity: number | undefined;
  const explicit = new Map<string, number>();
  for (const { coding, q } of accepted) {
    if (coding === '*') star = Math.max(star ?? 0, q);
    else if (coding === 'identity') identity = Math.max(identity ?? 0, q);
    else explicit.set(coding, Math.max(explicit.get(coding) ?? 0, q));
  }
  let best: Coding | undefined;
  let bestQ = 0;
  for (const coding of available) {
    const q = explicit.get(coding) ?? star ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  // Identity is acceptable by default (q just above nothing), unless excluded.
  const identityQ = identity ?? star ?? Number.MIN_VALUE;
  if (best !== undefined && bestQ >= identityQ) return best;
  return identityQ > 0 ? 'identity' : undefined;
}
