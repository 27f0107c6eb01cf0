/**
 * With the adapters' `debug` option, a request the rate limiter refused gets
 * one debug line naming the module, with the problem's status and code.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

describe.each(adapters)('$name', (adapter) => {
  it('a 429 names rate-limit on the debug line; an admitted request writes none', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const listener = adapter.build({
      options: {
        debug: true,
        logger: { ...silentLogger, debug: (_m, fields) => lines.push(fields ?? {}) },
      },
      use: [
        rateLimit({
          store: new MemoryStore(),
          policies: [{ name: 'tiny', limit: 1, windowMs: 60_000 }],
        }),
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
    });
    await request(listener).get('/x').expect(200);
    expect(lines).toEqual([]);
    await request(listener).get('/x').expect(429);
    expect(lines).toEqual([
      expect.objectContaining({ module: 'rate-limit', status: 429, reason: '429 rate-limited' }),
    ]);
  });
});
