/**
 * A raw HTTP client for the caching tests: supertest (superagent) decodes
 * gzip and brotli bodies by itself, and these tests need the bytes on the wire,
 * and when each of them arrived.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type RequestListener, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body exactly as sent (still content-coded). */
  body: Buffer;
}

export interface Listening {
  port: number;
  close(): Promise<void>;
}

/** Starts `listener` on a random loopback port. */
export async function listen(listener: RequestListener): Promise<Listening> {
  const server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Called with each body chunk as it arrives. */
  onChunk?: (chunk: Buffer) => void;
}

/** One request on a fresh connection; resolves when the response has ended. */
export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        method: req.method ?? 'GET',
        path: req.path,
        headers: { connection: 'close', ...req.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          req.onChunk?.(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

/** Starts the listener, runs one request, stops it. */
export async function raw(listener: RequestListener, req: RawRequest): Promise<RawResponse> {
  const server = await listen(listener);
  try {
    return await rawRequest(server.port, req);
  } finally {
    await server.close();
  }
}
