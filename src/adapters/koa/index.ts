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
 * app.use(rw(jsonBody(), rateLimit({ ... })));
 * app.use(router.routes()).use(router.allowedMethods());
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { compose } from '../../core/compose.js';
import {
  isStreamBody,
  type Middleware,
  type Next,
  type ResponseBody,
  type ResponseView,
} from '../../core/context.js';
import {
  type AdapterOptions,
  type FrameworkBinding,
  finalizeResponse,
  NodeContext,
  NodeResponseHeaders,
  resolveAdapterOptions,
} from '../../core/node.js';
import { renderProblem, renderStatusProblem } from '../../core/problem.js';

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

export type KoaNext = () => Promise<unknown>;
export type KoaMiddleware = (ctx: KoaContext, next: KoaNext) => Promise<void>;

export interface KoaAdapter {
  /** Mounts restwell middlewares as one Koa middleware. */
  (...middlewares: Middleware[]): KoaMiddleware;
}

const STATE = Symbol.for('restwell.koa.context');
type WithState = KoaContext & { [STATE]?: NodeContext };

class KoaResponseView implements ResponseView {
  readonly headers: NodeResponseHeaders;
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

export function koaAdapter(options: AdapterOptions = {}): KoaAdapter {
  const settings = resolveAdapterOptions(options);

  function contextOf(k: WithState): { ctx: NodeContext; outermost: boolean } {
    const existing = k[STATE];
    if (existing !== undefined) return { ctx: existing, outermost: false };
    const binding = new KoaBinding(k);
    // Share Koa's own state object, so that `ctx.state.principal` set by Koa middleware is visible to restwell.
    const ctx = new NodeContext('koa', k.req, binding, new KoaResponseView(k), settings, k.state);
    k[STATE] = ctx;
    return { ctx, outermost: true };
  }

  return function mount(...middlewares: Middleware[]): KoaMiddleware {
    const run = compose(middlewares);
    return async function restwell(k, next) {
      const { ctx, outermost } = contextOf(k as WithState);
      if (!outermost) {
        await run(ctx, next as Next);
        return;
      }
      try {
        await run(ctx, next as Next);
        if (settings.notFound) renderStatusProblem(ctx, settings.problems);
      } catch (err) {
        renderProblem(ctx, err, settings.problems);
      }
      finalizeResponse(ctx);
    };
  };
}

export type { AdapterOptions } from '../../core/node.js';
