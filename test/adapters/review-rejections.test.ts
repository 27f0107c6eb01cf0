/**
 * Odd failures answered the same on every adapter: a middleware that rejects
 * with `undefined` is a 500 problem (not a success), and a debug logger that
 * throws never changes the answer a module gave.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { answeredBy, type Middleware } from '../../src/core/context.js';
import { silentLogger } from '../../src/core/logger.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

const odd: Middleware = async (ctx, next) => {
  if (ctx.request.path === '/undefined') return Promise.reject(undefined);
  if (ctx.request.path === '/answer') {
    answeredBy(ctx, 'test', '429 limit reached');
    ctx.response.status = 429;
    ctx.response.headers.set('content-type', 'text/plain');
    ctx.response.body = 'slow down';
    return;
  }
  await next();
};

describe.each(adapters)('$name', (adapter: AdapterCase) => {
  const handler = () => ({ body: 'the handler ran' });
  const build = (inner: boolean) =>
    adapter.build({
      use: inner ? [] : [odd],
      options: {
        debug: true,
        logger: {
          ...silentLogger,
          debug() {
            throw new Error('debug broke');
          },
        },
      },
      routes: [
        { method: 'get', path: '/undefined', use: inner ? [odd] : [], handler },
        { method: 'get', path: '/answer', handler },
      ],
    });

  it.each([false, true])(
    'a middleware rejecting with undefined is a 500 problem (route-level mount: %s)',
    async (inner) => {
      const res = await request(build(inner)).get('/undefined');
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'internal-error' });
    },
  );

  it('a throwing debug logger leaves the module answer alone', async () => {
    const res = await request(build(false)).get('/answer');
    expect(res.status).toBe(429);
    expect(res.text).toBe('slow down');
  });
});
