/**
 * The engine attacked from the inside and at its edges: events it cannot
 * store or shape, a version migration that throws, misconfiguration, a
 * clock set back, a shutdown in the middle of an attempt, enable racing the
 * worker, several 410s in flight, the health disable's timing, the secret in
 * the log, and the signature on every attempt.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import type { Logger } from '../../../../src/core/logger.js';
import { defineVersions } from '../../../../src/versioning/api.js';
import { versionChange } from '../../../../src/versioning/changes.js';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import { MemoryEndpointStore } from '../../../../src/webhooks/delivery/endpoints.js';
import { memoryEndpointLimiter } from '../../../../src/webhooks/delivery/limits.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
import { standardWebhooksVerifier } from '../../../../src/webhooks/standard.js';
import { engine, receiver, START, until } from '../engine/helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function setup(options: Parameters<typeof engine>[0] = {}) {
  const e = engine(options);
  cleanups.push(() => e.delivery.stop());
  return e;
}
async function hooks(answer: Parameters<typeof receiver>[0] = () => 200) {
  const r = await receiver(answer);
  cleanups.push(() => r.close());
  return r;
}

/** A logger that keeps every line, to assert on what is (and is not) logged. */
function recordingLogger() {
  const lines: { level: string; msg: string; fields: unknown }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields?: unknown): void =>
      void lines.push({ level, msg, fields });
  const logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  } as unknown as Logger;
  return { logger, lines };
}

/** v1 and v2; shaping `bad.thing` for v1 throws, as a migration with a bug does. */
function api() {
  const change = versionChange({
    description: 'bad.thing changed shape.',
    payload: {
      types: 'bad.thing',
      migrate: () => {
        throw new Error('migration bug');
      },
    },
  });
  return defineVersions({
    now: () => START,
    versions: [{ version: 'v1' }, { version: 'v2', changes: [change] }],
  });
}

const invalid = (error: unknown) => (error as ValidationError).errors.map((e) => e.pointer);

describe('events the engine cannot take', () => {
  it('a createdAt beyond the range of a Date is a 400, not a RangeError', async () => {
    const { delivery } = await setup();
    for (const createdAt of [1e20, 8.64e15 + 1, -8.64e15 - 1]) {
      const error = await delivery.dispatch({ type: 'a.b', data: {}, createdAt }).catch((e) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(invalid(error)).toEqual(['/createdAt']);
    }
  });

  it('data that is not JSON (BigInt, a cycle) is a 400 at dispatch, nothing queued', async () => {
    const { delivery } = await setup();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const data of [{ amount: 10n }, cycle, () => 1]) {
      const error = await delivery.dispatch({ type: 'a.b', data }).catch((e) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(invalid(error)).toEqual(['/data']);
    }
    expect((await delivery.queue.counts()).waiting).toBe(0);
  });

  it('data is bounded: 1 MiB by default, maxEventBytes counted in UTF-8 bytes', async () => {
    const { delivery } = await setup();
    const error = await delivery
      .dispatch({ type: 'a.b', data: 'x'.repeat(1024 * 1024) })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).errors[0]!.detail).toMatch(/at most 1048576 bytes/);

    const small = await setup({ maxEventBytes: 100 });
    // 60 characters, 122 bytes as JSON
    await expect(small.delivery.dispatch({ type: 'a.b', data: 'é'.repeat(60) })).rejects.toThrow(
      ValidationError,
    );
    await expect(
      small.delivery.dispatch({ type: 'a.b', data: 'e'.repeat(60) }),
    ).resolves.toBeDefined();
  });
});

describe('payloads that cannot be built', () => {
  it('a migration that throws dead-letters the delivery at once, with the error, not retried each second', async () => {
    const { logger, lines } = recordingLogger();
    const dead: string[] = [];
    const { clock, delivery } = await setup({
      versions: api(),
      logger,
      onDeadLetter: (n) => void dead.push(n.reason),
    });
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url, version: 'v1' });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'bad.thing', data: {} });
    await until(async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'dead');
    await clock.advance(60_000);
    expect(await delivery.log.getDelivery(deliveries[0]!.id)).toMatchObject({
      status: 'dead',
      deadReason: 'payload',
      lastFailure: 'payload',
      attempts: 1,
    });
    const attempts = (await delivery.log.queryAttempts({ endpointId: endpoint.id })).items;
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ ok: false, failure: 'payload' });
    expect(attempts[0]!.message).toMatch(/migration bug/);
    expect(dead).toEqual(['payload']);
    expect(r.requests).toHaveLength(0);
    expect(lines.filter((l) => l.msg.includes('runs again later'))).toHaveLength(0);
    // the sender's bug is not the receiver's failure
    const stats = await delivery.stats(endpoint.id);
    expect(stats.health.attempts).toBe(0);
    // other types still go
    await delivery.dispatch({ type: 'good.thing', data: {} });
    await until(() => r.requests.length === 1);
  });

  it('a version no longer served dead-letters with reason payload', async () => {
    const store = new MemoryEndpointStore();
    const { delivery } = await setup({ versions: api(), endpointStore: store });
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    await store.update(endpoint.id, (e) => ({ ...e, versions: ['v0'] }));
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'dead');
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.deadReason).toBe('payload');
  });

  it('a payload failure on the half-open probe gives the probe back instead of reopening the circuit', async () => {
    const { clock, delivery } = await setup({
      versions: api(),
      breaker: { minimumRequests: 1, openMs: 1000 },
      health: false,
      schedule: retrySchedule({ delaysMs: [3_600_000], random: () => 0 }),
    });
    let status = 500;
    const r = await hooks(() => status);
    const { endpoint } = await delivery.endpoints.create({ url: r.url, version: 'v1' });
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(async () => (await delivery.stats(endpoint.id)).breaker === 'open');
    status = 200;
    await clock.advance(1000);
    const { deliveries } = await delivery.dispatch({ type: 'bad.thing', data: {} });
    await until(async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'dead');
    expect((await delivery.stats(endpoint.id)).breaker).toBe('half-open');
    await delivery.dispatch({ type: 'a.c', data: {} });
    await until(() => r.requests.length === 2);
    await until(async () => (await delivery.stats(endpoint.id)).breaker === 'closed');
  });
});

describe('configuration is checked at construction', () => {
  it.each([
    [{ timeoutMs: -1 }, /"timeoutMs"/],
    [{ timeoutMs: Number.NaN }, /"timeoutMs"/],
    [{ sweepIntervalMs: 0 }, /"sweepIntervalMs"/],
    [{ maxResponseBytes: 2 ** 21 }, /"maxResponseBytes"/],
    [{ maxRetryAfterMs: -5 }, /"maxRetryAfterMs"/],
    [{ maxEventBytes: 0 }, /"maxEventBytes"/],
    [{ userAgent: 'a\r\nX-Injected: 1' }, /"userAgent"/],
    [{ signatureHeader: 'X Signature' }, /"signatureHeader"/],
    [{ versionHeader: '' }, /"versionHeader"/],
  ])('%o is refused', (bad, message) => {
    expect(() => webhookDelivery({ guard: false, ...bad })).toThrow(message);
  });
});

describe('time', () => {
  it('a clock set back does not stall a rate-limited endpoint for as long as the jump', () => {
    const limiter = memoryEndpointLimiter();
    const limits = { concurrency: 10, rateLimitPerSecond: 1 };
    expect(limiter.tryAcquire('ep', limits, 10_000_000).ok).toBe(true);
    limiter.release('ep');
    const back = limiter.tryAcquire('ep', limits, 10_000_000 - 3_600_000);
    expect(back.ok).toBe(false);
    expect(back.ok === false && back.retryInMs).toBeLessThanOrEqual(1000);
  });

  it('a 429 Retry-After of 999999999 s is cut to 24 h; one in 1970 or garbage leaves the schedule', async () => {
    const cases = [
      ['999999999', 24 * 3_600_000],
      ['Thu, 01 Jan 1970 00:00:00 GMT', 30_000],
      ['garbage', 30_000],
    ] as const;
    for (const [value, wait] of cases) {
      const { clock, delivery } = await setup();
      const r = await hooks((_req, n) =>
        n === 1 ? { status: 429, headers: { 'Retry-After': value } } : 200,
      );
      await delivery.endpoints.create({ url: r.url });
      delivery.startWorker();
      await delivery.dispatch({ type: 'a.b', data: {} });
      await until(() => r.requests.length === 1);
      await until(async () => (await delivery.queue.counts()).active === 0);
      await clock.advance(wait - 1);
      expect(r.requests).toHaveLength(1);
      await clock.advance(1);
      await until(() => r.requests.length === 2);
    }
  });

  it('health disables an alerted endpoint at disableAt, without waiting for the sweep or another attempt', async () => {
    const disabled: string[] = [];
    const { clock, delivery } = await setup({
      breaker: false,
      health: { minimumAttempts: 2, windowMs: 60_000, disableAfterMs: 10_000 },
      sweepIntervalMs: 24 * 3_600_000,
      schedule: retrySchedule({ delaysMs: [3_600_000], random: () => 0 }),
      onDisable: (n) => void disabled.push(n.by),
    });
    const r = await hooks(() => 500);
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: {} });
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(async () => (await delivery.stats(endpoint.id)).health.alert !== undefined);
    const { disableAt } = (await delivery.stats(endpoint.id)).health.alert!;
    await clock.set(disableAt! - 1);
    expect((await delivery.endpoints.get(endpoint.id)).disabled).toBeUndefined();
    await clock.advance(1);
    await until(() => disabled.length === 1);
    expect((await delivery.endpoints.get(endpoint.id)).disabled?.by).toBe('health');
  });
});

describe('races', () => {
  it('stop({ abort: true }) aborts the attempt in flight: logged, not spent, not held against the receiver', async () => {
    const { delivery } = await setup({ breaker: { minimumRequests: 1 }, timeoutMs: 60_000 });
    const r = await hooks(() => 'hang');
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 1);
    await delivery.stop({ abort: true });
    const attempts = (await delivery.log.queryAttempts({ endpointId: endpoint.id })).items;
    expect(attempts).toEqual([expect.objectContaining({ ok: false, failure: 'aborted' })]);
    expect(await delivery.log.getDelivery(deliveries[0]!.id)).toMatchObject({
      status: 'pending',
      attempts: 0,
    });
    const stats = await delivery.stats(endpoint.id);
    expect(stats.breaker).toBe('closed');
    expect(stats.health.attempts).toBe(0);
  });

  it('stop() without abort waits for the attempt in flight and lets it finish', async () => {
    const { delivery } = await setup();
    const r = await hooks(() => 'hang');
    await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 1);
    const stopping = delivery.stop();
    r.release(200);
    await stopping;
    expect((await delivery.log.getDelivery(deliveries[0]!.id))?.status).toBe('delivered');
  });

  it('an endpoint enabled while the worker holds its delivery still gets it delivered', async () => {
    const log = new MemoryDeliveryLog();
    const { delivery } = await setup({ log });
    const r = await hooks();
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    await delivery.dispatch({ type: 'a.b', data: {} });
    await delivery.endpoints.disable(endpoint.id, 'maintenance');
    // enable() runs after the worker read the endpoint as disabled, before it held the delivery
    const update = log.updateDelivery.bind(log);
    let raced = false;
    log.updateDelivery = async (id, change) => {
      const current = await log.getDelivery(id);
      if (!raced && current !== undefined && change(current).status === 'held') {
        raced = true;
        await delivery.endpoints.enable(endpoint.id);
      }
      return update(id, change);
    };
    delivery.startWorker();
    await until(() => raced);
    await until(() => r.requests.length === 1);
  });

  it('several 410s in flight disable the endpoint once, and never overwrite an owner disable', async () => {
    const notices: string[] = [];
    const { delivery } = await setup({ onDisable: (n) => void notices.push(n.by) });
    const r = await hooks(() => 'hang');
    const { endpoint } = await delivery.endpoints.create({ url: r.url, concurrency: 3 });
    delivery.startWorker();
    for (let i = 0; i < 3; i++) await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 3);
    r.release(410);
    await until(async () => (await delivery.endpoints.get(endpoint.id)).disabled !== undefined);
    await until(
      async () =>
        (await delivery.log.queryDeliveries({ endpointId: endpoint.id, status: 'held' })).items
          .length === 3,
    );
    expect(notices).toEqual(['gone']);

    const other = await hooks(() => 'hang');
    const second = await delivery.endpoints.create({ url: other.url });
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => other.requests.length >= 1);
    await delivery.endpoints.disable(second.endpoint.id, 'owner paused it');
    other.release(410);
    await until(
      async () =>
        (await delivery.log.queryAttempts({ endpointId: second.endpoint.id })).items.length === 1,
    );
    await until(async () => (await delivery.queue.counts()).active === 0);
    expect((await delivery.endpoints.get(second.endpoint.id)).disabled).toMatchObject({
      by: 'user',
      reason: 'owner paused it',
    });
    expect(notices).toEqual(['gone']);
  });
});

describe('secrets and signatures', () => {
  it('signs every attempt afresh, each verifiable by the part-1 verifiers at its own time', async () => {
    for (const signing of ['hmac', 'standard-webhooks'] as const) {
      const { clock, delivery } = await setup({ signing });
      const r = await hooks((_req, n) => (n === 1 ? 500 : 200));
      const { secret } = await delivery.endpoints.create({ url: r.url });
      delivery.startWorker();
      await delivery.dispatch({ type: 'a.b', data: { n: 1 } });
      await until(() => r.requests.length === 1);
      const firstAt = clock.now();
      await until(async () => (await delivery.queue.counts()).active === 0);
      await clock.advance(30_000);
      await until(() => r.requests.length === 2);
      const [a, b] = r.requests as [(typeof r.requests)[0], (typeof r.requests)[0]];
      const at = [firstAt, firstAt + 30_000];
      for (const [i, req] of [a, b].entries()) {
        const verifier =
          signing === 'hmac'
            ? hmacVerifier({ secrets: [secret], now: () => at[i]! })
            : standardWebhooksVerifier({ secrets: [secret], now: () => at[i]! });
        expect(verifier.verify(req.body, req.headers).timestamp).toBe(Math.floor(at[i]! / 1000));
      }
      if (signing === 'standard-webhooks') {
        expect(a.headers['webhook-id']).toBe(b.headers['webhook-id']);
        expect(a.headers['webhook-timestamp']).not.toBe(b.headers['webhook-timestamp']);
      } else {
        expect(a.headers['x-signature']).not.toBe(b.headers['x-signature']);
      }
      // 300 s later, the first request no longer verifies: a replay of it is refused
      const late = hmacVerifier({ secrets: [secret], now: () => at[0]! + 301_000 });
      if (signing === 'hmac') expect(() => late.verify(a.body, a.headers)).toThrow();
    }
  });

  it('never writes a secret to the delivery log, the logger or a notice', async () => {
    const { logger, lines } = recordingLogger();
    const notices: unknown[] = [];
    const { delivery } = await setup({
      logger,
      schedule: retrySchedule({ maxAttempts: 1 }),
      onDeadLetter: (n) => void notices.push(n),
      onFastFailure: (n) => void notices.push(n),
      onDisable: (n) => void notices.push(n),
    });
    const statuses = [500, 401, 410];
    const r = await hooks((req, n) => ({
      status: statuses[(n - 1) % 3]!,
      // a receiver that echoes the request's headers into its answer
      body: JSON.stringify(req.headers),
    }));
    const { endpoint, secret } = await delivery.endpoints.create({ url: r.url });
    const rotated = await delivery.endpoints.rotateSecret(endpoint.id);
    delivery.startWorker();
    for (let i = 0; i < 3; i++) await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => r.requests.length === 3);
    await until(async () => (await delivery.queue.counts()).active === 0);
    const everything = JSON.stringify({
      attempts: await delivery.log.queryAttempts({}),
      deliveries: await delivery.log.queryDeliveries({}),
      stats: await delivery.stats(endpoint.id),
      endpoints: await delivery.endpoints.list(),
      lines,
      notices,
    });
    for (const s of [secret, rotated.secret]) {
      expect(everything).not.toContain(s);
      expect(everything).not.toContain(s.replace(/^whsec_/, ''));
    }
    expect(notices.length).toBeGreaterThan(0);
  });
});
