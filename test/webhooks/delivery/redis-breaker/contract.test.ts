/**
 * The EndpointBreakers contract on both implementations (memoryEndpointBreakers
 * on Date.now, redisEndpointBreakers on the real Redis and its TIME): opening
 * at the ratio once the minimum volume is seen, the open period, half-open
 * probes, closing and re-opening, giving a probe back. Then what only the
 * shared one promises: probes bounded over two instances on one prefix, each
 * change told once over them, lost probes given up on Redis's clock, and the
 * keys (hash tags, TTLs, deleted on closing).
 */
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BreakerState,
  type EndpointBreakers,
  memoryEndpointBreakers,
} from '../../../../src/webhooks/delivery/breaker.js';
import {
  type RedisEndpointBreakersOptions,
  redisEndpointBreakers,
} from '../../../../src/webhooks/delivery/redis-breaker.js';
import { services } from '../../../helpers/services.js';
import { cleanBreakerKeys, redis, redisNow, sleep, uniquePrefix } from './helpers.js';

const OPEN_MS = 300;
const numbers = { minimumRequests: 4, failureRatio: 0.5, openMs: OPEN_MS, halfOpenProbes: 2 };

let client: Redis | undefined;
const prefixes: string[] = [];
afterAll(async () => {
  if (client === undefined) return;
  for (const prefix of prefixes) await cleanBreakerKeys(client, prefix);
  await client.quit();
});
function shared(options: Partial<RedisEndpointBreakersOptions> = {}, prefix = uniquePrefix('c')) {
  client ??= redis();
  prefixes.push(prefix);
  return { breakers: redisEndpointBreakers({ client, prefix, ...numbers, ...options }), prefix };
}

const kinds: [string, () => EndpointBreakers][] = [
  ['memoryEndpointBreakers', () => memoryEndpointBreakers(numbers)],
  ...(services.redis
    ? ([['redisEndpointBreakers', () => shared().breakers]] as [string, () => EndpointBreakers][])
    : []),
];

/** `n` attempts through tryAcquire, each recorded as `success`. */
async function run(b: EndpointBreakers, id: string, n: number, success: boolean) {
  for (let i = 0; i < n; i++) {
    const permit = await b.tryAcquire(id, Date.now());
    expect(permit.ok).toBe(true);
    await b.record(id, success, Date.now(), permit.ok ? permit.probe : undefined);
  }
}

async function openIt(b: EndpointBreakers, id: string) {
  await run(b, id, numbers.minimumRequests, false);
  expect(await b.state(id, Date.now())).toBe('open');
}

describe.each(kinds)('%s', (_, make) => {
  it('stays closed below the minimum volume, and opens at the ratio once it is reached', async () => {
    const b = make();
    await run(b, 'ep_a', 3, false);
    expect(await b.state('ep_a', Date.now())).toBe('closed');
    await run(b, 'ep_a', 1, false);
    expect(await b.state('ep_a', Date.now())).toBe('open');
    // Two of four failed: exactly the ratio opens it.
    await run(b, 'ep_b', 2, true);
    await run(b, 'ep_b', 2, false);
    expect(await b.state('ep_b', Date.now())).toBe('open');
    // One of four: below the ratio.
    await run(b, 'ep_c', 3, true);
    await run(b, 'ep_c', 1, false);
    expect(await b.state('ep_c', Date.now())).toBe('closed');
    expect(await b.state('ep_never', Date.now())).toBe('closed');
    expect(await b.nextAttemptAt('ep_never', Date.now())).toBe(0);
  });

  it('an open circuit refuses until openMs has passed, then lets halfOpenProbes probes go', async () => {
    const b = make();
    await openIt(b, 'ep');
    const refused = await b.tryAcquire('ep', Date.now());
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.state).toBe('open');
    expect(refused.retryAt).toBe(await b.nextAttemptAt('ep', Date.now()));
    await sleep(OPEN_MS + 50);
    expect(await b.state('ep', Date.now())).toBe('half-open');
    const one = await b.tryAcquire('ep', Date.now());
    const two = await b.tryAcquire('ep', Date.now());
    const three = await b.tryAcquire('ep', Date.now());
    expect([one.ok, two.ok, three.ok]).toEqual([true, true, false]);
    if (three.ok) return;
    expect(three.state).toBe('half-open');
    // Both probes succeed: closed, with an empty window (one failure does not re-open it).
    await b.record('ep', true, Date.now(), one.ok ? one.probe : undefined);
    expect(await b.state('ep', Date.now())).toBe('half-open');
    await b.record('ep', true, Date.now(), two.ok ? two.probe : undefined);
    expect(await b.state('ep', Date.now())).toBe('closed');
    await run(b, 'ep', 1, false);
    expect(await b.state('ep', Date.now())).toBe('closed');
  });

  it('a probe that fails opens the circuit again for openMs', async () => {
    const b = make();
    await openIt(b, 'ep');
    await sleep(OPEN_MS + 50);
    const probe = await b.tryAcquire('ep', Date.now());
    expect(probe.ok).toBe(true);
    const before = Date.now();
    await b.record('ep', false, Date.now(), probe.ok ? probe.probe : undefined);
    expect(await b.state('ep', Date.now())).toBe('open');
    expect(await b.nextAttemptAt('ep', Date.now())).toBeGreaterThanOrEqual(before + OPEN_MS - 20);
    expect((await b.tryAcquire('ep', Date.now())).ok).toBe(false);
  });

  it('a probe given back lets another go, and counts nothing', async () => {
    const b = make();
    await openIt(b, 'ep');
    await sleep(OPEN_MS + 50);
    const one = await b.tryAcquire('ep', Date.now());
    const two = await b.tryAcquire('ep', Date.now());
    expect((await b.tryAcquire('ep', Date.now())).ok).toBe(false);
    await b.release('ep', Date.now(), one.ok ? one.probe : undefined);
    const again = await b.tryAcquire('ep', Date.now());
    expect(again.ok).toBe(true);
    expect(await b.state('ep', Date.now())).toBe('half-open');
    await b.record('ep', true, Date.now(), two.ok ? two.probe : undefined);
    await b.record('ep', true, Date.now(), again.ok ? again.probe : undefined);
    expect(await b.state('ep', Date.now())).toBe('closed');
  });

  it('tells each change to its listeners, in order', async () => {
    const b = make();
    const changes: [string, BreakerState, BreakerState][] = [];
    const off = b.onStateChange?.((id, state, previous) => changes.push([id, state, previous]));
    await openIt(b, 'ep');
    await sleep(OPEN_MS + 50);
    const probe = await b.tryAcquire('ep', Date.now());
    await b.record('ep', false, Date.now(), probe.ok ? probe.probe : undefined);
    expect(changes).toEqual([
      ['ep', 'open', 'closed'],
      ['ep', 'half-open', 'open'],
      ['ep', 'open', 'half-open'],
    ]);
    off?.();
    await sleep(OPEN_MS + 50);
    await b.state('ep', Date.now());
    expect(changes).toHaveLength(3);
  });
});

describe.runIf(services.redis)('redisEndpointBreakers shared by instances', () => {
  it('bounds the probes over two instances on one prefix, and tells each change once', async () => {
    const { breakers: a, prefix } = shared();
    const { breakers: b } = shared({}, prefix);
    const told: [string, BreakerState, BreakerState][] = [];
    a.onStateChange((_, state, previous) => told.push(['a', state, previous]));
    b.onStateChange((_, state, previous) => told.push(['b', state, previous]));
    // Failures from both instances add up: two each open the circuit of minimumRequests 4.
    await run(a, 'ep', 2, false);
    await run(b, 'ep', 1, false);
    expect(await a.state('ep')).toBe('closed');
    await run(b, 'ep', 1, false);
    expect(await a.state('ep')).toBe('open');
    expect((await a.tryAcquire('ep')).ok).toBe(false);
    await sleep(OPEN_MS + 50);
    // Twenty concurrent asks over both instances: exactly halfOpenProbes go.
    const permits = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).tryAcquire('ep')),
    );
    const probes = permits.filter((p) => p.ok);
    expect(probes).toHaveLength(numbers.halfOpenProbes);
    expect(await a.probesInFlight('ep')).toBe(numbers.halfOpenProbes);
    // One probe's success recorded by each instance closes the circuit for both.
    await a.record('ep', true, undefined, probes[0]!.ok ? probes[0]!.probe : undefined);
    expect(await b.state('ep')).toBe('half-open');
    await b.record('ep', true, undefined, probes[1]!.ok ? probes[1]!.probe : undefined);
    expect(await b.state('ep')).toBe('closed');
    expect(await a.state('ep')).toBe('closed');
    // closed→open by b (its fourth failure), open→half-open by whichever asked first, one
    // half-open→closed by b: each once, over both instances.
    expect(told.map(([, state, previous]) => `${previous}>${state}`)).toEqual([
      'closed>open',
      'open>half-open',
      'half-open>closed',
    ]);
    expect(told[0]![0]).toBe('b');
    expect(told[2]![0]).toBe('b');
  });

  it('a probe never recorded (its worker died) is given up after openMs, on Redis time', async () => {
    const { breakers } = shared({ halfOpenProbes: 1 });
    await openIt(breakers, 'ep');
    await sleep(OPEN_MS + 50);
    const lost = await breakers.tryAcquire('ep');
    expect(lost.ok).toBe(true);
    const refused = await breakers.tryAcquire('ep');
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    const now = await redisNow(client!);
    // The probe is given up openMs after it went, by Redis's clock.
    expect(refused.retryAt).toBeGreaterThan(now);
    expect(refused.retryAt).toBeLessThanOrEqual(now + OPEN_MS);
    await sleep(OPEN_MS + 50);
    expect((await breakers.tryAcquire('ep')).ok).toBe(true);
  });

  it('counts the window over both instances: snapshots agree', async () => {
    const { breakers: a, prefix } = shared({ minimumRequests: 10 });
    const { breakers: b } = shared({ minimumRequests: 10 }, prefix);
    await run(a, 'ep', 3, true);
    await run(b, 'ep', 2, false);
    const snapshot = { state: 'closed', failures: 2, successes: 3 };
    expect(await a.snapshot('ep')).toEqual(snapshot);
    expect(await b.snapshot('ep')).toEqual(snapshot);
  });

  it('keeps its keys under one hash tag per endpoint, with TTLs, and deletes them on closing', async () => {
    const { breakers, prefix } = shared({ windowMs: 60_000 });
    await run(breakers, 'ep_k', 1, true);
    const state = `{${prefix}:ep_k}:breaker`;
    const probes = `{${prefix}:ep_k}:probes`;
    const ttl = await client!.pttl(state);
    // Ten minutes (the longest of 10 min, two windows, two open periods), just refreshed.
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);
    await run(breakers, 'ep_k', 3, false);
    expect(await client!.hget(state, 'state')).toBe('open');
    expect(await client!.pttl(state)).toBeGreaterThan(9 * 60_000);
    await sleep(OPEN_MS + 50);
    const one = await breakers.tryAcquire('ep_k');
    const two = await breakers.tryAcquire('ep_k');
    const probeTtl = await client!.pttl(probes);
    expect(probeTtl).toBeGreaterThan(0);
    expect(probeTtl).toBeLessThanOrEqual(OPEN_MS);
    expect(await client!.zcard(probes)).toBe(2);
    await breakers.record('ep_k', true, undefined, one.ok ? one.probe : undefined);
    await breakers.record('ep_k', true, undefined, two.ok ? two.probe : undefined);
    // Closed with an empty window: nothing is left to keep.
    expect(await client!.exists(state, probes)).toBe(0);
    // Only this endpoint's keys, all under its tag.
    const [, keys] = await client!.scan('0', 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    expect(keys).toEqual([]);
  });

  it('the window rolls: buckets older than windowMs are dropped from the hash', async () => {
    const { breakers, prefix } = shared({ windowMs: 1000, minimumRequests: 3 });
    await run(breakers, 'ep', 2, false);
    await sleep(1150);
    // The two failures left the window: two more do not reach the minimum volume.
    await run(breakers, 'ep', 2, false);
    expect(await breakers.state('ep')).toBe('closed');
    const fields = await client!.hkeys(`{${prefix}:ep}:breaker`);
    expect(fields.filter((f) => /^[fs]:/.test(f)).length).toBeLessThanOrEqual(2);
    await run(breakers, 'ep', 1, false);
    expect(await breakers.state('ep')).toBe('open');
  });

  it('refuses bad options loudly, without serialising the client', () => {
    client ??= redis();
    expect(() => redisEndpointBreakers({ client: client!, minimumRequests: 0 })).toThrow(
      /minimumRequests/,
    );
    expect(() =>
      redisEndpointBreakers({ client: client!, openMs: 5, halfOpen: 1 } as never),
    ).toThrow(/halfOpen/);
    expect(() => redisEndpointBreakers({ client: {} as never })).toThrow(/client/);
    expect(() => redisEndpointBreakers({ client: client!, prefix: '' })).toThrow(/prefix/);
    expect(() => redisEndpointBreakers({ client: client!, failureRatio: 2 })).toThrow(
      /failureRatio/,
    );
  });
});
