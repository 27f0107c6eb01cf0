/**
 * Route policies match what the router matched: every spelling of a path that
 * reaches the handler through Express 4, Express 5 or @koa/router is counted
 * by the route's policy, mounted globally or on the route, on memory and on
 * Redis; and the example's payments limit is one of them.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { apiRateLimit } from '../../examples/shared/rate-limits.js';
import { normalisedPath, rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';
import { listen, rawRequest } from '../helpers/raw.js';
import { services } from '../helpers/services.js';

const run = Math.random().toString(36).slice(2, 8);
let redis: Redis | undefined;
afterAll(async () => {
  if (redis === undefined) return;
  const keys = await redis.keys(`rl-routes:${run}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});
let n = 0;
const stores: Array<{ name: string; enabled: boolean; make(): Store }> = [
  { name: 'memory', enabled: true, make: () => new MemoryStore() },
  {
    name: 'redis',
    enabled: services.redis,
    make: () => {
      redis ??= new Redis(services.redisUrl);
      return new RedisStore({ client: redis, prefix: `rl-routes:${run}:${++n}:` });
    },
  },
];

/** Every spelling tried; which of them reach the handler is the router's business. */
const VARIANTS = [
  '/v1/payments',
  '/v1/payments/',
  '/V1/PAYMENTS',
  '/V1/Payments/',
  'http://x/v1/payments',
  'HTTP://X/V1/PAYMENTS/',
  '/v1/payments?x',
  '/v1/payments/?x=1',
  '/v1/payments#x',
  '/v1/%70ayments',
  '/v1//payments',
  '//v1/payments',
  '/v1/payments//',
];

const LIMIT = 2;

function payments(handlerRuns: { n: number }, use?: RouteSpec['use']): RouteSpec[] {
  return [
    {
      method: 'post',
      path: '/v1/payments',
      ...(use ? { use } : {}),
      handler: () => {
        handlerRuns.n++;
        return { status: 201, body: { ok: true } };
      },
    },
    { method: 'get', path: '/v1/payments', handler: () => ({ body: [] }) },
    { method: 'post', path: '/v1/refunds', handler: () => ({ status: 201, body: {} }) },
  ];
}

/** Sends LIMIT + 2 requests spelled `target`; returns how often the handler ran and the statuses. */
async function hammer(listener: Parameters<typeof listen>[0], target: string, method = 'POST') {
  const server = await listen(listener);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      statuses.push((await rawRequest(server.port, { method, path: target })).status);
    }
    return statuses;
  } finally {
    await server.close();
  }
}

for (const s of stores) {
  describe.runIf(s.enabled)(`route policies on ${s.name}`, () => {
    describe.each(adapters)('through $name', (adapter) => {
      const globalLimiter = () =>
        rateLimit({
          store: s.make(),
          policies: [
            { name: 'per-ip', limit: 1000, windowMs: 60_000 },
            {
              name: 'payments',
              limit: LIMIT,
              windowMs: 60_000,
              route: '/v1/payments',
              methods: ['POST'],
            },
          ],
        });

      it.each(VARIANTS)('mounted globally, counts %s whenever the handler runs', async (target) => {
        const runs = { n: 0 };
        const listener = adapter.build({ use: [globalLimiter()], routes: payments(runs) });
        const statuses = await hammer(listener, target);
        // The handler never runs more often than the limit, whatever the spelling.
        expect(runs.n).toBeLessThanOrEqual(LIMIT);
        if (statuses[0] === 201) expect(statuses.slice(LIMIT)).toEqual([429, 429]);
      });

      it('the example limits payments on every spelling that reaches the handler', async () => {
        for (const target of VARIANTS) {
          const runs = { n: 0 };
          const listener = adapter.build({
            use: [apiRateLimit(s.make(), { payments: LIMIT })],
            routes: payments(runs),
          });
          const statuses = await hammer(listener, target);
          expect({ target, runs: runs.n }).toEqual({ target, runs: Math.min(runs.n, LIMIT) });
          if (statuses[0] === 201) {
            expect({ target, statuses: statuses.slice(LIMIT) }).toEqual({
              target,
              statuses: [429, 429],
            });
          }
        }
      });

      it('the plain spellings the routers route do reach the handler (so the above is not vacuous)', async () => {
        for (const target of ['/v1/payments/', '/V1/PAYMENTS', 'http://x/v1/payments']) {
          const runs = { n: 0 };
          const listener = adapter.build({ use: [globalLimiter()], routes: payments(runs) });
          expect(await hammer(listener, target)).toEqual([201, 201, 429, 429]);
        }
      });

      it('leaves other methods and routes alone', async () => {
        const runs = { n: 0 };
        const listener = adapter.build({ use: [globalLimiter()], routes: payments(runs) });
        expect(await hammer(listener, '/v1/payments', 'GET')).toEqual([200, 200, 200, 200]);
        expect(await hammer(listener, '/v1/refunds')).toEqual([201, 201, 201, 201]);
        expect(await hammer(listener, '/v1/payments-x')).toEqual([404, 404, 404, 404]);
      });

      it('mounted on the route, uses the route the framework matched', async () => {
        const runs = { n: 0 };
        const limiter = rateLimit({
          store: s.make(),
          policies: [
            {
              name: 'payments',
              limit: LIMIT,
              windowMs: 60_000,
              route: ['/v1/payments', '/v1/payments/:id'],
              methods: ['post'],
            },
          ],
        });
        const listener = adapter.build({ routes: payments(runs, [limiter]) });
        for (const target of ['/V1/Payments/', 'http://x/v1/payments?y']) {
          runs.n = 0;
          const statuses = await hammer(listener, target);
          expect(statuses.filter((st) => st === 201).length).toBeLessThanOrEqual(LIMIT);
        }
        expect(runs.n).toBe(0);
      });

      it('a GET policy covers HEAD, which the routers send to GET handlers', async () => {
        const listener = adapter.build({
          use: [
            rateLimit({
              store: s.make(),
              policies: [
                {
                  name: 'list',
                  limit: 1,
                  windowMs: 60_000,
                  route: '/v1/payments',
                  methods: ['GET'],
                },
              ],
            }),
          ],
          routes: payments({ n: 0 }),
        });
        expect(await hammer(listener, '/v1/payments', 'HEAD')).toEqual([200, 429, 429, 429]);
      });
    });
  });
}

describe('normalisedPath', () => {
  it.each([
    ['/v1/payments', '/v1/payments'],
    ['/v1/payments/', '/v1/payments'],
    ['/V1/PAYMENTS', '/v1/payments'],
    ['http://x/v1/payments', '/v1/payments'],
    ['https://user@host:8443/v1/payments/?q#f', '/v1/payments'],
    ['/v1/payments?x', '/v1/payments'],
    ['/v1/payments#x', '/v1/payments'],
    ['/v1/%70ayments', '/v1/payments'],
    ['/v1/%7e%2Dx', '/v1/~-x'],
    // Reserved characters stay encoded: `%2F` is not a segment break.
    ['/v1/a%2Fb', '/v1/a%2fb'],
    ['/v1//payments', '/v1/payments'],
    ['/', '/'],
    ['http://x', '/'],
    ['*', '*'],
  ])('%s → %s', (target, expected) => {
    expect(normalisedPath(target)).toBe(expected);
  });
});

describe('route policy options', () => {
  const store = new MemoryStore();
  const policy = (extra: Record<string, unknown>) =>
    rateLimit({ store, policies: [{ name: 'p', limit: 1, windowMs: 1000, ...extra }] });

  it.each([
    [{ route: 'v1/payments' }, 'policies[0].route'],
    [{ route: '/v1/*' }, 'policies[0].route'],
    [{ route: '/v1/(a|b)' }, 'policies[0].route'],
    [{ route: '/v1/:id?' }, 'policies[0].route'],
    [{ route: [] }, 'policies[0].route'],
    [{ route: ['/a', 42] }, 'policies[0].route[1]'],
    [{ methods: 'POST' }, 'policies[0].methods'],
    [{ methods: [] }, 'policies[0].methods'],
    [{ methods: ['PO ST'] }, 'policies[0].methods'],
    [{ path: '/v1/payments' }, 'Use `route`'],
  ])('rejects %j, naming %s', (extra, name) => {
    expect(() => policy(extra)).toThrow(TypeError);
    expect(() => policy(extra)).toThrow(name);
  });
});
