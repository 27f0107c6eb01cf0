import type { Context, Middleware, Next } from './context.js';

/**
 * Composes middlewares in onion order: the first runs outermost, sees the
 * request first and the final response last. Calling `next()` twice from one
 * middleware is a programming error and rejects.
 */
export function compose(
  middlewares: readonly Middleware[],
): (ctx: Context, next?: Next) => Promise<void> {
  for (const [i, mw] of middlewares.entries()) {
    if (typeof mw !== 'function') {
      throw new TypeError(`restwell: middleware #${i} is not a function (got ${typeof mw}).`);
    }
  }
  const chain = middlewares.slice();
  const only = chain.length === 1 ? chain[0] : undefined;
  if (only !== undefined) {
    // One middleware, the usual mount (`rw(jsonBody())`): no dispatcher per request.
    return function composedOne(ctx: Context, last?: Next): Promise<void> {
      let called = false;
      const next = (): Promise<void> => {
        if (called) return Promise.reject(new Error('restwell: next() called more than once.'));
        called = true;
        return last ? last() : Promise.resolve();
      };
      try {
        return Promise.resolve(only(ctx, next));
      } catch (err) {
        return Promise.reject(err);
      }
    };
  }
  return function composed(ctx: Context, last?: Next): Promise<void> {
    let called = -1;
    const dispatch = (i: number): Promise<void> => {
      if (i <= called) return Promise.reject(new Error('restwell: next() called more than once.'));
      called = i;
      const mw = chain[i];
      if (mw === undefined) return last ? last() : Promise.resolve();
      try {
        return Promise.resolve(mw(ctx, () => dispatch(i + 1)));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return dispatch(0);
  };
}
