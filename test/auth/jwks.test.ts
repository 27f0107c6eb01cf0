import type { ServerResponse } from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { InvalidTokenError } from '../../src/auth/errors.js';
import { type RemoteJwksOptions, remoteJwks } from '../../src/auth/jwks.js';
import { jwtVerifier } from '../../src/auth/jwt.js';
import { silentServer } from '../helpers/outage.js';
import {
  AUDIENCE,
  ISSUER,
  json,
  type KeyPair,
  keyPair,
  type LocalServer,
  localServer,
  recordingLogger,
  sign,
} from './helpers.js';

let k1: KeyPair;
let k2: KeyPair;
let ec: KeyPair;
const servers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  [k1, k2, ec] = await Promise.all([
    keyPair('RS256', 'k1'),
    keyPair('RS256', 'k2'),
    keyPair('ES256', 'e1'),
  ]);
});

afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});

async function jwksServer(keys: () => unknown[]): Promise<LocalServer> {
  const server = await localServer((_req, res) => json(res, 200, { keys: keys() }));
  servers.push(server);
  return server;
}

function setup(url: string, options: Partial<RemoteJwksOptions> = {}) {
  const clock = { now: 1_000_000 };
  const keys = remoteJwks({ url, logger: silentLogger, now: () => clock.now, ...options });
  const verifier = jwtVerifier({
    jwks: { keys, algorithms: ['RS256', 'ES256'] },
    issuer: ISSUER,
    audience: AUDIENCE,
  });
  return { clock, keys, verifier };
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('verified'),
    (e: unknown) => e,
  );
}

describe('caching and rotation', () => {
  it('fetches once, then verifies from the cache', async () => {
    const server = await jwksServer(() => [k1.jwk, ec.jwk]);
    const { verifier, keys } = setup(`${server.url}/jwks.json`);
    for (let i = 0; i < 5; i++) {
      await verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' }));
      await verifier.verify(await sign(ec.privateKey, { alg: 'ES256', kid: 'e1' }));
    }
    expect(server.requests).toBe(1);
    expect(keys.state()).toMatchObject({ fetches: 1, failing: false });
  });

  it('a token signed with a key rotated in is verified after one refresh', async () => {
    let published = [k1.jwk];
    const server = await jwksServer(() => published);
    const { verifier, clock } = setup(server.url);
    await verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' }));
    published = [k1.jwk, k2.jwk];
    clock.now += 30_000;
    const { principal } = await verifier.verify(
      await sign(k2.privateKey, { alg: 'RS256', kid: 'k2' }),
    );
    expect(principal.id).toBe('usr_ada');
    expect(server.requests).toBe(2);
  });

  it('made-up kids cost the endpoint one fetch per cooldown, however many arrive at once', async () => {
    const server = await jwksServer(() => [k1.jwk]);
    const { verifier, clock } = setup(server.url, { cooldownMs: 30_000 });
    await verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' }));
    const forged = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        sign(k2.privateKey, { alg: 'RS256', kid: `made-up-${i}` }),
      ),
    );
    // Within the cooldown: refused at once, no fetch.
    for (const token of forged.slice(0, 10)) {
      const err = await refusal(verifier.verify(token));
      expect((err as InvalidTokenError).reason).toBe('key');
    }
    expect(server.requests).toBe(1);
    // After it: fifty at once share one fetch.
    clock.now += 30_000;
    const errors = await Promise.all(forged.map((t) => refusal(verifier.verify(t))));
    for (const err of errors) expect((err as InvalidTokenError).reason).toBe('key');
    expect(server.requests).toBe(2);
  });

  it('a set past maxAgeMs is refreshed in the background; a key removed from it stops working', async () => {
    let published = [k1.jwk, k2.jwk];
    const server = await jwksServer(() => published);
    const { verifier, clock, keys } = setup(server.url, { maxAgeMs: 60_000, cooldownMs: 10_000 });
    const old = await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' });
    await verifier.verify(old);
    published = [k2.jwk];
    clock.now += 61_000;
    // This request is answered from the set it had; the refresh runs behind it.
    await verifier.verify(old);
    await keys.refresh().catch(() => {});
    await expect(verifier.verify(old)).rejects.toMatchObject({ reason: 'key' });
    await verifier.verify(await sign(k2.privateKey, { alg: 'RS256', kid: 'k2' }));
  });
});

describe('an endpoint that fails', () => {
  it('unreachable: 503 with Retry-After, and no new attempt within the cooldown', async () => {
    const { verifier, keys, clock } = setup('http://127.0.0.1:1/jwks.json', { cooldownMs: 30_000 });
    const token = await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' });
    const err = await refusal(verifier.verify(token));
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect((err as ServiceUnavailableError).headers['Retry-After']).toBe('30');
    clock.now += 10_000;
    const again = await refusal(verifier.verify(token));
    expect((again as ServiceUnavailableError).headers['Retry-After']).toBe('20');
    expect(keys.state().fetches).toBe(1);
  });

  it('answering 500: one attempt per cooldown, then it recovers', async () => {
    let up = false;
    const server = await localServer((_req, res) =>
      up ? json(res, 200, { keys: [k1.jwk] }) : json(res, 500, { error: 'down' }),
    );
    servers.push(server);
    const { verifier, clock } = setup(server.url, { cooldownMs: 5000 });
    const token = await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' });
    for (let i = 0; i < 5; i++)
      expect(await refusal(verifier.verify(token))).toBeInstanceOf(ServiceUnavailableError);
    expect(server.requests).toBe(1);
    up = true;
    clock.now += 5000;
    expect((await verifier.verify(token)).principal.id).toBe('usr_ada');
    expect(server.requests).toBe(2);
  });

  it('hanging: answered 503 within the timeout, never held', async () => {
    const silent = await silentServer();
    servers.push(silent);
    const { verifier } = setup(`http://127.0.0.1:${silent.port}/jwks.json`, { timeoutMs: 300 });
    const token = await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' });
    const started = Date.now();
    expect(await refusal(verifier.verify(token))).toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('sending headers and then trickling: the timeout covers the body', async () => {
    const server = await localServer((_req, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      // never ends
    });
    servers.push(server);
    const { verifier } = setup(server.url, { timeoutMs: 300 });
    const started = Date.now();
    expect(
      await refusal(verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' }))),
    ).toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a set too large, with too many keys, not JSON, or redirected is not used', async () => {
    const bodies: Array<(res: ServerResponse) => void> = [
      (res) => json(res, 200, { keys: [k1.jwk], padding: 'x'.repeat(300_000) }),
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          `{"keys":[${Array.from({ length: 101 }, () => JSON.stringify(k1.jwk)).join(',')}]}`,
        );
      },
      (res) => res.end('<html>not json</html>'),
      (res) => json(res, 200, { notKeys: true }),
      (res) => {
        res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
        res.end();
      },
    ];
    for (const body of bodies) {
      const server = await localServer((_req, res) => body(res));
      servers.push(server);
      const { verifier } = setup(server.url);
      expect(
        await refusal(verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' }))),
      ).toBeInstanceOf(ServiceUnavailableError);
    }
  });

  it('a stale set keeps verifying its keys while the endpoint is down, up to maxStaleMs', async () => {
    let up = true;
    const server = await localServer((_req, res) =>
      up ? json(res, 200, { keys: [k1.jwk] }) : json(res, 503, {}),
    );
    servers.push(server);
    const logger = recordingLogger();
    const { verifier, clock, keys } = setup(server.url, {
      maxAgeMs: 60_000,
      maxStaleMs: 600_000,
      cooldownMs: 10_000,
      logger,
    });
    const token = await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' });
    await verifier.verify(token);
    up = false;
    clock.now += 120_000;
    await verifier.verify(token);
    await keys.refresh().catch(() => {});
    expect(keys.state().failing).toBe(true);
    clock.now += 300_000;
    expect((await verifier.verify(token)).principal.id).toBe('usr_ada');
    // An unknown kid while refreshes fail: the key may have rotated in, so 503, not 401.
    expect(
      await refusal(verifier.verify(await sign(k2.privateKey, { alg: 'RS256', kid: 'k2' }))),
    ).toBeInstanceOf(ServiceUnavailableError);
    clock.now += 300_000;
    expect(await refusal(verifier.verify(token))).toBeInstanceOf(ServiceUnavailableError);
    expect(logger.lines.some((l) => l.includes('fetching the JSON Web Key Set failed'))).toBe(true);
  });
});

describe('configuration', () => {
  it('https only, except to a loopback address; no credentials in the URL', () => {
    expect(() => remoteJwks({ url: 'http://id.example.com/jwks.json' })).toThrow(/https/);
    expect(() => remoteJwks({ url: 'ftp://127.0.0.1/jwks' })).toThrow(/https/);
    expect(() => remoteJwks({ url: 'not a url' })).toThrow(/absolute https/);
    expect(() => remoteJwks({ url: 'https://user:hunter2@id.example.com/jwks' })).toThrow(
      /credentials/,
    );
    try {
      remoteJwks({ url: 'https://user:hunter2@id.example.com/jwks' });
    } catch (err) {
      expect(String(err)).not.toContain('hunter2');
    }
    for (const url of [
      'https://id.example.com/jwks',
      'http://localhost:8080/j',
      'http://[::1]:1/j',
      'http://127.0.0.2/j',
    ]) {
      expect(() => remoteJwks({ url })).not.toThrow();
    }
  });

  it('bounds are checked', () => {
    expect(() => remoteJwks({ url: 'https://a.example/j', timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() =>
      remoteJwks({ url: 'https://a.example/j', maxAgeMs: 10_000, maxStaleMs: 5000 }),
    ).toThrow(/maxStaleMs/);
    expect(() => remoteJwks({ url: 'https://a.example/j', cooldown: 1 } as never)).toThrow(
      /cooldownMs/,
    );
  });

  it('a JWKS needs its own algorithm list, of public-key algorithms', () => {
    expect(() =>
      jwtVerifier({
        jwks: { keys: { url: 'https://a.example/j' } } as never,
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    ).toThrow(/algorithms/);
    expect(() =>
      jwtVerifier({
        jwks: { keys: { url: 'https://a.example/j' }, algorithms: ['HS256' as never] },
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    ).toThrow(/never verifies an HMAC/);
  });

  it('JWKS keys verify only the listed algorithms', async () => {
    const server = await jwksServer(() => [k1.jwk, ec.jwk]);
    const verifier = jwtVerifier({
      jwks: { keys: { url: server.url, logger: silentLogger }, algorithms: ['ES256'] },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    await verifier.verify(await sign(ec.privateKey, { alg: 'ES256', kid: 'e1' }));
    const err = await refusal(
      verifier.verify(await sign(k1.privateKey, { alg: 'RS256', kid: 'k1' })),
    );
    expect((err as InvalidTokenError).reason).toBe('algorithm');
  });
});
