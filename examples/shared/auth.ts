/**
 * The example's authentication and authorization, shared by the Express and Koa apps.
 *
 * - Every `/v1` and `/v2` route needs a principal: an API key in `X-API-Key`, or a JWT bearer
 *   token (HS256, signed with JWT_SECRET). `DELETE /v1/users/:id` also needs the `admin` role.
 * - `/health` is open, and so is `POST /webhooks/restwell`: a webhook is authenticated by its
 *   signature, not by an API key.
 * - The table fails closed (`default: 'deny'`): a request no rule covers is refused with 403
 *   before any handler runs, so a route added without a rule is not left open.
 *
 * Credentials come from the environment: API_KEYS, comma-separated `key:role` pairs (keys in the
 * `rwk_<id>_<secret>` format of `createApiKey()`), and JWT_SECRET. When unset, {@link
 * credentialsFromEnv} draws demo credentials and prints them at start, with a demo token.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Middleware } from 'restwell';
import {
  allowAnonymous,
  apiKeyRecordFor,
  apiKeyVerifier,
  authenticate,
  authenticated,
  authorization,
  createApiKey,
  jwtVerifier,
  MemoryApiKeyStore,
  parseApiKey,
  principalOf,
  requireRole,
} from 'restwell/auth';

/** The example's JWT issuer and audience: a token for another API is refused. */
export const JWT_ISSUER = 'https://id.example.com';
export const JWT_AUDIENCE = 'restwell-example';

export interface ExampleCredentials {
  /** API keys and the role each carries. */
  apiKeys: ReadonlyArray<{ key: string; role: string }>;
  /** The HS256 secret JWTs are signed with (at least 32 bytes, RFC 7518 §3.2). */
  jwtSecret: string;
}

/** Reads API_KEYS (`key:role,key:role`); a malformed pair stops the server with its position. */
export function parseApiKeys(value: string): Array<{ key: string; role: string }> {
  return value
    .split(',')
    .map((pair) => pair.trim())
    .filter((pair) => pair.length > 0)
    .map((pair, index) => {
      const colon = pair.lastIndexOf(':');
      const key = colon === -1 ? '' : pair.slice(0, colon);
      const role = colon === -1 ? '' : pair.slice(colon + 1);
      if (key === '' || !/^[a-z][a-z0-9-]*$/.test(role)) {
        throw new TypeError(
          `API_KEYS: pair ${index + 1} is not "<key>:<role>" (make a key with createApiKey() from restwell/auth).`,
        );
      }
      return { key, role };
    });
}

/**
 * API_KEYS and JWT_SECRET, or demo credentials drawn for this run and printed (an admin key, a
 * member key, and how to sign a token), so that `npm start` works on a fresh clone.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): ExampleCredentials {
  let apiKeys = env.API_KEYS ? parseApiKeys(env.API_KEYS) : [];
  if (apiKeys.length === 0) {
    apiKeys = [
      { key: createApiKey().key, role: 'admin' },
      { key: createApiKey().key, role: 'member' },
    ];
    console.error(
      'restwell example: API_KEYS is not set; demo keys for this run:\n' +
        apiKeys.map(({ key, role }) => `  ${role.padEnd(6)} X-API-Key: ${key}`).join('\n') +
        `\n  (set API_KEYS=${apiKeys.map(({ key, role }) => `${key}:${role}`).join(',')} to keep them)`,
    );
  }
  let jwtSecret = env.JWT_SECRET;
  if (jwtSecret === undefined || jwtSecret === '') {
    jwtSecret = randomBytes(32).toString('base64url');
    console.error(
      `restwell example: JWT_SECRET is not set; this run verifies HS256 tokens (iss ${JWT_ISSUER}, aud ${JWT_AUDIENCE}) signed with JWT_SECRET=${jwtSecret}`,
    );
  }
  return { apiKeys, jwtSecret };
}

/**
 * Whose request it is, for idempotency keys and the per-client rate limit: the principal's id
 * qualified by how it was verified. A token's `sub` is the issuer's text, so a token whose
 * subject reads like one of our API keys' principals (`key:...`) must never share that key's
 * idempotency records; `authentication` is set by the verifier, never by the credential.
 */
export function principalScope(ctx: Context): string | undefined {
  const principal = principalOf(ctx);
  return principal === undefined ? undefined : `${principal.authentication}:${principal.id}`;
}

export interface ExampleAuth {
  /** Reads the credential and sets the principal; anonymous requests go on, for the table. */
  authenticate: Middleware;
  /** The route table: checked before routing, failing closed. */
  authorization: Middleware;
}

export function createAuth({ apiKeys, jwtSecret }: ExampleCredentials): ExampleAuth {
  const store = new MemoryApiKeyStore();
  for (const { key, role } of apiKeys) {
    // Each key is a principal of its own, named by the key's public id: two keys with one role
    // are two clients, with their own idempotency keys, rate-limit budget and audit trail.
    // (A key not in the key format has no id: apiKeyRecordFor refuses it, naming the format.)
    const parsed = parseApiKey(key);
    const subject = parsed === undefined ? {} : { subject: `key:${parsed.id}` };
    // The memory store keeps a record as soon as create() is called; a key given twice is kept once.
    void store.create(apiKeyRecordFor(key, { ...subject, roles: [role] }));
  }
  return {
    authenticate: authenticate({
      apiKeys: apiKeyVerifier({ store }),
      jwt: jwtVerifier({
        keys: [{ secret: jwtSecret, algorithms: ['HS256'] }],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
      }),
      // Anonymous requests reach the table, which decides (so /health stays open).
      optional: true,
      realm: 'example',
    }),
    authorization: authorization({
      rules: [
        { route: '/health', methods: ['GET'], require: allowAnonymous() },
        { route: '/webhooks/restwell', methods: ['POST'], require: allowAnonymous() },
        { route: '/v1/*', require: authenticated() },
        { route: '/v2/*', require: authenticated() },
        // Every rule that matches must pass: a principal (above) and the admin role.
        { route: '/v1/users/:id', methods: ['DELETE'], require: requireRole('admin') },
        { route: '/v2/users/:id', methods: ['DELETE'], require: requireRole('admin') },
        // Webhook endpoints, deliveries and replays are for operators (the admin API checks too).
        { route: '/v1/webhook-endpoints/*', require: requireRole('admin') },
      ],
      default: 'deny',
    }),
  };
}
