/**
 * Context building blocks for Node's `http` request and response objects, shared
 * by the adapters. An adapter supplies a {@link FrameworkBinding} (where its
 * framework keeps the parsed body, route and params) and a response view; this
 * file supplies everything that is the same across Node frameworks.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import {
  answeredBy,
  answerOf,
  type Context,
  type ContextState,
  type Principal,
  type RequestView,
  type ResponseHeaders,
  type ResponseView,
} from './context.js';
import { checkOptions, type HeaderValue, invalidOption } from './errors.js';
import { compileTrust, resolveClientIp, resolveForwardedProto, type TrustProxy } from './ip.js';
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
  /**
   * Where server-side errors and warnings go: an object with `error`, `warn`
   * and `info` methods (and `debug` when the `debug` option is on), checked
   * when the adapter is created. @default one JSON line per entry on stderr
   */
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
  /**
   * Log one debug line per request that a module answered itself (a 304, a
   * 412, a 429, an idempotent replay, a problem), naming the module and why:
   * see `answeredBy()`. Requires a logger with a `debug` method. @default false
   */
  debug?: boolean;
}

/** Adapter options validated and compiled once, when the adapter is created. */
export interface AdapterSettings {
  trusted: (address: string, hop: number) => boolean;
  logger: Logger;
  problems: ProblemOptions;
  traceHeader: string | false;
  notFound: boolean;
  /** The logger's debug method when the `debug` option is on, else `undefined`. */
  debug: ((message: string, fields?: Record<string, unknown>) => void) | undefined;
}

/** Names every adapter knows; an adapter adds its own. */
export const ADAPTER_OPTIONS = [
  'trustProxy',
  'logger',
  'problems',
  'traceHeader',
  'notFound',
  'debug',
  'principal',
] as const;

const LOGGER_METHODS = ['error', 'warn', 'info'] as const;

export function resolveAdapterOptions(
  options: AdapterOptions = {},
  module = 'core',
  known: readonly string[] = ADAPTER_OPTIONS,
): AdapterSettings {
  checkOptions(module, options, known);
  const {
    trustProxy = false,
    logger = defaultLogger,
    problems = {},
    traceHeader = 'Trace-Id',
    debug = false,
  } = options;
  if (
    traceHeader !== false &&
    (typeof traceHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(traceHeader))
  ) {
    invalidOption(module, 'traceHeader', 'a header name or false', traceHeader);
  }
  if (typeof debug !== 'boolean') invalidOption(module, 'debug', 'a boolean', debug);
  if (logger === null || typeof logger !== 'object') {
    invalidOption(module, 'logger', 'an object with error(), warn() and info() methods', logger);
  }
  // Every method the adapter and the modules call, checked now: a logger
  // without info() would otherwise turn the first info line into a 500.
  const required: readonly string[] = debug ? [...LOGGER_METHODS, 'debug'] : LOGGER_METHODS;
  for (const method of required) {
    if (typeof (logger as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new TypeError(
        `restwell/${module}: option "logger" has no ${method}() method; it needs ${required
          .map((m) => `${m}()`)
          .join(', ')}.`,
      );
    }
  }
  if (options.notFound !== undefined && typeof options.notFound !== 'boolean') {
    invalidOption(module, 'notFound', 'a boolean', options.notFound);
  }
  if (problems === null || typeof problems !== 'object') {
    invalidOption(module, 'problems', 'an object', problems);
  }
  checkOptions(`${module} problems`, problems, ['typeBase', 'instance', 'map']);
  if (problems.typeBase !== undefined && typeof problems.typeBase !== 'string') {
    invalidOption(module, 'problems.typeBase', 'a URI string', problems.typeBase);
  }
  if (
    problems.instance !== undefined &&
    typeof problems.instance !== 'boolean' &&
    typeof problems.instance !== 'function'
  ) {
    invalidOption(module, 'problems.instance', 'a boolean or a function', problems.instance);
  }
  if (problems.map !== undefined && typeof problems.map !== 'function') {
    invalidOption(module, 'problems.map', 'a function', problems.map);
  }
  return {
    trusted: compileTrust(trustProxy),
    logger,
    problems,
    traceHeader,
    notFound: options.notFound ?? true,
    debug: debug ? logger.debug?.bind(logger) : undefined,
  };
}

const PRINCIPAL_SLOT = Symbol('restwell.principal');

interface PrincipalSlot {
  source: unknown;
  resolve: (source: unknown) => Principal | undefined;
  value: Principal | undefined;
}

type WithPrincipalSlot = ContextState & { [PRINCIPAL_SLOT]?: PrincipalSlot };

function principalGetter(this: WithPrincipalSlot): Principal | undefined {
  const slot = this[PRINCIPAL_SLOT]!;
  if (slot.value !== undefined) return slot.value;
  // Not remembered while undefined: a read after the auth middleware ran sees its user.
  const principal = slot.resolve(slot.source);
  if (principal !== undefined) slot.value = principal;
  return principal;
}

function principalSetter(this: WithPrincipalSlot, value: Principal | undefined): void {
  this[PRINCIPAL_SLOT]!.value = value;
}

/**
 * Makes `state.principal` come from the framework's own request (`req.user`
 * set by passport, Koa's `ctx.state.user`), evaluated when first read, so
 * that a module mounted after the auth middleware sees it. A principal already
 * in the state (set by earlier middleware) is kept. Only requests of an adapter
 * with the `principal` option pay for it.
 */
export function installPrincipal<S>(
  state: ContextState,
  source: S,
  resolve: (source: S) => Principal | undefined,
): void {
  if (state.principal !== undefined || Object.hasOwn(state, 'principal')) return;
  (state as WithPrincipalSlot)[PRINCIPAL_SLOT] = {
    source,
    resolve: resolve as (source: unknown) => Principal | undefined,
    value: undefined,
  };
  Object.defineProperty(state, 'principal', {
    configurable: true,
    enumerable: true,
    get: principalGetter,
    set: principalSetter,
  });
}

/** Checks a `principal` option: a function of the framework's request, or absent. */
export function checkPrincipalOption(module: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    invalidOption(module, 'principal', 'a function of the request', value);
  }
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

// scheme "://" authority, of an absolute-form request target.
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * The origin form (`/path?query`) of a request target. A client may send the
 * absolute form (`GET http://host/path`) to any server, which must accept it
 * (RFC 9112 §3.2.2); routers match its path, so modules that scope by path
 * must see the same `/path`, not a string the client can spell many ways.
 * Costs one character test on an origin-form target.
 */
function originForm(url: string): string {
  if (url.charCodeAt(0) === 0x2f) return url;
  const m = ABSOLUTE_FORM.exec(url);
  if (m === null) return url;
  const rest = url.slice(m[0].length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

class NodeRequestView implements RequestView {
  readonly method: string;
  readonly url: string;
  readonly target: string;
  readonly path: string;
  private queryCache: URLSearchParams | undefined;
  private ipCache: string | undefined | null = null;

  constructor(
    private readonly req: IncomingMessage,
    private readonly binding: FrameworkBinding,
    private readonly settings: AdapterSettings,
  ) {
    this.method = (req.method ?? 'GET').toUpperCase();
    // A fragment is never part of a request target (RFC 9110 §7.1); a client
    // that sends one anyway is read as the frameworks read it (parseurl stops
    // at `#`), so restwell sees the path and query the router sees.
    this.target = originForm(binding.url);
    const hash = this.target.indexOf('#');
    this.url = hash < 0 ? this.target : this.target.slice(0, hash);
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

  get rawHeaders(): readonly string[] {
    return this.req.rawHeaders;
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
    const forwarded = this.header('x-forwarded-proto');
    if (forwarded === undefined) return 'http';
    // The value the trusted hop added, found by the same walk as the client IP.
    return resolveForwardedProto(
      this.req.socket?.remoteAddress,
      this.header('x-forwarded-for'),
      forwarded,
      this.settings.trusted,
    );
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

/**
 * The debug line of the `debug` option: which module answered the request
 * itself. Logged once per request, by the adapter's last step.
 */
export function logAnswer(ctx: NodeContext, status: number): void {
  const debug = ctx.settings.debug;
  if (debug === undefined) return;
  const answer = answerOf(ctx);
  if (answer === undefined) return;
  try {
    debug('answered by module', {
      traceId: ctx.traceId,
      method: ctx.request.method,
      path: ctx.request.path,
      status,
      module: answer.module,
      reason: answer.reason,
    });
  } catch {
    // A diagnostic line never changes the answer (a logger that throws would
    // otherwise turn a 304 or a 429 into the last-resort 500).
  }
}

/** A problem the adapter rendered is an answer too, for the debug line. */
export function noteProblem(ctx: Context, code: string): void {
  const answer = answerOf(ctx);
  answeredBy(ctx, answer?.module ?? 'problem', `${ctx.response.status} ${code}`);
}
