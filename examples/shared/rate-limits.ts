/**
 * The example's rate limits, shared by the Express and Koa apps. All three
 * policies are checked together, in one atomic step (one Redis round trip):
 * a request refused by one takes nothing from the others. One more per-IP
 * limit runs before authentication, so that requests refused with 401 are
 * limited too.
 */
import type { Middleware, Store } from 'restwell';
import { byIp, type KeyFunction, rateLimit } from 'restwell/rate-limit';
import { principalScope } from './auth.js';

export interface ExampleLimits {
  /** Requests per minute per client IP (IPv6 grouped by /64). @default 300 */
  perIp?: number;
  /** Requests per hour per authenticated client (an API key's or a token's principal). @default 5000 */
  perClient?: number;
  /** Payments per minute per caller. @default 10 */
  payments?: number;
  /**
   * Requests per minute per client IP counted before authentication, whatever their credential:
   * bounds what a flood of forged keys or tokens costs (each a key-store lookup or a signature
   * check), which the limits after authentication never see. @default twice perIp
   */
  unverifiedPerIp?: number;
}

const ip = byIp();
/** The verified principal, qualified by how it was verified (see principalScope). */
const byVerifiedPrincipal: KeyFunction = (ctx) => principalScope(ctx);
/** The verified principal, or the client's address for a caller without one. */
const byVerifiedPrincipalOrIp: KeyFunction = (ctx) => {
  const principal = principalScope(ctx);
  if (principal !== undefined) return `principal:${principal}`;
  const address = ip(ctx);
  return address === undefined ? undefined : `ip:${address}`;
};

/** Probes are never limited. */
const isProbe = (ctx: Parameters<KeyFunction>[0]) => ctx.request.path === '/health';

/**
 * Mounted before authenticate(): every request counts, a 401 included. Twice the per-IP limit
 * by default, so that a client within its per-IP budget never meets it; it states nothing in
 * the response headers (the limits after authentication do).
 */
export function unverifiedRateLimit(store: Store, limits: ExampleLimits = {}): Middleware {
  const { perIp = 300 } = limits;
  const { unverifiedPerIp = 2 * perIp } = limits;
  return rateLimit({
    store,
    policies: [{ name: 'unverified-per-ip', limit: unverifiedPerIp, windowMs: 60_000, key: ip }],
    headers: false,
    skip: isProbe,
  });
}

export function apiRateLimit(store: Store, limits: ExampleLimits = {}): Middleware {
  const { perIp = 300, perClient = 5000, payments = 10 } = limits;
  return rateLimit({
    store,
    policies: [
      { name: 'per-ip', limit: perIp, windowMs: 60_000, key: ip },
      // Mounted after authenticate(): only verified principals are counted, never a string a
      // client makes up (the table refuses anonymous /v1 requests before they get here).
      { name: 'per-client', limit: perClient, windowMs: 3_600_000, key: byVerifiedPrincipal },
      {
        name: 'payments',
        limit: payments,
        windowMs: 60_000,
        key: byVerifiedPrincipalOrIp,
        // Matched as the router matches it: `/v1/payments/`, `/V1/PAYMENTS` and
        // `http://host/v1/payments` reach the same handler, and count here too.
        route: '/v1/payments',
        methods: ['POST'],
      },
    ],
    skip: isProbe,
  });
}
