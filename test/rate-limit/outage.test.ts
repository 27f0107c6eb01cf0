/**
 * A rate-limit store that is down or slow: fail open (default, logged, with
 * an optional in-memory fallback) or closed (503). Never a 429, never a 500.
 */
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/logger.js';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { flexiblePolicy, type RateLimitOptions, rateLimit } from '../../src/rate-limit/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { adapters } from '../helpers/apps.js';
import { hangingRedis, silentServer, unreachableRedis } from '../helpers/outage.js';

const PROBLEM = /^application\/problem\+json/;
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

function recordingLogger() {
  const warnings: string[] = [];
  const log: Logger = {
    error: (m) => warnings.push(m),
    warn: (m) => warnings.push(m),
    info() {},
  };
  return { log, warnings };
}

describe.each(adapters)('rate-limit store outage through $name', (adapter) => {
  function app(options: Partial<RateLimitOptions>, log?: Logger) {
    const client = unreachableRedis();
    cleanups.push(() => client.disconnect());
    let calls = 0;
    const listener = adapter.build({
      use: [
        rateLimit({ store: new RedisStore({ client }), limit: 2, windowMs: 60_000, ...options }),
      ],
      routes: [
        {
          method: 'get',
          path: '/x',
          handler: () => {
            calls++;
            return { body: { ok: true } };
          },
        },
      ],
      ...(log ? { options: { logger: log } } : {}),
    });
    return { listener, calls: () => calls };
  }

  it('fails open by default: requests pass, unlimited, and the outage is logged once', async () => {
    const { log, warnings } = recordingLogger();
    const { listener, calls } = app({}, log);
    for (let i = 0; i < 5; i++) {
      const res = await request(listener).get('/x').expect(200);
      expect(res.headers.ratelimit).toBeUndefined();
    }
    expect(calls()).toBe(5);
    expect(warnings.filter((w) => w.includes('rate-limit store failed'))).toHaveLength(1);
  });

  it('logs one line per 10 s, with the number of failures it left out', async () => {
    const lines: Array<Record<string, unknown> | undefined> = [];
    const log: Logger = {
      error() {},
      info() {},
      warn: (m, fields) => {
        if (m.includes('rate-limit store failed')) lines.push(fields);
      },
    };
    let now = 1_800_000_000_000;
    const { listener } = app({ clock: () => now }, log);
    for (let i = 0; i < 3; i++) await request(listener).get('/x').expect(200);
    now += 9_999;
    await request(listener).get('/x').expect(200);
    expect(lines).toHaveLength(1);
    now += 1;
    await request(listener).get('/x').expect(200);
    expect(lines.map((f) => f?.suppressed)).toEqual([0, 3]);
  });

  it('fails open onto an in-memory fallback limiter when asked', async () => {
    const { listener } = app({ fallback: true });
    await request(listener).get('/x').expect(200);
    const second = await request(listener).get('/x').expect(200);
    expect(second.headers.ratelimit).toMatch(/r=0/);
    await request(listener).get('/x').expect(429);
  });

  it('fails closed with a 503 problem, never a 429, and runs nothing', async () => {
    const { listener, calls } = app({ onStoreError: 'closed' });
    const res = await request(listener).get('/x').expect(503);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body.code).toBe('service-unavailable');
    expect(res.headers['retry-after']).toBe('1');
    expect(JSON.stringify(res.body)).not.toMatch(/Redis|ECONNREFUSED|stack/i);
    expect(calls()).toBe(0);
  });
});

describe('flexible policies when the native store fails closed', () => {
  it('hand back what they took, so an outage never turns into a 429', async () => {
    const client = unreachableRedis();
    cleanups.push(() => client.disconnect());
    const limiter = new RateLimiterMemory({ points: 2, duration: 60 });
    const listener = adapters[0]!.build({
      use: [
        rateLimit({
          store: new RedisStore({ client }),
          onStoreError: 'closed',
          policies: [
            flexiblePolicy({ name: 'flexible', limiter }),
            { name: 'native', limit: 10, windowMs: 60_000 },
          ],
        }),
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
    });
    for (let i = 0; i < 4; i++) await request(listener).get('/x').expect(503);
    expect((await limiter.get('127.0.0.1'))?.consumedPoints ?? 0).toBe(0);
  });
});

describe('a slow rate-limit store', () => {
  it('is cut off by the timeout and the request proceeds (open) or gets 503 (closed)', async () => {
    const silent = await silentServer();
    const client = hangingRedis(silent.port);
    cleanups.push(
      () => client.disconnect(),
      () => silent.close(),
    );
    const store = new RedisStore({ client, timeoutMs: 5000 });
    const build = (onStoreError: 'open' | 'closed') =>
      adapters[0]!.build({
        use: [rateLimit({ store, limit: 1, windowMs: 60_000, timeoutMs: 100, onStoreError })],
        routes: [{ method: 'get', path: '/x', handler: () => ({ body: { ok: true } }) }],
      });
    const started = Date.now();
    await request(build('open')).get('/x').expect(200);
    await request(build('closed')).get('/x').expect(503);
    // Both answered long before the store's own 5 s timeout.
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
