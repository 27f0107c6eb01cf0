import { inject } from 'vitest';

/** Which real servers this run can use; see test/setup/services.ts. */
export const services = inject('services');
