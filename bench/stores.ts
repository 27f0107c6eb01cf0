/**
 * MemoryStore write cost once full, at 10 000, 100 000 and 1 000 000 entries,
 * as a cache (`evict: true`) and as a ledger (`evict: false`), in process.
 * `npm run bench -- stores` (`BENCH_STORE_SIZES=10000,100000` and
 * `BENCH_STORE_WRITES` tune it).
 *
 * The clock is injected and moves 1 ms per write, so a run is reproducible
 * and expiry happens during the measurement. TTLs are mixed, so the oldest
 * write is not the earliest to expire:
 *
 * - cache: a quarter of the keys live n/4 ms, a quarter n/2 ms, the rest 2n or
 *   8n ms. The store stays full: most new keys evict the least recently
 *   written one, the short-lived ones are swept as they expire.
 * - ledger: TTLs of n/4, n/2, 3n/2 and 2n ms (mean 1.06 n), so a little more
 *   is written than fits: most new keys reclaim an expired one, and the rest
 *   are refused with StoreFullError (counted, and timed like the others).
 *
 * Two workloads: new keys (each write needs room), and rewrites of live keys
 * (rate-limit counters: no room needed, only a new deadline).
 */
import { StoreFullError } from 'restwell/errors';
import { MemoryStore } from 'restwell/memory';
import { median, table } from './harness.js';

const sizes = (process.env.BENCH_STORE_SIZES ?? '10000,100000,1000000')
  .split(',')
  .map((s) => Number(s.trim()));
const writes = Number(process.env.BENCH_STORE_WRITES ?? 200_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

/** A small deterministic PRNG (mulberry32), so every run writes the same TTLs. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Result {
  newKeys: number;
  rewrites: number;
  refused: number;
}

/** CPU microseconds per call of `step`, over `count` calls. */
async function cpuMicros(count: number, step: (i: number) => Promise<unknown> | unknown) {
  // CPU time rather than wall time: on a shared machine, other processes' load inflates the latter.
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) await step(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

async function run(n: number, evict: boolean, seed: number): Promise<Result> {
  let now = 0;
  const store = new MemoryStore({ maxEntries: n, evict, now: () => now });
  const next = random(seed);
  const spans = evict ? [n / 4, n / 2, 2 * n, 8 * n] : [n / 4, n / 2, 1.5 * n, 2 * n];
  const ttl = () => Math.max(1, Math.round(spans[Math.floor(next() * spans.length)]!));
  let id = 0;
  let refused = 0;
  const write = async (key: string): Promise<void> => {
    now++;
    try {
      await store.set(key, 'v', ttl());
    } catch (err) {
      if (!(err instanceof StoreFullError)) throw err;
      refused++;
    }
  };
  // Fill it, and run long enough past full for expiry and eviction to reach a steady state.
  for (let i = 0; i < 3 * n; i++) await write(`k${id++}`);
  refused = 0;
  const newKeys = await cpuMicros(writes, () => write(`k${id++}`));
  const refusedShare = refused / writes;
  // Keys to rewrite: the most recent ones, live whatever their TTL.
  const recent = Array.from({ length: 1000 }, (_, i) => `k${id - 1 - i}`);
  const rewrites = await cpuMicros(writes, (i) => write(recent[i % recent.length]!));
  await store.close();
  return { newKeys, rewrites, refused: refusedShare };
}

/**
 * What the memory hierarchy alone costs at `n` entries: a bare Map that sets a
 * new key and deletes the oldest one (known by its number, not found by
 * iterating) on every write.
 */
async function bareMap(n: number): Promise<number> {
  const map = new Map<string, { value: string }>();
  let id = 0;
  for (; id < n; id++) map.set(`k${id}`, { value: 'v' });
  const micros = await cpuMicros(writes, () => {
    map.set(`k${id}`, { value: 'v' });
    map.delete(`k${id++ - n}`);
  });
  map.clear();
  return micros;
}

const rows: Array<Array<string | number>> = [];
for (const n of sizes) {
  const baseline: number[] = [];
  for (let r = 0; r < rounds; r++) baseline.push(await bareMap(n));
  for (const evict of [true, false]) {
    const samples: Result[] = [];
    for (let r = 0; r < rounds; r++) samples.push(await run(n, evict, r + 1));
    rows.push([
      evict ? 'cache (evict: true)' : 'ledger (evict: false)',
      n,
      median(samples.map((s) => s.newKeys)),
      median(samples.map((s) => s.rewrites)),
      evict ? '-' : `${(median(samples.map((s) => s.refused)) * 100).toFixed(1)}%`,
      median(baseline),
    ]);
  }
}

console.log(
  `\n### MemoryStore write cost once full (medians of ${rounds} rounds of ${writes} writes, mixed TTLs, in process)\n`,
);
console.log(
  table(
    [
      'mode',
      'maxEntries',
      'CPU µs/write, new keys',
      'CPU µs/write, rewrites',
      'new keys refused (full)',
      'bare Map set + delete, CPU µs',
    ],
    rows,
  ),
);
console.log(
  '\nCPU time of the process (user + system, garbage collection included) per write, including the await of its promise. A refused write (the ledger had no expired key to reclaim) is timed like the others.',
);
