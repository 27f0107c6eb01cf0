import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vitest/config';
import { sourcePaths } from './scripts/source-paths.js';

/**
 * Examples and benchmarks import `restwell/...` like users do; under test they
 * resolve to the sources. Everything else (notably the packaging tests, which
 * check the built package) resolves `restwell` the way Node does.
 */
function examplesUseSources(): Plugin {
  return {
    name: 'restwell-examples-use-sources',
    enforce: 'pre',
    resolveId(source, importer) {
      const target = sourcePaths[source];
      if (target === undefined || importer === undefined) return null;
      if (!/[/\\](examples|bench)[/\\]/.test(importer)) return null;
      return resolve(import.meta.dirname, target);
    },
  };
}

export default defineConfig({
  plugins: [examplesUseSources()],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/services.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
