/**
 * The example's API versions, shared by the Express and Koa apps.
 *
 * - Payments, by a dated `Api-Version` header (as Stripe does): 2025-06-01
 *   replaced `createdAt` (ISO 8601) with `created` (epoch seconds). The
 *   handlers write the newest shape; one migration serves 2024-11-20.
 * - One deprecated route, `GET /v1/payments/:id/status`, replaced by the
 *   payment itself, with a sunset date.
 */
import {
  defineVersions,
  deprecated,
  objectsAt,
  renameField,
  transformField,
  versionChange,
  versioning,
} from 'restwell/versioning';

export const createdSeconds = versionChange({
  description: 'Payments: `createdAt` (an ISO 8601 string) becomes `created` (epoch seconds).',
  response: {
    paths: ['/payments', '/payments/:id'],
    migrate: (res) => {
      const payments = res.path === '/payments' && res.method !== 'POST' ? '/data/*' : '';
      for (const payment of objectsAt(res.body, payments)) {
        transformField(payment, 'created', (s) => new Date(Number(s) * 1000).toISOString());
        renameField(payment, 'created', 'createdAt');
      }
    },
  },
});

export const paymentsApi = defineVersions({
  versions: [{ version: '2024-11-20' }, { version: '2025-06-01', changes: [createdSeconds] }],
});

/** Payments: `Api-Version: 2024-11-20` or `2025-06-01` (the default), under /v1. */
export const paymentsVersions = () =>
  versioning(paymentsApi, { strategy: 'header', basePath: '/v1' });

/** A payment of 2025-06-01, as the handlers write it. */
export const toPayment = <P extends { createdAt: string }>({ createdAt, ...rest }: P) => ({
  ...rest,
  created: Math.floor(Date.parse(createdAt) / 1000),
});

/** `GET /v1/payments/:id/status`: deprecated, the payment itself carries its status. */
export const statusRouteDeprecation = () =>
  deprecated({
    deprecation: '2026-01-01',
    sunset: '2027-06-30',
    links: {
      deprecation: 'https://api.example.com/docs/payment-status',
      sunset: 'https://api.example.com/docs/payment-status#sunset',
      successor: (ctx) => `/v1/payments/${ctx.request.params.id}`,
    },
  });
