/**
 * Finds out, once per run, whether Redis and PostgreSQL answer. Suites that
 * need a server call `describe.runIf(services.redis)` via test/helpers/services.ts.
 *
 * Without CI=true a missing server skips its suites, and this says so loudly at
 * the start and at the end of the run. With CI=true a missing server fails the run.
 */
import net from 'node:net';
import type { TestProject } from 'vitest/node';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({
      host: hostname || '127.0.0.1',
      port: Number(port) || defaultPort,
    });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: { redis: boolean; postgres: boolean; redisUrl: string; databaseUrl: string };
  }
}

function banner(lines: string[]): string {
  const bar = '!'.repeat(78);
  return `\n${bar}\n${lines.map((l) => `!!  ${l}`).join('\n')}\n${bar}\n`;
}

export default async function setup(project: TestProject) {
  const [redis, postgres] = await Promise.all([
    reachable(REDIS_URL, 6379),
    reachable(DATABASE_URL, 5432),
  ]);
  const missing = [
    ...(redis ? [] : [`Redis at ${REDIS_URL}`]),
    ...(postgres ? [] : [`PostgreSQL at ${DATABASE_URL}`]),
  ];
  if (missing.length > 0 && process.env.CI === 'true') {
    throw new Error(
      `CI=true and a test server is missing: ${missing.join(', ')}. Start it (see .ci/run).`,
    );
  }
  const warning =
    missing.length > 0
      ? banner([
          `SKIPPING every suite that needs: ${missing.join(', ')}.`,
          'Those suites (store contract, idempotency, rate limiting on real servers,',
          'multi-process tests) did NOT run. Start the servers or run `bash .ci/run`.',
        ])
      : '';
  if (warning) process.stderr.write(warning);
  project.provide('services', { redis, postgres, redisUrl: REDIS_URL, databaseUrl: DATABASE_URL });
  return () => {
    if (warning) process.stderr.write(warning);
  };
}
