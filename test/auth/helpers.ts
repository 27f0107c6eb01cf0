/**
 * What the auth suites share: real keys and tokens signed by jose, a local
 * HTTP server to play a JWKS endpoint or an authorization server, and a
 * logger that remembers every line.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import type { Logger } from '../../src/core/logger.js';

export const ISSUER = 'https://id.example.com';
export const AUDIENCE = 'https://api.example.com';
export const SECRET = 'a-secret-of-thirty-two-bytes-at-least!!';

export interface KeyPair {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  pem: string;
  jwk: JWK;
}

/** A key pair for `alg`, with its public key as PEM and as a JWK carrying `kid` and `alg`. */
export async function keyPair(alg: string, kid = `${alg.toLowerCase()}-1`): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, pem: await exportSPKI(publicKey), jwk };
}

export const seconds = (ms: number) => Math.floor(ms / 1000);

/** A token with the usual claims (iss, aud, sub, iat, exp in an hour), any of them overridden. */
export async function sign(
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string; typ?: string; [name: string]: unknown },
  claims: JWTPayload = {},
  now = Date.now(),
): Promise<string> {
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'usr_ada',
    iat: seconds(now),
    exp: seconds(now) + 3600,
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

export const secretBytes = (s = SECRET) => new TextEncoder().encode(s);

/** base64url of a JSON value or a string. */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

/** An unsigned token (`alg: none`) with the usual claims. */
export function unsigned(
  claims: JWTPayload = {},
  header: Record<string, unknown> = { alg: 'none' },
) {
  const now = seconds(Date.now());
  return `${b64(header)}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_ada', iat: now, exp: now + 3600, ...claims })}.`;
}

/** A local HTTP server whose handler a test can swap; counts requests. */
export interface LocalServer {
  url: string;
  port: number;
  requests: number;
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  close(): Promise<void>;
}

export async function localServer(
  handler: LocalServer['handler'] = (_req, res) => res.end(),
): Promise<LocalServer> {
  const sockets = new Set<Socket>();
  const state = { handler, requests: 0 } as LocalServer;
  const server = createServer((req, res) => {
    state.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => state.handler(req, res, Buffer.concat(chunks).toString()));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  state.port = port;
  state.url = `http://127.0.0.1:${port}`;
  state.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** A logger that keeps every line, as JSON text, to grep for secrets. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(
      JSON.stringify({ level, message, ...fields }, (_k, v) =>
        v instanceof Error
          ? { name: v.name, message: v.message, stack: v.stack, cause: String(v.cause) }
          : v,
      ),
    );
  };
  return {
    lines,
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
  };
}

/** What a `WWW-Authenticate` header says, parsed strictly: challenges with quoted-string parameters. */
export function parseChallenges(
  header: string | undefined,
): Array<{ scheme: string; params: Record<string, string> }> {
  if (header === undefined) throw new Error('no WWW-Authenticate header');
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  const re =
    /\s*([A-Za-z][A-Za-z0-9-]*)((?:\s+[a-z_]+="[\x20\x21\x23-\x5B\x5D-\x7E]*"(?:\s*,\s*[a-z_]+="[\x20\x21\x23-\x5B\x5D-\x7E]*")*)?)\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  // biome-ignore lint/suspicious/noAssignInExpressions: a tokenizer loop
  while ((m = re.exec(header)) !== null && m[0].length > 0) {
    consumed = re.lastIndex;
    const params: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)) params[p[1]!] = p[2]!;
    out.push({ scheme: m[1]!, params });
  }
  if (consumed !== header.length) throw new Error(`unparsable WWW-Authenticate: ${header}`);
  return out;
}
