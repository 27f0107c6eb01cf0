/**
 * Credentials for tests of the example apps: a fixed admin key, a member key and a JWT secret,
 * and a wrapper that makes every request of a test come from a client holding one of them.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createApiKey } from '../../src/auth/api-keys.js';
import type { ExampleCredentials } from '../../examples/shared/auth.js';

export const ADMIN_KEY = createApiKey().key;
export const MEMBER_KEY = createApiKey().key;
export const JWT_SECRET = 'a-test-secret-of-at-least-thirty-two-bytes';

export const EXAMPLE_CREDENTIALS: ExampleCredentials = {
  apiKeys: [
    { key: ADMIN_KEY, role: 'admin' },
    { key: MEMBER_KEY, role: 'member' },
  ],
  jwtSecret: JWT_SECRET,
};

/**
 * The app as a client holding `key` calls it: a request that brings no credential of its own
 * (no `X-API-Key`, no `Authorization`) gets `X-API-Key: key`, in its parsed and raw headers alike.
 */
export function asClient(listener: RequestListener, key: string = MEMBER_KEY): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['x-api-key'] === undefined && req.headers.authorization === undefined) {
      req.headers['x-api-key'] = key;
      req.rawHeaders.push('X-API-Key', key);
    }
    listener(req, res);
  };
}
