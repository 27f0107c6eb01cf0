/**
 * Webhook delivery: deliveries per second to a local receiver, on the memory
 * queue and on BullMQ (Redis at REDIS_URL, default redis://127.0.0.1:6379),
 * and the p99 delivery latency of healthy endpoints while one endpoint hangs,
 * against the same load with no bad endpoint.
 *
 * - Throughput: `BENCH_EVENTS` events (default 500) are dispatched to 10
 *   endpoints (concurrency 20 each), so 10 deliveries per event, before the
 *   worker starts (`concurrency` 64); the time from the start of the worker
 *   to the last 2xx is measured. The receiver is its own process (this file,
 *   `BENCH_ROLE=receiver`), answering 204 at once.
 * - Isolation: events are dispatched at `BENCH_RATE` per second (default 100)
 *   for `BENCH_SECONDS` (default 5) to 4 healthy endpoints, and in the second
 *   case also to an endpoint that accepts the connection and never answers
 *   (each attempt ends at the 5 s timeout). Latency is from `dispatch()` to
 *   the end of the 2xx attempt, for the healthy endpoints only.
 *
 * Every engine runs in this process, on the system clock, with the memory log
 * and endpoint store, so that the queue is what differs. The sources are
 * imported:
 * `node --import tsx bench/webhooks-delivery.ts`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { silentLogger } from '../src/core/logger.js';
import { sendAttempt } from '../src/webhooks/delivery/attempt.js';
import { BullMqDeliveryQueue } from '../src/webhooks/delivery/bullmq.js';
import { webhookDelivery } from '../src/webhooks/delivery/delivery.js';
import type { DeliveryQueue } from '../src/webhooks/delivery/queue.js';
import { ssrfGuard } from '../src/webhooks/delivery/ssrf.js';
import { table } from './harness.js';

if (process.env.BENCH_ROLE === 'receiver') {
  const ok = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  // Accepts, reads, never answers: the engine's 5 s timeout ends each attempt.
  const hang = createServer((req) => req.resume());
  ok.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => ok.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  process.stdout.write(
    `${JSON.stringify({ ok: (ok.address() as AddressInfo).port, hang: (hang.address() as AddressInfo).port })}\n`,
  );
} else {
  await main();
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const events = Number(process.env.BENCH_EVENTS ?? 500);
  const rate = Number(process.env.BENCH_RATE ?? 100);
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);

  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_ROLE: 'receiver' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports = await new Promise<{ ok: number; hang: number }>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l))),
  );
  const okUrl = (i: number) => `http://127.0.0.1:${ports.ok}/hooks/${i}`;
  const hangUrl = `http://127.0.0.1:${ports.hang}/hooks`;

  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefixes: string[] = [];
  const queueFor = (kind: 'memory' | 'bullmq'): DeliveryQueue | undefined => {
    if (kind === 'memory') return undefined;
    const prefix = `rw-bench-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    return new BullMqDeliveryQueue({ connection: redis, prefix, logger: silentLogger });
  };

  /** An engine whose attempts report their end, per delivery. */
  function engine(kind: 'memory' | 'bullmq', onOk: (body: string, url: string) => void) {
    const queue = queueFor(kind);
    return webhookDelivery({
      ...(queue === undefined ? {} : { queue }),
      guard: ssrfGuard({ allowLoopback: true }),
      allowHttp: true,
      breaker: false,
      health: false,
      logger: silentLogger,
      send: async (request) => {
        const result = await sendAttempt(request);
        if (result.ok) onOk(String(request.body), request.url);
        return result;
      },
    });
  }

  async function throughput(kind: 'memory' | 'bullmq') {
    let delivered = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => {
      resolveAll = r;
    });
    const total = events * 10;
    const delivery = engine(kind, () => {
      if (++delivered === total) resolveAll();
    });
    for (let i = 0; i < 10; i++)
      await delivery.endpoints.create({ url: okUrl(i), concurrency: 20 });
    const dispatchStart = performance.now();
    for (let i = 0; i < events; i++) await delivery.dispatch({ type: 'bench.event', data: { i } });
    const dispatchMs = performance.now() - dispatchStart;
    const cpu = process.cpuUsage();
    const start = performance.now();
    delivery.startWorker({ concurrency: 64 });
    await all;
    const ms = performance.now() - start;
    const cpuUs = process.cpuUsage(cpu);
    await delivery.stop();
    return {
      perSecond: Math.round((total / ms) * 1000),
      dispatchPerSecond: Math.round((total / dispatchMs) * 1000),
      cpuUsPerDelivery: Number(((cpuUs.user + cpuUs.system) / total).toFixed(1)),
    };
  }

  async function isolation(kind: 'memory' | 'bullmq', bad: boolean) {
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const delivery = engine(kind, (body, url) => {
      if (url === hangUrl) return;
      const id = (JSON.parse(body) as { id: string }).id;
      const at = sentAt.get(id);
      if (at !== undefined) latencies.push(performance.now() - at);
    });
    for (let i = 0; i < 4; i++) await delivery.endpoints.create({ url: okUrl(i) });
    if (bad) await delivery.endpoints.create({ url: hangUrl });
    delivery.startWorker({ concurrency: 64 });
    const count = rate * seconds;
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const id = `evt_bench${i}_${randomBytes(3).toString('hex')}`;
      sentAt.set(id, performance.now());
      await delivery.dispatch({ id, type: 'bench.event', data: { i } });
    }
    const deadline = performance.now() + 30_000;
    while (latencies.length < count * 4 && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
    const counts = await delivery.queue.counts();
    // Waits for the hanging endpoint's attempts to reach their 5 s timeout.
    await delivery.stop();
    return {
      delivered: latencies.length,
      expected: count * 4,
      p50: Number(pct(0.5).toFixed(1)),
      p99: Number(pct(0.99).toFixed(1)),
      max: Number(sorted[sorted.length - 1]!.toFixed(1)),
      left: counts.waiting + counts.delayed + counts.active,
    };
  }

  try {
    const rows: (string | number)[][] = [];
    for (const kind of ['memory', 'bullmq'] as const) {
      const t = await throughput(kind);
      rows.push([kind, t.perSecond, t.dispatchPerSecond, t.cpuUsPerDelivery]);
    }
    console.log(
      table(
        ['queue', 'deliveries/s', 'queued/s (dispatch)', 'worker-process CPU µs/delivery'],
        rows,
      ),
    );
    console.log(
      `\n${events} events × 10 endpoints, worker concurrency 64, endpoint concurrency 20; receiver in its own process. Node ${process.version}.\n`,
    );
    const iso: (string | number)[][] = [];
    for (const kind of ['memory', 'bullmq'] as const) {
      const good = await isolation(kind, false);
      const bad = await isolation(kind, true);
      iso.push([
        kind,
        `${good.p50} / ${good.p99}`,
        `${bad.p50} / ${bad.p99}`,
        `${(bad.p99 / good.p99).toFixed(2)}x`,
        `${bad.delivered}/${bad.expected}`,
      ]);
    }
    console.log(
      table(
        [
          'queue',
          'no bad endpoint p50 / p99 ms',
          'one endpoint hanging p50 / p99 ms',
          'p99 ratio',
          'healthy delivered',
        ],
        iso,
      ),
    );
    console.log(
      `\n${rate} events/s for ${seconds} s to 4 healthy endpoints (+ 1 that never answers); latency from dispatch() to the 2xx, healthy endpoints only.`,
    );
  } finally {
    child.kill();
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
    await redis.quit();
  }
  process.exit(0);
}
