/**
 * The Express adapter (Express 4 and 5): runs restwell middlewares inside an
 * Express app. Translates only; every decision lives in the modules.
 *
 * Exported from `restwell/express`.
 *
 * The context is built once per request, however many times `rw(...)` is
 * mounted (globally and per route). Handlers' responses are captured so that
 * restwell middlewares see, and may replace, the final status, headers and body;
 * streaming responses pass through. Errors from handlers travel back through
 * the restwell middlewares (as they do in Koa) when `rw.errorHandler()` is
 * mounted last, and are rendered as RFC 9457 problem details.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { expressAdapter } from 'restwell/express';
 *
 * const app = express();
 * const rw = expressAdapter({ trustProxy: 'loopback' });
 * app.use(express.json());
 * app.use(rw(rateLimit({ ... })));
 * app.post('/v1/payments', rw(idempotency({ store, required: true })), createPayment);
 * app.use(rw.notFound());
 * app.use(rw.errorHandler());
 * ```
 *
 * Handlers and Express middleware reach the context with {@link contextOf}:
 * `contextOf(req).state` is `res.locals`, so what restwell keeps there
 * (`principal`, `rateLimit`, `valid`) and what Express middleware keeps there
 * are one object.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { compose } from '../../core/compose.js';
import {
  type Context,
  type ContextState,
  type Middleware,
  type Principal,
  preconditionsClaimed,
  seesResponse,
} from '../../core/context.js';
import { invalidOption, MethodNotAllowedError, NotFoundError } from '../../core/errors.js';
import {
  ADAPTER_OPTIONS,
  type AdapterOptions,
  checkPrincipalOption,
  type FrameworkBinding,
  finalizeResponse,
  installPrincipal,
  logAnswer,
  NodeContext,
  noteProblem,
  resolveAdapterOptions,
} from '../../core/node.js';
import { renderProblem } from '../../core/problem.js';
import { applyFraming, canonicalAllow } from '../../core/response.js';
import type { ValidatedBy } from '../../core/validate.js';
import {
  captureOf,
  DirectResponse,
  installHeadInterceptor,
  isCapturing,
  ResponseCapture,
  STATE,
  sendLastResort,
} from './capture.js';

/** The parts of Express's request that the adapter reads; structural, so no Express types are needed. */
// `body` and `params` are deliberately absent: declaring them here would make
// Express infer the types of the handlers mounted after `rw(...)` from ours.
export interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  route?: { path?: unknown; methods?: Record<string, boolean> };
}

/** What Express and its body parsers add to the request. */
interface ParsedRequest {
  body?: unknown;
  rawBody?: Uint8Array;
  params?: Record<string, string>;
}

/** Express's `next`: call it to pass on, or with an error to hand it to the error middleware. */
export type ExpressNext = (err?: unknown) => void;

/**
 * What a mount's validators tell Express about the request: `body` typed with
 * the body schema's output when one validated it, nothing otherwise (so that
 * Express keeps inferring the handler's types from the route).
 */
export type ExpressValidatedRequest<V> = V extends { body: infer B } ? { body: B } : unknown;

/**
 * An Express middleware. `V` is what the mount's validators checked: Express
 * infers the next handlers' `req.body` from it, per route.
 */
export type ExpressMiddleware<V = unknown> = (
  req: ExpressRequest & ExpressValidatedRequest<V>,
  res: ServerResponse,
  next: ExpressNext,
) => void;
/** An Express error middleware (four parameters), such as `rw.errorHandler()`. */
export type ExpressErrorMiddleware = (
  err: unknown,
  req: ExpressRequest,
  res: ServerResponse,
  next: ExpressNext,
) => void;

/** Options of {@link expressAdapter}: those every adapter takes, and Express's own. */
export interface ExpressAdapterOptions extends AdapterOptions {
  /**
   * Bytes of a response written in several chunks that are held in memory
   * before it is treated as a stream (and passed through). A body sent in one
   * `res.send()`/`res.end()` call is always held: it is in memory already.
   * @default 1_048_576
   */
  maxBufferedBytes?: number;
  /**
   * Where the principal comes from when no middleware put one in the state:
   * a function of Express's request, read when a module (or a handler) first
   * reads `state.principal`, so that a mount after the auth middleware sees
   * its user. An `undefined` result is not remembered. For passport:
   * `principal: (req) => (req.user?.id !== undefined ? { id: req.user.id } : undefined)`.
   * @default undefined (the principal is whatever middleware sets)
   */
  principal?: (req: ExpressRequest & { user?: AuthenticatedUser }) => Principal | undefined;
}

/** What an auth middleware (passport) leaves on `req.user`, as far as the adapter knows it. */
export interface AuthenticatedUser {
  id?: string | number;
  [key: string]: unknown;
}

/** What {@link expressAdapter} returns: the mount function and its helpers. */
export interface ExpressAdapter {
  /**
   * Mounts restwell middlewares as one Express middleware. When one of them is
   * a `validate()` with a body schema, the handlers after it see `req.body`
   * typed with the schema's output.
   */
  <const M extends readonly Middleware[]>(...middlewares: M): ExpressMiddleware<ValidatedBy<M>>;
  /** Last in the route list: an unmatched request becomes a 404 problem. */
  notFound(): ExpressMiddleware;
  /**
   * As a route's last handler (`app.route('/x').get(...).all(rw.methodNotAllowed())`):
   * a 405 problem with `Allow` listing the route's methods (RFC 9110 §15.5.6).
   */
  methodNotAllowed(): ExpressMiddleware;
  /** Last of all: hands errors back to the restwell middlewares, or renders them as problems. */
  errorHandler(): ExpressErrorMiddleware;
}

/** Where Express keeps what it parsed. A class, so that no closures are made per request. */
class ExpressBinding implements FrameworkBinding {
  readonly url: string;
  private readonly req: ExpressRequest & ParsedRequest;
  constructor(req: ExpressRequest) {
    this.req = req;
    this.url = req.originalUrl ?? req.url ?? '/';
  }
  getBody(): unknown {
    return this.req.body;
  }
  setBody(value: unknown): void {
    this.req.body = value;
  }
  // Kept here rather than on the request: adding a property to Node's request
  // object on every request costs more than the whole lookup.
  private raw: Uint8Array | undefined;
  getRawBody(): Uint8Array | undefined {
    return this.raw ?? this.req.rawBody;
  }
  setRawBody(value: Uint8Array | undefined): void {
    this.raw = value;
  }
  route(): string | undefined {
    const path = this.req.route?.path;
    return typeof path === 'string' ? path : undefined;
  }
  params(): Readonly<Record<string, string>> {
    return this.req.params ?? {};
  }
}

interface RequestState {
  ctx: NodeContext;
  /** Set once a middleware that reads the final response is mounted for this request. */
  capture: ResponseCapture | undefined;
  direct: DirectResponse;
}

type WithState = ExpressRequest & { [STATE]?: RequestState };
const DOWNSTREAM_PASSED = Promise.resolve();

/**
 * The restwell context of an Express request, for handlers and for Express
 * middleware mounted after the first `rw(...)`: its `state` is `res.locals`
 * (`principal`, `rateLimit`, validated parts), its `traceId` the one echoed to
 * the client, its `log` the adapter's logger. Throws a `TypeError` when no
 * restwell mount has seen the request yet.
 *
 * @example
 * ```ts
 * app.get('/v1/me', (req, res) => {
 *   const { traceId, state } = contextOf(req);
 *   res.json({ id: state.principal?.id, traceId, remaining: state.rateLimit?.remaining });
 * });
 * ```
 */
export function contextOf(req: object): Context {
  // Plain JavaScript may pass anything: the same TypeError, never a property read of undefined.
  const state = req === null || typeof req !== 'object' ? undefined : (req as WithState)[STATE];
  if (state === undefined) {
    throw new TypeError(
      'restwell/express: contextOf() found no restwell context on this request; mount rw(...) before the code that calls it.',
    );
  }
  return state.ctx;
}

/** Express's response as the adapter sees it: `req` and `locals` are Express's own. */
type ExpressResponse = ServerResponse & { req?: WithState; locals?: ContextState };

/**
 * The invariants of the response's head (src/core/response.ts), applied when
 * Node writes it, so that every response of a restwell request gets them,
 * whoever made it: a handler's own `res.status(304).end()`, Express's own 304
 * from `req.fresh`, a captured response restwell sends. Installed once, with
 * the capture's interceptors, on Express's response prototype (the one every
 * app's response prototype inherits from, so that a sub-app, which swaps the
 * response's prototype while it runs, keeps them), so requests pay one call.
 */
const patchedResponses = new WeakSet<object>();
type NodeWriteHead = (
  this: ServerResponse,
  statusCode: number,
  reason?: unknown,
  headers?: unknown,
) => ServerResponse;
type ExpressSend = (this: ExpressResponse, ...args: unknown[]) => unknown;

function patchResponsePrototype(res: ServerResponse): void {
  const direct = Object.getPrototypeOf(res) as object | null;
  if (direct === null || patchedResponses.has(direct)) return;
  patchedResponses.add(direct);
  // Express's own response object: where `send` is defined.
  let proto: object | null = direct;
  while (proto !== null && !Object.hasOwn(proto, 'send')) proto = Object.getPrototypeOf(proto);
  if (proto === null) proto = direct;
  if (patchedResponses.has(proto) && proto !== direct) return;
  patchedResponses.add(proto);
  installHeadInterceptor(
    proto,
    (nodeWriteHead: NodeWriteHead) =>
      function writeHead(
        this: ExpressResponse,
        statusCode: number,
        reason?: unknown,
        headers?: unknown,
      ): ServerResponse {
        const state = this.req?.[STATE];
        if (state === undefined) return nodeWriteHead.call(this, statusCode, reason, headers);
        // Fields given to writeHead itself join the header store first, so the rules see them.
        if (typeof reason === 'object' && reason !== null) {
          setHeadersFrom(this, reason);
          reason = undefined;
        } else if (typeof headers === 'object' && headers !== null) {
          setHeadersFrom(this, headers);
          headers = undefined;
        }
        // A Transfer-Encoding still set here is what Node frames with: the stream case.
        applyFraming(this, statusCode, true, state.ctx.settings.traceHeader);
        return nodeWriteHead.call(this, statusCode, reason, headers);
      },
  );
  // RFC 9110 §9.3.2: HEAD answers what GET would have, without the body. Express's
  // res.send() drops the body of a HEAD before restwell sees it, so modules could
  // not compute the ETag, Content-Length or Content-Encoding GET gets; while a
  // capture holds the response, send() runs as for GET, and the capture drops
  // the body when it sends.
  const p = proto as Record<string, unknown>;
  const expressSend = p.send as ExpressSend | undefined;
  if (typeof expressSend === 'function' && !Object.hasOwn(expressSend, RESTWELL_SEND)) {
    const send = function send(this: ExpressResponse, ...args: unknown[]): unknown {
      const req = this.req;
      if (req === undefined || req.method !== 'HEAD' || !isCapturing(this)) {
        return expressSend.apply(this, args);
      }
      req.method = 'GET';
      try {
        return expressSend.apply(this, args);
      } finally {
        req.method = 'HEAD';
      }
    };
    Object.defineProperty(send, RESTWELL_SEND, { value: true });
    Object.defineProperty(proto, 'send', { configurable: true, writable: true, value: send });
  }
}
const RESTWELL_SEND = Symbol('restwell.send');

/**
 * `source.pipe(res)` does not forward the source's errors: a file that cannot
 * be read or an upstream that resets would be an uncaught exception (the
 * process exits) and a response left open. The adapter watches what is piped
 * into a restwell response and, when the source fails, logs the error with
 * the trace id and ends the response: a 500 problem while nothing has been
 * sent, else an aborted response, so the client sees it is incomplete.
 * Shared functions and one symbol slot: no closure per request.
 */
const PIPED_INTO = Symbol('restwell.pipedInto');
type PipedSource = Readable & { [PIPED_INTO]?: ExpressResponse };

function onPipe(this: ExpressResponse, source: Readable): void {
  (source as PipedSource)[PIPED_INTO] = this;
  captureOf(this)?.pipedSources.push(source);
  source.once('error', onPipedSourceError);
}

function onPipedSourceError(this: PipedSource, err: Error): void {
  const res = this[PIPED_INTO];
  const state = res?.req?.[STATE];
  if (res === undefined || state === undefined) return;
  const { ctx } = state;
  try {
    ctx.log.error('restwell: a stream piped into the response failed', {
      traceId: ctx.traceId,
      method: ctx.request.method,
      path: ctx.request.path,
      err,
    });
  } catch {
    // The logger failed; the response is still ended below.
  }
  const capture = captureOf(res);
  try {
    // Not yet released: the capture still holds the body, or streams it.
    if (capture !== undefined && !capture.released) capture.fail(err);
    else if (!res.headersSent && !res.writableEnded) {
      sendLastResort(res, undefined, ctx.traceId, ctx.settings.traceHeader);
    } else if (!res.writableFinished) res.destroy(err);
  } catch {
    res.destroy(err);
  }
}

function setHeadersFrom(res: ServerResponse, headers: object): void {
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const [k, v] of headers as [string, string][]) res.setHeader(k, v);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2)
        res.setHeader(String(headers[i]), headers[i + 1] as string);
    }
    return;
  }
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | number>)) {
    if (v !== undefined) res.setHeader(k, v);
  }
}

/**
 * Express's `res.send()` answers 304 on its own when `req.fresh` says so, by
 * looser rules than RFC 9110 (no If-Match, no §13.2.2 order) and after
 * restwell could see the response. When a restwell module claims a request's
 * preconditions (`conditional()`), `req.fresh` is false for that request. The
 * getter is replaced once, where Express defines it (its request prototype),
 * so requests pay nothing, and requests no module claimed keep Express's
 * behaviour.
 */
const seenPrototypes = new WeakSet<object>();
const restwellGetters = new WeakSet<() => boolean>();
function standDownFreshness(req: object): void {
  const direct = Object.getPrototypeOf(req) as object | null;
  if (direct === null || seenPrototypes.has(direct)) return;
  seenPrototypes.add(direct);
  let owner: object | null = direct;
  while (owner !== null && !Object.hasOwn(owner, 'fresh')) owner = Object.getPrototypeOf(owner);
  const original = owner === null ? undefined : Object.getOwnPropertyDescriptor(owner, 'fresh');
  // Not Express (no getter), or already replaced through another app sharing the prototype.
  if (owner === null || typeof original?.get !== 'function' || restwellGetters.has(original.get)) {
    return;
  }
  const expressFresh = original.get;
  const fresh = function (this: WithState): boolean {
    const state = this[STATE];
    return state !== undefined && preconditionsClaimed(state.ctx) ? false : expressFresh.call(this);
  };
  restwellGetters.add(fresh);
  Object.defineProperty(owner, 'fresh', {
    configurable: true,
    enumerable: original.enumerable ?? true,
    get: fresh,
  });
}

/**
 * The error a rejected chain is answered with. `Promise.reject()` and
 * `throw undefined` reject with `undefined`, which the adapter's own
 * signalling reads as "no error": the response would be sent as a success
 * (on Koa it is a 500). Never allocates for a real error.
 */
function failure(err: unknown): unknown {
  return err === undefined ? new Error('restwell: a middleware rejected with undefined') : err;
}

const EXPRESS_OPTIONS = [...ADAPTER_OPTIONS, 'maxBufferedBytes'];

/**
 * Creates the Express adapter: `rw(...middlewares)` mounts restwell middlewares as one Express
 * middleware, `rw.notFound()`, `rw.methodNotAllowed()` and `rw.errorHandler()` answer what no route
 * did as problems. Options are checked once, here.
 */
export function expressAdapter(options: ExpressAdapterOptions = {}): ExpressAdapter {
  const settings = resolveAdapterOptions(options, 'express', EXPRESS_OPTIONS);
  const maxBufferedBytes = options.maxBufferedBytes ?? 1_048_576;
  if (!Number.isInteger(maxBufferedBytes) || maxBufferedBytes < 0) {
    invalidOption('express', 'maxBufferedBytes', 'a non-negative integer', maxBufferedBytes);
  }
  checkPrincipalOption('express', options.principal);
  const principal = options.principal;

  function createState(req: WithState, res: ExpressResponse): RequestState {
    patchResponsePrototype(res);
    const direct = new DirectResponse(res, req.method === 'HEAD');
    // `res.locals` is the state: Express middleware and templates read and
    // write the same object as restwell (Express creates it for every request).
    let locals = res.locals;
    if (locals === undefined) {
      locals = {} as ContextState;
      res.locals = locals;
    }
    const ctx = new NodeContext('express', req, new ExpressBinding(req), direct, settings, locals);
    if (principal !== undefined) installPrincipal(locals, req, principal);
    const state: RequestState = { ctx, capture: undefined, direct };
    req[STATE] = state;
    standDownFreshness(req);
    res.on('pipe', onPipe);
    // Set before the handler can write the head.
    finalizeResponse(ctx);
    return state;
  }

  /** The post-chain step of the mount that owns the response: send it, whatever fails. */
  function finish(state: RequestState, capture: ResponseCapture | undefined, err?: unknown): void {
    const { ctx } = state;
    try {
      if (err !== undefined) {
        const doc = renderProblem(ctx, err, settings.problems);
        if (settings.debug !== undefined) noteProblem(ctx, doc.code);
      }
      finalizeResponse(ctx);
      if (settings.debug !== undefined) logAnswer(ctx, ctx.response.status);
      if (capture !== undefined) capture.flush();
      else state.direct.send();
    } catch (failure) {
      // Rendering the problem itself failed (a throwing problems.map, instance
      // or logger): a static 500, never an unhandled rejection and a client left waiting.
      lastResort(state, capture, failure);
    }
  }

  function lastResort(
    state: RequestState,
    capture: ResponseCapture | undefined,
    failure: unknown,
  ): void {
    try {
      settings.logger.error('restwell: rendering the response failed', {
        traceId: state.ctx.traceId,
        err: failure,
      });
    } catch {
      // The logger is what failed; the client still gets an answer.
    }
    try {
      sendLastResort(state.direct.res, capture, state.ctx.traceId, settings.traceHeader);
    } catch {
      // Node itself refused: abort, so the client is not left waiting.
      state.direct.res.destroy();
    }
  }

  const adapter = function mount(...middlewares: Middleware[]): ExpressMiddleware {
    const run = compose(middlewares);
    // Holding the response back costs; only mounts with a middleware that reads it pay.
    const captures = seesResponse(middlewares);
    return function restwell(req, res, next) {
      const r = req as WithState;
      let state = r[STATE];
      let owner = false;
      if (state === undefined) {
        state = createState(r, res);
        owner = true;
      }
      if (captures && state.capture === undefined) {
        // Intercepts nothing until the chain passes the request on (arm()).
        state.capture = new ResponseCapture(
          res,
          maxBufferedBytes,
          req.method === 'HEAD',
          state.direct.headers,
        );
        state.ctx.response = state.capture;
        owner = true;
      }
      const { ctx, capture } = state;
      const s = state;

      if (capture === undefined) {
        let passed = false;
        run(ctx, () => {
          passed = true;
          next();
          return DOWNSTREAM_PASSED;
        }).then(
          () => {
            // The chain answered without passing the request on.
            if (!passed) finish(s, undefined);
          },
          (err: unknown) => finish(s, undefined, failure(err)),
        );
        return;
      }

      run(ctx, () => {
        capture.arm();
        const waited = capture.wait();
        next();
        return waited;
      }).then(
        () => {
          if (owner) finish(s, capture);
          // An inner mount is done: the next mount out sees the downstream as answered.
          else capture.settleInnermost();
        },
        (err: unknown) => {
          if (!owner) {
            capture.settleInnermost(failure(err));
            return;
          }
          finish(s, capture, failure(err));
        },
      );
    };
  } as ExpressAdapter;

  adapter.notFound = () =>
    function restwellNotFound(_req, _res, next) {
      next(new NotFoundError());
    };

  adapter.methodNotAllowed = () =>
    function restwellMethodNotAllowed(req, res, next) {
      const allow = canonicalAllow(Object.keys(req.route?.methods ?? {}));
      if (req.method === 'OPTIONS') {
        // RFC 9110 §9.3.7: the methods the resource supports, in `Allow`, no content;
        // the same answer @koa/router's allowedMethods() gives on Koa.
        res.statusCode = 200;
        res.setHeader('Allow', allow.join(', '));
        res.setHeader('Content-Length', '0');
        res.end();
        return;
      }
      next(new MethodNotAllowedError(req.method ?? 'GET', allow));
    };

  adapter.errorHandler = () =>
    function restwellErrorHandler(err, req, res, next) {
      // Plain JavaScript may pass anything: the same TypeError, never a property read of undefined.
      const state = req === null || typeof req !== 'object' ? undefined : (req as WithState)[STATE];
      const capture = state?.capture;
      // Hand the error to the innermost restwell mount waiting for this response.
      if (capture !== undefined && !capture.flushed && capture.settleInnermost(err)) return;
      if (res.headersSent || capture?.flushed) {
        // Too late for a problem document: Express ends the broken response.
        next(err);
        return;
      }
      finish(state ?? createState(req as WithState, res), capture, err);
    };

  return adapter;
}

export { validated } from '../../core/validate.js';

export type { AdapterOptions } from '../../core/node.js';
