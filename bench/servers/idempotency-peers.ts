/**
 * The peer idempotency libraries the benchmark compares restwell with, each wired on Express as its
 * documentation shows, and a store wrapper that counts operations (one round trip each on Redis).
 *
 * - `@node-idempotency/core` has no HTTP layer of its own in the packages installed here, so it is
 *   used through the smallest Express middleware that does what its framework adapters do: call
 *   `onRequest()` (claim with SET NX, or GET for a replay), answer a cached response, otherwise
 *   capture `res.send()` and store the response with `onResponse()` before sending it (as restwell
 *   does: the record is written before the client sees the answer). It keys records by
 *   method + path + key (no scope), hashes the body with BLAKE2s and holds no lease or fence.
 * - express-idempotency calls `next()` on a replay too, so the handler asks `isHit(req)`; it reads
 *   then writes (no atomic claim) and records the response after it is sent.
 */
import {
  Idempotency,
  IdempotencyError,
  IdempotencyErrorCodes,
  type IdempotencyParams,
} from '@node-idempotency/core';
import { MemoryStorageAdapter } from '@node-idempotency/storage-adapter-memory';
import { RedisStorageAdapter } from '@node-idempotency/storage-adapter-redis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { getSharedIdempotencyService, idempotency } from 'express-idempotency';
import { InMemoryDataAdapter } from 'express-idempotency/dist/defaults/inMemoryDataAdapter.js';
import * as eiRedisModule from 'express-idempotency-redis-adapter';

/** Records kept ten minutes in every case: long enough for a run, short on a shared Redis. */
export const TTL_MS = 600_000;

/** Counts every method call on a store object: one call is one round trip on a networked store. */
export function counted<T extends object>(store: T, stats: { operations: number }): T {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        stats.operations++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Peer {
  middleware: RequestHandler;
  close: () => unknown;
  isReplay: (req: Request) => boolean;
}

export async function nodeIdempotency(
  redisUrl: string | undefined,
  prefix: string,
  stats: { operations: number },
): Promise<Peer> {
  let close: () => unknown = () => {};
  let storage: MemoryStorageAdapter | RedisStorageAdapter;
  if (redisUrl) {
    const redis = new RedisStorageAdapter({ url: redisUrl });
    await redis.connect();
    close = () => redis.disconnect();
    storage = redis;
  } else storage = new MemoryStorageAdapter();
  const core = new Idempotency(counted(storage, stats), {
    cacheKeyPrefix: `${prefix}nic`,
    cacheTTLMS: TTL_MS,
  });
  const middleware = async (req: Request, res: Response, next: NextFunction) => {
    const params: IdempotencyParams = {
      headers: req.headers,
      path: req.path,
      method: req.method,
      body: req.body as Record<string, unknown> | undefined,
    };
    let cached: Awaited<ReturnType<typeof core.onRequest>>;
    try {
      cached = await core.onRequest(params);
    } catch (err) {
      if (err instanceof IdempotencyError) {
        const status = err.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS ? 409 : 422;
        res.status(status).json({ error: err.message });
        return;
      }
      next(err);
      return;
    }
    if (cached) {
      const extra = cached.additional as { status: number; headers: Record<string, string> };
      res.status(extra.status);
      for (const [name, value] of Object.entries(extra.headers)) res.setHeader(name, value);
      res.setHeader('idempotent-replayed', 'true');
      res.send(cached.body);
      return;
    }
    const send = res.send.bind(res);
    res.send = (body: unknown) => {
      res.send = send;
      const contentType = res.getHeader('content-type');
      core
        .onResponse(params, {
          body,
          additional: {
            status: res.statusCode,
            headers: contentType === undefined ? {} : { 'content-type': String(contentType) },
          },
        })
        .catch(() => {})
        .finally(() => send(body));
      return res;
    };
    next();
  };
  return { middleware: middleware as RequestHandler, close, isReplay: () => false };
}

type EiAdapter = NonNullable<NonNullable<Parameters<typeof idempotency>[0]>['dataAdapter']>;
interface EiRedisAdapter extends EiAdapter {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

export async function expressIdempotency(
  redisUrl: string | undefined,
  _prefix: string,
  stats: { operations: number },
): Promise<Peer> {
  let close: () => unknown = () => {};
  // Its default adapter, made explicit so that its calls are counted too. It keeps records in an
  // array searched linearly, so its cost per request grows with the number of keys recorded.
  let dataAdapter: EiAdapter = new InMemoryDataAdapter();
  if (redisUrl) {
    // A CommonJS module whose class is its `default` export (nested once more by ESM interop).
    let RedisAdapter: unknown = eiRedisModule;
    while (typeof RedisAdapter !== 'function') {
      RedisAdapter = (RedisAdapter as { default: unknown }).default;
    }
    const Adapter = RedisAdapter as new (options: {
      connectionConfig: { url: string };
      ttl: number;
    }) => EiRedisAdapter;
    const redis = new Adapter({ connectionConfig: { url: redisUrl }, ttl: TTL_MS / 1000 });
    await redis.connect();
    close = () => redis.disconnect();
    dataAdapter = redis;
  }
  const middleware = idempotency({ dataAdapter: counted(dataAdapter, stats) });
  const service = getSharedIdempotencyService();
  return {
    middleware: middleware as RequestHandler,
    close,
    isReplay: (req) => service.isHit(req),
  };
}
