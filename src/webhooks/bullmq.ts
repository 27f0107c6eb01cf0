/**
 * Durable webhook delivery on BullMQ: exported from `restwell/webhooks/bullmq`, a subpath of its
 * own so that an application that delivers from memory never loads bullmq (an optional peer
 * dependency, like ioredis, which it uses).
 *
 * - {@link BullMqDeliveryQueue}: the `DeliveryQueue` of `webhookDelivery()` on Redis, shared by
 *   every process on the same Redis; a job whose worker died runs again (at least once).
 * - {@link runDeliveryWorker}: a worker in a process of its own, draining on SIGTERM.
 * - {@link redisEndpointLimiter}: per-endpoint concurrency and rate limits shared by every
 *   worker on the same Redis (the engine's `limiter`).
 * - {@link redisEndpointBreakers}: one circuit breaker per endpoint shared by every worker on the
 *   same Redis (the engine's `breakers`).
 * - {@link redisEndpointHealth}: endpoint health (alerts, recovery, auto-disable) judged over every
 *   worker on the same Redis, each transition made once (the engine's `healthStore`).
 *
 * See docs/webhook-delivery.md, "Durable delivery on BullMQ".
 */
export * from './delivery/bullmq.js';
export * from './delivery/worker-process.js';
export * from './delivery/redis-breaker.js';
export * from './delivery/redis-health.js';
export * from './delivery/redis-limiter.js';
