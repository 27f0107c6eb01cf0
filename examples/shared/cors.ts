/**
 * Which browser origins may call the example, and what their scripts may send and read. On top
 * of restwell's defaults: `Api-Version`, the payments' version header, which a page must be
 * allowed to send (a preflight naming a header not allowed is refused, Fetch §4.8) and to read
 * back; `WWW-Authenticate`, so that a script can tell an expired token from a missing one on a
 * 401 (RFC 6750 §3); and `Accept-Patch`, the formats PATCH takes (RFC 5789 §3.1).
 */
import type { Middleware } from 'restwell';
import { cors, DEFAULT_ALLOW_HEADERS, DEFAULT_EXPOSE_HEADERS } from 'restwell/security';

export function exampleCors(origins: readonly string[]): Middleware {
  return cors({
    origins,
    allowHeaders: [...DEFAULT_ALLOW_HEADERS, 'Api-Version'],
    exposeHeaders: [...DEFAULT_EXPOSE_HEADERS, 'Api-Version', 'WWW-Authenticate', 'Accept-Patch'],
  });
}
