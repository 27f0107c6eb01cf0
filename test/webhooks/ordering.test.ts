/**
 * Ordering helpers under reordered deliveries: the seed's payment.created
 * arriving after payment.success never overwrites it, on every ledger store,
 * through the receiver over HTTP, and under concurrent shuffled deliveries;
 * and the re-fetch pattern's coalescing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import type { Store } from '../../src/stores/types.js';
import { WebhookEventLedger } from '../../src/webhooks/ledger.js';
import { EventOrder, ordinalOf, refetcher } from '../../src/webhooks/ordering.js';
import { webhookOf, webhookReceiver } from '../../src/webhooks/receiver.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';
import { adapters } from '../helpers/apps.js';
import { ledgerStores } from '../helpers/ledgers.js';
import { listen } from '../helpers/raw.js';

const run = Math.random().toString(36).slice(2, 8);
const ledgers = ledgerStores('webhooks_order');
afterAll(() => ledgers.cleanup());

interface Payment {
  status: string;
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe.each(ledgers.cases)('EventOrder on $name', ({ enabled, setup }) => {
  let store: Store;
  const order = async () => {
    store ??= await setup();
    return new EventOrder<Payment>({ store, namespace: `order-${run}` });
  };

  it.runIf(enabled)('keeps payment.success when payment.created arrives after it', async () => {
    const payments = await order();
    const id = `pay_${run}_seed`;
    expect((await payments.apply(id, 2, { status: 'succeeded' })).applied).toBe(true);
    const late = await payments.apply(id, 1, { status: 'pending' });
    expect(late.applied).toBe(false);
    expect(late.current.value).toEqual({ status: 'succeeded' });
    expect((await payments.get(id))?.value).toEqual({ status: 'succeeded' });
  });

  it.runIf(enabled)(
    'treats an equal position as a duplicate, and applies a newer one',
    async () => {
      const payments = await order();
      const id = `pay_${run}_eq`;
      await payments.apply(id, 5, { status: 'a' });
      expect((await payments.apply(id, 5, { status: 'b' })).applied).toBe(false);
      expect((await payments.apply(id, 6, { status: 'c' })).applied).toBe(true);
      expect((await payments.get(id))?.value.status).toBe('c');
    },
  );

  it.runIf(enabled)(
    'ends with the newest state under 30 concurrent shuffled deliveries',
    async () => {
      const payments = await order();
      for (let round = 0; round < 3; round++) {
        const id = `pay_${run}_race_${round}`;
        const events = shuffle(Array.from({ length: 30 }, (_, i) => i + 1));
        const outcomes = await Promise.all(
          events.map((seq) => payments.apply(id, seq, { status: `s${seq}` })),
        );
        expect((await payments.get(id))?.value.status).toBe('s30');
        // The newest always applies; nothing older than what was stored ever does.
        expect(outcomes[events.indexOf(30)]!.applied).toBe(true);
      }
    },
  );

  it.runIf(enabled)('orders by created_at to the nanosecond', async () => {
    const payments = await order();
    const id = `pay_${run}_time`;
    await payments.apply(id, '2026-01-01T10:00:00.000000002Z', { status: 'later' });
    expect(
      (await payments.apply(id, '2026-01-01T10:00:00.000000001Z', { status: 'earlier' })).applied,
    ).toBe(false);
    // The same instant written with an offset: not newer.
    expect(
      (await payments.apply(id, '2026-01-01T11:00:00.000000002+01:00', { status: 'x' })).applied,
    ).toBe(false);
    expect(
      (await payments.apply(id, new Date('2026-01-01T10:00:01Z'), { status: 'newest' })).applied,
    ).toBe(true);
  });

  it.runIf(enabled)('compares created_at written in different offsets as instants', async () => {
    const payments = await order();
    const id = `pay_${run}_offsets`;
    // 10:00Z, then the same instant in India and California, then one nanosecond later.
    await payments.apply(id, '2026-01-01T10:00:00Z', { status: 'utc' });
    for (const same of [
      '2026-01-01T15:30:00+05:30',
      '2026-01-01T02:00:00-08:00',
      '2026-01-01t10:00:00z',
    ])
      expect((await payments.apply(id, same, { status: same })).applied, same).toBe(false);
    // Earlier by the clock on the wall, later as an instant.
    expect(
      (await payments.apply(id, '2026-01-01T09:00:00.000000001-01:00', { status: 'later' }))
        .applied,
    ).toBe(true);
    expect((await payments.get(id))?.value.status).toBe('later');
  });

  it.runIf(enabled)(
    'keeps a time before 1970 readable, and applies later events over it',
    async () => {
      const payments = await order();
      const id = `pay_${run}_1969`;
      expect((await payments.apply(id, '1969-12-31T23:59:59.5Z', { status: 'old' })).applied).toBe(
        true,
      );
      expect((await payments.get(id))?.position).toBe('-500000000');
      expect((await payments.apply(id, '1969-12-31T23:59:59Z', { status: 'older' })).applied).toBe(
        false,
      );
      expect((await payments.apply(id, new Date(0), { status: 'epoch' })).applied).toBe(true);
      expect((await payments.get(id))?.value.status).toBe('epoch');
    },
  );

  it.runIf(enabled)(
    'keeps resources whose keys hold separators and odd characters apart',
    async () => {
      const payments = await order();
      const base = `pay_${run}_keys`;
      const keys = [
        base,
        `${base}:x`,
        `${base}*`,
        `${base}\r\nDEL x`,
        `${base}{tag}`,
        `${base}'; --`,
        `${base}é`,
        `${base}${'k'.repeat(400)}`,
      ];
      await Promise.all(keys.map((k, i) => payments.apply(k, i + 1, { status: String(i) })));
      for (const [i, k] of keys.entries())
        expect((await payments.get(k))?.value.status).toBe(String(i));
    },
  );
});

describe('positions', () => {
  it('reads sequences and times, and compares them exactly', () => {
    expect(ordinalOf(7)).toEqual({ kind: 'seq', at: 7n });
    expect(ordinalOf('18446744073709551617')).toEqual({ kind: 'seq', at: 18446744073709551617n });
    expect(ordinalOf(2n ** 70n).at).toBe(2n ** 70n);
    expect(ordinalOf('1970-01-01T00:00:01.5Z')).toEqual({ kind: 'time', at: 1_500_000_000n });
    expect(ordinalOf(new Date(1))).toEqual({ kind: 'time', at: 1_000_000n });
  });

  it.each([
    -1,
    1.5,
    Number.NaN,
    '',
    '01',
    '-3',
    'yesterday',
    '2026-13-01T00:00:00Z',
    '2026-01-01',
    new Date('x'),
    // Days and times that do not exist, which Date.parse would roll over to another instant.
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:60:00Z',
    '2026-01-01T23:59:60Z',
    '2026-01-01T10:00:00+24:00',
    '2026-01-01T10:00:00+05:60',
    // Other spellings of a number.
    '+1',
    ' 1',
    '1.0',
    '1e3',
    '0x10',
  ])('refuses %j', (position) => {
    expect(() => ordinalOf(position as never)).toThrow(TypeError);
  });

  it('accepts the days that exist: 29 February in leap years, the last day of each month', () => {
    expect(ordinalOf('2024-02-29T00:00:00Z').kind).toBe('time');
    expect(ordinalOf('2000-02-29T00:00:00Z').kind).toBe('time');
    expect(() => ordinalOf('1900-02-29T00:00:00Z')).toThrow(TypeError);
    for (const day of ['01-31', '04-30', '06-30', '12-31'])
      expect(ordinalOf(`2026-${day}T23:59:59.999999999+23:59`).kind).toBe('time');
  });

  it('refuses a negative bigint', () => {
    expect(() => ordinalOf(-1n)).toThrow(TypeError);
  });

  it('refuses a resource ordered by sequence getting a time', async () => {
    const payments = new EventOrder({ store: new MemoryStore({ evict: false }) });
    await payments.apply('pay_1', 1, {});
    await expect(payments.apply('pay_1', new Date(), {})).rejects.toThrow(/ordered by sequence/);
  });

  it('needs a ledger store', () => {
    expect(() => new EventOrder({ store: new MemoryStore() })).toThrow(/never drops a live key/);
  });
});

describe.each([adapters[0]!, adapters[2]!])('reordered deliveries through $name', (adapter) => {
  it('applies only newer events, dedupes the redelivered one, whatever the arrival order', async () => {
    const secret = generateWebhookSecret();
    const signer = standardWebhooksSigner({ secrets: secret });
    const store = new MemoryStore({ evict: false });
    const payments = new EventOrder<Payment>({ store });
    const applied: string[] = [];
    const server = await listen(
      adapter.build({
        routes: [
          {
            method: 'post',
            path: '/webhooks/restwell',
            use: [
              webhookReceiver({
                verify: standardWebhooksVerifier({ secrets: secret }),
                dedupe: new WebhookEventLedger({ store, logger: silentLogger }),
              }),
            ],
            handler: async ({ context }) => {
              const event = webhookOf(context).payload as {
                type: string;
                sequence: number;
                data: { id: string; status: string };
              };
              const outcome = await payments.apply(event.data.id, event.sequence, {
                status: event.data.status,
              });
              if (outcome.applied) applied.push(event.type);
              return { status: 204 };
            },
          },
        ],
      }),
    );
    const send = (id: string, type: string, sequence: number, status: string) => {
      const body = JSON.stringify({ type, sequence, data: { id: 'pay_123', status } });
      return fetch(`http://127.0.0.1:${server.port}/webhooks/restwell`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signer.sign(body, { id }) },
        body,
      });
    };
    try {
      // The fast path delivers payment.success first; payment.created comes late, then again.
      expect((await send('msg_2', 'payment.success', 2, 'succeeded')).status).toBe(204);
      expect((await send('msg_1', 'payment.created', 1, 'pending')).status).toBe(204);
      expect((await send('msg_1', 'payment.created', 1, 'pending')).status).toBe(200);
      expect((await payments.get('pay_123'))?.value).toEqual({ status: 'succeeded' });
      expect(applied).toEqual(['payment.success']);
    } finally {
      await server.close();
    }
  });
});

describe('refetcher (the re-fetch pattern)', () => {
  it('coalesces a burst of nudges into two fetches, the last one starting after the last nudge', async () => {
    let version = 0;
    const fetches: number[] = [];
    const stored = new Map<string, number>();
    const payments = refetcher({
      fetch: async (id: string) => {
        const seen = version;
        fetches.push(seen);
        await sleep(30);
        return { id, version: seen };
      },
      apply: (id, resource) => {
        stored.set(id, resource.version);
      },
    });
    version = 1;
    const first = payments.nudge('pay_1');
    await sleep(5);
    const burst = Array.from({ length: 10 }, (_, i) => {
      version = 2 + i;
      return payments.nudge('pay_1');
    });
    await Promise.all([first, ...burst]);
    expect(fetches).toEqual([1, 11]);
    expect(stored.get('pay_1')).toBe(11);
    expect(payments.active).toBe(0);
  });

  it('fetches different resources independently, and rejects the nudges of a failed fetch', async () => {
    const payments = refetcher({
      fetch: async (id: string) => {
        if (id === 'bad') throw new Error('404');
        return id;
      },
      apply: () => {},
    });
    await expect(payments.nudge('bad')).rejects.toThrow('404');
    await expect(payments.nudge('good')).resolves.toBeUndefined();
    // A failed fetch leaves nothing behind: the next nudge fetches again.
    await expect(payments.nudge('bad')).rejects.toThrow('404');
    expect(payments.active).toBe(0);
  });
});
