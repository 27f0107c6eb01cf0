/**
 * Raw bytes on a TCP socket, for requests no HTTP client will send: repeated
 * Host or Authorization lines, raw backslashes and dot-segments, NUL bytes.
 * The request is written as given (latin1), the connection closed after it,
 * and the response parsed just enough to assert on.
 */
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import { connect } from 'node:net';
import { listen } from '../helpers/raw.js';

export interface SocketResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text, de-chunked when it was chunked. */
  body: string;
  /** Everything received, as is. */
  raw: string;
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return out;
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** Parses a response received on a socket (the first one, if several). */
export function parseResponse(raw: string): SocketResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : `${String(prev)}, ${value}`;
  }
  let body = end < 0 ? '' : raw.slice(end + 4);
  if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) body = dechunk(body);
  else if (headers['content-length'] !== undefined) {
    body = body.slice(0, Number(headers['content-length']));
  }
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), raw };
}

/** Writes `request` on a fresh connection to `port`; resolves with what came back once it closes. */
export function exchange(port: number, request: string): Promise<SocketResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(Buffer.from(request, 'latin1')));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('latin1'))));
  });
}

/** Starts `listener`, sends one raw request, stops it. */
export async function rawExchange(
  listener: RequestListener,
  request: string,
): Promise<SocketResponse> {
  const server = await listen(listener);
  try {
    return await exchange(server.port, request);
  } finally {
    await server.close();
  }
}

/** A request line and headers, `Connection: close` added; `lines` are header lines as sent. */
export function requestText(
  target: string,
  lines: readonly string[] = ['Host: api.example.com'],
  method = 'GET',
  body = '',
): string {
  return `${method} ${target} HTTP/1.1\r\n${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`;
}
