/**
 * The example's rate limits, shared by the Express and Koa apps. All three
 * policies are checked together, in one atomic step (one Redis round trip):
 * a request refused by one takes nothing from the others.
 */
import type { Middleware, Store } from 'restwell';
import { byIp, byPrincipal, byPrincipalOrIp, rateLimit } from 'restwell/rate-limit';

export interface ExampleLimits {
  /** Requests per minute per client IP (IPv6 grouped by /64). @default 300 */
  perIp?: number;
  /** Requests per hour per authenticated client (an API key's or a token's principal). @default 5000 */
  perClient?: number;
  /** Payments per minute per caller. @default 10 */
  payments?: number;
}

export function apiRateLimit(store: Store, limits: ExampleLimits = {}): Middleware {
  const { perIp = 300, perClient = 5000, payments = 10 } = limits;
  return rateLimit({
    store,
    policies: [
      { name: 'per-ip', limit: perIp, windowMs: 60_000, key: byIp() },
      // Mounted after authenticate(): only verified principals are counted, never a string a
      // client makes up (the table refuses anonymous /v1 requests before they get here).
      { name: 'per-client', limit: perClient, windowMs: 3_600_000, key: byPrincipal() },
      {
        name: 'payments',
        limit: payments,
        windowMs: 60_000,
        key: byPrincipalOrIp(),
        // Matched as the router matches it: `/v1/payments/`, `/V1/PAYMENTS` and
        // `http://host/v1/payments` reach the same handler, and count here too.
        route: '/v1/payments',
        methods: ['POST'],
      },
    ],
    // Probes are never limited.
    skip: (ctx) => ctx.request.path === '/health',
  });
}
