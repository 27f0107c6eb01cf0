/**
 * The engine on an asynchronous EndpointLimiter: it awaits the answer, hands
 * the lease it got back to `release`, and a release that fails is logged,
 * never thrown over the attempt already made (which is recorded, and not made
 * again).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { webhookDelivery } from '../../../../src/webhooks/delivery/delivery.js';
import type { Acquired, EndpointLimiter } from '../../../../src/webhooks/delivery/limits.js';
import { MemoryDeliveryLog } from '../../../../src/webhooks/delivery/log.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { recordingLogger } from '../bullmq/helpers.js';
import { receiver, until } from '../engine/helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A limiter answering through promises, with leases; `failRelease` makes every release reject. */
function asyncLimiter(failRelease = false) {
  const held = new Set<string>();
  const released: (string | undefined)[] = [];
  let n = 0;
  const limiter: EndpointLimiter = {
    async tryAcquire(_endpointId, limits): Promise<Acquired> {
      await new Promise((r) => setTimeout(r, 1));
      if (held.size >= limits.concurrency) return { ok: false, retryInMs: 5 };
      const lease = `lease-${++n}`;
      held.add(lease);
      return { ok: true, lease };
    },
    async release(_endpointId, _now, lease) {
      await new Promise((r) => setTimeout(r, 1));
      released.push(lease);
      if (failRelease) throw new Error('the store is down');
      if (lease !== undefined) held.delete(lease);
    },
    inFlight: async () => held.size,
  };
  return { limiter, held, released };
}

async function engine(limiter: EndpointLimiter) {
  const { logger, lines } = recordingLogger();
  const log = new MemoryDeliveryLog();
  const delivery = webhookDelivery({
    queue: new MemoryDeliveryQueue({ logger, faultDelayMs: 20 }),
    log,
    limiter,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    logger,
  });
  cleanups.push(() => delivery.stop());
  const hooks = await receiver(() => 200);
  cleanups.push(() => hooks.close());
  await delivery.endpoints.create({ url: hooks.url, concurrency: 1 });
  delivery.startWorker({ concurrency: 4 });
  return { delivery, log, hooks, lines };
}

describe('the engine on an asynchronous limiter', () => {
  it('awaits each answer and gives back the lease it was handed', async () => {
    const { limiter, held, released } = asyncLimiter();
    const { delivery, log, hooks } = await engine(limiter);
    for (let i = 0; i < 4; i++) await delivery.dispatch({ type: 'payment.succeeded', data: { i } });
    await until(async () =>
      (await log.queryDeliveries()).items.every((d) => d.status === 'delivered'),
    );
    expect(hooks.requests).toHaveLength(4);
    expect(released.sort()).toEqual(['lease-1', 'lease-2', 'lease-3', 'lease-4']);
    expect(held.size).toBe(0);
  });

  it('logs a release that fails, and keeps the attempt made: recorded once, not made again', async () => {
    const { limiter, released } = asyncLimiter(true);
    const { delivery, log, hooks, lines } = await engine(limiter);
    await delivery.dispatch({ type: 'payment.succeeded', data: {} });
    await until(async () => (await log.queryDeliveries()).items[0]?.status === 'delivered');
    await new Promise((r) => setTimeout(r, 50));
    expect(hooks.requests).toHaveLength(1);
    expect((await log.queryAttempts()).items).toHaveLength(1);
    expect(released).toEqual(['lease-1']);
    expect(lines.some((l) => /could not release a slot/.test(l.message))).toBe(true);
    expect(lines.some((l) => /a delivery job failed/.test(l.message))).toBe(false);
  });
});
