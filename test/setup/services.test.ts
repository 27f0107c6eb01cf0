/**
 * The run's decision about real servers (test/setup/services.ts): under CI a
 * missing server fails the run, whatever value CI has; outside CI it is
 * skipped loudly; and when the servers answer, the run says their suites ran.
 */
import { describe, expect, it } from 'vitest';
import { ciRequiresServers, redact, reportServices, type ServiceProbe } from './services.js';

const all: ServiceProbe = {
  redis: true,
  postgres: true,
  cluster: true,
  redisUrl: 'redis://127.0.0.1:6379',
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/test',
};

describe('CI', () => {
  it.each(['true', '1', 'yes', 'TRUE', 'woodpecker', '0', 'false', ' '])(
    'CI=%j requires the servers',
    (value) => {
      expect(ciRequiresServers({ CI: value })).toBe(true);
    },
  );

  it.each([undefined, ''])('CI=%j does not', (value) => {
    expect(ciRequiresServers(value === undefined ? {} : { CI: value })).toBe(false);
  });
});

describe('the report', () => {
  it('says, at the end, which servers ran their suites', () => {
    const report = reportServices(all, {});
    expect(report.failure).toBeUndefined();
    expect(report.atStart).toBe('');
    expect(report.atEnd).toBe(
      'restwell tests: Redis at redis://127.0.0.1:6379, PostgreSQL at postgres://postgres@127.0.0.1:5432/test and Redis Cluster (redis-server and redis-cli on PATH) answered: the suites that need them ran.\n',
    );
  });

  it('fails the run under CI=1 when PostgreSQL is missing', () => {
    const report = reportServices({ ...all, postgres: false }, { CI: '1' });
    expect(report.failure).toMatch(
      /^CI=1 and a test server is missing: PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:5432\/test\./,
    );
  });

  it('fails the run under CI when the Redis Cluster suite could not start its cluster', () => {
    expect(reportServices({ ...all, cluster: false }, { CI: 'true' }).failure).toMatch(
      /Redis Cluster/,
    );
  });

  it('outside CI, skips loudly at the start and the end, and still names what ran', () => {
    const report = reportServices({ ...all, redis: false, cluster: false }, {});
    expect(report.failure).toBeUndefined();
    expect(report.atStart).toMatch(
      /SKIPPING every suite that needs: Redis at redis:\/\/127\.0\.0\.1:6379, Redis Cluster/,
    );
    expect(report.atStart).toMatch(/REDIS_URL \/ DATABASE_URL/);
    expect(report.atEnd.startsWith(report.atStart)).toBe(true);
    expect(report.atEnd).toMatch(
      /restwell tests: PostgreSQL at \S+ answered: the suites that need it ran\.\n$/,
    );
  });

  it('never prints a password from a server URL', () => {
    const report = reportServices(
      { ...all, postgres: false, databaseUrl: 'postgres://app:s3cret@db.internal:5432/test' },
      { CI: '1' },
    );
    expect(report.failure).not.toContain('s3cret');
    expect(redact('redis://:hunter2@cache:6380/0')).toBe('redis://:***@cache:6380/0');
    expect(redact('not a url')).toBe('(an unparsable URL)');
  });
});
