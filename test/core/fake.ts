/**
 * A framework-free context for unit tests of core middlewares: a request with
 * headers and an optional body, a response whose headers are a plain map, and a
 * logger that records its entries.
 */
import { Readable } from 'node:stream';
import type {
  Context,
  ContextState,
  ResponseBody,
  ResponseHeaders,
} from '../../src/core/context.js';
import type { HeaderValue } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';

export interface LogEntry {
  level: 'error' | 'warn' | 'info';
  message: string;
  fields: Record<string, unknown> | undefined;
}

export interface FakeRequest {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface FakeContext extends Context {
  readonly logs: LogEntry[];
  readonly sentHeaders: Map<string, HeaderValue>;
}

class MapHeaders implements ResponseHeaders {
  constructor(readonly map: Map<string, HeaderValue>) {}
  get(name: string) {
    const v = this.map.get(name.toLowerCase());
    return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
  }
  has(name: string) {
    return this.map.has(name.toLowerCase());
  }
  set(name: string, value: HeaderValue) {
    if (typeof value === 'string' && /[\r\n]/.test(value)) throw new TypeError('invalid header');
    this.map.set(name.toLowerCase(), value);
  }
  append(name: string, value: string) {
    const v = this.get(name);
    this.map.set(name.toLowerCase(), v === undefined ? value : `${v}, ${value}`);
  }
  delete(name: string) {
    this.map.delete(name.toLowerCase());
  }
  names() {
    return [...this.map.keys()];
  }
}

export function fakeContext(req: FakeRequest = {}, logger?: Logger): FakeContext {
  const logs: LogEntry[] = [];
  const log: Logger = logger ?? {
    error: (message, fields) => logs.push({ level: 'error', message, fields }),
    warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
    info: (message, fields) => logs.push({ level: 'info', message, fields }),
  };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  if (req.body !== undefined && headers['content-length'] === undefined) {
    headers['content-length'] = String(Buffer.byteLength(req.body));
  }
  const url = req.url ?? '/';
  const sentHeaders = new Map<string, HeaderValue>();
  let consumed = false;
  let parsed: unknown;
  let rawBody: Uint8Array | undefined;
  const response: { status: number; headers: ResponseHeaders; body: ResponseBody } = {
    status: 200,
    headers: new MapHeaders(sentHeaders),
    body: null,
  };
  const state: ContextState = {};
  return {
    logs,
    sentHeaders,
    adapter: 'fake',
    state,
    log,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    response,
    request: {
      method: req.method ?? 'POST',
      url,
      path: url.split('?')[0] ?? '/',
      query: new URLSearchParams(url.split('?')[1] ?? ''),
      headers,
      header: (name: string) => headers[name.toLowerCase()],
      ip: '127.0.0.1',
      protocol: 'http',
      route: undefined,
      params: {},
      get body() {
        return parsed;
      },
      set body(v: unknown) {
        parsed = v;
      },
      get rawBody() {
        return rawBody;
      },
      set rawBody(v: Uint8Array | undefined) {
        rawBody = v;
      },
      get bodyConsumed() {
        return consumed;
      },
      stream() {
        consumed = true;
        const bytes = req.body === undefined ? Buffer.alloc(0) : Buffer.from(req.body);
        return Readable.from([bytes]);
      },
    },
  };
}
