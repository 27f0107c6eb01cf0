/**
 * With the adapters' `debug` option, a request conditional() answered itself
 * (304, 412, 428) gets one debug line naming the module and why (for a problem,
 * its status and code).
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { conditional } from '../../src/conditional/index.js';
import { adapters } from '../helpers/apps.js';

describe.each(adapters)('$name', (adapter) => {
  const build = () => {
    const lines: Array<Record<string, unknown>> = [];
    const listener = adapter.build({
      options: {
        debug: true,
        logger: { ...silentLogger, debug: (_m, fields) => lines.push(fields ?? {}) },
      },
      routes: [
        {
          method: 'get',
          path: '/v',
          use: [conditional({ load: () => ({ etag: '"v1"' }) })],
          handler: () => ({ body: { v: 1 } }),
        },
        {
          method: 'put',
          path: '/v',
          use: [conditional({ load: () => ({ etag: '"v1"' }), requirePrecondition: true })],
          handler: () => ({ body: { v: 2 } }),
        },
      ],
    });
    return { listener, lines };
  };

  it.each([
    ['get', { 'if-none-match': '"v1"' }, 304, '304 not modified'],
    ['put', { 'if-match': '"v0"' }, 412, '412 precondition-failed'],
    ['put', {}, 428, '428 precondition-required'],
  ] as const)(
    '%s %j: %i, and a debug line names conditional',
    async (method, headers, status, reason) => {
      const { listener, lines } = build();
      await request(listener)[method]('/v').set(headers).send({}).expect(status);
      expect(lines).toEqual([expect.objectContaining({ module: 'conditional', reason, status })]);
    },
  );

  it('writes no line for a request the handler answered', async () => {
    const { listener, lines } = build();
    await request(listener).get('/v').expect(200);
    expect(lines).toEqual([]);
  });
});
