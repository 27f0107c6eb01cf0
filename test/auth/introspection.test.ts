import { afterEach, describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { InvalidTokenError } from '../../src/auth/errors.js';
import { type IntrospectionOptions, introspectionVerifier } from '../../src/auth/introspection.js';
import { silentServer } from '../helpers/outage.js';
import { json, type LocalServer, localServer, seconds } from './helpers.js';

/** A fake authorization server: knows some tokens, records what it was sent. */
interface FakeAuthorizationServer extends LocalServer {
  tokens: Map<string, Record<string, unknown>>;
  seen: Array<{ authorization: string | undefined; contentType: string | undefined; body: string }>;
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});

async function authorizationServer(): Promise<FakeAuthorizationServer> {
  const tokens = new Map<string, Record<string, unknown>>();
  const seen: FakeAuthorizationServer['seen'] = [];
  const server = (await localServer((req, res, body) => {
    seen.push({
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body,
    });
    if (
      req.method !== 'POST' ||
      req.headers.authorization !==
        `Basic ${Buffer.from('payments-api:s3cr%3At').toString('base64')}`
    ) {
      json(res, 401, { error: 'invalid_client' });
      return;
    }
    const token = new URLSearchParams(body).get('token') ?? '';
    json(res, 200, tokens.get(token) ?? { active: false });
  })) as FakeAuthorizationServer;
  server.tokens = tokens;
  server.seen = seen;
  servers.push(server);
  return server;
}

const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);

function verifierFor(server: LocalServer, options: Partial<IntrospectionOptions> = {}) {
  const clock = { now: T0 };
  const verifier = introspectionVerifier({
    endpoint: `${server.url}/oauth2/introspect`,
    clientId: 'payments-api',
    clientSecret: 's3cr:t',
    logger: silentLogger,
    now: () => clock.now,
    ...options,
  });
  return { verifier, clock };
}

const active = (extra: Record<string, unknown> = {}) => ({
  active: true,
  sub: 'usr_ada',
  client_id: 'app_1',
  scope: 'payments:read payments:write',
  exp: seconds(T0) + 3600,
  iss: 'https://auth.example.com',
  aud: 'https://api.example.com',
  ...extra,
});

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('accepted'),
    (e: unknown) => e,
  );
}

describe('the introspection request (RFC 7662 §2.1)', () => {
  it('is a form POST with the token and its hint, authenticated with HTTP Basic (RFC 6749 §2.3.1)', async () => {
    const as = await authorizationServer();
    as.tokens.set('opaque-token-1', active());
    const { verifier } = verifierFor(as);
    const { principal, cached } = await verifier.verify('opaque-token-1');
    expect(principal).toMatchObject({
      id: 'usr_ada',
      type: 'user',
      scopes: ['payments:read', 'payments:write'],
      authentication: 'introspection',
      expiresAt: (seconds(T0) + 3600) * 1000,
    });
    expect(cached).toBe(false);
    expect(as.seen[0]).toEqual({
      // The secret's ':' is form-encoded before Basic, as RFC 6749 §2.3.1 requires.
      authorization: `Basic ${Buffer.from('payments-api:s3cr%3At').toString('base64')}`,
      contentType: 'application/x-www-form-urlencoded',
      body: 'token=opaque-token-1&token_type_hint=access_token',
    });
  });

  it('a token with characters a bearer token cannot hold is never sent', async () => {
    const as = await authorizationServer();
    const { verifier } = verifierFor(as);
    for (const token of ['a b', 'a&token=b', 'ü', '', 'x'.repeat(5000)]) {
      const err = await refusal(verifier.verify(token));
      expect((err as InvalidTokenError).reason).toBe('malformed');
    }
    expect(as.requests).toBe(0);
  });
});

describe('the answer (RFC 7662 §2.2)', () => {
  it('only active: true is active', async () => {
    const as = await authorizationServer();
    const answers: unknown[] = [
      { active: false },
      { active: 'true' },
      { active: 1 },
      {},
      { sub: 'x' },
    ];
    as.tokens.clear();
    const { verifier } = verifierFor(as, { cacheTtlMs: 0 });
    for (const [i, answer] of answers.entries()) {
      as.tokens.set(`t${i}`, answer as Record<string, unknown>);
      const err = await refusal(verifier.verify(`t${i}`));
      expect((err as InvalidTokenError).reason).toBe('inactive');
    }
  });

  it('active but expired, not yet valid, or for another issuer or audience is inactive', async () => {
    const as = await authorizationServer();
    as.tokens.set('expired', active({ exp: seconds(T0) - 60 }));
    as.tokens.set('early', active({ nbf: seconds(T0) + 60 }));
    as.tokens.set('issuer', active({ iss: 'https://evil.example' }));
    as.tokens.set('audience', active({ aud: ['https://other.example'] }));
    as.tokens.set('no-subject', active({ sub: undefined, client_id: undefined }));
    as.tokens.set('exp-string', active({ exp: 'tomorrow' }));
    const { verifier } = verifierFor(as, {
      issuer: 'https://auth.example.com',
      audience: 'https://api.example.com',
      clockToleranceMs: 0,
    });
    for (const token of ['expired', 'early', 'issuer', 'audience', 'no-subject', 'exp-string']) {
      const err = await refusal(verifier.verify(token));
      expect((err as InvalidTokenError).reason, token).toBe('inactive');
    }
  });

  it('a client-credentials token is a client', async () => {
    const as = await authorizationServer();
    as.tokens.set('cc', active({ sub: undefined, client_id: 'svc_batch', scope: 'reports:read' }));
    const { verifier } = verifierFor(as);
    const { principal } = await verifier.verify('cc');
    expect(principal).toMatchObject({ id: 'svc_batch', type: 'client', scopes: ['reports:read'] });
  });
});

describe('the cache', () => {
  it('answers repeated tokens without asking again, keyed by a hash of the token', async () => {
    const as = await authorizationServer();
    as.tokens.set('tok', active());
    const { verifier } = verifierFor(as);
    await verifier.verify('tok');
    const again = await verifier.verify('tok');
    expect(again.cached).toBe(true);
    expect(as.requests).toBe(1);
    expect(verifier.size).toBe(1);
  });

  it('never keeps an answer past the token’s exp, whatever cacheTtlMs says (RFC 7662 §4)', async () => {
    const as = await authorizationServer();
    as.tokens.set('short', active({ exp: seconds(T0) + 30 }));
    const { verifier, clock } = verifierFor(as, { cacheTtlMs: 600_000, clockToleranceMs: 0 });
    await verifier.verify('short');
    clock.now = T0 + 29_000;
    expect((await verifier.verify('short')).cached).toBe(true);
    clock.now = T0 + 31_000;
    // The server still says active (a lying or lagging server): the expiry wins.
    const err = await refusal(verifier.verify('short'));
    expect((err as InvalidTokenError).reason).toBe('inactive');
    expect(as.requests).toBe(2);
  });

  it('an active answer is asked again after cacheTtlMs: a revocation is seen', async () => {
    const as = await authorizationServer();
    as.tokens.set('rev', active());
    const { verifier, clock } = verifierFor(as, { cacheTtlMs: 60_000 });
    await verifier.verify('rev');
    as.tokens.set('rev', { active: false });
    clock.now += 59_000;
    await verifier.verify('rev');
    clock.now += 2000;
    expect(((await refusal(verifier.verify('rev'))) as InvalidTokenError).reason).toBe('inactive');
  });

  it('an inactive answer is cached for inactiveTtlMs', async () => {
    const as = await authorizationServer();
    const { verifier, clock } = verifierFor(as, { inactiveTtlMs: 10_000 });
    await refusal(verifier.verify('unknown'));
    await refusal(verifier.verify('unknown'));
    expect(as.requests).toBe(1);
    clock.now += 10_001;
    await refusal(verifier.verify('unknown'));
    expect(as.requests).toBe(2);
  });

  it('is bounded: the oldest answers go first', async () => {
    const as = await authorizationServer();
    for (let i = 0; i < 10; i++) as.tokens.set(`t${i}`, active());
    const { verifier } = verifierFor(as, { maxEntries: 3 });
    for (let i = 0; i < 10; i++) await verifier.verify(`t${i}`);
    expect(verifier.size).toBe(3);
    await verifier.verify('t9');
    expect(as.requests).toBe(10);
    await verifier.verify('t0');
    expect(as.requests).toBe(11);
  });

  it('concurrent verifications of one token share one request', async () => {
    const as = await authorizationServer();
    as.tokens.set('hot', active());
    const { verifier } = verifierFor(as);
    await Promise.all(Array.from({ length: 20 }, () => verifier.verify('hot')));
    expect(as.requests).toBe(1);
  });

  it('cacheTtlMs: 0 asks every time', async () => {
    const as = await authorizationServer();
    as.tokens.set('tok', active());
    const { verifier } = verifierFor(as, { cacheTtlMs: 0 });
    await verifier.verify('tok');
    await verifier.verify('tok');
    expect(as.requests).toBe(2);
  });
});

describe('a server that fails answers 503 and is never cached', () => {
  it('refusing our credentials, down, hanging, or answering garbage', async () => {
    const as = await authorizationServer();
    as.tokens.set('tok', active());
    const wrong = introspectionVerifier({
      endpoint: as.url,
      clientId: 'payments-api',
      clientSecret: 'wrong',
      logger: silentLogger,
    });
    expect(await refusal(wrong.verify('tok'))).toBeInstanceOf(ServiceUnavailableError);
    expect(wrong.size).toBe(0);

    const down = introspectionVerifier({
      endpoint: 'http://127.0.0.1:1/introspect',
      logger: silentLogger,
    });
    expect(await refusal(down.verify('tok'))).toBeInstanceOf(ServiceUnavailableError);

    const silent = await silentServer();
    servers.push(silent);
    const hanging = introspectionVerifier({
      endpoint: `http://127.0.0.1:${silent.port}/introspect`,
      timeoutMs: 300,
      logger: silentLogger,
    });
    const started = Date.now();
    expect(await refusal(hanging.verify('tok'))).toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);

    const garbage = await localServer((_req, res) => res.end('<html>'));
    servers.push(garbage);
    const g = introspectionVerifier({ endpoint: garbage.url, logger: silentLogger });
    expect(await refusal(g.verify('tok'))).toBeInstanceOf(ServiceUnavailableError);
    expect(g.size).toBe(0);
  });

  it('the log line names the endpoint without its query, and never the token', async () => {
    const lines: string[] = [];
    const logger = {
      error() {},
      info() {},
      warn: (m: string, f?: Record<string, unknown>) =>
        lines.push(JSON.stringify({ m, ...f, err: String(f?.err) })),
    };
    const down = introspectionVerifier({
      endpoint: 'http://127.0.0.1:1/introspect?tenant=secret-tenant-key',
      logger,
    });
    await refusal(down.verify('the-token-itself'));
    expect(lines.join('\n')).toContain('http://127.0.0.1:1/introspect');
    expect(lines.join('\n')).not.toContain('secret-tenant-key');
    expect(lines.join('\n')).not.toContain('the-token-itself');
  });
});

describe('configuration', () => {
  it('is checked, and a secret is never printed', () => {
    expect(() => introspectionVerifier({ endpoint: 'http://auth.example.com/i' })).toThrow(/https/);
    expect(() =>
      introspectionVerifier({ endpoint: 'https://auth.example.com/i', clientId: 'a' }),
    ).toThrow(/both/);
    expect(() =>
      introspectionVerifier({ endpoint: 'https://auth.example.com/i', cacheTTL: 1 } as never),
    ).toThrow(/cacheTtlMs/);
    try {
      introspectionVerifier({
        endpoint: 'https://auth.example.com/i',
        clientId: 'a',
        clientSecret: 42 as never,
      });
    } catch (err) {
      expect(String(err)).toMatch(/clientSecret/);
      expect(String(err)).not.toContain('42');
    }
  });
});
