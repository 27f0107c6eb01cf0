/**
 * The engine on a health store: `healthStore: redisEndpointHealth()` in one
 * process alerts once and disables the endpoint at disableAt through the
 * engine's timer (no more attempts are due, the sweep is a day away), on the
 * store's (Redis's) time; enabling the endpoint again starts its health
 * afresh. `healthStore: memoryEndpointHealth()` behaves as the default. And
 * the option is checked: not with `health`, and it must be a store.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import {
  type EndpointHealthAlert,
  memoryEndpointHealth,
} from '../../../../src/webhooks/delivery/health.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import { redisEndpointHealth } from '../../../../src/webhooks/delivery/redis-health.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { services } from '../../../helpers/services.js';
import { recordingLogger } from '../bullmq/helpers.js';
import { engine, receiver, START, until } from '../engine/helpers.js';
import { cleanHealthKeys, redis, uniquePrefix } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.runIf(services.redis)('the engine on redisEndpointHealth', () => {
  it('alerts once, disables at disableAt by its timer, and starts afresh when enabled', async () => {
    const client: Redis = redis();
    const prefix = uniquePrefix('engine');
    cleanups.push(async () => {
      await cleanHealthKeys(client, prefix);
      await client.quit();
    });
    const alerts: EndpointHealthAlert[] = [];
    const disabled: string[] = [];
    const { logger } = recordingLogger();
    const healthStore = redisEndpointHealth({
      client,
      prefix,
      windowMs: 60_000,
      minimumAttempts: 3,
      disableAfterMs: 400,
    });
    const delivery = webhookDelivery({
      queue: new MemoryDeliveryQueue({ logger }),
      log: new MemoryDeliveryLog(),
      healthStore,
      breaker: false,
      guard: ssrfGuard({ allowLoopback: true }),
      allowHttp: true,
      logger,
      // Nothing else would look: the next attempts are an hour away, the sweep a day.
      schedule: retrySchedule({ delaysMs: [3_600_000], jitter: 0 }),
      sweepIntervalMs: 24 * 3_600_000,
      onAlert: (a) => void alerts.push(a),
      onDisable: (n) => void disabled.push(`${n.by}:${n.endpoint.id}`),
    });
    cleanups.push(() => delivery.stop());
    const hooks = await receiver(() => 500);
    cleanups.push(() => hooks.close());
    const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
    delivery.startWorker();
    for (let i = 0; i < 3; i++) await delivery.dispatch({ type: 'a.b', data: { i } });
    await until(() => alerts.length === 1);
    const { disableAt } = alerts[0]!;
    expect((await delivery.stats(endpoint.id)).health.alert?.disableAt).toBe(disableAt);
    await until(() => disabled.length === 1, 5000);
    expect(disabled).toEqual([`health:${endpoint.id}`]);
    expect(alerts).toHaveLength(1);
    expect(hooks.requests).toHaveLength(3);
    expect((await delivery.endpoints.get(endpoint.id)).disabled?.by).toBe('health');
    // Enabled again: the marker of the disable is forgotten, and attempts count afresh.
    await delivery.endpoints.enable(endpoint.id);
    expect(await client.exists(`{${prefix}:${endpoint.id}}:health`)).toBe(0);
  });
});

describe('the healthStore option', () => {
  it('memoryEndpointHealth as healthStore alerts and disables as the default does', async () => {
    const alerts: EndpointHealthAlert[] = [];
    const disabled: string[] = [];
    const { clock, delivery } = engine({
      breaker: false,
      healthStore: memoryEndpointHealth({
        minimumAttempts: 2,
        windowMs: 60_000,
        disableAfterMs: 10_000,
        now: () => clock.now(),
      }),
      sweepIntervalMs: 24 * 3_600_000,
      schedule: retrySchedule({ delaysMs: [3_600_000], random: () => 0 }),
      onAlert: (a) => void alerts.push(a),
      onDisable: (n) => void disabled.push(n.by),
    });
    cleanups.push(() => delivery.stop());
    const hooks = await receiver(() => 500);
    cleanups.push(() => hooks.close());
    const { endpoint } = await delivery.endpoints.create({ url: hooks.url });
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: {} });
    await delivery.dispatch({ type: 'a.b', data: {} });
    await until(() => alerts.length === 1);
    expect(alerts[0]).toMatchObject({ since: START, disableAt: START + 10_000, attempts: 2 });
    await clock.set(START + 10_000 - 1);
    expect(disabled).toEqual([]);
    await clock.advance(1);
    await until(() => disabled.length === 1);
    expect((await delivery.endpoints.get(endpoint.id)).disabled?.by).toBe('health');
  });

  it('refuses health and healthStore together, and a healthStore that is not one', () => {
    expect(() =>
      webhookDelivery({
        guard: false,
        health: { minimumAttempts: 2 },
        healthStore: memoryEndpointHealth(),
      }),
    ).toThrow(/exclude each other/);
    expect(() =>
      webhookDelivery({ guard: false, health: false, healthStore: memoryEndpointHealth() }),
    ).toThrow(/exclude each other/);
    expect(() => webhookDelivery({ guard: false, healthStore: {} as never })).toThrow(
      /healthStore/,
    );
    expect(() => memoryEndpointHealth({ minimumAttempts: 0 })).toThrow(/minimumAttempts/);
  });
});
