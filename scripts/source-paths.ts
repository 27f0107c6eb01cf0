/**
 * Maps the package's public subpaths to their TypeScript sources, so that the
 * examples and benchmarks import `restwell/...` exactly as users do, while
 * running against the working tree (tsx and vitest) without a build.
 */
export const sourcePaths: Record<string, string> = {
  restwell: 'src/index.ts',
  'restwell/errors': 'src/core/errors.ts',
  'restwell/express': 'src/adapters/express/index.ts',
  'restwell/koa': 'src/adapters/koa/index.ts',
  'restwell/memory': 'src/stores/memory/index.ts',
  'restwell/redis': 'src/stores/redis/index.ts',
  'restwell/postgres': 'src/stores/postgres/index.ts',
};
