/**
 * Webhooks, part 2: reliable delivery. Re-exported by `restwell/webhooks`.
 *
 * - {@link webhookDelivery}: the engine. `dispatch()` stores an event and
 *   queues a delivery per subscribed endpoint, and never sends; the worker
 *   (`startWorker()`) makes the attempts, signed afresh each time, shaped for
 *   the endpoint's pinned API version, bounded per endpoint (concurrency,
 *   rate, circuit breaker), retried on the schedule with `Retry-After` as a
 *   floor, logged attempt by attempt, and dead-lettered with full context.
 * - Contracts the durable backends implement: {@link DeliveryQueue} (BullMQ),
 *   {@link DeliveryLog} and {@link EndpointStore} (PostgreSQL); embedded
 *   defaults {@link MemoryDeliveryQueue}, {@link MemoryDeliveryLog},
 *   {@link MemoryEndpointStore}.
 * - The transport: {@link sendAttempt}, {@link retrySchedule}, {@link CircuitBreaker},
 *   {@link ssrfGuard}.
 * - Time: {@link DeliveryClock}, {@link systemClock}, {@link manualClock} for tests.
 *
 * @example
 * ```ts
 * const delivery = webhookDelivery({ guard: ssrfGuard() });
 * const { endpoint, secret } = await delivery.endpoints.create({ url: 'https://shop.example/hooks' });
 * delivery.startWorker();
 * await delivery.dispatch({ type: 'payment.succeeded', data: payment });
 * ```
 */
export {
  type AttemptFailure,
  type AttemptRequest,
  type AttemptResult,
  parseHttpDate,
  parseRetryAfter,
  sendAttempt,
} from './attempt.js';
export {
  type BreakerPermit,
  type BreakerState,
  type BreakerStateListener,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type EndpointBreakers,
  type MemoryEndpointBreakers,
  type MemoryEndpointBreakersOptions,
  memoryEndpointBreakers,
} from './breaker.js';
export {
  type DeliveryClock,
  type ManualClock,
  manualClock,
  systemClock,
  type TimerHandle,
} from './clock.js';
export {
  type DeadLetterNotice,
  type DisableNotice,
  type DispatchResult,
  deliveryIdOf,
  type EndpointStats,
  type FastFailureNotice,
  type ReplayFilter,
  type SendAttempt,
  type SigningScheme,
  type WebhookDelivery,
  type WebhookDeliveryOptions,
  webhookDelivery,
} from './delivery.js';
export {
  type CreateEndpointInput,
  DEFAULT_ROTATION_OVERLAP_MS,
  type DisabledBy,
  type EndpointRecord,
  type EndpointSecret,
  type EndpointStore,
  MemoryEndpointStore,
  type RotatedSecret,
  type UpdateEndpointInput,
  type UrlGuard,
  type WebhookEndpoint,
  WebhookEndpoints,
  type WebhookEndpointsOptions,
} from './endpoints.js';
export {
  WebhookUrlRefusedError,
  type WebhookUrlRefusalReason,
} from './errors.js';
export {
  createEvent,
  type EventInput,
  type EventResource,
  type EventSequencer,
  eventEnvelope,
  generateId,
  isEventFilter,
  isEventType,
  matchesFilters,
  memorySequencer,
  type WebhookEvent,
} from './events.js';
export {
  EndpointHealth,
  type EndpointHealthAlert,
  type EndpointHealthListener,
  type EndpointHealthOptions,
  type EndpointHealthState,
  type EndpointHealthStore,
  type EndpointHealthTransition,
  type MemoryEndpointHealth,
  type MemoryEndpointHealthOptions,
  memoryEndpointHealth,
} from './health.js';
export {
  type Acquired,
  type EndpointLimiter,
  type MemoryEndpointLimiter,
  type EndpointLimits,
  memoryEndpointLimiter,
} from './limits.js';
export {
  type AttemptQuery,
  type AttemptRecord,
  type DeadReason,
  DEFAULT_RETENTION_MS,
  type DeliveryLog,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryStatus,
  type EndpointLogStats,
  type LogPage,
  MemoryDeliveryLog,
  type MemoryDeliveryLogOptions,
  type SweepResult,
} from './log.js';
export { MemoryDeliveryQueue, type MemoryDeliveryQueueOptions } from './memory-queue.js';
export {
  WebhookDeliveryClosedError,
  WebhookEndpointNotFoundError,
  WebhookEventNotFoundError,
} from './problems.js';
export type {
  DeliveryJob,
  DeliveryQueue,
  JobOutcome,
  JobProcessor,
  QueueCounts,
} from './queue.js';
export {
  DEFAULT_BACKOFF_FACTOR,
  DEFAULT_JITTER,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_RETRY_DELAYS_MS,
  type RetrySchedule,
  type RetryScheduleOptions,
  retrySchedule,
} from './schedule.js';
export {
  type AddressClass,
  classifyAddress,
  type SsrfGuard,
  type SsrfPolicy,
  ssrfGuard,
} from './ssrf.js';
export { type WebhookAdminOptions, WebhookDeliveryNotFoundError, webhookAdmin } from './admin.js';
export {
  migrateWebhookDelivery,
  type WebhookDeliveryTablesOptions,
  webhookDeliveryTableSql,
} from './postgres-schema.js';
export { PostgresDeliveryLog, type PostgresDeliveryLogOptions } from './postgres-log.js';
export { PostgresEndpointStore, type PostgresEndpointStoreOptions } from './postgres-endpoints.js';
export {
  OutboxRelay,
  type OutboxRelayOptions,
  startOutboxRelay,
  type WriteOutboxEventOptions,
  writeOutboxEvent,
} from './outbox.js';
