/**
 * The EndpointHealthStore contract on both implementations
 * (memoryEndpointHealth on a clock the test moves, redisEndpointHealth on the
 * real Redis and its TIME, with short windows): an alert once past the
 * failure share with the minimum volume, none below either, recovery,
 * disable at disableAt (by `check` of one endpoint or of every one due), the
 * window rolling. Then what only the shared one promises: two instances on
 * one prefix raise one alert and one disable, an alert raised by an instance
 * that is gone still runs out through another's `check()`, and the keys (hash
 * tags, TTLs, the due index).
 */
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type EndpointHealthStore,
  type EndpointHealthTransition,
  memoryEndpointHealth,
} from '../../../../src/webhooks/delivery/health.js';
import {
  type RedisEndpointHealthOptions,
  redisEndpointHealth,
} from '../../../../src/webhooks/delivery/redis-health.js';
import { services } from '../../../helpers/services.js';
import { cleanHealthKeys, redis, redisNow, sleep, uniquePrefix } from './helpers.js';

const WINDOW_MS = 1200;
const DISABLE_AFTER_MS = 300;
const numbers = {
  windowMs: WINDOW_MS,
  failureRatio: 0.5,
  minimumAttempts: 5,
  disableAfterMs: DISABLE_AFTER_MS,
};

let client: Redis | undefined;
const prefixes: string[] = [];
afterAll(async () => {
  if (client === undefined) return;
  for (const prefix of prefixes) await cleanHealthKeys(client, prefix);
  await client.quit();
});
function shared(options: Partial<RedisEndpointHealthOptions> = {}, prefix = uniquePrefix('c')) {
  client ??= redis();
  prefixes.push(prefix);
  return { health: redisEndpointHealth({ client, prefix, ...numbers, ...options }), prefix };
}

interface Harness {
  health: EndpointHealthStore;
  /** Lets `ms` pass on the store's clock. */
  pass(ms: number): Promise<void>;
  /** Every transition told, in order. */
  told: EndpointHealthTransition[];
}

function watch(health: EndpointHealthStore, pass: (ms: number) => Promise<void>): Harness {
  const told: EndpointHealthTransition[] = [];
  health.onTransition((t) => void told.push(t));
  return { health, pass, told };
}

type Make = (options?: { disableAfterMs?: number | false }) => Harness;
const kinds: [string, Make][] = [
  [
    'memoryEndpointHealth',
    (options = {}) => {
      let t = 1_700_000_000_000;
      return watch(memoryEndpointHealth({ ...numbers, ...options, now: () => t }), async (ms) => {
        t += ms;
      });
    },
  ],
  ...(services.redis
    ? ([['redisEndpointHealth', (options = {}) => watch(shared(options).health, sleep)]] as [
        string,
        Make,
      ][])
    : []),
];

async function fail(h: EndpointHealthStore, id: string, n: number) {
  for (let i = 0; i < n; i++) await h.record(id, false, Date.now());
}
async function succeed(h: EndpointHealthStore, id: string, n: number) {
  for (let i = 0; i < n; i++) await h.record(id, true, Date.now());
}
const types = (told: EndpointHealthTransition[]) =>
  told.map((t) => `${t.type}:${t.alert.endpointId}`);

describe.each(kinds)('%s', (_, make) => {
  it('raises no alert below the minimum volume, nor at or below the failure share', async () => {
    const { health, told } = make();
    await fail(health, 'ep_few', 4);
    // Three of six failed: exactly the share, which is not more than it.
    await succeed(health, 'ep_half', 3);
    await fail(health, 'ep_half', 3);
    expect(told).toEqual([]);
    expect(await health.state('ep_few', Date.now())).toEqual({
      attempts: 4,
      failures: 4,
      failureRatio: 1,
    });
    expect((await health.state('ep_half', Date.now())).alert).toBeUndefined();
    expect(await health.state('ep_never', Date.now())).toEqual({
      attempts: 0,
      failures: 0,
      failureRatio: undefined,
    });
  });

  it('alerts once past the share with the minimum volume, with disableAt', async () => {
    const { health, told } = make();
    await fail(health, 'ep_a', 4);
    expect(told).toEqual([]);
    // Four of five failed: past one half, and the fifth attempt reaches the minimum, though it
    // succeeded.
    await succeed(health, 'ep_a', 1);
    expect(types(told)).toEqual(['alert:ep_a']);
    const { alert } = told[0]!;
    expect(alert).toMatchObject({ endpointId: 'ep_a', attempts: 5, failures: 4 });
    expect(alert.failureRatio).toBeCloseTo(4 / 5);
    expect(alert.disableAt).toBe(alert.since + DISABLE_AFTER_MS);
    await fail(health, 'ep_a', 3);
    expect(told).toHaveLength(1);
    const state = await health.state('ep_a', Date.now());
    expect(state).toMatchObject({ attempts: 8, failures: 7, alert });
  });

  it('withdraws the alert once when the share falls back, and alerts afresh later', async () => {
    const { health, told } = make();
    await fail(health, 'ep_r', 5);
    await succeed(health, 'ep_r', 4);
    expect(types(told)).toEqual(['alert:ep_r']);
    // Five of ten: back at the share.
    await succeed(health, 'ep_r', 1);
    expect(types(told)).toEqual(['alert:ep_r', 'recover:ep_r']);
    expect(told[1]!.alert).toEqual(told[0]!.alert);
    await succeed(health, 'ep_r', 2);
    expect(told).toHaveLength(2);
    expect((await health.state('ep_r', Date.now())).alert).toBeUndefined();
    // And it can fail again: a new alert.
    await fail(health, 'ep_r', 6);
    expect(types(told)).toEqual(['alert:ep_r', 'recover:ep_r', 'alert:ep_r']);
  });

  it('runs the alert out at disableAt, once: the endpoint disabled and forgotten', async () => {
    const { health, pass, told } = make();
    await fail(health, 'ep_d', 5);
    await health.check(Date.now(), 'ep_d');
    expect(types(told)).toEqual(['alert:ep_d']);
    await pass(DISABLE_AFTER_MS + 50);
    await health.check(Date.now(), 'ep_d');
    await health.check(Date.now(), 'ep_d');
    expect(types(told)).toEqual(['alert:ep_d', 'disable:ep_d']);
    expect(told[1]!.alert).toMatchObject({
      endpointId: 'ep_d',
      attempts: 5,
      failures: 5,
      failureRatio: 1,
      since: told[0]!.alert.since,
      disableAt: told[0]!.alert.disableAt,
    });
    expect(await health.state('ep_d', Date.now())).toEqual({
      attempts: 0,
      failures: 0,
      failureRatio: undefined,
    });
  });

  it('check() of every endpoint disables a quiet one whose alert ran out, and only that one', async () => {
    const { health, pass, told } = make();
    await fail(health, 'ep_q', 5);
    await pass(DISABLE_AFTER_MS / 2);
    await fail(health, 'ep_later', 5);
    await pass(DISABLE_AFTER_MS / 2 + 30);
    await health.check(Date.now());
    expect(types(told)).toEqual(['alert:ep_q', 'alert:ep_later', 'disable:ep_q']);
    await pass(DISABLE_AFTER_MS / 2 + 30);
    await health.check(Date.now());
    await health.check(Date.now());
    expect(types(told)).toEqual([
      'alert:ep_q',
      'alert:ep_later',
      'disable:ep_q',
      'disable:ep_later',
    ]);
  });

  it('an attempt after disableAt runs the alert out too', async () => {
    const { health, pass, told } = make();
    await fail(health, 'ep_busy', 5);
    await pass(DISABLE_AFTER_MS + 50);
    await fail(health, 'ep_busy', 1);
    expect(types(told)).toEqual(['alert:ep_busy', 'disable:ep_busy']);
    expect(told[1]!.alert).toMatchObject({ attempts: 6, failures: 6 });
  });

  it('counts only the last window, and forgets on demand', async () => {
    const { health, pass } = make();
    await fail(health, 'ep_w', 3);
    await pass(WINDOW_MS + WINDOW_MS / 60 + 20);
    await succeed(health, 'ep_w', 1);
    expect(await health.state('ep_w', Date.now())).toMatchObject({ attempts: 1, failures: 0 });
    await fail(health, 'ep_f', 5);
    expect((await health.state('ep_f', Date.now())).alert).toBeDefined();
    await health.forget('ep_f');
    expect(await health.state('ep_f', Date.now())).toEqual({
      attempts: 0,
      failures: 0,
      failureRatio: undefined,
    });
  });

  it('disableAfterMs: false alerts and never disables', async () => {
    const { health, pass, told } = make({ disableAfterMs: false });
    await fail(health, 'ep_n', 5);
    expect(told).toHaveLength(1);
    expect(told[0]!.alert.disableAt).toBeUndefined();
    await pass(DISABLE_AFTER_MS + 50);
    await health.check(Date.now());
    await health.check(Date.now(), 'ep_n');
    expect(told).toHaveLength(1);
  });
});

describe.runIf(services.redis)('redisEndpointHealth shared by instances', () => {
  it('two instances on one prefix raise one alert and one disable between them', async () => {
    const { health: a, prefix } = shared();
    const { health: b } = shared({}, prefix);
    const told: string[] = [];
    a.onTransition((t) => void told.push(`a:${t.type}`));
    b.onTransition((t) => void told.push(`b:${t.type}`));
    // Both count into one window: ten failures at once, five from each.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).record('ep_s', false)),
    );
    expect(told.filter((t) => t.endsWith(':alert'))).toHaveLength(1);
    expect(await a.state('ep_s')).toMatchObject({ attempts: 10, failures: 10 });
    expect((await b.state('ep_s')).alert).toEqual((await a.state('ep_s')).alert);
    await sleep(DISABLE_AFTER_MS + 50);
    await Promise.all([a.check(), b.check(), a.check(0, 'ep_s'), b.check(0, 'ep_s')]);
    expect(told.filter((t) => t.endsWith(':disable'))).toHaveLength(1);
    expect(told).toHaveLength(2);
  });

  it('an alert whose instance is gone runs out through another instance’s check()', async () => {
    const { health: gone, prefix } = shared();
    await fail(gone, 'ep_orphan', 5);
    const { health: other } = shared({}, prefix);
    const told: EndpointHealthTransition[] = [];
    other.onTransition((t) => void told.push(t));
    await other.check();
    expect(told).toEqual([]);
    await sleep(DISABLE_AFTER_MS + 50);
    await other.check();
    expect(types(told)).toEqual(['disable:ep_orphan']);
  });

  it('an index on a node whose clock runs ahead keeps a standing alert listed (Cluster)', async () => {
    // On a Cluster the due index and the endpoint's hash live on two nodes, each with its own
    // TIME: the index's node may find an entry due while the hash's node finds it not yet.
    const { prefix } = shared();
    const ahead = redis();
    try {
      const skewed = redisEndpointHealth({ client: ahead, prefix, ...numbers });
      const index = `{${prefix}}:health-due`;
      Object.assign(ahead, {
        restwellHealthDue: async (key: string, limit: number) =>
          ahead.zrangebyscore(
            key,
            '-inf',
            (await redisNow(ahead)) + 60_000,
            'WITHSCORES',
            'LIMIT',
            0,
            limit,
          ),
      });
      await fail(skewed, 'ep_skew', 5);
      const disableAt = (await skewed.state('ep_skew')).alert?.disableAt;
      expect(disableAt).toBeGreaterThan(0);
      await skewed.check();
      expect(Number(await ahead.zscore(index, 'ep_skew'))).toBe(disableAt);
      // The worker that raised it is gone: another's sweep still runs it out.
      const { health: other } = shared({}, prefix);
      const told: EndpointHealthTransition[] = [];
      other.onTransition((t) => void told.push(t));
      await sleep(DISABLE_AFTER_MS + 50);
      await other.check();
      expect(types(told)).toEqual(['disable:ep_skew']);
    } finally {
      await ahead.quit();
    }
  });

  it('keeps one hash per endpoint under a hash tag, with TTLs, and the due index in step', async () => {
    const { health, prefix } = shared();
    const keys = client!;
    await fail(health, 'ep_k', 2);
    const key = `{${prefix}:ep_k}:health`;
    const fields = await keys.hgetall(key);
    expect(Object.keys(fields).every((f) => /^[af]:\d+$/.test(f))).toBe(true);
    // The shortest life: ten minutes (two windows of 1.2 s are shorter).
    const ttl = await keys.pttl(key);
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);
    await fail(health, 'ep_k', 3);
    const alerted = await keys.hgetall(key);
    const disableAt = Number(alerted.disableAt);
    expect(disableAt).toBe(Number(alerted.since) + DISABLE_AFTER_MS);
    expect(Number(alerted.since)).toBeLessThanOrEqual(await redisNow(keys));
    expect(Number(await keys.zscore(`{${prefix}}:health-due`, 'ep_k'))).toBe(disableAt);
    await sleep(DISABLE_AFTER_MS + 50);
    await health.check();
    // Disabled: the counts gone, a marker for a minute, the index empty.
    expect(await keys.hgetall(key)).toEqual({ disabled: expect.stringMatching(/^\d+$/) });
    expect(await keys.pttl(key)).toBeGreaterThan(50_000);
    expect(await keys.pttl(key)).toBeLessThanOrEqual(60_000);
    expect(await keys.zcard(`{${prefix}}:health-due`)).toBe(0);
    // A long disable keeps the alert alive past disableAt.
    const { health: long, prefix: longPrefix } = shared({ disableAfterMs: 3_600_000 });
    await fail(long, 'ep_l', 5);
    expect(await keys.pttl(`{${longPrefix}:ep_l}:health`)).toBeGreaterThan(3_600_000);
    await long.forget('ep_l');
    expect(await keys.exists(`{${longPrefix}:ep_l}:health`)).toBe(0);
    expect(await keys.zcard(`{${longPrefix}}:health-due`)).toBe(0);
  });

  it('counts nothing for a disabled endpoint until it is forgotten (enabled)', async () => {
    const { health, prefix } = shared();
    const told: string[] = [];
    health.onTransition((t) => void told.push(t.type));
    await fail(health, 'ep_m', 5);
    await sleep(DISABLE_AFTER_MS + 50);
    await health.check();
    expect(told).toEqual(['alert', 'disable']);
    // Attempts in flight when it was disabled: not counted, no second alert.
    await fail(health, 'ep_m', 8);
    expect(told).toEqual(['alert', 'disable']);
    expect((await health.state('ep_m')).attempts).toBe(0);
    await health.forget('ep_m');
    expect(await client!.exists(`{${prefix}:ep_m}:health`)).toBe(0);
    await fail(health, 'ep_m', 5);
    expect(told).toEqual(['alert', 'disable', 'alert']);
  });

  it('refuses bad options loudly', () => {
    client ??= redis();
    expect(() => redisEndpointHealth(undefined as never)).toThrow(/options/);
    expect(() => redisEndpointHealth({ client: {} as never })).toThrow(/client/);
    expect(() => redisEndpointHealth({ client: client!, prefix: '' })).toThrow(/prefix/);
    expect(() => redisEndpointHealth({ client: client!, timeoutMs: 0 })).toThrow(/timeoutMs/);
    // Named as the options are given here, not as the engine's `health.<name>`.
    for (const failureRatio of [2, 0, 1, -0.5, Number.NaN])
      expect(() => redisEndpointHealth({ client: client!, failureRatio })).toThrow(
        /option "failureRatio"/,
      );
    for (const windowMs of [10, 0, 1.5])
      expect(() => redisEndpointHealth({ client: client!, windowMs })).toThrow(/option "windowMs"/);
    expect(() => redisEndpointHealth({ client: client!, minimumAttempts: 0 })).toThrow(
      /option "minimumAttempts"/,
    );
    expect(() => redisEndpointHealth({ client: client!, disableAfterMs: -1 })).toThrow(
      /option "disableAfterMs"/,
    );
    expect(() => redisEndpointHealth({ client: client!, minimumAttemps: 1 } as never)).toThrow(
      /minimumAttemps/,
    );
  });
});
