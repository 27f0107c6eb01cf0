/**
 * The lease of an in-flight claim, in real time: a handler that runs for
 * several leases keeps its key (the claim is renewed), a holder that stops
 * renewing (its process died) blocks retries until its lease ends and not
 * longer, and a holder that comes back after losing its lease cannot
 * overwrite the work of the request that took over (fencing).
 *
 * Timings are generous multiples of the lease and nothing asserts a duration:
 * the tests count executions and check statuses. A holder "dies" by losing its
 * store: every call it makes after that fails, as a killed process's would
 * never arrive, while a second app on the same store serves the retries.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { idempotency } from '../../src/idempotency/index.js';
import type { Store } from '../../src/stores/types.js';
import { adapters } from '../helpers/apps.js';
import { ledgerStores } from '../helpers/ledgers.js';

// Long enough that a renewal (every third of it) survives a busy machine; short enough to wait for.
const LEASE_MS = 400;
const run = Math.random().toString(36).slice(2, 8);
let keyN = 0;
const newKey = () => `lease-${run}-${++keyN}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const ledgers = ledgerStores('idem_lease');
const storeCases = ledgers.cases;
afterAll(() => ledgers.cleanup());

/** A store that works until `die()`; after that every call fails, as a dead process's never lands. */
function mortal(store: Store): { store: Store; die(): void; revive(): void } {
  let dead = false;
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (dead) return Promise.reject(new Error('this process is dead'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    store: wrapped,
    die: () => {
      dead = true;
    },
    revive: () => {
      dead = false;
    },
  };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const silent = (): Logger & { warnings: string[] } => {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m), error: (m) => warnings.push(m), info() {} };
};

interface Running {
  url: string;
  executions: { count: number };
  logger: ReturnType<typeof silent>;
  close(): Promise<void>;
}

/** One app on `store`: `POST /v1/payments` behind idempotency; its first execution waits for `gate` if set. */
async function start(
  build: (spec: Parameters<(typeof adapters)[number]['build']>[0]) => RequestListener,
  store: Store,
  label: string,
  hold: { gate?: Promise<void> } = {},
): Promise<Running> {
  const executions = { count: 0 };
  const logger = silent();
  const listener = build({
    options: { logger },
    use: [jsonBody()],
    before: (state) => {
      state.principal = { id: `user-${run}` };
    },
    routes: [
      {
        method: 'post',
        path: '/v1/payments',
        use: [idempotency({ store, required: true, leaseMs: LEASE_MS })],
        handler: async (req) => {
          // Only the first execution waits, so that a retry wrongly let through answers at once.
          if (++executions.count === 1 && hold.gate) await hold.gate;
          return {
            status: 201,
            body: {
              by: label,
              n: executions.count,
              amount: (req.body as { amount: number }).amount,
            },
          };
        },
      },
    ],
  });
  const server: Server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/payments`,
    executions,
    logger,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function post(
  url: string,
  key: string,
): Promise<{ status: number; replayed: boolean; body: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({ amount: 4200 }),
  });
  return {
    status: res.status,
    replayed: res.headers.get('idempotent-replayed') === 'true',
    body: await res.text(),
  };
}

/** Retries one after another for `ms`, pausing `every` ms in between; returns every status seen. */
async function retryFor(url: string, key: string, ms: number, every = 60): Promise<number[]> {
  const statuses: number[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    statuses.push((await post(url, key)).status);
    await sleep(every);
  }
  return statuses;
}

/** Polls until a retry is no longer answered 409 (bounded); returns the 409s seen and the first other answer. */
async function retryUntilFree(url: string, key: string) {
  const blocked: number[] = [];
  for (let i = 0; i < 200; i++) {
    const answer = await post(url, key);
    if (answer.status !== 409) return { blocked: blocked.length, answer };
    blocked.push(answer.status);
    await sleep(25);
  }
  throw new Error('the key never became free');
}

const matrix = storeCases.flatMap((s) =>
  adapters
    .filter((a) => a.name === 'express5' || a.name === 'koa3')
    .map((a) => ({ store: s, adapter: a })),
);

describe.each(matrix)(
  'the lease on $store.name through $adapter.name',
  ({ store: storeCase, adapter }) => {
    let store: Store;
    const open: Running[] = [];
    beforeAll(async () => {
      if (storeCase.enabled) store = await storeCase.setup();
    });
    afterAll(async () => {
      await Promise.all(open.map((r) => r.close()));
    });
    const build = adapter.build.bind(adapter);

    describe.runIf(storeCase.enabled)('', () => {
      it('keeps a handler that runs for several leases exclusive: every concurrent retry gets 409', async () => {
        const gate = deferred();
        const app = await start(build, store, 'holder', { gate: gate.promise });
        open.push(app);
        const key = newKey();
        const first = post(app.url, key);
        while (app.executions.count === 0) await sleep(5);
        // Four leases: without renewal the claim would have expired three times over.
        const during = await retryFor(app.url, key, LEASE_MS * 4);
        gate.resolve();
        const answer = await first;
        expect(during.length).toBeGreaterThanOrEqual(5);
        expect(during.filter((s) => s !== 409)).toEqual([]);
        expect(answer.status).toBe(201);
        expect(app.executions.count).toBe(1);
        expect(app.logger.warnings).toEqual([]);
        // The slow response was recorded (its claim was still its own) and is replayed.
        const again = await post(app.url, key);
        expect(again.status).toBe(201);
        expect(again.replayed).toBe(true);
        expect(again.body).toBe(answer.body);
        expect(app.executions.count).toBe(1);
      });

      it("blocks retries while a dead holder's lease runs, then lets exactly one retry run", async () => {
        const holderStore = mortal(store);
        const gate = deferred();
        const holder = await start(build, holderStore.store, 'holder', { gate: gate.promise });
        const survivor = await start(build, store, 'survivor');
        open.push(holder, survivor);
        const key = newKey();
        const hanging = post(holder.url, key);
        while (holder.executions.count === 0) await sleep(5);
        // Alive for two leases: retries on the other app are refused all along.
        const whileAlive = await retryFor(survivor.url, key, LEASE_MS * 2);
        holderStore.die();
        // Dead now: its claim is not renewed and not released; it still blocks until its lease ends.
        const { blocked, answer } = await retryUntilFree(survivor.url, key);
        expect(whileAlive.filter((s) => s !== 409)).toEqual([]);
        expect(blocked).toBeGreaterThanOrEqual(1);
        expect(answer.status).toBe(201);
        expect(answer.replayed).toBe(false);
        expect(JSON.parse(answer.body).by).toBe('survivor');
        expect(survivor.executions.count).toBe(1);
        gate.resolve();
        await hanging;
      });

      it('fences a holder that comes back after its lease: the request that took over keeps its record', async () => {
        const holderStore = mortal(store);
        const gate = deferred();
        const holder = await start(build, holderStore.store, 'holder', { gate: gate.promise });
        const survivor = await start(build, store, 'survivor');
        open.push(holder, survivor);
        const key = newKey();
        const late = post(holder.url, key);
        while (holder.executions.count === 0) await sleep(5);
        const whileAlive = await retryFor(survivor.url, key, LEASE_MS * 2);
        holderStore.die();
        // The window between the holder's last renewal and the end of its lease: every retry waits.
        const { blocked, answer } = await retryUntilFree(survivor.url, key);
        expect(whileAlive.filter((s) => s !== 409)).toEqual([]);
        expect(blocked).toBeGreaterThanOrEqual(1);
        expect(answer.status).toBe(201);
        // Concurrent retries after that replay the survivor's answer.
        const burst = await Promise.all(Array.from({ length: 8 }, () => post(survivor.url, key)));
        expect(burst.every((r) => r.status === 201 && r.replayed)).toBe(true);
        expect(survivor.executions.count).toBe(1);
        // The old holder was only paused (its store comes back) and finishes: its claim is gone, so its
        // answer must not replace the one recorded.
        holderStore.revive();
        gate.resolve();
        const zombie = await late;
        expect(zombie.status).toBe(201);
        expect(JSON.parse(zombie.body).by).toBe('holder');
        expect(holder.logger.warnings.some((w) => /lease/i.test(w))).toBe(true);
        const replay = await post(survivor.url, key);
        expect(replay.replayed).toBe(true);
        expect(replay.body).toBe(answer.body);
        expect(JSON.parse(replay.body).by).toBe('survivor');
      });
    });
  },
);
