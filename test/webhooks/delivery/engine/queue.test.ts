import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { manualClock } from '../../../../src/webhooks/delivery/clock.js';
import { createEvent, memorySequencer } from '../../../../src/webhooks/delivery/events.js';
import { MemoryDeliveryQueue } from '../../../../src/webhooks/delivery/memory-queue.js';
import type { DeliveryJob } from '../../../../src/webhooks/delivery/queue.js';

function job(id: string): DeliveryJob {
  return { id, deliveryId: id, eventId: 'evt_1', endpointId: 'ep_1', attempts: 0, generation: 0 };
}

describe('MemoryDeliveryQueue', () => {
  it('runs a delayed job when its time comes, and ignores a job whose id it holds', async () => {
    const clock = manualClock(1000);
    const queue = new MemoryDeliveryQueue({ clock, logger: silentLogger });
    const ran: string[] = [];
    queue.process(
      async (j) => {
        ran.push(`${j.id}@${clock.now()}`);
        return { type: 'done' };
      },
      { concurrency: 2 },
    );
    await queue.add(job('a'), { delayMs: 500 });
    await queue.add(job('a'));
    await queue.add(job('b'));
    await clock.advance(0);
    expect(ran).toEqual(['b@1000']);
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 1, active: 0 });
    await clock.advance(499);
    expect(ran).toEqual(['b@1000']);
    await clock.advance(1);
    expect(ran).toEqual(['b@1000', 'a@1500']);
  });

  it('re-delays a job as the processor asks, and once more after the processor throws', async () => {
    const clock = manualClock(0);
    const queue = new MemoryDeliveryQueue({ clock, logger: silentLogger, faultDelayMs: 50 });
    const seen: number[] = [];
    queue.process(
      async (j) => {
        seen.push(clock.now());
        if (j.attempts === 0)
          return { type: 'delay', at: clock.now() + 100, job: { ...j, attempts: 1 } };
        if (seen.length === 2) throw new Error('store down');
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await queue.add(job('a'));
    await clock.advance(100);
    await clock.advance(50);
    expect(seen).toEqual([0, 100, 150]);
    expect(queue.jobIds()).toEqual([]);
  });

  it('close() waits for the jobs running, then refuses more', async () => {
    const queue = new MemoryDeliveryQueue({ logger: silentLogger });
    let finish!: () => void;
    let finished = false;
    queue.process(
      () =>
        new Promise((resolve) => {
          finish = () => {
            finished = true;
            resolve({ type: 'done' });
          };
        }),
      { concurrency: 1 },
    );
    await queue.add(job('a'));
    await new Promise((r) => setImmediate(r));
    const closing = queue.close();
    setTimeout(() => finish(), 10);
    await closing;
    expect(finished).toBe(true);
    await expect(queue.add(job('b'))).rejects.toThrow(/closed/);
  });

  it('keeps jobs as JSON: a live object in a job does not survive', async () => {
    const queue = new MemoryDeliveryQueue({ logger: silentLogger });
    let got: unknown;
    queue.process(
      async (j) => {
        got = j;
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await queue.add({ ...job('a'), extra: new Map([[1, 2]]) } as unknown as DeliveryJob);
    await new Promise((r) => setImmediate(r));
    expect((got as { extra: unknown }).extra).toEqual({});
    await queue.close();
  });
});

describe('events', () => {
  it('numbers the events of each resource from 1', () => {
    const seq = memorySequencer();
    expect([seq.next('payment:p1'), seq.next('payment:p1'), seq.next('payment:p2')]).toEqual([
      1, 2, 1,
    ]);
  });

  it('generates ids safe in a job id and a webhook-id, and fills in createdAt', () => {
    const event = createEvent({ type: 'payment.created', data: { a: 1 } }, () => 0);
    expect(event.id).toMatch(/^evt_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(event.createdAt).toBe('1970-01-01T00:00:00.000Z');
    expect(createEvent({ type: 'a.b', data: {} }, () => 0).id).not.toBe(event.id);
  });
});
