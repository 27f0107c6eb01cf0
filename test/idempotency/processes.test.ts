/**
 * Exactly-once across processes: two servers share Redis; requests with one
 * key are fired at both at once. And a killed process's claim expires after
 * its lease, after which a retry runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { services } from '../helpers/services.js';

const script = join(import.meta.dirname, '..', 'fixtures', 'idempotency', 'server.ts');

async function startServer(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, REDIS_URL: services.redisUrl, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

function post(port: number, key: string, headers: Record<string, string> = {}) {
  return fetch(`http://127.0.0.1:${port}/v1/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers },
    body: JSON.stringify({ amount: 4200 }),
  });
}

describe.runIf(services.redis)('idempotency across two processes sharing Redis', () => {
  const prefix = `idem-proc-${Math.random().toString(36).slice(2, 8)}:`;
  const redis = new Redis(services.redisUrl);
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('runs the handler exactly once for 50 parallel requests split between the processes', async () => {
    const [a, b] = await Promise.all([
      startServer({ PREFIX: prefix }),
      startServer({ PREFIX: prefix }),
    ]);
    children.push(a.child, b.child);
    const key = 'cross-process-1';
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        post(i % 2 === 0 ? a.port : b.port, key).then(async (r) => ({
          status: r.status,
          body: await r.text(),
        })),
      ),
    );
    expect(Number(await redis.get(`${prefix}executions`))).toBe(1);
    expect(answers.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    const created = answers.filter((r) => r.status === 201);
    expect(new Set(created.map((r) => r.body)).size).toBeLessThanOrEqual(1);
    // Afterwards, both processes replay the same answer.
    const [fromA, fromB] = await Promise.all([post(a.port, key), post(b.port, key)]);
    expect(fromA.status).toBe(201);
    expect(fromA.headers.get('idempotent-replayed')).toBe('true');
    expect(await fromB.text()).toBe(await fromA.text());
    expect(Number(await redis.get(`${prefix}executions`))).toBe(1);
  });

  it("lets a retry run once a killed process's lease has expired, and not before", async () => {
    const leasePrefix = `${prefix}lease:`;
    const doomed = await startServer({ PREFIX: leasePrefix, LEASE_MS: '600' });
    const survivor = await startServer({ PREFIX: leasePrefix, LEASE_MS: '600' });
    children.push(doomed.child, survivor.child);
    const key = 'crash-1';
    const hanging = post(doomed.port, key, { 'x-hang': '1' }).catch(() => undefined);
    // Wait until the doomed process has claimed the key and started executing.
    for (let i = 0; i < 200 && Number(await redis.get(`${leasePrefix}executions`)) < 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const during = await post(survivor.port, key);
    expect(during.status).toBe(409);
    doomed.child.kill('SIGKILL');
    await once(doomed.child, 'exit');
    await hanging;
    // The claim is no longer renewed; it expires after the lease.
    await new Promise((r) => setTimeout(r, 900));
    const retry = await post(survivor.port, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(Number(await redis.get(`${leasePrefix}executions`))).toBe(2);
  });
});
