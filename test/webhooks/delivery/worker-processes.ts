/**
 * Worker child processes for the tests that prove a claim across processes: each runs a fixture
 * script under tsx on the shared Redis, says `ready` on stdout once its worker runs, and may write
 * JSON lines (what its hooks were told) that the test collects. `stopWorkers()` kills whatever
 * is left, for an `afterEach`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { services } from '../../helpers/services.js';

const children: ChildProcess[] = [];

/** Starts `script` as worker `name`; resolves once it is ready. JSON lines go to `told`. */
export async function startWorker<T>(
  script: string,
  env: Record<string, string>,
  name: string,
  told: T[] = [],
): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env, REDIS_URL: services.redisUrl, WORKER_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => lines.push(line));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
      else if (line.startsWith('{')) told.push(JSON.parse(line) as T);
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${lines}`)));
  });
}

/** Kills every worker still running and waits for it to exit. */
export async function stopWorkers(): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
}
