/**
 * Exactly once across processes: two receiver processes share one ledger
 * (Redis, then PostgreSQL); 50 deliveries of one event are fired at both at
 * once, and exactly one process processes it, once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/stores/postgres/index.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner } from '../../src/webhooks/standard.js';
import { services } from '../helpers/services.js';

const script = join(import.meta.dirname, 'fixtures', 'receiver-server.ts');
const SECRET = generateWebhookSecret();
const signer = standardWebhooksSigner({ secrets: SECRET });
const run = Math.random().toString(36).slice(2, 8);

interface Receiver {
  child: ChildProcess;
  port: number;
  processed: string[];
}

async function startReceiver(env: Record<string, string>): Promise<Receiver> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: {
      ...process.env,
      REDIS_URL: services.redisUrl,
      DATABASE_URL: services.databaseUrl,
      WEBHOOK_SECRET: SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const processed: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
  lines.on('line', (line) => {
    if (line.startsWith('processed ')) processed.push(line.slice('processed '.length));
  });
  return { child, port, processed };
}

async function stop(receivers: Receiver[]): Promise<void> {
  await Promise.all(
    receivers.map(async ({ child }) => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    }),
  );
}

async function fireAtBoth(a: Receiver, b: Receiver, id: string): Promise<number[]> {
  const body = '{"type":"payment.succeeded","data":{"id":"pay_1"}}';
  return Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      fetch(`http://127.0.0.1:${(i % 2 === 0 ? a : b).port}/webhooks/restwell`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signer.sign(body, { id }) },
        body,
      }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      }),
    ),
  );
}

describe.runIf(services.redis)('dedupe across two processes sharing Redis', () => {
  const prefix = `webhooks-proc-${run}:`;
  const receivers: Receiver[] = [];
  afterAll(async () => {
    await stop(receivers);
    const redis = new Redis(services.redisUrl);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('processes one of 50 concurrent deliveries split between the processes', async () => {
    const [a, b] = await Promise.all([
      startReceiver({ PREFIX: prefix }),
      startReceiver({ PREFIX: prefix }),
    ]);
    receivers.push(a, b);
    const statuses = await fireAtBoth(a, b, `msg_${run}_redis`);
    // The one that processed answers 204; every duplicate 200.
    expect(statuses.filter((s) => s === 204)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect([...a.processed, ...b.processed]).toEqual([`msg_${run}_redis`]);
  });
});

describe.runIf(services.postgres)('dedupe across two processes sharing PostgreSQL', () => {
  const table = `restwell_webhooks_proc_${run}`;
  const pool = new pg.Pool({ connectionString: services.databaseUrl, max: 2 });
  const receivers: Receiver[] = [];
  afterAll(async () => {
    await stop(receivers);
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('processes one of 50 concurrent deliveries split between the processes', async () => {
    await migrate(pool, { table });
    const env = { STORE: 'postgres', TABLE: table };
    const [a, b] = await Promise.all([startReceiver(env), startReceiver(env)]);
    receivers.push(a, b);
    const statuses = await fireAtBoth(a, b, `msg_${run}_pg`);
    expect(statuses.filter((s) => s === 204)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect([...a.processed, ...b.processed]).toEqual([`msg_${run}_pg`]);
  });
});
