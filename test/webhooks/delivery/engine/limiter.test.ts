/** memoryEndpointLimiter: per-endpoint slots, a token bucket, and jobs turned away spaced out. */
import { describe, expect, it } from 'vitest';
import { memoryEndpointLimiter } from '../../../../src/webhooks/delivery/limits.js';

describe('memoryEndpointLimiter', () => {
  it('gives at most `concurrency` slots per endpoint, apart for each endpoint', () => {
    const limiter = memoryEndpointLimiter();
    const limits = { concurrency: 2 };
    expect(limiter.tryAcquire('a', limits, 0)).toEqual({ ok: true });
    expect(limiter.tryAcquire('a', limits, 0)).toEqual({ ok: true });
    expect(limiter.tryAcquire('a', limits, 0).ok).toBe(false);
    expect(limiter.tryAcquire('b', limits, 0)).toEqual({ ok: true });
    limiter.release('a', 10);
    expect(limiter.inFlight('a')).toBe(1);
    expect(limiter.tryAcquire('a', limits, 10)).toEqual({ ok: true });
  });

  it('spaces the jobs a saturated endpoint turns away by its attempt duration over its concurrency', () => {
    const limiter = memoryEndpointLimiter({ busyRetryMs: 100 });
    const limits = { concurrency: 2 };
    // Two attempts of 4 s each teach the limiter how long this endpoint takes.
    limiter.tryAcquire('slow', limits, 0);
    limiter.tryAcquire('slow', limits, 0);
    limiter.release('slow', 4000);
    limiter.release('slow', 4000);
    limiter.tryAcquire('slow', limits, 4000);
    limiter.tryAcquire('slow', limits, 4000);
    const waits = Array.from({ length: 4 }, () => {
      const answer = limiter.tryAcquire('slow', limits, 4000);
      return answer.ok ? 0 : answer.retryInMs;
    });
    // 4000 ms / 2 slots: one job every 2 s, not every job every 100 ms.
    expect(waits).toEqual([2000, 4000, 6000, 8000]);
  });

  it('goes by the age of the oldest attempt in flight when none has finished yet (an endpoint that hangs)', () => {
    const limiter = memoryEndpointLimiter({ busyRetryMs: 100 });
    const limits = { concurrency: 1 };
    limiter.tryAcquire('hang', limits, 0);
    const early = limiter.tryAcquire('hang', limits, 50);
    expect(early).toEqual({ ok: false, retryInMs: 100 });
    const later = limiter.tryAcquire('hang', limits, 3000);
    expect(later).toEqual({ ok: false, retryInMs: 3000 });
  });

  it('refills its token bucket continuously, and never from a clock set back', () => {
    const limiter = memoryEndpointLimiter();
    const limits = { concurrency: 10, rateLimitPerSecond: 2 };
    expect(limiter.tryAcquire('r', limits, 1000).ok).toBe(true);
    expect(limiter.tryAcquire('r', limits, 1000).ok).toBe(true);
    expect(limiter.tryAcquire('r', limits, 1000)).toEqual({ ok: false, retryInMs: 500 });
    expect(limiter.tryAcquire('r', limits, 0)).toEqual({ ok: false, retryInMs: 500 });
    expect(limiter.tryAcquire('r', limits, 1500).ok).toBe(true);
  });
});
