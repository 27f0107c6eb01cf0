/**
 * The Koa adapter (Koa 2 and 3): runs restwell middlewares inside a Koa app.
 * Translates only; every decision lives in the modules.
 *
 * Exported from `restwell/koa`.
 *
 * Koa already has the onion model and a settable body, so the adapter maps the
 * restwell context onto Koa's. Mount it first: errors thrown below it are
 * rendered as RFC 9457 problem details, and a request no route answered (Koa's
 * empty 404, or @koa/router's empty 405 with `Allow`) becomes a problem too.
 * A route whose 405 must pass through its own middleware answers it itself
 * with `rw.methodNotAllowed()`.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import Router from '@koa/router';
 * import { koaAdapter } from 'restwell/koa';
 *
 * const app = new Koa();
 * const rw = koaAdapter({ trustProxy: 'loopback' });
 * const router = new Router();
 * router.post('/v1/payments', rw(idempotency({ store, required: true })), createPayment);
 * router.all('/v1/payments', rw.methodNotAllowed()); // optional: the route's own 405
 * app.use(rw(jsonBody(), rateLimit({ ... })));
 * app.use(router.routes()).use(router.allowedMethods());
 * ```
 *
 * Handlers and Koa middleware reach the context with {@link contextOf}; its
 * `state` is Koa's own `ctx.state`.
 */
import { type IncomingMessage, METHODS, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { compose } from '../../core/compose.js';
import {
  type Context,
  isStreamBody,
  type Middleware,
  type Next,
  type Principal,
  type ResponseBody,
  type ResponseView,
} from '../../core/context.js';
import { MethodNotAllowedError, NotFoundError } from '../../core/errors.js';
import {
  ADAPTER_OPTIONS,
  type AdapterOptions,
  type AdapterSettings,
  checkPrincipalOption,
  type FrameworkBinding,
  finalizeResponse,
  installPrincipal,
  logAnswer,
  NodeContext,
  NodeResponseHeaders,
  noteProblem,
  resolveAdapterOptions,
} from '../../core/node.js';
import { renderProblem, renderStatusProblem } from '../../core/problem.js';
import {
  applyFraming,
  canonicalAllow,
  clearForLastResort,
  destroyBody,
  LAST_RESORT_CONTENT_TYPE,
  lastResortProblem,
  releaseReplaced,
} from '../../core/response.js';
import type { ValidatedBy } from '../../core/validate.js';

/** The parts of Koa's context that the adapter reads; structural, so no Koa types are needed. */
export interface KoaContext {
  req: IncomingMessage;
  res: ServerResponse;
  originalUrl: string;
  status: number;
  body: unknown;
  state: Record<string, unknown>;
  params?: Record<string, string>;
  _matchedRoute?: unknown;
  request: { body?: unknown; rawBody?: unknown };
}

/** Koa's `next`. */
export type KoaNext = () => Promise<unknown>;

/**
 * What a mount's validators tell Koa about the context: `ctx.request.body`
 * typed with the body schema's output when one validated it.
 */
export type KoaValidatedContext<V> = V extends { body: infer B }
  ? { request: { body: B } }
  : unknown;

/**
 * A Koa middleware. `V` is what the mount's validators checked: @koa/router
 * infers the next handlers' `ctx.request.body` from it, per route.
 */
export type KoaMiddleware<V = unknown> = (
  ctx: KoaContext & KoaValidatedContext<V>,
  next: KoaNext,
) => Promise<void>;

/** Options of {@link koaAdapter}: those every adapter takes, and Koa's own. */
export interface KoaAdapterOptions extends AdapterOptions {
  /**
   * Where the principal comes from when no middleware put one in `ctx.state`:
   * a function of Koa's context, read when a module (or a handler) first reads
   * `state.principal`, so that a mount after the auth middleware sees it. An
   * `undefined` result is not remembered. With koa-passport:
   * `principal: (ctx) => ctx.state.user ? { id: ctx.state.user.id } : undefined`.
   * @default undefined (the principal is whatever middleware sets)
   */
  principal?: (ctx: KoaContext) => Principal | undefined;
}

/** What {@link koaAdapter} returns: the mount function and its helper. */
export interface KoaAdapter {
  /**
   * Mounts restwell middlewares as one Koa middleware. When one of them is a
   * `validate()` with a body schema, the handlers after it see
   * `ctx.request.body` typed with the schema's output.
   */
  <const M extends readonly Middleware[]>(...middlewares: M): KoaMiddleware<ValidatedBy<M>>;
  /**
   * A @koa/router route's answer to the methods it does not route, after the
   * route's own middleware: `router.all(path, rw(deprecated(...)), rw.methodNotAllowed())`.
   * A 405 problem with `Allow` listing the methods the router routes for the
   * path (RFC 9110 §15.5.6), and OPTIONS answered with `Allow` and no content
   * (RFC 9110 §9.3.7): the answers `router.allowedMethods()` gets from the
   * adapter, and `rw.methodNotAllowed()` on Express. A method the router does
   * route for the path is passed on, so it may be mounted before the route's
   * methods too.
   */
  methodNotAllowed(): KoaMiddleware;
}

const STATE = Symbol.for('restwell.koa.context');
type WithState = KoaContext & { [STATE]?: NodeContext };

/**
 * The restwell context of a Koa request, for handlers and Koa middleware
 * mounted inside the first `rw(...)`: its `state` is Koa's `ctx.state`
 * (`principal`, `rateLimit`, validated parts), its `traceId` the one echoed to
 * the client, its `log` the adapter's logger. Throws a `TypeError` when no
 * restwell mount has seen the request yet.
 */
export function contextOf(ctx: object): Context {
  // Plain JavaScript may pass anything: the same TypeError, never a property read of undefined.
  const context = ctx === null || typeof ctx !== 'object' ? undefined : (ctx as WithState)[STATE];
  if (context === undefined) {
    throw new TypeError(
      'restwell/koa: contextOf() found no restwell context on this request; mount rw(...) before the code that calls it.',
    );
  }
  return context;
}

class KoaResponseView implements ResponseView {
  readonly headers: NodeResponseHeaders;
  /** Set once the outermost mount has decided the response. */
  decided = false;
  constructor(private readonly k: KoaContext) {
    this.headers = new NodeResponseHeaders(k.res);
  }

  get status(): number {
    return this.k.status;
  }

  set status(value: number) {
    this.k.status = value;
  }

  get body(): ResponseBody {
    const b = this.k.body;
    if (b === undefined || b === null) return null;
    if (typeof b === 'string' || b instanceof Uint8Array) return b;
    if (isStreamBody(b as ResponseBody)) return b as ResponseBody;
    // Koa serialises any other value as JSON when it responds; do it now so
    // that modules see the bytes that will be sent. Content-Type stays the
    // `application/json` Koa set when the object was assigned.
    const json = JSON.stringify(b);
    this.k.body = json;
    return json;
  }

  set body(value: ResponseBody) {
    releaseReplaced(this.k.res, this.k.body as ResponseBody, value);
    if (
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Uint8Array) &&
      !(value instanceof Readable) &&
      typeof value.getReader === 'function'
    ) {
      // Koa 2 cannot send a web ReadableStream; a Node stream works on both.
      this.body = Readable.fromWeb(value as NodeWebReadableStream<Uint8Array>);
      return;
    }
    if (value instanceof Readable) {
      // Koa 2 reports a stream's error once the head is sent but leaves the
      // response open; the client would wait forever. Abort it instead.
      const res = this.k.res;
      value.once('error', (err) => {
        if (!res.destroyed) res.destroy(err);
      });
    }
    this.k.body = value;
  }
}

/** Where Koa keeps what it parsed. A class, so that no closures are made per request. */
class KoaBinding implements FrameworkBinding {
  readonly url: string;
  constructor(private readonly k: KoaContext) {
    this.url = k.originalUrl;
  }
  getBody(): unknown {
    return this.k.request.body;
  }
  setBody(value: unknown): void {
    this.k.request.body = value;
  }
  getRawBody(): Uint8Array | undefined {
    const raw = this.k.request.rawBody;
    return raw instanceof Uint8Array ? raw : typeof raw === 'string' ? Buffer.from(raw) : undefined;
  }
  setRawBody(value: Uint8Array | undefined): void {
    this.k.request.rawBody = value;
  }
  route(): string | undefined {
    return typeof this.k._matchedRoute === 'string' ? this.k._matchedRoute : undefined;
  }
  params(): Readonly<Record<string, string>> {
    return this.k.params ?? {};
  }
}

type KoaOnError = (this: KoaContext, err: unknown) => void;

/**
 * Koa's `ctx.onerror` answers what fails after the middleware has run (Koa 2
 * pipes a stream body with `pipe()`, and a stream that fails before its first
 * byte reaches it) with a `text/plain` page. Installed once on the app's
 * context prototype (requests pay no property write), this answers a problem
 * document instead, for restwell requests, while nothing has been sent;
 * otherwise Koa reports it (its own `onerror`) and the response is aborted.
 * Requests no restwell mount entered keep Koa's `onerror` untouched.
 */
const patchedContexts = new WeakSet<object>();
const restwellOnErrors = new WeakSet<KoaOnError>();
function patchOnError(k: KoaContext): void {
  const proto = Object.getPrototypeOf(k) as { onerror?: KoaOnError } | null;
  if (proto === null || patchedContexts.has(proto)) return;
  patchedContexts.add(proto);
  const koaOnError = proto.onerror;
  // Already in place through another adapter of the same app.
  if (typeof koaOnError === 'function' && restwellOnErrors.has(koaOnError)) return;
  const onerror = function onerror(this: WithState, err: unknown): void {
    if (this[STATE] === undefined) {
      if (typeof koaOnError === 'function') koaOnError.call(this, err);
      return;
    }
    restwellOnError(this, err, koaOnError);
  };
  restwellOnErrors.add(onerror);
  Object.defineProperty(proto, 'onerror', { configurable: true, writable: true, value: onerror });
}

function restwellOnError(k: WithState, err: unknown, koaOnError: KoaOnError | undefined): void {
  if (err === null || err === undefined) return;
  const ctx = k[STATE];
  const res = k.res;
  // Only once the outermost mount has decided the response (Koa also calls
  // onerror when the connection fails mid-request), and only to a client
  // still there: a reset connection is not a server error to answer or log.
  if (
    ctx === undefined ||
    !(ctx.response instanceof KoaResponseView && ctx.response.decided) ||
    res.headersSent ||
    !res.writable ||
    res.destroyed ||
    res.socket === null ||
    res.socket.destroyed
  ) {
    if (typeof koaOnError === 'function') koaOnError.call(k, err);
    // Koa 2 returns here once the head is out and leaves the response open
    // (pipe() does not end it): the client would wait forever for the rest.
    if (!res.writableFinished && !res.destroyed) res.destroy();
    return;
  }
  try {
    // What the failed answer set goes; the policy headers (nosniff, HSTS, CORS, ...) hold for this one too.
    clearForLastResort(res);
    renderProblem(ctx, err, ctx.settings.problems);
    finalizeResponse(ctx);
    applyFraming(res, k.status, false, ctx.settings.traceHeader);
    res.end(k.body as string);
  } catch (failure) {
    try {
      lastResort(ctx, k, ctx.settings, failure);
      res.end(k.body as string);
    } catch {
      res.destroy();
    }
  }
}

const KOA_OPTIONS = [...ADAPTER_OPTIONS];

/**
 * Creates the Koa adapter: `rw(...middlewares)` mounts restwell middlewares as one Koa middleware.
 * Mount the first one outermost, so that errors below it become problems. Options are checked
 * once, here.
 */
export function koaAdapter(options: KoaAdapterOptions = {}): KoaAdapter {
  const settings = resolveAdapterOptions(options, 'koa', KOA_OPTIONS);
  checkPrincipalOption('koa', options.principal);
  const principal = options.principal;

  /** The request's context, made by the outermost mount. */
  function enter(k: WithState, view: KoaResponseView): NodeContext {
    const binding = new KoaBinding(k);
    // Share Koa's own state object, so that `ctx.state.principal` set by Koa middleware is visible to restwell.
    const ctx = new NodeContext('koa', k.req, binding, view, settings, k.state);
    if (principal !== undefined) installPrincipal(ctx.state, k, principal);
    k[STATE] = ctx;
    patchOnError(k);
    return ctx;
  }

  const adapter = function mount(...middlewares: Middleware[]): KoaMiddleware {
    const run = compose(middlewares);
    return async function restwell(k, next) {
      const existing = (k as WithState)[STATE];
      if (existing !== undefined) {
        await run(existing, next as Next);
        return;
      }
      const view = new KoaResponseView(k);
      const ctx = enter(k as WithState, view);
      let failed = false;
      let error: unknown;
      try {
        await run(ctx, next as Next);
      } catch (err) {
        failed = true;
        error = err;
      }
      // The post-chain step: everything below ran; the response is decided here.
      try {
        if (failed) {
          const doc = renderProblem(ctx, error, settings.problems);
          if (settings.debug !== undefined) noteProblem(ctx, doc.code);
        } else {
          routerAnswer(ctx, k);
          if (settings.notFound) renderStatusProblem(ctx, settings.problems);
        }
        finalizeResponse(ctx);
        applyFraming(k.res, k.status, isStreamBody(k.body as ResponseBody), settings.traceHeader);
        if (settings.debug !== undefined) logAnswer(ctx, k.status);
      } catch (failure) {
        try {
          lastResort(ctx, k, settings, failure);
        } catch {
          // Node itself refused: abort, so the client is not left waiting.
          k.res.destroy();
        }
      }
      view.decided = true;
    };
  } as KoaAdapter;

  adapter.methodNotAllowed = methodNotAllowed;
  return adapter;
}

/** The middlewares `rw.methodNotAllowed()` made: a layer holding one names no method of its own. */
const answersOtherMethods = new WeakSet<object>();

/** What one @koa/router layer says the path supports, per layer (layers outlive requests). */
const layerMethods = new WeakMap<object, readonly string[]>();

/**
 * The methods a @koa/router layer routes, as `Allow` names them. A layer made
 * by `router.all()` (every method Node knows) or holding `rw.methodNotAllowed()`
 * accepts any method to answer it, so it names none: counting it would list
 * every method in `Allow`. A `router.use()` layer has no methods.
 */
function methodsOf(layer: unknown): readonly string[] {
  if (layer === null || typeof layer !== 'object') return [];
  const cached = layerMethods.get(layer);
  if (cached !== undefined) return cached;
  const { methods, stack } = layer as { methods?: unknown; stack?: unknown };
  let named: readonly string[] = [];
  if (Array.isArray(methods)) {
    const own = methods.filter((m): m is string => typeof m === 'string');
    const upper = new Set(own.map((m) => m.toUpperCase()));
    const anyMethod = METHODS.every((m) => upper.has(m));
    const answers = Array.isArray(stack) && stack.some((fn) => answersOtherMethods.has(fn));
    if (!anyMethod && !answers) named = own;
  }
  layerMethods.set(layer, named);
  return named;
}

function methodNotAllowed(): KoaMiddleware {
  const middleware: KoaMiddleware = async function restwellMethodNotAllowed(k, next) {
    // What @koa/router matched for this path, all of it (the layers before and after this one):
    // what its allowedMethods() reads, so that both give the same `Allow`.
    const matched = (k as { matched?: unknown }).matched;
    if (!Array.isArray(matched)) {
      throw new TypeError(
        'restwell/koa: methodNotAllowed() found no @koa/router match on this request; mount it in a route: router.all(path, rw.methodNotAllowed()).',
      );
    }
    const routed = new Set<string>();
    for (const layer of matched) for (const m of methodsOf(layer)) routed.add(m.toUpperCase());
    const method = (k.req.method ?? 'GET').toUpperCase();
    const allow = canonicalAllow(routed);
    if (method === 'OPTIONS') {
      // As allowedMethods() answers it: 200, `Allow`, no content (RFC 9110 §9.3.7); the outermost
      // mount's routerAnswer() drops the text/plain Koa gives '', as it does for that answer.
      k.status = 200;
      k.body = '';
      k.res.setHeader('allow', allow.join(', '));
      // A route that routes OPTIONS itself still runs: answered already, so that allowedMethods()
      // leaves it alone (it would count this all() layer and list every method Node knows).
      if (routed.has('OPTIONS')) await next();
      return;
    }
    // HEAD follows GET (RFC 9110 §9.3.2): @koa/router routes HEAD with every GET.
    if (routed.has(method) || (method === 'HEAD' && routed.has('GET'))) {
      await next();
      return;
    }
    throw new MethodNotAllowedError(method, allow);
  };
  answersOtherMethods.add(middleware);
  return middleware;
}

/**
 * @koa/router's own answers, made to agree with the Express adapter: a known
 * path with a method it does not route (TRACE, PROPFIND, ...) is a 405 with the
 * same detail and the same `Allow` order (the router answers an unknown
 * method with a bare 501, which would be logged as a server error: the server
 * implements no such method for this resource, RFC 9110 §15.5.6); an OPTIONS
 * answer lists `Allow` in the same order, with no content type for no content.
 */
function routerAnswer(ctx: NodeContext, k: KoaContext): void {
  const allow = k.res.getHeader('allow');
  if (allow === undefined) return;
  const status = k.status;
  const methods = canonicalAllow(String(allow).split(','));
  if ((status === 405 || status === 501) && (k.body === undefined || k.body === null)) {
    // The router answers 501 to a method it does not implement even where no
    // route matched the path: that is a 404, as on Express.
    if (methods.length === 0) {
      k.res.removeHeader('allow');
      renderProblem(ctx, new NotFoundError(), ctx.settings.problems);
      return;
    }
    renderProblem(
      ctx,
      new MethodNotAllowedError(ctx.request.method, methods),
      ctx.settings.problems,
    );
    return;
  }
  if (status === 200 && ctx.request.method === 'OPTIONS' && k.body === '') {
    k.res.setHeader('allow', methods.join(', '));
    k.res.removeHeader('content-type');
  }
}

/** The answer when rendering the real one failed: a static 500 problem, or an aborted response. */
function lastResort(
  ctx: NodeContext,
  k: KoaContext,
  settings: AdapterSettings,
  failure: unknown,
): void {
  try {
    settings.logger.error('restwell: rendering the response failed', {
      traceId: ctx.traceId,
      err: failure,
    });
  } catch {
    // The logger is what failed; the client still gets an answer.
  }
  const res = k.res;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  destroyBody(k.body as ResponseBody);
  clearForLastResort(res);
  const body = lastResortProblem(ctx.traceId);
  k.status = 500;
  k.body = body;
  res.setHeader('content-type', LAST_RESORT_CONTENT_TYPE);
  res.setHeader('cache-control', 'no-store');
  if (settings.traceHeader !== false) res.setHeader(settings.traceHeader, ctx.traceId);
}

export { validated } from '../../core/validate.js';
export type { AdapterOptions } from '../../core/node.js';
