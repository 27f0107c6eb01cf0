/**
 * The rate-limit middleware through Express 5, Express 4, Koa 3 and Koa 2:
 * headers and their grammar, 429 problems, several policies, keys, IPv6
 * grouping, trusted proxies, cost, skip and dry-run.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/logger.js';
import {
  byHeader,
  byIp,
  byPrincipal,
  flexiblePolicy,
  ipNetwork,
  type RateLimitOptions,
  rateLimit,
} from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters, type AppSpec } from '../helpers/apps.js';

const PROBLEM = /^application\/problem\+json/;

// RFC 9651 (Structured Fields) List of Strings with Integer parameters, as the draft defines both fields.
const SF_STRING = '"[\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]*"';
const SF_PARAM = ';[a-z*][a-z0-9_.*-]*=-?\\d{1,15}';
const SF_ITEM = `${SF_STRING}(?:${SF_PARAM})*`;
const SF_LIST = new RegExp(`^${SF_ITEM}(?:[ \\t]*,[ \\t]*${SF_ITEM})*$`);

function params(
  field: string | undefined,
): Array<{ name: string } & Record<string, number | string>> {
  return (field ?? '').split(/\s*,\s*/).map((item) => {
    const [name = '', ...ps] = item.split(';');
    const out: { name: string } & Record<string, number | string> = { name: JSON.parse(name) };
    for (const p of ps) {
      const [k = '', v = ''] = p.split('=');
      out[k] = Number(v);
    }
    return out;
  });
}

const logger = () => {
  const lines: string[] = [];
  const log: Logger = {
    error: (m) => lines.push(`error ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    info: (m) => lines.push(`info ${m}`),
  };
  return { log, lines };
};

describe.each(adapters)('rate limiting through $name', (adapter) => {
  function app(options: Partial<RateLimitOptions>, spec: Partial<AppSpec> = {}) {
    let calls = 0;
    const listener = adapter.build({
      ...spec,
      use: [rateLimit({ store: new MemoryStore(), limit: 3, windowMs: 60_000, ...options })],
      routes: [
        {
          method: 'get',
          path: '/things',
          handler: () => {
            calls++;
            return { body: { ok: true } };
          },
        },
        {
          method: 'post',
          path: '/v1/payments',
          handler: () => ({ status: 201, body: { ok: true } }),
        },
        ...(spec.routes ?? []),
      ],
    });
    return { listener, calls: () => calls };
  }

  it('states the policy and the remaining quota on every response, in the draft grammar', async () => {
    const { listener } = app({ name: 'per-ip' });
    const first = await request(listener).get('/things').expect(200);
    expect(first.headers['ratelimit-policy']).toMatch(SF_LIST);
    expect(first.headers.ratelimit).toMatch(SF_LIST);
    expect(params(first.headers['ratelimit-policy'])).toEqual([{ name: 'per-ip', q: 3, w: 60 }]);
    expect(params(first.headers.ratelimit)).toEqual([{ name: 'per-ip', r: 2, t: 20 }]);
    const second = await request(listener).get('/things').expect(200);
    expect(params(second.headers.ratelimit)[0]).toMatchObject({ r: 1 });
    expect(second.headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('refuses with a 429 problem and a Retry-After of at least one second, without running the handler', async () => {
    const { listener, calls } = app({});
    for (let i = 0; i < 3; i++) await request(listener).get('/things').expect(200);
    const res = await request(listener).get('/things').expect(429);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({ status: 429, code: 'rate-limited', policy: 'default' });
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBe(20);
    expect(params(res.headers.ratelimit)[0]).toMatchObject({ name: 'default', r: 0 });
    expect(res.headers['ratelimit-policy']).toMatch(SF_LIST);
    expect(calls()).toBe(3);
  });

  it('never sends Retry-After: 0 when the client must wait less than a second', async () => {
    // 2 per second, no burst: the next token comes 500 ms later.
    const { listener } = app({
      limit: 2,
      windowMs: 1000,
      burst: 1,
      clock: () => 1_800_000_000_000,
    });
    await request(listener).get('/things').expect(200);
    const res = await request(listener).get('/things').expect(429);
    expect(res.headers['retry-after']).toBe('1');
  });

  it('sends the legacy X-RateLimit-* fields when asked', async () => {
    const { listener } = app({ legacyHeaders: true, headers: false });
    const res = await request(listener).get('/things').expect(200);
    expect(res.headers.ratelimit).toBeUndefined();
    expect(res.headers['x-ratelimit-limit']).toBe('3');
    expect(res.headers['x-ratelimit-remaining']).toBe('2');
    const reset = Number(res.headers['x-ratelimit-reset']);
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 21);
  });

  it('checks several policies together and reports the one closest to exhaustion', async () => {
    const { listener } = app({
      policies: [
        { name: 'per-ip', limit: 10, windowMs: 60_000, key: byIp() },
        { name: 'per-key', limit: 4, windowMs: 3_600_000, key: byHeader('x-api-key') },
        {
          name: 'payments',
          limit: 1,
          windowMs: 60_000,
          key: byIp(),
          when: (ctx) => ctx.request.method === 'POST' && ctx.request.path === '/v1/payments',
        },
      ],
    });
    const a = await request(listener).get('/things').set('x-api-key', 'k1').expect(200);
    expect(params(a.headers['ratelimit-policy']).map((p) => p.name)).toEqual(['per-ip', 'per-key']);
    expect(params(a.headers.ratelimit)[0]).toMatchObject({ name: 'per-key', r: 3 });
    // Without a key, the per-key policy does not apply.
    const b = await request(listener).get('/things').expect(200);
    expect(params(b.headers.ratelimit)[0]).toMatchObject({ name: 'per-ip', r: 8 });
    // The route policy applies to POST /v1/payments only.
    const c = await request(listener).post('/v1/payments').set('x-api-key', 'k1').expect(201);
    expect(params(c.headers.ratelimit)[0]).toMatchObject({ name: 'payments', r: 0 });
    const d = await request(listener).post('/v1/payments').set('x-api-key', 'k1').expect(429);
    expect(d.body.policy).toBe('payments');
    // The refused payment consumed nothing from the other two.
    const e = await request(listener).get('/things').set('x-api-key', 'k1').expect(200);
    expect(params(e.headers.ratelimit)[0]).toMatchObject({ name: 'per-key', r: 1 });
    expect(params(e.headers['ratelimit-policy'])).toHaveLength(2);
  });

  it('takes a per-request cost and a per-request limit', async () => {
    const { listener } = app({
      policies: [
        {
          name: 'plan',
          limit: (ctx) => (ctx.request.header('x-plan') === 'pro' ? 100 : 10),
          windowMs: 60_000,
        },
      ],
      cost: (ctx) => Number(ctx.request.query.get('weight') ?? 1),
    });
    const a = await request(listener).get('/things?weight=4').expect(200);
    expect(params(a.headers.ratelimit)[0]).toMatchObject({ r: 6 });
    await request(listener).get('/things?weight=7').expect(429);
    const pro = await request(listener).get('/things?weight=7').set('x-plan', 'pro').expect(200);
    expect(params(pro.headers['ratelimit-policy'])[0]).toMatchObject({ q: 100 });
  });

  it('skips requests the skip function allows', async () => {
    const { listener } = app({ limit: 1, skip: (ctx) => ctx.request.path === '/things' });
    for (let i = 0; i < 3; i++) {
      const res = await request(listener).get('/things').expect(200);
      expect(res.headers.ratelimit).toBeUndefined();
    }
    await request(listener).post('/v1/payments').expect(201);
    await request(listener).post('/v1/payments').expect(429);
  });

  it('in dry-run mode sets headers and logs, but never refuses', async () => {
    const { log, lines } = logger();
    const { listener, calls } = app({ limit: 1, dryRun: true }, { options: { logger: log } });
    await request(listener).get('/things').expect(200);
    const res = await request(listener).get('/things').expect(200);
    expect(params(res.headers.ratelimit)[0]).toMatchObject({ r: 0 });
    expect(calls()).toBe(2);
    expect(lines.some((l) => l.includes('dry run'))).toBe(true);
  });

  it('counts per principal, and skips the policy for anonymous requests', async () => {
    const { listener } = app(
      { policies: [{ name: 'per-user', limit: 1, windowMs: 60_000, key: byPrincipal() }] },
      {
        before: (state, headers) => {
          const user = headers['x-user'];
          if (typeof user === 'string') state.principal = { id: user };
        },
      },
    );
    await request(listener).get('/things').set('x-user', 'ada').expect(200);
    await request(listener).get('/things').set('x-user', 'ada').expect(429);
    await request(listener).get('/things').set('x-user', 'alan').expect(200);
    const anon = await request(listener).get('/things').expect(200);
    expect(anon.headers.ratelimit).toBeUndefined();
  });

  it('counts an oversized key like any other (hashed to a bounded counter key)', async () => {
    const { listener } = app({
      policies: [{ name: 'per-key', limit: 1, windowMs: 60_000, key: byHeader('x-api-key') }],
    });
    const huge = 'k'.repeat(8000);
    await request(listener).get('/things').set('x-api-key', huge).expect(200);
    await request(listener).get('/things').set('x-api-key', huge).expect(429);
    await request(listener).get('/things').set('x-api-key', `${huge}2`).expect(200);
  });

  describe('client addresses', () => {
    const proxied = (ipv6Prefix?: number) =>
      app(
        {
          limit: 1,
          key: byIp(ipv6Prefix === undefined ? {} : { ipv6Prefix }),
        },
        { options: { trustProxy: 'loopback' } },
      ).listener;

    it('groups IPv6 clients by /64', async () => {
      const listener = proxied();
      await request(listener).get('/things').set('x-forwarded-for', '2001:db8:1:2::a').expect(200);
      // Same /64, another interface identifier: the same client.
      await request(listener)
        .get('/things')
        .set('x-forwarded-for', '2001:db8:1:2:ffff:eeee:dddd:cccc')
        .expect(429);
      await request(listener).get('/things').set('x-forwarded-for', '2001:db8:1:3::a').expect(200);
    });

    it('groups by a configured prefix', async () => {
      const listener = proxied(48);
      await request(listener).get('/things').set('x-forwarded-for', '2001:db8:1:2::a').expect(200);
      await request(listener).get('/things').set('x-forwarded-for', '2001:db8:1:3::a').expect(429);
    });

    it('believes X-Forwarded-For only from a trusted proxy, and never keys on ports or garbage', async () => {
      // Trusted loopback proxy: the forwarded address is the client; its port is stripped.
      const listener = proxied();
      await request(listener).get('/things').set('x-forwarded-for', '203.0.113.7:5555').expect(200);
      await request(listener).get('/things').set('x-forwarded-for', '203.0.113.7').expect(429);
      // Garbage ends the walk at the proxy itself: every such request is one client (the proxy), not a new key each.
      await request(listener).get('/things').set('x-forwarded-for', 'not-an-ip').expect(200);
      await request(listener).get('/things').set('x-forwarded-for', 'still garbage').expect(429);
      // Without trustProxy, the header is ignored: rotating it gains nothing.
      const direct = app({ limit: 1 }).listener;
      await request(direct).get('/things').set('x-forwarded-for', '198.51.100.1').expect(200);
      await request(direct).get('/things').set('x-forwarded-for', '198.51.100.2').expect(429);
    });
  });

  it('plugs in a rate-limiter-flexible limiter, all-or-nothing with the native policies', async () => {
    const limiter = new RateLimiterMemory({ points: 5, duration: 60 });
    const { listener } = app({
      policies: [
        flexiblePolicy({ name: 'flexible', limiter }),
        { name: 'native', limit: 2, windowMs: 60_000 },
      ],
    });
    const a = await request(listener).get('/things').expect(200);
    expect(params(a.headers['ratelimit-policy'])).toEqual([
      { name: 'flexible', q: 5, w: 60 },
      { name: 'native', q: 2, w: 60 },
    ]);
    await request(listener).get('/things').expect(200);
    await request(listener).get('/things').expect(429);
    // The refused request's flexible point was handed back: 2 taken of 5.
    const state = await limiter.get('127.0.0.1');
    expect(state?.consumedPoints).toBe(2);
  });

  it('refuses through a rate-limiter-flexible limiter, counting the refusal as the limiter itself does', async () => {
    const limiter = new RateLimiterMemory({ points: 1, duration: 60 });
    const { listener } = app({ policies: [flexiblePolicy({ name: 'flexible', limiter })] });
    await request(listener).get('/things').expect(200);
    const res = await request(listener).get('/things').expect(429);
    expect(res.body.policy).toBe('flexible');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // The refused consume is not rewarded: the limiter may not have counted it (blocks).
    expect((await limiter.get('127.0.0.1'))?.consumedPoints).toBe(2);
  });

  it('refuses a request that costs more than a policy can ever hold with 400 and no Retry-After: waiting never helps', async () => {
    const { listener, calls } = app({ limit: 5, windowMs: 60_000, cost: 6 });
    const res = await request(listener).get('/things').expect(400).expect('content-type', PROBLEM);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.body).toMatchObject({
      code: 'rate-limit-cost-exceeds-capacity',
      policy: 'default',
      cost: 6,
      capacity: 5,
    });
    expect(calls()).toBe(0);
  });

  it("refuses a cost above a rate-limiter-flexible limiter's points the same way", async () => {
    const limiter = new RateLimiterMemory({ points: 2, duration: 60 });
    const { listener } = app({ cost: 3, policies: [flexiblePolicy({ name: 'flex', limiter })] });
    const res = await request(listener).get('/things').expect(400);
    expect(res.body.code).toBe('rate-limit-cost-exceeds-capacity');
    expect(res.headers['retry-after']).toBeUndefined();
    expect(await limiter.get('127.0.0.1')).toBeNull();
  });

  it('never reports more remaining than the quota when the burst exceeds the limit', async () => {
    const { listener } = app({ limit: 2, windowMs: 60_000, burst: 10 });
    const res = await request(listener).get('/things').expect(200);
    const [state] = params(res.headers.ratelimit);
    const [policy] = params(res.headers['ratelimit-policy']);
    expect(policy?.q).toBe(2);
    expect(state?.r).toBe(2);
  });

  it('sends only 15-digit integers whatever a rate-limiter-flexible limiter answers', async () => {
    const answers = [
      { remainingPoints: 2.5, msBeforeNext: 1234.5 },
      { remainingPoints: -3, msBeforeNext: -1 },
      { remainingPoints: 1e17, msBeforeNext: 1e20 },
      { remainingPoints: Number.NaN, msBeforeNext: Number.POSITIVE_INFINITY },
    ];
    let i = 0;
    const limiter = {
      points: 5,
      duration: 60,
      consume: async () =>
        answers[i++ % answers.length] as { remainingPoints: number; msBeforeNext: number },
      reward: async () => undefined,
    };
    const { listener } = app({ policies: [flexiblePolicy({ name: 'odd', limiter })] });
    for (let k = 0; k < answers.length; k++) {
      const res = await request(listener).get('/things').expect(200);
      expect(res.headers.ratelimit).toMatch(SF_LIST);
      const [state] = params(res.headers.ratelimit);
      expect(
        Number.isInteger(state?.r) && (state?.r as number) >= 0 && (state?.r as number) <= 5,
      ).toBe(true);
      expect(Number.isInteger(state?.t)).toBe(true);
    }
  });
});

describe('leaky bucket through the middleware', () => {
  it('delays admitted requests to their turn', async () => {
    const waits: number[] = [];
    const listener = adapters[0]!.build({
      use: [
        rateLimit({
          store: new MemoryStore(),
          algorithm: 'leaky-bucket',
          limit: 10,
          windowMs: 1000,
          burst: 2,
          clock: () => 1_800_000_000_000,
          sleep: async (ms) => {
            waits.push(ms);
          },
        }),
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: {} }) }],
    });
    for (let i = 0; i < 3; i++) await request(listener).get('/x').expect(200);
    await request(listener).get('/x').expect(429);
    expect(waits).toEqual([100, 200]);
  });
});

describe('ipNetwork', () => {
  it.each([
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2:0:0:0:0/64'],
    ['2001:db8:1:2::', 64, '2001:db8:1:2:0:0:0:0/64'],
    ['2001:db8:abcd:12ff::1', 56, '2001:db8:abcd:1200:0:0:0:0/56'],
    ['::1', 128, '0:0:0:0:0:0:0:1'],
    // IPv4 clients in IPv6 form are keyed as the IPv4 address, not lumped into ::/64.
    ['::ffff:1.2.3.4', 64, '1.2.3.4'],
    ['::ffff:102:304', 64, '1.2.3.4'],
    ['::1.2.3.4', 64, '1.2.3.4'],
    ['::1', 64, '0:0:0:0:0:0:0:0/64'],
  ])('%s /%i → %s', (ip, prefix, expected) => {
    expect(ipNetwork(ip, prefix)).toBe(expected);
  });

  it('keeps IPv4 addresses whole by default and groups them on request', () => {
    expect(ipNetwork('203.0.113.77')).toBe('203.0.113.77');
    expect(ipNetwork('203.0.113.77', 64, 24)).toBe('203.0.113.0/24');
    expect(ipNetwork('203.0.113.77', 64, 0)).toBe('0.0.0.0/0');
  });

  it('returns undefined for anything that is not an address', () => {
    for (const bad of ['', 'garbage', '1.2.3.4:80', '[::1]', '2001:db8::1::2']) {
      expect(ipNetwork(bad)).toBeUndefined();
    }
  });
});

describe('options', () => {
  const store = new MemoryStore();
  it.each([
    [{ store: {} }, /store/],
    [{ store, limit: 0, windowMs: 1000 }, /limit/],
    [{ store, limit: 5 }, /windowMs/],
    [{ store, limit: 5, windowMs: 1000, algorithm: 'bogus' }, /algorithm/],
    [{ store, policies: [] }, /policies/],
    [{ store, policies: [{ name: 'a b', limit: 1, windowMs: 1 }] }, /name/],
    [
      {
        store,
        policies: [
          { name: 'a', limit: 1, windowMs: 1 },
          { name: 'a', limit: 1, windowMs: 1 },
        ],
      },
      /distinct/,
    ],
    [{ store, limit: 1, windowMs: 1, cost: -1 }, /cost/],
    [{ store, limit: 1, windowMs: 1, onStoreError: 'maybe' }, /onStoreError/],
    [{ store, limit: 1, windowMs: 1, hashTag: '{x}' }, /hashTag/],
    [{ store, limit: 1, windowMs: 1, slots: 'many' }, /"slots" must be 'one' or 'per-counter'/],
    [{ store, limit: 2.5, windowMs: 1000 }, /limit/],
    [{ store, limit: 1e12, windowMs: 1000 }, /limit/],
    [{ store, limit: 5, windowMs: 1000, burst: 0 }, /burst/],
    [{ store, limit: 5, windowMs: 1000, cost: 0.5 }, /cost/],
    [{ store, policies: [{ name: 'p', limit: 5, windowMs: 1000, cost: -1 }] }, /cost/],
    // Beyond five years a window's TTL exceeds the stores' bound (and `w` grows past 9 digits).
    [{ store, limit: 5, windowMs: 200_000_000_000 }, /windowMs.*five years/],
    [{ store, limit: 1, windowMs: 1e17 }, /windowMs/],
    // A bucket whose refill takes longer than ten years.
    [{ store, limit: 1, windowMs: 86_400_000, burst: 1_000_000 }, /burst.*refill/],
    // express-rate-limit's habit, pointed at the option it means here.
    [
      { store, max: 5, windowMs: 60_000 },
      /rateLimit: unknown option "max"\. .*policies: \[\{ name, limit, windowMs \}\]/,
    ],
    [{ store, limit: 5, windowMs: 1000, keyGenerator: () => 'k' }, /"keyGenerator".*`key`/],
    [{ store, limit: 5, windowMs: 1000, dryrun: true }, /Did you mean "dryRun"/],
    [
      { store, policies: [{ name: 'p', max: 5, windowMs: 1000 }] },
      /policies\[0\]: unknown option "max"/,
    ],
    [
      { store, policies: [{ name: 'p', limit: 5, windowMs: 1000, burts: 9 }] },
      /Did you mean "burst"/,
    ],
    [{ store, policies: [{ name: 'p', limiter: {} }] }, /flexiblePolicy\(\{ name, limiter \}\)/],
  ])('rejects %j when created', (options, message) => {
    expect(() => rateLimit(options as unknown as RateLimitOptions)).toThrow(TypeError);
    expect(() => rateLimit(options as unknown as RateLimitOptions)).toThrow(message);
  });

  it('prefixes every message with restwell/rateLimit', () => {
    const bad: unknown[] = [
      { store, max: 5 },
      { store, limit: 0, windowMs: 1 },
      { store, policies: [{ name: 'p', limit: 1, windowMs: 1, route: 'x' }] },
      { store: 42, limit: 1, windowMs: 1 },
    ];
    for (const options of bad) {
      expect(() => rateLimit(options as RateLimitOptions)).toThrow(/^restwell\/rateLimit: /);
    }
    expect(() =>
      flexiblePolicy({ name: 'f', limiter: 42 as unknown as RateLimiterMemory }),
    ).toThrow(/^restwell\/rateLimit: /);
  });

  it.each([2.5, -1, 0, 1e16])(
    'rejects a rate-limiter-flexible limiter with %d points',
    (points) => {
      const limiter = new RateLimiterMemory({ points: 1, duration: 60 });
      Object.defineProperty(limiter, 'points', { value: points });
      expect(() => flexiblePolicy({ name: 'f', limiter })).toThrow(/limiter\.points/);
    },
  );

  it('accepts windowMs up to five years', () => {
    expect(() => rateLimit({ store, limit: 5, windowMs: 157_788_000_000 })).not.toThrow();
  });
});

describe('the public entry point', () => {
  it('exports what applications call, not the backends or the algorithms', async () => {
    const api = await import('../../src/rate-limit/index.js');
    expect(Object.keys(api).sort()).toEqual([
      'CostExceedsCapacityError',
      'MAX_WINDOW_MS',
      'RateLimitedError',
      'byHeader',
      'byIp',
      'byPrincipal',
      'byPrincipalOrIp',
      'flexiblePolicy',
      'ipNetwork',
      'normalisedPath',
      'rateLimit',
    ]);
  });
});
