/**
 * restwell: small, composable, framework-agnostic HTTP API middleware.
 *
 * The root entry exports the framework-free core. Frameworks are reached through
 * `restwell/express` and `restwell/koa`; stores through `restwell/memory`,
 * `restwell/redis` and `restwell/postgres`.
 */
export * from './core/errors.js';
export * from './core/context.js';
export * from './core/compose.js';
export * from './core/logger.js';
export type { Store, StoreOptions } from './stores/types.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory/index.js';
