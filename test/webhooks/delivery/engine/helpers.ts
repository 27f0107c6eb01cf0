import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../../src/core/logger.js';
import { manualClock } from '../../../../src/webhooks/delivery/clock.js';
import {
  type WebhookDeliveryOptions,
  webhookDelivery,
} from '../../../../src/webhooks/delivery/delivery.js';
import { retrySchedule } from '../../../../src/webhooks/delivery/schedule.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';

/** One request a receiver got. */
export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: Record<string, unknown>;
}

/** What a receiver answers: a status (and headers, body), or `hang` to never answer. */
export type Answer =
  | number
  | { status: number; headers?: Record<string, string>; body?: string }
  | 'hang';

/** A real HTTP receiver on 127.0.0.1, port 0. */
export async function receiver(answer: (req: Received, n: number) => Answer = () => 200) {
  const requests: Received[] = [];
  const hanging = new Set<ServerResponse>();
  let current = answer;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {}
      const received = { headers: req.headers, body, json };
      requests.push(received);
      const a = current(received, requests.length);
      if (a === 'hang') {
        hanging.add(res);
        return;
      }
      const { status, headers = {}, body: out = '' } = typeof a === 'number' ? { status: a } : a;
      res.writeHead(status, headers).end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    answer(next: (req: Received, n: number) => Answer) {
      current = next;
    },
    /** Answers the hanging requests, so that they finish. */
    release(status = 200) {
      for (const res of hanging) res.writeHead(status).end();
      hanging.clear();
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits until `condition` holds (polling the event loop), or fails after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const START = Date.parse('2025-06-01T12:00:00Z');

/**
 * An engine on a manual clock, a deterministic schedule (no jitter) and loopback allowed,
 * delivering with its default transport, sendAttempt.
 */
export function engine(options: Partial<WebhookDeliveryOptions> = {}) {
  const clock = manualClock(START);
  const delivery = webhookDelivery({
    clock,
    guard: ssrfGuard({ allowLoopback: true }),
    allowHttp: true,
    schedule: retrySchedule({ random: () => 0 }),
    logger: silentLogger,
    ...options,
  });
  return { clock, delivery };
}
