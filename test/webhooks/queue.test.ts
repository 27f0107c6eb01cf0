import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { WebhookQueueFullError } from '../../src/webhooks/errors.js';
import { backoffDelayMs, InProcessQueue } from '../../src/webhooks/queue.js';

function recordingLogger() {
  const lines: Array<[string, string]> = [];
  return {
    lines,
    logger: {
      error: (m: string) => lines.push(['error', m]),
      warn: (m: string) => lines.push(['warn', m]),
      info: () => {},
    },
  };
}

describe('InProcessQueue', () => {
  it('processes after the current turn, not inside enqueue()', async () => {
    const seen: number[] = [];
    const queue = new InProcessQueue<number>({
      process: (n) => void seen.push(n),
      logger: silentLogger,
    });
    queue.enqueue(1);
    expect(seen).toEqual([]);
    expect(queue.pending).toBe(1);
    await queue.drain();
    expect(seen).toEqual([1]);
    expect(queue.pending).toBe(0);
  });

  it('retries with the configured delays, and logs each failed attempt', async () => {
    const { lines, logger } = recordingLogger();
    const delays: number[] = [];
    let calls = 0;
    const queue = new InProcessQueue<string>({
      process: () => {
        calls++;
        if (calls < 3) throw new Error(`attempt ${calls}`);
      },
      attempts: 5,
      retryDelayMs: (retry) => {
        delays.push(retry);
        return 1;
      },
      logger,
    });
    queue.enqueue('evt');
    await queue.drain();
    expect(calls).toBe(3);
    expect(delays).toEqual([1, 2]);
    expect(lines.filter(([level]) => level === 'warn')).toHaveLength(2);
    expect(lines.filter(([level]) => level === 'error')).toHaveLength(0);
  });

  it('never drops a failure silently: the last one is logged and handed to onFailure', async () => {
    const { lines, logger } = recordingLogger();
    const failures: Array<[string, string, number]> = [];
    const queue = new InProcessQueue<string>({
      process: async () => {
        throw new Error('down');
      },
      attempts: 2,
      retryDelayMs: () => 0,
      onFailure: (event, error, attempts) => {
        failures.push([event, (error as Error).message, attempts]);
        throw new Error('onFailure broke too');
      },
      logger,
    });
    queue.enqueue('evt_x');
    await queue.drain();
    expect(failures).toEqual([['evt_x', 'down', 2]]);
    const errors = lines.filter(([level]) => level === 'error').map(([, m]) => m);
    expect(errors).toEqual([
      'restwell/webhooks: processing a webhook event failed for good',
      "restwell/webhooks: the queue's onFailure callback failed",
    ]);
  });

  it('runs at most `concurrency` events at once', async () => {
    let running = 0;
    let peak = 0;
    const queue = new InProcessQueue<number>({
      process: async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(10);
        running--;
      },
      concurrency: 3,
      logger: silentLogger,
    });
    for (let i = 0; i < 12; i++) queue.enqueue(i);
    await queue.drain();
    expect(peak).toBe(3);
  });

  it('refuses past maxPending, and after close(), with a 503 problem error', async () => {
    const queue = new InProcessQueue<number>({
      process: () => sleep(20),
      maxPending: 2,
      logger: silentLogger,
    });
    queue.enqueue(1);
    queue.enqueue(2);
    expect(() => queue.enqueue(3)).toThrow(WebhookQueueFullError);
    try {
      queue.enqueue(3);
    } catch (err) {
      expect((err as WebhookQueueFullError).status).toBe(503);
      expect((err as WebhookQueueFullError).headers['Retry-After']).toBe('1');
    }
    await queue.close();
    expect(() => queue.enqueue(4)).toThrow(WebhookQueueFullError);
  });

  it('waits a retry delay longer than a timer holds for as long as one holds, not 1 ms', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let calls = 0;
      const queue = new InProcessQueue<string>({
        process: () => {
          calls++;
          if (calls === 1) throw new Error('first attempt fails');
        },
        attempts: 2,
        // Thirty days: past what a Node timer can hold, which it would run after 1 ms.
        retryDelayMs: () => 30 * 86_400_000,
        logger: silentLogger,
      });
      queue.enqueue('evt');
      await vi.advanceTimersByTimeAsync(0);
      await sleep(0);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(2_147_483_647);
      expect(calls).toBe(2);
      await queue.drain();
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks its options', () => {
    expect(() => new InProcessQueue({} as never)).toThrow(/"process"/);
    expect(() => new InProcessQueue({ process: () => {}, attempts: 0 })).toThrow(/attempts/);
    expect(() => new InProcessQueue({ process: () => {}, retries: 3 } as never)).toThrow(
      /unknown option/,
    );
  });
});

describe('backoffDelayMs', () => {
  it('doubles from 1 s up to 5 min, stretched by 0 to 20 % jitter', () => {
    for (const [retry, base] of [
      [1, 1000],
      [2, 2000],
      [5, 16_000],
      [20, 300_000],
    ] as const) {
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelayMs(retry);
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThanOrEqual(base * 1.2);
      }
    }
  });
});
