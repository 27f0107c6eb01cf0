/**
 * Per-principal pins and usage counters, on the memory store and on real
 * Redis and PostgreSQL, through every adapter: a request without a version
 * gets its principal's pin (made with the default on its first such call, or
 * set by the application), a header overrides it without changing it, a pin
 * store that cannot answer refuses the request (503) rather than serving
 * another version, and calls are counted per version per principal without a
 * lost update and without ever failing a request.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { principalKey, UsageCounter } from '../../src/versioning/pins.js';
import { adapters } from '../helpers/apps.js';
import { ledgerStores } from '../helpers/ledgers.js';
import { unreachableRedis } from '../helpers/outage.js';
import { buildUsersApp, usersVersioning } from './app.js';

const ledgers = ledgerStores('versioning_pins');
afterAll(() => ledgers.cleanup());

let run = 0;
/** A key prefix of its own for each test, so that they share a store and not its keys. */
const keyPrefix = () => `versioning-test-${++run}:`;

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const push = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return {
    lines,
    error: push('error'),
    warn: push('warn'),
    info: push('info'),
    debug: push('debug'),
  };
}

const principal = (headers: Record<string, string | string[] | undefined>) =>
  headers['x-principal'] as string | undefined;

describe.each(ledgers.cases)('pins on the $name store', (storeCase) => {
  let store: Store;
  beforeAll(async () => {
    if (storeCase.enabled) store = await storeCase.setup();
  });

  describe.runIf(storeCase.enabled).each(adapters)('through $name', (adapter) => {
    it('pins a principal to the default on its first call, and keeps it when the default moves', async () => {
      const prefix = keyPrefix();
      const v3 = usersVersioning({ strategy: 'header', pins: store, keyPrefix: prefix });
      const server = buildUsersApp(adapter, { versions: v3, principal });
      const first = await request(server).get('/users').set('X-Principal', 'acct_1').expect(200);
      expect(first.headers['api-version']).toBe('v3');
      expect(first.body.seen.source).toBe('pin');
      expect(await v3.pinOf('acct_1')).toBe('v3');

      // A later release makes v2 the default: acct_1 keeps v3, a new principal gets v2.
      const v2 = usersVersioning(
        { strategy: 'header', pins: store, keyPrefix: prefix },
        { default: 'v2' },
      );
      const later = buildUsersApp(adapter, { versions: v2, principal });
      const again = await request(later).get('/users/u1').set('X-Principal', 'acct_1').expect(200);
      expect(again.headers['api-version']).toBe('v3');
      expect(again.body.emails).toEqual(['ada@example.com']);
      const fresh = await request(later).get('/users/u1').set('X-Principal', 'acct_2').expect(200);
      expect(fresh.headers['api-version']).toBe('v2');
      expect(await v2.pinOf('acct_2')).toBe('v2');
    });

    it('lets the header override the pin without changing it', async () => {
      const versions = usersVersioning({ strategy: 'header', pins: store, keyPrefix: keyPrefix() });
      await versions.pin('acct_1', 'v1');
      const server = buildUsersApp(adapter, { versions, principal });
      const pinned = await request(server)
        .get('/users/u1')
        .set('X-Principal', 'acct_1')
        .expect(200);
      expect(pinned.headers['api-version']).toBe('v1');
      expect(pinned.body.name).toBe('Ada Lovelace');
      const override = await request(server)
        .get('/users/u1')
        .set('X-Principal', 'acct_1')
        .set('Api-Version', 'v3')
        .expect(200);
      expect(override.headers['api-version']).toBe('v3');
      expect(override.body.fullName).toBe('Ada Lovelace');
      expect(await versions.pinOf('acct_1')).toBe('v1');
    });

    it('lets the application move a pin (an upgrade), and numeric principal ids', async () => {
      const versions = usersVersioning({ strategy: 'header', pins: store, keyPrefix: keyPrefix() });
      await versions.pin(42, 'v1');
      await versions.pin(42, 'v2');
      const server = buildUsersApp(adapter, { versions, principal });
      const res = await request(server).get('/users/u1').set('X-Principal', '42').expect(200);
      expect(res.headers['api-version']).toBe('v2');
      expect(await versions.pinOf('42')).toBe('v2');
    });

    it('serves an anonymous request the default and pins nothing', async () => {
      const versions = usersVersioning({ strategy: 'header', pins: store, keyPrefix: keyPrefix() });
      const res = await request(buildUsersApp(adapter, { versions, principal })).get('/users');
      expect(res.status).toBe(200);
      expect(res.body.seen.source).toBe('default');
    });

    it('agrees on one pin when a principal’s first calls race', async () => {
      const prefix = keyPrefix();
      const newest = usersVersioning({ strategy: 'header', pins: store, keyPrefix: prefix });
      const older = usersVersioning(
        { strategy: 'header', pins: store, keyPrefix: prefix },
        { default: 'v1' },
      );
      // Two deployments with different defaults, mid-rollout, both see acct_r's first calls.
      const servers = [
        buildUsersApp(adapter, { versions: newest, principal }),
        buildUsersApp(adapter, { versions: older, principal }),
      ];
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          request(servers[i % 2]!)
            .get('/users')
            .set('X-Principal', 'acct_r'),
        ),
      );
      const served = new Set(answers.map((a) => a.headers['api-version']));
      expect(served.size).toBe(1);
      expect(await newest.pinOf('acct_r')).toBe([...served][0]);
    });

    it('answers a principal pinned to a version no longer served with a 400 saying how to move on', async () => {
      const prefix = keyPrefix();
      const before = usersVersioning({ strategy: 'header', pins: store, keyPrefix: prefix });
      await before.pin('acct_old', 'v1');
      const after = usersVersioning(
        { strategy: 'header', pins: store, keyPrefix: prefix },
        { versions: [{ version: 'v2' }, { version: 'v3', changes: [] }] },
      );
      const server = buildUsersApp(adapter, { versions: after, principal });
      const res = await request(server).get('/users').set('X-Principal', 'acct_old').expect(400);
      expect(res.body.code).toBe('version-unsupported');
      expect(res.body.detail).toMatch(/pinned to version v1.*Api-Version header/);
      const explicit = await request(server)
        .get('/users')
        .set('X-Principal', 'acct_old')
        .set('Api-Version', 'v3');
      expect(explicit.status).toBe(200);
    });

    it('counts calls per version per principal, with the last call’s time', async () => {
      let now = Date.UTC(2025, 0, 1);
      const versions = usersVersioning(
        { strategy: 'header', usage: store, keyPrefix: keyPrefix() },
        { now: () => now },
      );
      const server = buildUsersApp(adapter, { versions, principal });
      await request(server).get('/users').set('X-Principal', 'acct_u').set('Api-Version', 'v1');
      now += 1000;
      await request(server).get('/users').set('X-Principal', 'acct_u').set('Api-Version', 'v1');
      await request(server).get('/users/nobody').set('X-Principal', 'acct_u');
      await request(server).get('/users').set('Api-Version', 'v1'); // anonymous: not counted
      await vi.waitFor(async () => {
        const usage = await versions.usageOf('acct_u');
        expect(usage).toEqual({
          v1: { calls: 2, lastSeen: new Date(Date.UTC(2025, 0, 1) + 1000) },
          v3: { calls: 1, lastSeen: new Date(Date.UTC(2025, 0, 1) + 1000) },
        });
      });
    });
  });

  describe.runIf(storeCase.enabled)('usage of a retired version', () => {
    it('counts the calls answered 410, so a team sees who still calls it', async () => {
      const versions = usersVersioning(
        { strategy: 'header', usage: store, keyPrefix: keyPrefix() },
        {
          now: () => Date.UTC(2025, 7, 1),
          versions: [
            { version: 'v1', sunset: '2025-07-01', afterSunset: 'gone' },
            { version: 'v2', changes: [] },
            { version: 'v3', changes: [] },
          ],
        },
      );
      const server = buildUsersApp(adapters[0]!, { versions, principal });
      await request(server)
        .get('/users')
        .set('X-Principal', 'acct_g')
        .set('Api-Version', 'v1')
        .expect(410);
      await vi.waitFor(async () => expect((await versions.usageOf('acct_g')).v1?.calls).toBe(1));
    });
  });

  describe.runIf(storeCase.enabled)('usage counters', () => {
    it('lose no call when many arrive at once', async () => {
      const counter = new UsageCounter(store, keyPrefix(), 60_000, Date.now);
      await Promise.all(Array.from({ length: 40 }, () => counter.increment('v1', 'acct_c')));
      expect((await counter.read('acct_c', ['v1', 'v2'])).v1?.calls).toBe(40);
    });
  });
});

describe('usage counters in a cache', () => {
  it('count in a MemoryStore that may evict', async () => {
    const counter = new UsageCounter(new MemoryStore(), 'u:', 60_000, () => 5);
    await counter.increment('v1', 'p');
    await counter.increment('v1', 'p');
    expect(await counter.read('p', ['v1'])).toEqual({ v1: { calls: 2, lastSeen: new Date(5) } });
  });

  it('expire usageTtlMs after the last call', async () => {
    let now = 0;
    const cache = new MemoryStore({ now: () => now });
    const counter = new UsageCounter(cache, 'u:', 1000, () => now);
    await counter.increment('v1', 'p');
    now = 900;
    await counter.increment('v1', 'p');
    now = 1800;
    expect((await counter.read('p', ['v1'])).v1?.calls).toBe(2);
    now = 2000;
    expect(await counter.read('p', ['v1'])).toEqual({});
  });
});

describe('principal keys', () => {
  it('keep short printable ids and hash the rest, and ids that look like a hash', () => {
    expect(principalKey('acct_1')).toBe('acct_1');
    expect(principalKey('a'.repeat(129))).toMatch(/^#[A-Za-z0-9_-]{43}$/);
    expect(principalKey('with space')).toMatch(/^#/);
    expect(principalKey('#abc')).toMatch(/^#[A-Za-z0-9_-]{43}$/);
    expect(principalKey('#abc')).not.toBe('#abc');
  });
});

describe.each(adapters)('a store that cannot answer, through $name', (adapter) => {
  const down = () => new RedisStore({ client: unreachableRedis(), timeoutMs: 200 });

  it('refuses a request that needs the pin with 503 and Retry-After, logged once per interval', async () => {
    const logger = recordingLogger();
    const versions = usersVersioning({ strategy: 'header', pins: down() });
    const server = buildUsersApp(adapter, { versions, principal, logger });
    for (let i = 0; i < 3; i++) {
      const res = await request(server).get('/users').set('X-Principal', 'acct_1').expect(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body.code).toBe('service-unavailable');
      expect(res.body.detail).toMatch(/pinned to this client cannot be read/);
    }
    expect(logger.lines.filter((l) => /pin store failed/.test(l.message))).toHaveLength(1);
    // A request that names its version needs no pin.
    await request(server)
      .get('/users')
      .set('X-Principal', 'acct_1')
      .set('Api-Version', 'v2')
      .expect(200);
  });

  it('never fails a request because calls cannot be counted', async () => {
    const logger = recordingLogger();
    const versions = usersVersioning({ strategy: 'header', usage: down() });
    const server = buildUsersApp(adapter, { versions, principal, logger });
    for (let i = 0; i < 3; i++) {
      await request(server).get('/users').set('X-Principal', 'acct_1').expect(200);
    }
    await vi.waitFor(() =>
      expect(logger.lines.filter((l) => /could not be counted/.test(l.message))).toHaveLength(1),
    );
  });
});
