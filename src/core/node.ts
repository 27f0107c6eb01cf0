/**
 * Context building blocks for Node's `http` request and response objects, shared
 * by the adapters. An adapter supplies a {@link FrameworkBinding} (where its
 * framework keeps the parsed body, route and params) and a response view; this
 * file supplies everything that is the same across Node frameworks.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type {
  Context,
  ContextState,
  RequestView,
  ResponseHeaders,
  ResponseView,
} from './context.js';
import type { HeaderValue } from './errors.js';
import { compileTrust, resolveClientIp, type TrustProxy } from './ip.js';
import { defaultLogger, type Logger } from './logger.js';
import type { ProblemOptions } from './problem.js';
import { generateTraceId, parseTraceparent } from './trace.js';

/** Options every adapter accepts. */
export interface AdapterOptions {
  /**
   * Which proxies' `X-Forwarded-For` / `X-Forwarded-Proto` to believe when
   * resolving the client IP and protocol. Never trusted by default.
   * See {@link TrustProxy}. @default false
   */
  trustProxy?: TrustProxy;
  /** Where server-side errors and warnings go. @default one JSON line per entry on stderr */
  logger?: Logger;
  /** How errors are rendered as RFC 9457 problem details. @default {} */
  problems?: ProblemOptions;
  /**
   * Response header that echoes the request's trace id; `false` to send none.
   * @default 'Trace-Id'
   */
  traceHeader?: string | false;
  /**
   * Answer requests no route handled with a 404 problem instead of the
   * framework's default page. @default true
   */
  notFound?: boolean;
}

/** Adapter options validated and compiled once, when the adapter is created. */
export interface AdapterSettings {
  trusted: (address: string, hop: number) => boolean;
  logger: Logger;
  problems: ProblemOptions;
  traceHeader: string | false;
  notFound: boolean;
}

export function resolveAdapterOptions(options: AdapterOptions = {}): AdapterSettings {
  const {
    trustProxy = false,
    logger = defaultLogger,
    problems = {},
    traceHeader = 'Trace-Id',
  } = options;
  if (
    traceHeader !== false &&
    (typeof traceHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(traceHeader))
  ) {
    throw new TypeError(
      `restwell: option "traceHeader" must be a header name or false, got ${String(traceHeader)}.`,
    );
  }
  if (typeof logger?.error !== 'function' || typeof logger.warn !== 'function') {
    throw new TypeError('restwell: option "logger" must have error(), warn() and info() methods.');
  }
  if (problems.typeBase !== undefined && typeof problems.typeBase !== 'string') {
    throw new TypeError('restwell: option "problems.typeBase" must be a URI string.');
  }
  return {
    trusted: compileTrust(trustProxy),
    logger,
    problems,
    traceHeader,
    notFound: options.notFound ?? true,
  };
}

/** Where a framework keeps what it parsed. */
export interface FrameworkBinding {
  readonly url: string;
  getBody(): unknown;
  setBody(value: unknown): void;
  getRawBody(): Uint8Array | undefined;
  setRawBody(value: Uint8Array | undefined): void;
  route(): string | undefined;
  params(): Readonly<Record<string, string>>;
}

class NodeRequestView implements RequestView {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  private queryCache: URLSearchParams | undefined;
  private ipCache: string | undefined | null = null;

  constructor(
    private readonly req: IncomingMessage,
    private readonly binding: FrameworkBinding,
    private readonly settings: AdapterSettings,
  ) {
    this.method = (req.method ?? 'GET').toUpperCase();
    this.url = binding.url;
    const q = this.url.indexOf('?');
    this.path = q < 0 ? this.url : this.url.slice(0, q);
  }

  get query(): URLSearchParams {
    if (this.queryCache === undefined) {
      const q = this.url.indexOf('?');
      this.queryCache = new URLSearchParams(q < 0 ? '' : this.url.slice(q + 1));
    }
    return this.queryCache;
  }

  get headers(): Readonly<IncomingHttpHeaders> {
    return this.req.headers;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  get ip(): string | undefined {
    if (this.ipCache === null) {
      this.ipCache = resolveClientIp(
        this.req.socket?.remoteAddress,
        this.header('x-forwarded-for'),
        this.settings.trusted,
      );
    }
    return this.ipCache;
  }

  get protocol(): 'http' | 'https' {
    if ((this.req.socket as TLSSocket | undefined)?.encrypted) return 'https';
    const remote = this.req.socket?.remoteAddress;
    const forwarded = this.header('x-forwarded-proto');
    // Only the proxy that connected to us may speak for the protocol.
    if (forwarded !== undefined && remote !== undefined && this.settings.trusted(remote, 0)) {
      const first = forwarded.split(',')[0]?.trim().toLowerCase();
      if (first === 'https') return 'https';
    }
    return 'http';
  }

  get route(): string | undefined {
    return this.binding.route();
  }

  get params(): Readonly<Record<string, string>> {
    return this.binding.params();
  }

  get body(): unknown {
    return this.binding.getBody();
  }

  set body(value: unknown) {
    this.binding.setBody(value);
  }

  get rawBody(): Uint8Array | undefined {
    return this.binding.getRawBody();
  }

  set rawBody(value: Uint8Array | undefined) {
    this.binding.setRawBody(value);
  }

  get bodyConsumed(): boolean {
    return this.req.readableDidRead || this.req.readableEnded;
  }

  stream(): AsyncIterable<Uint8Array> {
    return this.req;
  }
}

/** Response headers backed by Node's own header store on `ServerResponse`. */
export class NodeResponseHeaders implements ResponseHeaders {
  constructor(private readonly res: ServerResponse) {}

  get(name: string): string | undefined {
    const v = this.res.getHeader(name);
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.join(', ') : String(v);
  }

  has(name: string): boolean {
    return this.res.hasHeader(name);
  }

  set(name: string, value: HeaderValue): void {
    this.res.setHeader(
      name,
      typeof value === 'number' ? String(value) : (value as string | string[]),
    );
  }

  append(name: string, value: string): void {
    const current = this.res.getHeader(name);
    if (current === undefined) this.res.setHeader(name, value);
    else if (Array.isArray(current)) this.res.setHeader(name, [...current, value]);
    else this.res.setHeader(name, [String(current), value]);
  }

  delete(name: string): void {
    this.res.removeHeader(name);
  }

  names(): string[] {
    return this.res.getHeaderNames();
  }
}

/** The context every adapter hands to restwell middlewares. */
export class NodeContext implements Context {
  readonly request: RequestView;
  readonly state: ContextState;
  private traceIdCache: string | undefined;

  constructor(
    readonly adapter: string,
    req: IncomingMessage,
    binding: FrameworkBinding,
    /** Adapters may swap the view, e.g. when they start holding the response back. */
    public response: ResponseView,
    readonly settings: AdapterSettings,
    state: ContextState = {},
  ) {
    this.request = new NodeRequestView(req, binding, settings);
    this.state = state;
  }

  get traceId(): string {
    if (this.traceIdCache === undefined) {
      this.traceIdCache = parseTraceparent(this.request.header('traceparent')) ?? generateTraceId();
    }
    return this.traceIdCache;
  }

  get log(): Logger {
    return this.settings.logger;
  }
}

/** Work every adapter does right before the response leaves: echo the trace id. */
export function finalizeResponse(ctx: NodeContext): void {
  const header = ctx.settings.traceHeader;
  if (header !== false && !ctx.response.headers.has(header))
    ctx.response.headers.set(header, ctx.traceId);
}
