import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointHealthAlert } from '../../../../src/webhooks/delivery/health.js';
import { type AttemptRecord, MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { InvalidCursorError } from '../../../../src/pagination/errors.js';
import { ValidationError } from '../../../../src/core/errors.js';
import { engine, receiver, START, until } from './helpers.js';

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

const every10s = retrySchedule({
  delaysMs: [10_000],
  backoffFactor: 1,
  maxAttempts: 1000,
  random: () => 0,
});
const health = { windowMs: 60_000, minimumAttempts: 5, disableAfterMs: 300_000 };

describe('endpoint health: alerts and auto-disable', () => {
  it('alerts once past 90% failures, then disables the endpoint when it has not recovered', async () => {
    const alerts: EndpointHealthAlert[] = [];
    const disabled: string[] = [];
    const { clock, delivery } = await setup({
      schedule: every10s,
      breaker: false,
      health,
      onAlert: (a) => void alerts.push(a),
      onDisable: (n) => void disabled.push(`${n.by}:${n.endpoint.id}`),
    });
    const r = await hooks(() => 500);
    const { endpoint } = await delivery.endpoints.create({ url: r.url, concurrency: 10 });
    delivery.startWorker();
    for (let i = 0; i < 5; i++) await delivery.dispatch({ type: 'a.b', data: { i } });
    await until(() => alerts.length === 1);
    expect(alerts[0]).toMatchObject({
      endpointId: endpoint.id,
      failureRatio: 1,
      attempts: 5,
      since: START,
      disableAt: START + 300_000,
    });
    expect((await delivery.stats(endpoint.id)).health.alert?.disableAt).toBe(START + 300_000);
    while (disabled.length === 0 && clock.now() < START + 400_000) {
      await clock.advance(10_000);
      await until(async () => (await delivery.queue.counts()).active === 0);
    }
    expect(disabled).toEqual([`health:${endpoint.id}`]);
    expect(alerts).toHaveLength(1);
    expect(clock.now()).toBeGreaterThanOrEqual(START + 300_000);
    expect(clock.now()).toBeLessThan(START + 300_000 + 20_000);
    const view = await delivery.endpoints.get(endpoint.id);
    expect(view.disabled).toMatchObject({ by: 'health' });
    // Its events are held, not dropped.
    await clock.advance(10_000);
    await until(async () => (await delivery.stats(endpoint.id)).held === 5);
  });

  it('withdraws the alert when the endpoint recovers, and does not disable it', async () => {
    const alerts: string[] = [];
    const recovered: string[] = [];
    const disabled: string[] = [];
    const { clock, delivery } = await setup({
      schedule: every10s,
      breaker: false,
      health,
      onAlert: (a) => void alerts.push(a.endpointId),
      onRecover: (id) => void recovered.push(id),
      onDisable: (n) => void disabled.push(n.endpoint.id),
    });
    const r = await hooks(() => 500);
    const { endpoint } = await delivery.endpoints.create({ url: r.url, concurrency: 10 });
    delivery.startWorker();
    for (let i = 0; i < 5; i++) await delivery.dispatch({ type: 'a.b', data: { i } });
    await until(() => alerts.length === 1);
    r.answer(() => 200);
    await clock.advance(10_000);
    await until(() => recovered.length === 1);
    for (let i = 0; i < 40; i++) await delivery.dispatch({ type: 'a.b', data: { i } });
    await clock.advance(400_000);
    await until(async () => (await delivery.queue.counts()).active === 0);
    expect(disabled).toEqual([]);
    expect((await delivery.endpoints.get(endpoint.id)).disabled).toBeUndefined();
  });
});

function attempt(n: number, at: number, overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    deliveryId: `evt_${n}/ep_1`,
    eventId: `evt_${n}`,
    eventType: 'a.b',
    endpointId: 'ep_1',
    generation: 0,
    attempt: 1,
    at,
    durationMs: n,
    ok: n % 2 === 0,
    status: n % 2 === 0 ? 200 : 500,
    ...overrides,
  };
}

describe('the delivery log', () => {
  it('pages attempts newest first with cursors bound to the query', async () => {
    const log = new MemoryDeliveryLog();
    for (let n = 1; n <= 7; n++) await log.recordAttempt(attempt(n, START + n));
    const first = await log.queryAttempts({ endpointId: 'ep_1', limit: 3 });
    expect(first.items.map((a) => a.eventId)).toEqual(['evt_7', 'evt_6', 'evt_5']);
    const second = await log.queryAttempts({
      endpointId: 'ep_1',
      limit: 3,
      cursor: first.nextCursor!,
    });
    expect(second.items.map((a) => a.eventId)).toEqual(['evt_4', 'evt_3', 'evt_2']);
    const third = await log.queryAttempts({
      endpointId: 'ep_1',
      limit: 3,
      cursor: second.nextCursor!,
    });
    expect(third.items.map((a) => a.eventId)).toEqual(['evt_1']);
    expect(third.nextCursor).toBeUndefined();
    const failures = await log.queryAttempts({ ok: false });
    expect(failures.items.map((a) => a.status)).toEqual([500, 500, 500, 500]);
    expect((await log.queryAttempts({ from: START + 3, to: START + 5 })).items).toHaveLength(2);
    // A cursor of another query, or not a cursor at all: a 400, never a 500.
    await expect(
      log.queryAttempts({ ok: true, limit: 3, cursor: first.nextCursor! }),
    ).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(log.queryAttempts({ cursor: 'not-a-cursor' })).rejects.toMatchObject({
      status: 400,
    });
    await expect(log.queryAttempts({ limit: 0 })).rejects.toBeInstanceOf(ValidationError);
  });

  it('computes success rate and p50/p99 latency per endpoint', async () => {
    const log = new MemoryDeliveryLog();
    for (let n = 1; n <= 100; n++) await log.recordAttempt(attempt(n, START));
    await log.recordAttempt(attempt(500, START, { endpointId: 'ep_2' }));
    const stats = await log.endpointStats('ep_1', START);
    expect(stats).toMatchObject({ attempts: 100, succeeded: 50, p50Ms: 50, p99Ms: 99 });
    expect((await log.endpointStats('ep_1', START + 1)).attempts).toBe(0);
  });

  it('sweeps attempts and finished deliveries past retention, and dead letters past theirs', async () => {
    const day = 86_400_000;
    const log = new MemoryDeliveryLog({ retentionMs: 7 * day, deadRetentionMs: 30 * day });
    const base = {
      eventType: 'a.b',
      eventCreatedAt: START,
      endpointId: 'ep_1',
      generation: 0,
      attempts: 1,
      totalAttempts: 1,
      createdAt: START,
      updatedAt: START,
    };
    await log.putEvent({
      id: 'evt_1',
      type: 'a.b',
      createdAt: new Date(START).toISOString(),
      data: {},
    });
    await log.putEvent({
      id: 'evt_2',
      type: 'a.b',
      createdAt: new Date(START).toISOString(),
      data: {},
    });
    await log.insertDelivery({ ...base, id: 'evt_1/ep_1', eventId: 'evt_1', status: 'delivered' });
    await log.insertDelivery({ ...base, id: 'evt_2/ep_1', eventId: 'evt_2', status: 'dead' });
    await log.recordAttempt(attempt(1, START));
    expect(await log.sweep(START + 7 * day + 1)).toEqual({ attempts: 1, deliveries: 1, events: 1 });
    expect(await log.getEvent('evt_2')).toBeDefined();
    expect(await log.getDelivery('evt_2/ep_1')).toBeDefined();
    expect(await log.sweep(START + 30 * day + 1)).toEqual({
      attempts: 0,
      deliveries: 1,
      events: 1,
    });
    expect(await log.getEvent('evt_2')).toBeUndefined();
  });
});
