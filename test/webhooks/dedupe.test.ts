/**
 * Idempotent receivers on every ledger store (memory, Redis, PostgreSQL),
 * with real parallel HTTP requests: 50 concurrent duplicates, exactly one
 * processed and every one answered 200; a failed processing releases the
 * event for the sender's retry; a duplicate still in flight gets 409; a
 * store that cannot answer gets 503; and acknowledge-then-process through
 * the in-process queue.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { Store } from '../../src/stores/types.js';
import { hmacSigner, hmacVerifier } from '../../src/webhooks/hmac.js';
import { WebhookEventLedger } from '../../src/webhooks/ledger.js';
import { InProcessQueue } from '../../src/webhooks/queue.js';
import {
  type ReceivedWebhook,
  type WebhookReceiverOptions,
  webhookOf,
  webhookReceiver,
} from '../../src/webhooks/receiver.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';
import { adapters } from '../helpers/apps.js';
import { ledgerStores } from '../helpers/ledgers.js';
import { type Listening, listen } from '../helpers/raw.js';

const SECRET = generateWebhookSecret();
const signer = standardWebhooksSigner({ secrets: SECRET });
const hmac = hmacSigner({ secrets: SECRET });
const verify = [standardWebhooksVerifier({ secrets: SECRET }), hmacVerifier({ secrets: SECRET })];
const run = Math.random().toString(36).slice(2, 8);
let n = 0;
const newId = () => `msg_${run}_${++n}`;

const ledgers = ledgerStores('webhooks_dedupe');
afterAll(() => ledgers.cleanup());

interface Server {
  server: Listening;
  processed: string[];
  /** What the handler does for an event: its status (or a throw), after an optional delay. */
  behaviour: Map<string, { status?: number; delayMs?: number; throws?: boolean }>;
}

async function startReceiver(
  adapterIndex: number,
  options: Partial<WebhookReceiverOptions>,
): Promise<Server> {
  const processed: string[] = [];
  const behaviour: Server['behaviour'] = new Map();
  const app = adapters[adapterIndex]!.build({
    routes: [
      {
        method: 'post',
        path: '/webhooks/restwell',
        use: [webhookReceiver({ verify, ...options })],
        handler: async ({ context }) => {
          const webhook = webhookOf(context);
          const how = behaviour.get(webhook.id!) ?? { delayMs: 30 };
          if (how.delayMs) await sleep(how.delayMs);
          if (how.throws) throw new Error('processing failed');
          if ((how.status ?? 200) < 300) processed.push(webhook.id!);
          return { status: how.status ?? 200, body: { processed: webhook.id } };
        },
      },
    ],
  });
  return { server: await listen(app), processed, behaviour };
}

async function deliver(port: number, id: string, body = `{"type":"payment.succeeded","n":1}`) {
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/restwell`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signer.sign(body, { id }) },
    body,
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

describe.each(ledgers.cases)('dedupe on $name', ({ enabled, setup }) => {
  describe.runIf(enabled).each([
    { adapter: 'express5', adapterIndex: 0 },
    { adapter: 'koa3', adapterIndex: 2 },
  ])('through $adapter', ({ adapterIndex }) => {
    let store: Store;
    let receiver: Server;
    const servers: Listening[] = [];
    afterAll(async () => {
      for (const s of servers) await s.close();
    });

    async function start(
      options: Partial<ConstructorParameters<typeof WebhookEventLedger>[0]> = {},
    ) {
      store ??= await setup();
      const ledger = new WebhookEventLedger({ store, logger: silentLogger, ...options });
      const started = await startReceiver(adapterIndex, { dedupe: ledger });
      servers.push(started.server);
      return started;
    }

    it('processes exactly one of 50 concurrent duplicates and answers all 200', async () => {
      receiver = await start();
      const id = newId();
      receiver.behaviour.set(id, { delayMs: 100 });
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => deliver(receiver.server.port, id)),
      );
      expect(receiver.processed.filter((p) => p === id)).toHaveLength(1);
      expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
      // One answer is the handler's, the others are acknowledged duplicates.
      expect(answers.filter((a) => a.body.includes('"duplicate":true'))).toHaveLength(49);
      // Later deliveries are duplicates too, still 200.
      expect((await deliver(receiver.server.port, id)).body).toBe(
        '{"received":true,"duplicate":true}',
      );
      expect(receiver.processed.filter((p) => p === id)).toHaveLength(1);
    });

    it('releases the event when processing fails, so the retry is processed', async () => {
      receiver ??= await start();
      const id = newId();
      receiver.behaviour.set(id, { status: 500, delayMs: 0 });
      expect((await deliver(receiver.server.port, id)).status).toBe(500);
      receiver.behaviour.set(id, { throws: true });
      expect((await deliver(receiver.server.port, id)).status).toBe(500);
      receiver.behaviour.set(id, { status: 503 });
      expect((await deliver(receiver.server.port, id)).status).toBe(503);
      receiver.behaviour.delete(id);
      expect((await deliver(receiver.server.port, id)).status).toBe(200);
      expect(receiver.processed.filter((p) => p === id)).toHaveLength(1);
    });

    it('lets a duplicate waiting on a failing first delivery process the event itself', async () => {
      receiver ??= await start();
      const id = newId();
      receiver.behaviour.set(id, { status: 500, delayMs: 150 });
      const first = deliver(receiver.server.port, id);
      await sleep(40);
      // While the first runs, the second waits; the first fails, the second takes over.
      const secondDone = deliver(receiver.server.port, id);
      await sleep(20);
      receiver.behaviour.set(id, { delayMs: 0 });
      expect((await first).status).toBe(500);
      expect((await secondDone).status).toBe(200);
      expect(receiver.processed.filter((p) => p === id)).toHaveLength(1);
    });

    it('answers a duplicate still in flight after waitMs with 409 and Retry-After, never 200', async () => {
      const quick = await start({ waitMs: 50 });
      const id = newId();
      quick.behaviour.set(id, { delayMs: 400 });
      const first = deliver(quick.server.port, id);
      await sleep(60);
      const second = await deliver(quick.server.port, id);
      expect(second.status).toBe(409);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(JSON.parse(second.body).code).toBe('webhook-in-flight');
      expect((await first).status).toBe(200);
      expect((await deliver(quick.server.port, id)).status).toBe(200);
      expect(quick.processed.filter((p) => p === id)).toHaveLength(1);
    });

    it('keeps ids holding key separators, globs, quotes or 256 characters apart, each processed once', async () => {
      receiver ??= await start();
      const base = newId();
      const ids = [
        base,
        `${base}:`,
        `${base}*`,
        `${base}{tag}`,
        `${base}');DELETE/**/FROM/**/x;--`,
        `${base}\\0`,
        `${base}%00`,
        `${base}${'x'.repeat(256 - base.length - 1)}`,
      ];
      for (const id of ids) receiver.behaviour.set(id, { delayMs: 0 });
      const first = await Promise.all(ids.map((id) => deliver(receiver.server.port, id)));
      expect(first.map((a) => a.body.includes('"duplicate":true'))).toEqual(ids.map(() => false));
      const again = await Promise.all(ids.map((id) => deliver(receiver.server.port, id)));
      expect(again.map((a) => a.body.includes('"duplicate":true'))).toEqual(ids.map(() => true));
      for (const id of ids) expect(receiver.processed.filter((p) => p === id)).toHaveLength(1);
    });

    it('dedupes a custom event id of any length and characters (it is hashed into the key)', async () => {
      store ??= await setup();
      const ledger = new WebhookEventLedger({ store, logger: silentLogger });
      const custom = await startReceiver(adapterIndex, {
        dedupe: ledger,
        eventId: (payload) => (payload as { key: string }).key,
      });
      servers.push(custom.server);
      const key = `${newId()}\r\n${'\u0000é*'.repeat(10_000)}`;
      const body = JSON.stringify({ key });
      const send = () =>
        fetch(`http://127.0.0.1:${custom.server.port}/webhooks/restwell`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...hmac.sign(body) },
          body,
        });
      const answers = await Promise.all([send(), send(), send()]);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(custom.processed).toEqual([key]);
      expect(await ledger.state(key)).toBe('processed');
    });

    it('dedupes the seed scheme by the payload id, and refuses an event without one with 400', async () => {
      receiver ??= await start();
      const body = `{"id":"evt_${run}_${++n}","type":"payment.succeeded"}`;
      const send = () =>
        fetch(`http://127.0.0.1:${receiver.server.port}/webhooks/restwell`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...hmac.sign(body) },
          body,
        });
      const [a, b] = await Promise.all([send(), send()]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(receiver.processed.filter((p) => body.includes(p))).toHaveLength(1);
      const anonymous = '{"type":"payment.succeeded"}';
      const res = await fetch(`http://127.0.0.1:${receiver.server.port}/webhooks/restwell`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...hmac.sign(anonymous) },
        body: anonymous,
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('webhook-event-id-missing');
    });
  });
});

describe('the ledger store', () => {
  it('must be a ledger: an evicting store is refused at construction', () => {
    expect(() => new WebhookEventLedger({ store: new MemoryStore() })).toThrow(
      /never drops a live key/,
    );
    expect(
      () => new WebhookEventLedger({ store: new MemoryStore({ evict: false }) }),
    ).not.toThrow();
  });

  it('checks its options', () => {
    const store = new MemoryStore({ evict: false });
    expect(() => new WebhookEventLedger({ store, ttlMs: 10, leaseMs: 100 })).toThrow(/ttlMs/);
    expect(() => new WebhookEventLedger({ store, ttl: 1 } as never)).toThrow(/unknown option/);
    expect(() => webhookReceiver({ verify, dedupe: { store } as never })).toThrow(
      /WebhookEventLedger/,
    );
  });

  it('keeps processed ids for 72 h by default, then forgets them', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ evict: false, now: () => now });
    const ledger = new WebhookEventLedger({ store });
    expect(ledger.ttlMs).toBe(72 * 3600 * 1000);
    const claim = await ledger.claim('evt_ttl');
    expect(claim.outcome).toBe('claimed');
    if (claim.outcome === 'claimed') await claim.complete();
    now += 72 * 3600 * 1000 - 1;
    expect((await ledger.claim('evt_ttl')).outcome).toBe('duplicate');
    now += 2;
    expect(await ledger.state('evt_ttl')).toBe('unknown');
  });

  it('forgets an id on request, so that a resend is processed', async () => {
    const ledger = new WebhookEventLedger({ store: new MemoryStore({ evict: false }) });
    const claim = await ledger.claim('evt_f');
    if (claim.outcome === 'claimed') await claim.complete();
    expect(await ledger.state('evt_f')).toBe('processed');
    expect(await ledger.forget('evt_f')).toBe(true);
    expect((await ledger.claim('evt_f')).outcome).toBe('claimed');
  });

  it('renews the claim while processing runs past its lease', async () => {
    const ledger = new WebhookEventLedger({
      store: new MemoryStore({ evict: false }),
      leaseMs: 60,
      waitMs: 0,
    });
    const claim = await ledger.claim('evt_long');
    await sleep(200);
    expect((await ledger.claim('evt_long')).outcome).toBe('in-flight');
    if (claim.outcome === 'claimed') await claim.complete();
    expect((await ledger.claim('evt_long')).outcome).toBe('duplicate');
  });

  it('answers 503 with Retry-After when the store cannot answer, and processes nothing', async () => {
    const store = new MemoryStore({ evict: false });
    const down: Store = Object.assign(Object.create(store) as Store, {
      addOrGet: () => Promise.reject(new StoreUnavailableError('down')),
    });
    const receiver = await startReceiver(0, {
      dedupe: new WebhookEventLedger({ store: down, logger: silentLogger }),
    });
    try {
      const res = await deliver(receiver.server.port, newId());
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(JSON.parse(res.body).code).toBe('service-unavailable');
      expect(receiver.processed).toHaveLength(0);
    } finally {
      await receiver.server.close();
    }
  });

  it.each([
    [
      'Redis',
      () => {
        const client = new Redis({
          port: 1,
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        });
        client.on('error', () => {});
        return {
          store: new RedisStore({ client }) as Store,
          close: async () => client.disconnect(),
        };
      },
    ],
    [
      'PostgreSQL',
      () => {
        const pool = new pg.Pool({ port: 1, host: '127.0.0.1', connectionTimeoutMillis: 1000 });
        pool.on('error', () => {});
        return { store: new PostgresStore({ pool }) as Store, close: () => pool.end() };
      },
    ],
  ])('answers 503 with Retry-After when %s is down, and processes nothing', async (_name, make) => {
    const { store, close } = make();
    const receiver = await startReceiver(2, {
      dedupe: new WebhookEventLedger({ store, logger: silentLogger }),
    });
    try {
      const answers = await Promise.all([
        deliver(receiver.server.port, newId()),
        deliver(receiver.server.port, newId()),
      ]);
      for (const res of answers) {
        // Never 200: the sender would drop an event that was never processed.
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.body).code).toBe('service-unavailable');
        expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|\bat /);
      }
      expect(receiver.processed).toHaveLength(0);
    } finally {
      await receiver.server.close();
      await close();
    }
  });

  it('answers 503 store-full when a memory ledger is full', async () => {
    const receiver = await startReceiver(0, {
      dedupe: new WebhookEventLedger({
        store: new MemoryStore({ evict: false, maxEntries: 1 }),
        logger: silentLogger,
      }),
    });
    try {
      expect((await deliver(receiver.server.port, newId())).status).toBe(200);
      const res = await deliver(receiver.server.port, newId());
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body).code).toBe('store-full');
    } finally {
      await receiver.server.close();
    }
  });
});

describe('acknowledge fast, process asynchronously', () => {
  it('answers 200 before processing, retries a failure, and reports the last one', async () => {
    const ledger = new WebhookEventLedger({ store: new MemoryStore({ evict: false }) });
    const attempts: string[] = [];
    const failed: string[] = [];
    let releaseGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      releaseGate = resolve;
    });
    const queue = new InProcessQueue<ReceivedWebhook>({
      process: async (webhook) => {
        await gate;
        attempts.push(webhook.id!);
        if ((webhook.payload as { fail?: boolean }).fail) throw new Error('downstream failed');
      },
      attempts: 3,
      retryDelayMs: () => 5,
      logger: silentLogger,
      onFailure: async (webhook) => {
        failed.push(webhook.id!);
        await ledger.forget(webhook.id!);
      },
    });
    const receiver = await startReceiver(0, { dedupe: ledger, queue });
    try {
      const ok = newId();
      const res = await deliver(receiver.server.port, ok);
      // Answered while processing has not even started.
      expect(res.status).toBe(200);
      expect(res.body).toBe('{"received":true}');
      expect(attempts).toEqual([]);
      expect(receiver.processed).toEqual([]); // the route's handler is not called
      expect((await deliver(receiver.server.port, ok)).body).toContain('"duplicate":true');

      const bad = newId();
      expect((await deliver(receiver.server.port, bad, '{"fail":true}')).status).toBe(200);
      releaseGate();
      await queue.drain();
      expect(attempts.filter((a) => a === ok)).toHaveLength(1);
      expect(attempts.filter((a) => a === bad)).toHaveLength(3);
      expect(failed).toEqual([bad]);
      // Forgotten after its last failure: the sender's resend is processed again.
      expect((await deliver(receiver.server.port, bad, '{"fail":false}')).body).toBe(
        '{"received":true}',
      );
      await queue.close();
      expect(attempts.filter((a) => a === bad)).toHaveLength(4);
    } finally {
      await receiver.server.close();
    }
  });

  it('answers 503 webhook-queue-full when the queue is full, and the retry is processed later', async () => {
    const ledger = new WebhookEventLedger({ store: new MemoryStore({ evict: false }) });
    let open: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      open = resolve;
    });
    const done: string[] = [];
    const queue = new InProcessQueue<ReceivedWebhook>({
      process: async (w) => {
        await blocked;
        done.push(w.id!);
      },
      maxPending: 1,
      logger: silentLogger,
    });
    const receiver = await startReceiver(0, { dedupe: ledger, queue });
    try {
      expect((await deliver(receiver.server.port, 'q1')).status).toBe(200);
      const full = await deliver(receiver.server.port, 'q2');
      expect(full.status).toBe(503);
      expect(JSON.parse(full.body).code).toBe('webhook-queue-full');
      open();
      await queue.drain();
      // Not recorded as processed: the sender's retry is accepted.
      expect((await deliver(receiver.server.port, 'q2')).body).toBe('{"received":true}');
      await queue.close();
      expect(done).toEqual(['q1', 'q2']);
    } finally {
      await receiver.server.close();
    }
  });
});
