import { defineConfig } from 'tsup';
import { packageEntries } from './scripts/package-entries.mjs';

// One entry per public subpath, derived from the `exports` map in package.json.
export default defineConfig({
  entry: Object.fromEntries(packageEntries().map((e) => [e.entry, e.source])),
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'node20',
  platform: 'node',
  external: ['ioredis', 'pg', 'rate-limiter-flexible', 'jose', 'bullmq'],
});
