/**
 * A streamed body whose source fails mid-way (a proxied upstream that resets)
 * aborts that one response on every adapter, with or without compression,
 * and never takes the process down.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import type { Middleware } from '../../src/core/context.js';
import { adapters } from '../helpers/apps.js';
import { listen } from '../helpers/raw.js';

const failingUpstream: Middleware = (ctx) => {
  ctx.response.status = 200;
  ctx.response.headers.set('content-type', 'application/json');
  ctx.response.body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"partial":'));
      setTimeout(() => controller.error(new Error('upstream reset')), 20);
    },
  });
};

describe.each(adapters)('a failing streamed body through $name', (adapter) => {
  it.each([false, true])('aborts the response, compression %s', async (compressed) => {
    const server = await listen(
      adapter.build({
        use: [...(compressed ? [compression()] : []), failingUpstream],
        routes: [{ method: 'get', path: '/x', handler: () => ({ body: 'unused' }) }],
      }),
    );
    try {
      const outcome = await new Promise<string>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: server.port,
            path: '/x',
            headers: { 'accept-encoding': 'gzip' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve('ended'));
            res.on('aborted', () => resolve('aborted'));
            res.on('error', () => resolve('aborted'));
          },
        );
        req.on('error', () => resolve('aborted'));
        req.end();
      });
      // Not a clean end: the client can tell the body is incomplete.
      expect(outcome).toBe('aborted');
    } finally {
      await server.close();
    }
  });
});
