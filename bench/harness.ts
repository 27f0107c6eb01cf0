/**
 * Shared benchmark plumbing: start a server case in its own process (so the
 * load generator does not steal its CPU), drive it with autocannon over
 * loopback for a bounded time, and stop it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const BENCH_TSCONFIG = fileURLToPath(new URL('./tsconfig.json', import.meta.url));

export interface LoadResult {
  requestsPerSec: number;
  p99Ms: number;
  non2xx: number;
  /** Server CPU time (user + system) per request, in microseconds, when the server reports it. */
  cpuMicrosPerRequest?: number;
}

export interface ServerHandle {
  port: number;
  stop(): Promise<void>;
}

/** Starts `node --import tsx <script> ...args` and waits for it to print `{"port": n}`. */
export async function startServer(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ServerHandle> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // bench/tsconfig.json has no source paths: `restwell` resolves to the built package.
    env: { TSX_TSCONFIG_PATH: BENCH_TSCONFIG, ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} ${args.join(' ')} did not start`)),
      20_000,
    );
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Seconds of load. */
  duration?: number;
  connections?: number;
  /**
   * Fixed request rate for the whole run. At a rate every case sustains, CPU
   * per request compares the work each case does, not how well it batches
   * under saturation. @default unlimited (as fast as the server answers)
   */
  overallRate?: number;
  /** Per-request override (e.g. unique idempotency keys). */
  setupRequest?: (req: { headers?: Record<string, string>; body?: string }) => {
    headers?: Record<string, string>;
    body?: string;
  };
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    body: options.body,
    headers: { 'content-type': 'application/json', ...options.headers },
    duration: options.duration ?? 5,
    connections: options.connections ?? 16,
    pipelining: 1,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
    ...(options.setupRequest
      ? { requests: [{ setupRequest: options.setupRequest as never }] }
      : {}),
  });
  return {
    requestsPerSec: result.requests.average,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    requests: result.requests.total,
  } as LoadResult & { requests: number };
}

async function serverCpu(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(new URL('/__cpu', url));
    const { user, system } = (await res.json()) as { user: number; system: number };
    return user + system;
  } catch {
    return undefined;
  }
}

/** Warm up, then measure. */
export async function measure(options: LoadOptions): Promise<LoadResult> {
  await load({ ...options, duration: 1 });
  const before = await serverCpu(options.url);
  const result = (await load(options)) as LoadResult & { requests: number };
  const after = await serverCpu(options.url);
  if (before !== undefined && after !== undefined && result.requests > 0) {
    result.cpuMicrosPerRequest = (after - before) / result.requests;
  }
  return result;
}

export function table(header: string[], rows: Array<Array<string | number>>): string {
  const fmt = (v: string | number) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v;
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`),
  ].join('\n');
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
