/**
 * BullMqDeliveryQueue keeps the DeliveryQueue contract on a real Redis: jobs
 * as JSON, delays, a processor's reschedule (moveToDelayed with the lock
 * token), concurrency, dedupe by job id, close() waiting for running jobs,
 * faults retried, and its configuration checked at construction.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../src/core/logger.js';
import { BullMqDeliveryQueue } from '../../../../src/webhooks/delivery/bullmq.js';
import type { DeliveryJob, JobOutcome } from '../../../../src/webhooks/delivery/queue.js';
import { services } from '../../../helpers/services.js';
import { deferred, job, queues, recordingLogger, until } from './helpers.js';

let current: ReturnType<typeof queues> | undefined;
function setup(label: string) {
  current = queues(label);
  return current;
}
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

describe.runIf(services.redis)('BullMqDeliveryQueue: the DeliveryQueue contract on Redis', () => {
  it('runs a job once, as JSON, and removes it when done', async () => {
    const q = setup('run').open({ logger: silentLogger });
    const seen: DeliveryJob[] = [];
    q.process(
      async (j) => {
        seen.push(j);
        return { type: 'done' };
      },
      { concurrency: 2 },
    );
    await q.add(job('evt_1/ep_1', { version: '2025-01-01' }));
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual(job('evt_1/ep_1', { version: '2025-01-01' }));
    await until(async () => (await q.counts()).active === 0);
    expect(await q.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0 });
  });

  it('holds a delayed job in the delayed set until its time', async () => {
    const q = setup('delay').open({ logger: silentLogger });
    const ranAt: number[] = [];
    const added = Date.now();
    await q.add(job('evt_d/ep_1'), { delayMs: 400 });
    expect(await q.counts()).toMatchObject({ waiting: 0, delayed: 1 });
    q.process(
      async () => {
        ranAt.push(Date.now());
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await until(() => ranAt.length === 1);
    expect(ranAt[0]! - added).toBeGreaterThanOrEqual(400);
  });

  it('runs a job again at the time its processor asks, with the job it returns', async () => {
    const q = setup('reschedule').open({ logger: silentLogger });
    const seen: { job: DeliveryJob; at: number }[] = [];
    let askedFor = 0;
    q.process(
      async (j): Promise<JobOutcome> => {
        seen.push({ job: j, at: Date.now() });
        if (j.attempts >= 2) return { type: 'done' };
        askedFor = Date.now() + 200;
        return { type: 'delay', at: askedFor, job: { ...j, attempts: j.attempts + 1 } };
      },
      { concurrency: 1 },
    );
    await q.add(job('evt_r/ep_1'));
    await until(() => seen.length >= 2);
    // Between the runs the job waits delayed, not in a worker slot.
    await until(() => seen.length === 3);
    expect(seen.map((s) => s.job.attempts)).toEqual([0, 1, 2]);
    expect(seen[2]!.at).toBeGreaterThanOrEqual(askedFor);
    await until(async () => (await q.counts()).active === 0);
    expect(await q.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0 });
  });

  it('shows a rescheduled job as delayed, and keeps an unchanged job as it was', async () => {
    const q = setup('redelay').open({ logger: silentLogger });
    let runs = 0;
    q.process(
      async (j) => {
        runs++;
        return { type: 'delay', at: Date.now() + 60_000, job: j };
      },
      { concurrency: 1 },
    );
    await q.add(job('evt_w/ep_1'));
    await until(async () => runs === 1 && (await q.counts()).delayed === 1);
    expect(await q.counts()).toMatchObject({ waiting: 0, delayed: 1, active: 0 });
    // Held under its id while delayed: adding it again is a no-op.
    await q.add(job('evt_w/ep_1'));
    expect(await q.counts()).toMatchObject({ waiting: 0, delayed: 1 });
  });

  it('runs at most `concurrency` jobs at once', async () => {
    const q = setup('concurrency').open({ logger: silentLogger });
    let running = 0;
    let most = 0;
    let done = 0;
    const gate = deferred();
    q.process(
      async () => {
        running++;
        most = Math.max(most, running);
        await gate.promise;
        running--;
        done++;
        return { type: 'done' };
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 7; i++) await q.add(job(`evt_c${i}/ep_1`));
    await until(() => running === 3);
    expect(await q.counts()).toMatchObject({ active: 3, waiting: 4 });
    gate.resolve();
    await until(() => done === 7);
    expect(most).toBe(3);
  });

  it('ignores an add whose id is waiting or running, and queues it again once done', async () => {
    const q = setup('dedupe').open({ logger: silentLogger });
    await q.add(job('evt_x/ep_1'));
    await q.add(job('evt_x/ep_1'));
    expect(await q.counts()).toMatchObject({ waiting: 1 });
    const gate = deferred();
    let runs = 0;
    q.process(
      async () => {
        runs++;
        await gate.promise;
        return { type: 'done' };
      },
      { concurrency: 4 },
    );
    await until(() => runs === 1);
    await q.add(job('evt_x/ep_1')); // running: a no-op
    gate.resolve();
    await until(async () => (await q.counts()).active === 0);
    expect(runs).toBe(1);
    await q.add(job('evt_x/ep_1')); // done and removed: queued anew
    await until(() => runs === 2);
    // A replay's job (`#1`) is another job.
    await q.add(job('evt_x/ep_1#1', { generation: 1 }));
    await until(() => runs === 3);
  });

  it('refuses a job id with ":" (BullMQ reads it as a key separator)', async () => {
    const q = setup('colon').open({ logger: silentLogger });
    await expect(q.add(job('evt:1/ep_1'))).rejects.toThrow(/without ":"/);
    expect(await q.counts()).toMatchObject({ waiting: 0 });
  });

  it('close() waits for the running jobs, and a job delayed while closing stays queued', async () => {
    const setupQ = setup('close');
    const q = setupQ.open({ logger: silentLogger });
    const gate = deferred();
    let started = 0;
    q.process(
      async (j) => {
        started++;
        await gate.promise;
        return { type: 'delay', at: Date.now() + 60_000, job: { ...j, attempts: 1 } };
      },
      { concurrency: 2 },
    );
    await q.add(job('evt_z/ep_1'));
    await until(() => started === 1);
    let closed = false;
    const closing = q.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    gate.resolve();
    await closing;
    await expect(q.add(job('evt_y/ep_1'))).rejects.toThrow(/closed/);
    // Another process sees the job delayed, with the attempt the processor counted.
    const other = setupQ.open({ logger: silentLogger });
    expect(await other.counts()).toMatchObject({ delayed: 1, active: 0 });
    const data = await setupQ.client.hget(`${setupQ.prefix}:webhook-deliveries:evt_z/ep_1`, 'data');
    expect(JSON.parse(data!)).toEqual(job('evt_z/ep_1', { attempts: 1 }));
  });

  it('runs a job again after faultDelayMs when its processor throws, and logs the fault', async () => {
    const { logger, lines } = recordingLogger();
    const q = setup('fault').open({ logger, faultDelayMs: 100 });
    let runs = 0;
    q.process(
      async () => {
        runs++;
        if (runs === 1) throw new Error('the log is down');
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await q.add(job('evt_f/ep_1'));
    await until(() => runs === 2);
    expect(lines.find((l) => l.level === 'error')?.message).toMatch(/runs again later/);
    await until(async () => (await q.counts()).active === 0);
    expect(await q.counts()).toMatchObject({ failed: 0, delayed: 0, waiting: 0 });
  });

  it('moves a job whose data is no delivery job to failed at once, logged, and runs the others', async () => {
    const s = setup('malformed');
    const { logger, lines } = recordingLogger();
    const q = s.open({ logger });
    const seen: string[] = [];
    q.process(
      async (j) => {
        seen.push(j.id);
        return { type: 'done' };
      },
      { concurrency: 2 },
    );
    await q.ready();
    // Jobs as another version, or a hand, may have written them.
    const raw = new Queue('webhook-deliveries', { connection: s.client, prefix: s.prefix });
    await raw.add('delivery', { id: 'evt_old/ep_1', attempt: 3 }, { jobId: 'evt_old/ep_1' });
    await raw.add('delivery', 'a string', { jobId: 'evt_str/ep_1' });
    await raw.add(
      'delivery',
      { ...job('evt_neg/ep_1'), attempts: -1 },
      { jobId: 'evt_neg/ep_1', attempts: 10 },
    );
    await raw.close();
    await q.add(job('evt_ok/ep_1'));
    await until(async () => (await q.counts()).failed === 3 && seen.length === 1);
    expect(seen).toEqual(['evt_ok/ep_1']);
    // Not retried by BullMQ (UnrecoverableError spends no more of its attempts).
    await new Promise((r) => setTimeout(r, 300));
    expect(await q.counts()).toMatchObject({ failed: 3, waiting: 0, delayed: 0, active: 0 });
    const logged = lines.filter((l) => /holds no delivery job/.test(l.message));
    expect(logged.map((l) => l.fields?.jobId).sort()).toEqual([
      'evt_neg/ep_1',
      'evt_old/ep_1',
      'evt_str/ep_1',
    ]);
  });

  it('a healthy attempt far longer than the lock is not taken for stalled: it runs once', async () => {
    const { logger, lines } = recordingLogger();
    // The lock is renewed every half of it while the attempt runs: an attempt of six lock
    // durations (the engine's 5 s attempt against a 1 s lock, scaled down) keeps its job.
    const q = setup('long').open({ logger, lockDurationMs: 500, stalledIntervalMs: 100 });
    let runs = 0;
    q.process(
      async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 3000));
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await q.add(job('evt_long/ep_1'));
    await until(async () => runs === 1 && (await q.counts()).active === 0, 10_000);
    expect(runs).toBe(1);
    expect(lines.filter((l) => /lost its worker/.test(l.message))).toEqual([]);
    expect(await q.counts()).toMatchObject({ waiting: 0, delayed: 0, failed: 0 });
  });

  it('shares one queue between two instances: both take jobs', async () => {
    const s = setup('share');
    const a = s.open({ logger: silentLogger });
    const b = s.open({ logger: silentLogger });
    const by = { a: 0, b: 0 };
    const slow = (name: 'a' | 'b') => async (): Promise<JobOutcome> => {
      by[name]++;
      await new Promise((r) => setTimeout(r, 20));
      return { type: 'done' };
    };
    a.process(slow('a'), { concurrency: 2 });
    b.process(slow('b'), { concurrency: 2 });
    await Promise.all([a.ready(), b.ready()]);
    for (let i = 0; i < 40; i++) await a.add(job(`evt_s${i}/ep_1`));
    await until(() => by.a + by.b === 40);
    expect(by.a).toBeGreaterThan(0);
    expect(by.b).toBeGreaterThan(0);
  });

  it('refuses a second processor', () => {
    const q = setup('twice').open({ logger: silentLogger });
    q.process(async () => ({ type: 'done' }), { concurrency: 1 });
    expect(() => q.process(async () => ({ type: 'done' }), { concurrency: 1 })).toThrow(
      /already has a processor/,
    );
  });

  it("works on a client with ioredis's default maxRetriesPerRequest (workers get their own)", async () => {
    const s = setup('retries');
    const client = new Redis(services.redisUrl);
    try {
      const q = s.open({ connection: client, logger: silentLogger });
      let runs = 0;
      q.process(
        async () => {
          runs++;
          return { type: 'done' };
        },
        { concurrency: 1 },
      );
      await q.add(job('evt_m/ep_1'));
      await until(() => runs === 1);
      await q.close();
      expect(client.status).toBe('ready'); // the caller's client stays open
    } finally {
      client.disconnect();
    }
  });

  it('opens its own connection from a URL and closes it', async () => {
    const s = setup('url');
    const q = s.open({ connection: services.redisUrl, logger: silentLogger });
    let runs = 0;
    q.process(
      async () => {
        runs++;
        return { type: 'done' };
      },
      { concurrency: 1 },
    );
    await q.add(job('evt_u/ep_1'));
    await until(() => runs === 1);
  });
});

describe('BullMqDeliveryQueue: configuration errors are loud and safe', () => {
  it('needs a connection, and never shows a URL that may hold a password', () => {
    expect(() => new BullMqDeliveryQueue({} as never)).toThrow(/"connection"/);
    let message = '';
    try {
      new BullMqDeliveryQueue({ connection: 'http://user:s3cret@host:6379' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/redis:\/\//);
    expect(message).not.toContain('s3cret');
  });

  it('names an unknown option, and a bad value', () => {
    expect(() => new BullMqDeliveryQueue({ connection: 'redis://x', prefx: 'a' } as never)).toThrow(
      /prefx/,
    );
    expect(() => new BullMqDeliveryQueue({ connection: 'redis://x', queueName: 'a:b' })).toThrow(
      /queueName/,
    );
    expect(() => new BullMqDeliveryQueue({ connection: 'redis://x', maxStalledCount: 0 })).toThrow(
      /maxStalledCount/,
    );
  });

  it('on a Redis Cluster, needs a hash tag in the prefix (or the queue name)', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    try {
      expect(() => new BullMqDeliveryQueue({ connection: cluster, prefix: 'restwell' })).toThrow(
        /"prefix" must hold a hash tag.*\{restwell\}/,
      );
      expect(() => new BullMqDeliveryQueue({ connection: cluster, prefix: 'a{}b' })).toThrow(
        /hash tag/,
      );
      expect(() => new BullMqDeliveryQueue({ connection: cluster })).toThrow(/hash tag/);
      new BullMqDeliveryQueue({ connection: cluster, prefix: '{restwell}' });
      new BullMqDeliveryQueue({ connection: cluster, prefix: 'app', queueName: '{hooks}' });
    } finally {
      cluster.disconnect();
    }
  });

  it('refuses a job id BullMQ would refuse, before any Redis command', async () => {
    const q = new BullMqDeliveryQueue({ connection: 'redis://127.0.0.1:1', logger: silentLogger });
    await expect(q.add(job('12345'))).rejects.toThrow(/integer/);
    await expect(q.add(job(''))).rejects.toThrow(/non-empty/);
    await q.close();
  });

  it('refuses a client with an ioredis keyPrefix', () => {
    const fake = { duplicate: () => fake, options: { keyPrefix: 'app:' } };
    expect(() => new BullMqDeliveryQueue({ connection: fake as never })).toThrow(/keyPrefix/);
  });

  it('imports bullmq and ioredis only lazily: the module loads without them', async () => {
    const source = await readFile(
      join(import.meta.dirname, '../../../../src/webhooks/delivery/bullmq.ts'),
      'utf8',
    );
    const imports = source.match(/^import .* from '(bullmq|ioredis)';$/gm) ?? [];
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) expect(line).toMatch(/^import type /);
    // Constructing a queue opens nothing: closing an unused one touches no server.
    await new BullMqDeliveryQueue({ connection: 'redis://127.0.0.1:1' }).close();
  });
});
