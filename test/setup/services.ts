/**
 * Finds out, once per run, which real servers the tests can use: Redis
 * (REDIS_URL, default redis://127.0.0.1:6379), PostgreSQL (DATABASE_URL,
 * default postgres://postgres@127.0.0.1:5432/test) and the redis-server and
 * redis-cli binaries the Redis Cluster suite starts its own cluster from.
 * Suites that need a server call `describe.runIf(services.redis)` via
 * test/helpers/services.ts.
 *
 * Outside CI a missing server skips its suites, and the run says so loudly at
 * the start and at the end; when every server answers, the end of the run says
 * that their suites ran. Under CI (CI set to anything but empty, `0` or
 * `false`: GitHub Actions and GitLab say `true`, others `1`) a missing server
 * fails the run before any test starts.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import type { TestProject } from 'vitest/node';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether this run is under CI, where a missing server is a failure: `CI` set
 * to any non-empty value (`true`, `1`, even `false`: a CI system that sets the
 * variable at all is a CI system).
 */
export function ciRequiresServers(env: NodeJS.ProcessEnv): boolean {
  return env.CI !== undefined && env.CI !== '';
}

/** What the setup found. */
export interface ServiceProbe {
  redis: boolean;
  postgres: boolean;
  /** redis-server and redis-cli are on PATH, so the Redis Cluster suite can start its cluster. */
  cluster: boolean;
  redisUrl: string;
  databaseUrl: string;
}

/** What the setup does about it: fail the run, or print these lines at the start and the end. */
export interface ServiceReport {
  /** Set under CI when something is missing: the run fails with this message. */
  failure?: string;
  /** Written to stderr before the tests run (empty when nothing is missing). */
  atStart: string;
  /** Written at the end of the run: the same warning, or the line saying the suites ran. */
  atEnd: string;
}

/** Credentials in a server URL never reach the output. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an unparsable URL)';
  }
}

function banner(lines: string[]): string {
  const bar = '!'.repeat(78);
  return `\n${bar}\n${lines.map((l) => `!!  ${l}`).join('\n')}\n${bar}\n`;
}

/** Decides, from what was probed and the environment, what the run does. Pure, for its tests. */
export function reportServices(probe: ServiceProbe, env: NodeJS.ProcessEnv): ServiceReport {
  const redis = `Redis at ${redact(probe.redisUrl)}`;
  const postgres = `PostgreSQL at ${redact(probe.databaseUrl)}`;
  const cluster = 'Redis Cluster (redis-server and redis-cli on PATH)';
  const names = [
    [probe.redis, redis],
    [probe.postgres, postgres],
    [probe.cluster, cluster],
  ] as const;
  const missing = names.filter(([ok]) => !ok).map(([, name]) => name);
  const present = names.filter(([ok]) => ok).map(([, name]) => name);
  const listed =
    present.length > 1 ? `${present.slice(0, -1).join(', ')} and ${present.at(-1)}` : present[0];
  const ran =
    listed === undefined
      ? ''
      : `restwell tests: ${listed} answered: the suites that need ${present.length > 1 ? 'them' : 'it'} ran.\n`;
  if (missing.length === 0) return { atStart: '', atEnd: ran };
  if (ciRequiresServers(env)) {
    return {
      failure:
        `CI=${env.CI} and a test server is missing: ${missing.join(', ')}. ` +
        'Start it (see .ci/run), or point REDIS_URL / DATABASE_URL at one.',
      atStart: '',
      atEnd: '',
    };
  }
  const warning = banner([
    `SKIPPING every suite that needs: ${missing.join(', ')}.`,
    'Those suites (store contract, idempotency, rate limiting on real servers,',
    'multi-process tests, Redis Cluster) did NOT run. Start the servers, point',
    'REDIS_URL / DATABASE_URL at others, or run `bash .ci/run`.',
  ]);
  return { atStart: warning, atEnd: `${warning}${ran}` };
}

function reachable(url: string, defaultPort: number): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    port = Number(u.port) || defaultPort;
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function onPath(binary: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, binary)));
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceProbe;
  }
}

export default async function setup(project: TestProject) {
  const [redis, postgres] = await Promise.all([
    reachable(REDIS_URL, 6379),
    reachable(DATABASE_URL, 5432),
  ]);
  const probe: ServiceProbe = {
    redis,
    postgres,
    cluster: onPath('redis-server', process.env) && onPath('redis-cli', process.env),
    redisUrl: REDIS_URL,
    databaseUrl: DATABASE_URL,
  };
  const report = reportServices(probe, process.env);
  if (report.failure) throw new Error(report.failure);
  if (report.atStart) process.stderr.write(report.atStart);
  project.provide('services', probe);
  return () => {
    if (report.atEnd) process.stderr.write(report.atEnd);
  };
}
