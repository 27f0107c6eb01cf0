/**
 * Found by attacking the rate limiter as a client would: a key named after
 * another key's hash, a dry run that left flexible limiters charged, a cost
 * counted from the request beyond every capacity, and IP prefix options that
 * silently keyed by something else.
 */
import { createHash } from 'node:crypto';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { KeyFunction } from '../../src/rate-limit/index.js';
import { byIp, flexiblePolicy, ipNetwork, rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

const PROBLEM = /^application\/problem\+json/;

/** A raw key from a header, as an application keys by tenant. */
const byTenant: KeyFunction = (ctx) => ctx.request.header('x-tenant');

describe.each(adapters)('through $name', (adapter) => {
  const build = (options: Parameters<typeof rateLimit>[0]) =>
    adapter.build({
      use: [rateLimit(options)],
      routes: [{ method: 'post', path: '/batch', handler: () => ({ status: 201, body: {} }) }],
    });

  it("a client cannot name its key after another key's hash and exhaust that counter", async () => {
    const listener = build({
      store: new MemoryStore(),
      policies: [{ name: 'tenant', limit: 1, windowMs: 60_000, key: byTenant }],
    });
    const victim = `tenant-${'v'.repeat(200)}`;
    const forged = `#${createHash('sha256').update(victim).digest('base64url')}`;
    await request(listener).post('/batch').set('x-tenant', forged).expect(201);
    // The victim's own counter is untouched by the forged key's request.
    await request(listener).post('/batch').set('x-tenant', victim).expect(201);
    await request(listener).post('/batch').set('x-tenant', victim).expect(429);
    await request(listener).post('/batch').set('x-tenant', forged).expect(429);
  });

  it('a dry run takes nothing from a flexible limiter when a native policy would refuse', async () => {
    const limiter = new RateLimiterMemory({ points: 10, duration: 60 });
    const listener = build({
      store: new MemoryStore(),
      dryRun: true,
      policies: [
        flexiblePolicy({ name: 'flexible', limiter }),
        { name: 'native', limit: 1, windowMs: 60_000 },
      ],
    });
    for (let i = 0; i < 3; i++) await request(listener).post('/batch').expect(201);
    // Enforcement would have admitted one request and refused two, taking one point in all.
    expect((await limiter.get('127.0.0.1'))?.consumedPoints).toBe(1);
  });

  it('a cost counted from the request beyond every capacity is a 400 problem, not a 500', async () => {
    const listener = build({
      store: new MemoryStore(),
      limit: 100,
      windowMs: 60_000,
      cost: (ctx) => Number(ctx.request.header('x-items') ?? 1),
    });
    const res = await request(listener).post('/batch').set('x-items', '5000000000').expect(400);
    expect(res.headers['content-type']).toMatch(PROBLEM);
    expect(res.body).toMatchObject({ capacity: 100, cost: 5_000_000_000 });
    expect(res.headers['retry-after']).toBeUndefined();
    await request(listener).post('/batch').set('x-items', '1').expect(201);
  });
});

describe('IP prefix options', () => {
  it.each([
    [{ ipv6Prefix: Number.NaN }, /ipv6Prefix.*integer from 0 to 128/],
    [{ ipv6Prefix: 200 }, /ipv6Prefix/],
    [{ ipv6Prefix: 56.5 }, /ipv6Prefix/],
    [{ ipv4Prefix: -1 }, /ipv4Prefix.*integer from 0 to 32/],
    [{ ipv4Prefix: 33 }, /ipv4Prefix/],
    [{ ipv6prefix: 48 }, /unknown option "ipv6prefix".*ipv6Prefix/],
  ])('byIp(%o) throws a TypeError naming the option', (options, message) => {
    expect(() => byIp(options as never)).toThrow(TypeError);
    expect(() => byIp(options as never)).toThrow(message);
  });

  it('ipNetwork checks its prefixes too', () => {
    expect(() => ipNetwork('2001:db8::1', Number.NaN)).toThrow(/ipv6Prefix/);
    expect(() => ipNetwork('192.0.2.1', 64, 40)).toThrow(/ipv4Prefix/);
    expect(ipNetwork('2001:0db8:0:0:0:0:0:1', 64)).toBe(ipNetwork('2001:DB8::ffff', 64));
    expect(ipNetwork('192.0.2.77', 64, 24)).toBe('192.0.2.0/24');
  });

  it('keeps link-local IPv6 clients apart: they all share fe80::/64', () => {
    expect(ipNetwork('fe80::1')).not.toBe(ipNetwork('fe80::2'));
    expect(ipNetwork('fe80::a:b:c:d')).toBe(ipNetwork('FE80:0:0:0:a:b:c:d'));
    expect(ipNetwork('2001:db8::1')).toBe(ipNetwork('2001:db8::2'));
  });
});

describe('timeoutMs', () => {
  it('is refused beyond the longest timer Node honours, which would fire at once and fail every request open', () => {
    const store = new MemoryStore();
    expect(() => rateLimit({ store, limit: 1, windowMs: 1000, timeoutMs: 2 ** 31 })).toThrow(
      /option "timeoutMs" must be a positive number of milliseconds up to 2147483647/,
    );
    expect(() =>
      rateLimit({ store, limit: 1, windowMs: 1000, timeoutMs: 2 ** 31 - 1 }),
    ).not.toThrow();
  });
});
