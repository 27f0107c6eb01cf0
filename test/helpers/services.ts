import { inject } from 'vitest';

/**
 * Which real servers this run can use (Redis, PostgreSQL, and the redis-server
 * and redis-cli binaries the Cluster suite starts its cluster from), with their
 * URLs; see test/setup/services.ts.
 */
export const services = inject('services');
