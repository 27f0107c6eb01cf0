import { describe, expect, it } from 'vitest';
import { compose } from '../../src/core/compose.js';
import type { Context, Middleware } from '../../src/core/context.js';

const ctx = {} as Context;

describe('compose', () => {
  it('runs one middleware around the last step, and rejects a second next()', async () => {
    const order: string[] = [];
    const twice: Middleware = async (_ctx, next) => {
      order.push('in');
      await next();
      order.push('out');
      await next();
    };
    await expect(
      compose([twice])(ctx, async () => {
        order.push('last');
      }),
    ).rejects.toThrow('next() called more than once');
    expect(order).toEqual(['in', 'last', 'out']);
  });

  it('runs middlewares in onion order and rejects a second next() from any of them', async () => {
    const order: string[] = [];
    const outer: Middleware = async (_ctx, next) => {
      order.push('outer in');
      await next();
      order.push('outer out');
    };
    const inner: Middleware = async (_ctx, next) => {
      order.push('inner in');
      await next();
      await next();
    };
    await expect(compose([outer, inner])(ctx)).rejects.toThrow('next() called more than once');
    expect(order).toEqual(['outer in', 'inner in']);
    await compose([outer])(ctx);
    expect(order.slice(-2)).toEqual(['outer in', 'outer out']);
  });

  it('turns a middleware that throws synchronously into a rejection', async () => {
    const throws = (() => {
      throw new Error('sync');
    }) as unknown as Middleware;
    await expect(compose([throws])(ctx)).rejects.toThrow('sync');
    await expect(compose([throws, throws])(ctx)).rejects.toThrow('sync');
  });
});
