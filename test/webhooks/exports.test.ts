/** restwell/webhooks' public face: what it exports at runtime, and nothing internal. */
import { describe, expect, it } from 'vitest';
import * as security from '../../src/security/index.js';
import * as webhooks from '../../src/webhooks/index.js';

describe('restwell/webhooks', () => {
  it('exports the signers, verifiers, receiver, ledger, queue, ordering helpers, errors and the delivery engine', () => {
    expect(Object.keys(webhooks).sort()).toEqual(
      [
        'EventOrder',
        'GITHUB_SCHEME',
        'HMAC_SCHEME',
        'HttpsRequiredError',
        'InProcessQueue',
        'MAX_SECRET_BYTES',
        'MIN_SECRET_BYTES',
        'STANDARD_WEBHOOKS_SCHEME',
        'WebhookBodyConsumedError',
        'WebhookEventIdMissingError',
        'WebhookEventLedger',
        'WebhookInFlightError',
        'WebhookQueueFullError',
        'WebhookSenderForbiddenError',
        'WebhookVerificationError',
        'backoffDelayMs',
        'generateWebhookKeyPair',
        'generateWebhookSecret',
        'githubVerifier',
        'hmacSigner',
        'hmacVerifier',
        'migrateWebhookEvents',
        'refetcher',
        'standardWebhooksSigner',
        'standardWebhooksVerifier',
        'sweepWebhookEvents',
        'upsertIfNewer',
        'webhookEventsTableSql',
        'webhookOf',
        'webhookReceiver',
        'withWebhookEvent',
        // Part 2: delivery.
        'writeOutboxEvent',
        'webhookDeliveryTableSql',
        'startOutboxRelay',
        'migrateWebhookDelivery',
        'PostgresEndpointStore',
        'PostgresDeliveryLog',
        'OutboxRelay',
        'CircuitBreaker',
        'DEFAULT_BACKOFF_FACTOR',
        'DEFAULT_JITTER',
        'DEFAULT_MAX_ATTEMPTS',
        'DEFAULT_MAX_DELAY_MS',
        'DEFAULT_RETENTION_MS',
        'DEFAULT_RETRY_DELAYS_MS',
        'DEFAULT_ROTATION_OVERLAP_MS',
        'EndpointHealth',
        'MemoryDeliveryLog',
        'MemoryDeliveryQueue',
        'MemoryEndpointStore',
        'WebhookDeliveryClosedError',
        'WebhookDeliveryNotFoundError',
        'WebhookEndpointNotFoundError',
        'WebhookEndpoints',
        'WebhookEventNotFoundError',
        'WebhookUrlRefusedError',
        'classifyAddress',
        'createEvent',
        'deliveryIdOf',
        'eventEnvelope',
        'generateId',
        'isEventFilter',
        'isEventType',
        'manualClock',
        'matchesFilters',
        'memoryEndpointBreakers',
        'memoryEndpointHealth',
        'memoryEndpointLimiter',
        'memorySequencer',
        'parseHttpDate',
        'parseRetryAfter',
        'retrySchedule',
        'sendAttempt',
        'ssrfGuard',
        'systemClock',
        'webhookAdmin',
        'webhookDelivery',
      ].sort(),
    );
  });

  it('exports the HttpsRequiredError of restwell/security, not a second class of the same name', () => {
    expect(webhooks.HttpsRequiredError).toBe(security.HttpsRequiredError);
    const err = new webhooks.HttpsRequiredError();
    expect(err).toBeInstanceOf(security.HttpsRequiredError);
    expect([err.code, err.status]).toEqual(['https-required', 403]);
  });

  it('does not load pg: the PostgreSQL helpers use only the pool they are given', async () => {
    const { execFileSync } = await import('node:child_process');
    const loaded = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "await import('./src/webhooks/index.ts'); const { createRequire } = await import('node:module'); console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((p) => /node_modules\\/pg\\//.test(p))))",
      ],
      { cwd: new URL('../..', import.meta.url), encoding: 'utf8' },
    );
    expect(JSON.parse(loaded)).toEqual([]);
  });
});
