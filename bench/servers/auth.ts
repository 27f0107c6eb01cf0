/**
 * Benchmark server for authentication: `node --import tsx bench/servers/auth.ts`.
 * Every case is mounted in this one process under its own prefix (`/<case>/v1/users`), so that
 * cases measured in turn share one heap and one JIT: `none`; `restwell-core` (the adapter
 * alone); restwell's `authenticate()` with a JWT verifier for HS256, RS256, ES256 and EdDSA;
 * express-jwt 8 (jsonwebtoken 9) for HS256, RS256 and ES256 (jsonwebtoken has no EdDSA); and
 * restwell API keys on the memory store and on Redis. `/__credentials` answers the token or
 * key each case expects, made at start with fresh keys.
 */
import type { RequestListener } from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { expressjwt } from 'express-jwt';
import { Redis } from 'ioredis';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { expressAdapter } from 'restwell/express';
import {
  apiKeyVerifier,
  type AsymmetricAlgorithm,
  authenticate,
  issueApiKey,
  jwtVerifier,
  MemoryApiKeyStore,
} from 'restwell/auth';
import { RedisApiKeyStore } from 'restwell/auth/redis';
import { serve } from './serve.js';

const ISSUER = 'https://id.example.com';
const AUDIENCE = 'https://api.example.com';
const SECRET = 'bench-secret-of-at-least-thirty-two-bytes';

async function token(alg: string, key: Parameters<SignJWT['sign']>[0]): Promise<string> {
  return new SignJWT({ sub: 'usr_ada', roles: ['member'], scope: 'users:read' })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(key);
}

/** The cases' middlewares and the headers each expects; the Redis case only when asked. */
export interface AuthCases {
  cases: Record<string, express.RequestHandler | undefined>;
  credentials: Record<string, Record<string, string>>;
  close(): Promise<void>;
}

export async function authCases(options: { redis?: boolean } = {}): Promise<AuthCases> {
  const rw = expressAdapter();
  const credentials: Record<string, Record<string, string>> = {};
  const cases: Record<string, express.RequestHandler | undefined> = {
    none: undefined,
    'restwell-core': rw(),
  };

  // HMAC.
  const hsToken = await token('HS256', new TextEncoder().encode(SECRET));
  cases['restwell-HS256'] = rw(
    authenticate({
      jwt: jwtVerifier({
        keys: [{ secret: SECRET, algorithms: ['HS256'] }],
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    }),
  );
  cases['express-jwt-HS256'] = expressjwt({
    secret: SECRET,
    algorithms: ['HS256'],
    issuer: ISSUER,
    audience: AUDIENCE,
  });
  credentials['restwell-HS256'] = { authorization: `Bearer ${hsToken}` };
  credentials['express-jwt-HS256'] = { authorization: `Bearer ${hsToken}` };

  // Public keys.
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const pem = await exportSPKI(publicKey);
    const signed = await token(alg, privateKey);
    cases[`restwell-${alg}`] = rw(
      authenticate({
        jwt: jwtVerifier({
          keys: [{ publicKey: pem, algorithms: [alg as AsymmetricAlgorithm] }],
          issuer: ISSUER,
          audience: AUDIENCE,
        }),
      }),
    );
    credentials[`restwell-${alg}`] = { authorization: `Bearer ${signed}` };
    if (alg !== 'EdDSA') {
      cases[`express-jwt-${alg}`] = expressjwt({
        secret: pem,
        algorithms: [alg],
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      credentials[`express-jwt-${alg}`] = { authorization: `Bearer ${signed}` };
    }
  }

  // API keys.
  const memory = new MemoryApiKeyStore();
  const memoryKey = await issueApiKey(memory, { subject: 'svc_bench', scopes: ['users:read'] });
  cases['api-key-memory'] = rw(authenticate({ apiKeys: apiKeyVerifier({ store: memory }) }));
  credentials['api-key-memory'] = { 'x-api-key': memoryKey.key };

  if (!options.redis) return { cases, credentials, close: async () => {} };
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const prefix = `bench-auth-${process.pid}:`;
  const redisStore = new RedisApiKeyStore({ client: redis, prefix });
  const redisKey = await issueApiKey(redisStore, { subject: 'svc_bench', scopes: ['users:read'] });
  cases['api-key-redis'] = rw(authenticate({ apiKeys: apiKeyVerifier({ store: redisStore }) }));
  credentials['api-key-redis'] = { 'x-api-key': redisKey.key };
  return {
    cases,
    credentials,
    close: async () => {
      await redis.del(`${prefix}${redisKey.record.id}`);
      await redis.quit();
    },
  };
}

// Imported by bench/auth.ts for its in-process part: build the cases, serve nothing.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { cases, credentials, close } = await authCases({ redis: true });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const users = JSON.stringify({
    data: Array.from({ length: 8 }, (_, i) => ({ id: `usr_${i}`, name: 'x'.repeat(80) })),
  });
  for (const [name, middleware] of Object.entries(cases)) {
    const router = express.Router();
    if (middleware) router.use(middleware);
    router.get('/v1/users', (_req, res) => {
      res.type('application/json').send(users);
    });
    app.use(`/${name}`, router);
  }

  const expressListener = app as unknown as RequestListener;
  const listener: RequestListener = (req, res) => {
    if (req.url === '/__credentials') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(credentials));
      return;
    }
    expressListener(req, res);
  };

  serve(listener, { close });
}
