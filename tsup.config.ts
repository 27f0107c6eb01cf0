import { defineConfig } from 'tsup';

/**
 * One entry per public subpath. Keep in sync with the `exports` map in
 * package.json: `scripts/check-package.mjs` fails the build when they differ.
 */
export const entries: Record<string, string> = {
  index: 'src/index.ts',
  'core/errors': 'src/core/errors.ts',
  'adapters/express/index': 'src/adapters/express/index.ts',
  'adapters/koa/index': 'src/adapters/koa/index.ts',
  'stores/memory/index': 'src/stores/memory/index.ts',
  'stores/redis/index': 'src/stores/redis/index.ts',
  'stores/postgres/index': 'src/stores/postgres/index.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'node20',
  platform: 'node',
  external: ['ioredis', 'pg', 'rate-limiter-flexible'],
});
