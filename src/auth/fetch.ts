/**
 * The one outbound HTTP call of `restwell/auth` (a JWKS, a token
 * introspection endpoint): bounded in time and in size, no redirects, and
 * only to `https:` (or `http:` on a loopback address, for a sidecar or a
 * test), since whoever can rewrite a key set or an introspection answer can
 * mint tokens.
 */
import { isIP } from 'node:net';
import { invalidOption } from '../core/errors.js';

/** The `fetch` restwell calls; the global one unless a test or a proxy gives its own. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** An outbound call that failed: unreachable, timed out, not 200, too large, or not JSON. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  /** `timeout`, `network`, `status`, `size` or `body`. */
  readonly kind: 'timeout' | 'network' | 'status' | 'size' | 'body';
  constructor(kind: UpstreamError['kind'], message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
  }
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Checks an endpoint URL at construction: absolute, `https:` (or `http:` to a
 * loopback address), no credentials in it. Returns its string form.
 */
export function checkEndpoint(module: string, option: string, value: unknown): string {
  let url: URL;
  try {
    url = new URL(value instanceof URL ? value.href : (value as string));
  } catch {
    invalidOption(module, option, 'an absolute https: URL', value);
  }
  if (typeof value !== 'string' && !(value instanceof URL)) {
    invalidOption(module, option, 'an absolute https: URL', value);
  }
  if (url.username !== '' || url.password !== '') {
    // The message must not repeat the URL: it holds a password.
    throw new TypeError(
      `restwell/${module}: option "${option}" must not carry credentials in the URL; pass them as options.`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    invalidOption(module, option, 'an https: URL (http: only to a loopback address)', url.href);
  }
  return url.href;
}

/** Checks a positive integer option. */
export function positiveInteger(module: string, option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    invalidOption(module, option, 'a positive integer', value);
  }
  return value;
}

/** Checks a non-negative integer option. */
export function nonNegativeInteger(module: string, option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    invalidOption(module, option, 'a non-negative integer', value);
  }
  return value;
}

/** What {@link fetchJson} is asked to do. */
export interface JsonRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  fetch: FetchFunction;
}

/**
 * Fetches a JSON document. The whole exchange, headers and body, must end
 * within `timeoutMs`, and the body may not exceed `maxBytes`: a server that
 * hangs, trickles or floods fails with {@link UpstreamError}, never holds a
 * request for longer.
 */
export async function fetchJson(request: JsonRequest): Promise<unknown> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), request.timeoutMs);
  try {
    let response: Response;
    try {
      response = await request.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        redirect: 'error',
        signal: controller.signal,
      });
    } catch (cause) {
      if (controller.signal.aborted) {
        throw new UpstreamError('timeout', `no answer within ${request.timeoutMs} ms`, { cause });
      }
      throw new UpstreamError('network', 'request failed', { cause });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      throw new UpstreamError('status', `answered ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > request.maxBytes) {
      await response.body?.cancel().catch(() => {});
      throw new UpstreamError('size', `body larger than ${request.maxBytes} bytes`);
    }
    const bytes = await readBounded(response, request.maxBytes, controller, request.timeoutMs);
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    } catch (cause) {
      throw new UpstreamError('body', 'body is not JSON', { cause });
    }
  } finally {
    clearTimeout(timer);
  }
}

async function readBounded(
  response: Response,
  maxBytes: number,
  controller: AbortController,
  timeoutMs: number,
): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (reader === undefined) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new UpstreamError('size', `body larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (cause) {
    if (cause instanceof UpstreamError) throw cause;
    if (controller.signal.aborted) {
      throw new UpstreamError('timeout', `no complete answer within ${timeoutMs} ms`, { cause });
    }
    throw new UpstreamError('network', 'reading the answer failed', { cause });
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
