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
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { compose } from '../../core/compose.js';
import {
  type ContextState,
  type Middleware,
  preconditionsClaimed,
  seesResponse,
} from '../../core/context.js';
import { MethodNotAllowedError, NotFoundError } from '../../core/errors.js';
import {
  type AdapterOptions,
  type FrameworkBinding,
  finalizeResponse,
  NodeContext,
  resolveAdapterOptions,
} from '../../core/node.js';
import { renderProblem } from '../../core/problem.js';
import { DirectResponse, ResponseCapture } from './capture.js';

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

export type ExpressNext = (err?: unknown) => void;
export type ExpressMiddleware = (
  req: ExpressRequest,
  res: ServerResponse,
  next: ExpressNext,
) => void;
export type ExpressErrorMiddleware = (
  err: unknown,
  req: ExpressRequest,
  res: ServerResponse,
  next: ExpressNext,
) => void;

export interface ExpressAdapterOptions extends AdapterOptions {
  /**
   * Bytes of a response written in several chunks that are held in memory
   * before it is treated as a stream (and passed through). A body sent in one
   * `res.send()`/`res.end()` call is always held: it is in memory already.
   * @default 1_048_576
   */
  maxBufferedBytes?: number;
}

export interface ExpressAdapter {
  /** Mounts restwell middlewares as one Express middleware. */
  (...middlewares: Middleware[]): ExpressMiddleware;
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

const STATE = Symbol.for('restwell.express.state');
type WithState = ExpressRequest & { [STATE]?: RequestState };
const DOWNSTREAM_PASSED = Promise.resolve();

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

export function expressAdapter(options: ExpressAdapterOptions = {}): ExpressAdapter {
  const settings = resolveAdapterOptions(options);
  const maxBufferedBytes = options.maxBufferedBytes ?? 1_048_576;
  if (!Number.isInteger(maxBufferedBytes) || maxBufferedBytes < 0) {
    throw new TypeError(
      `restwell/express: option "maxBufferedBytes" must be a non-negative integer, got ${maxBufferedBytes}.`,
    );
  }

  function createState(req: WithState, res: ServerResponse): RequestState {
    const direct = new DirectResponse(res, req.method === 'HEAD');
    const ctx = new NodeContext(
      'express',
      req,
      new ExpressBinding(req),
      direct,
      settings,
      {} as ContextState,
    );
    const state: RequestState = { ctx, capture: undefined, direct };
    req[STATE] = state;
    standDownFreshness(req);
    // Set before the handler can write the head.
    finalizeResponse(ctx);
    return state;
  }

  function flush(state: RequestState, capture: ResponseCapture): void {
    finalizeResponse(state.ctx);
    capture.flush();
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
        state.capture = new ResponseCapture(res, maxBufferedBytes, req.method === 'HEAD');
        state.ctx.response = state.capture;
        owner = true;
      }
      const { ctx, capture, direct } = state;
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
            if (!passed) direct.send();
          },
          (err: unknown) => {
            renderProblem(ctx, err, settings.problems);
            direct.send();
          },
        );
        return;
      }

      run(ctx, () => {
        const waited = capture.wait();
        next();
        return waited;
      }).then(
        () => {
          if (owner) flush(s, capture);
          // An inner mount is done: the next mount out sees the downstream as answered.
          else capture.settleInnermost();
        },
        (err: unknown) => {
          if (!owner) {
            capture.settleInnermost(err);
            return;
          }
          renderProblem(ctx, err, settings.problems);
          flush(s, capture);
        },
      );
    };
  } as ExpressAdapter;

  adapter.notFound = () =>
    function restwellNotFound(_req, _res, next) {
      next(new NotFoundError());
    };

  adapter.methodNotAllowed = () =>
    function restwellMethodNotAllowed(req, _res, next) {
      const methods = Object.keys(req.route?.methods ?? {})
        .filter((m) => m !== '_all')
        .map((m) => m.toUpperCase());
      if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
      next(new MethodNotAllowedError(req.method ?? 'GET', methods));
    };

  adapter.errorHandler = () =>
    function restwellErrorHandler(err, req, res, next) {
      const state = (req as WithState)[STATE];
      const capture = state?.capture;
      // Hand the error to the innermost restwell mount waiting for this response.
      if (capture !== undefined && !capture.flushed && capture.settleInnermost(err)) return;
      if (res.headersSent || capture?.flushed) {
        // Too late for a problem document: Express ends the broken response.
        next(err);
        return;
      }
      const s = state ?? createState(req as WithState, res);
      renderProblem(s.ctx, err, settings.problems);
      if (capture !== undefined) flush(s, capture);
      else s.direct.send();
    };

  return adapter;
}

export type { AdapterOptions } from '../../core/node.js';
