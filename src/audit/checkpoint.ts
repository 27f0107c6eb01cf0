/**
 * Signed checkpoints: "log L had N records, the newest with hash H, at time
 * T", signed with ed25519 and kept somewhere other than the log. A hash chain
 * alone cannot show that its newest records were removed (what is left is
 * still a valid chain); a checkpoint can, since the log must still reach
 * record N with hash H.
 *
 * @module
 */

import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { invalidOption } from '../core/errors.js';
import { canonicalJson } from '../idempotency/canonical-json.js';

/** A signed statement of a log's head. */
export interface AuditCheckpoint {
  log: string;
  seq: number;
  head: string;
  /** When it was made, RFC 3339 in UTC. */
  time: string;
  /** base64url ed25519 signature of the canonical JSON of the other members. */
  signature: string;
}

/** Checks that a key is an ed25519 key of the wanted type. */
export function checkEd25519(option: string, key: unknown, type: 'private' | 'public'): KeyObject {
  const k = key as KeyObject;
  if (
    k === null ||
    typeof k !== 'object' ||
    typeof k.asymmetricKeyType !== 'string' ||
    k.asymmetricKeyType !== 'ed25519' ||
    k.type !== type
  ) {
    invalidOption(
      'audit',
      option,
      `an ed25519 ${type} KeyObject (crypto.generateKeyPairSync('ed25519'))`,
      key,
    );
  }
  return k;
}

/** Signs a checkpoint of `head` with an ed25519 private key. */
export function signCheckpoint(
  privateKey: KeyObject,
  statement: Omit<AuditCheckpoint, 'signature'>,
): AuditCheckpoint {
  const body = {
    log: statement.log,
    seq: statement.seq,
    head: statement.head,
    time: statement.time,
  };
  const signature = sign(null, Buffer.from(canonicalJson(body) as string), privateKey).toString(
    'base64url',
  );
  return { ...body, signature };
}

/** Whether a checkpoint's signature verifies under `publicKey` (a private key's public half works too). */
export function verifyCheckpoint(publicKey: KeyObject, checkpoint: AuditCheckpoint): boolean {
  try {
    const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
    const { log, seq, head, time, signature } = checkpoint;
    if (typeof signature !== 'string') return false;
    return verify(
      null,
      Buffer.from(canonicalJson({ log, seq, head, time }) as string),
      key,
      Buffer.from(signature, 'base64url'),
    );
  } catch {
    return false;
  }
}
