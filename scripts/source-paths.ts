/**
 * Maps the package's public subpaths to their TypeScript sources, so that the
 * examples and benchmarks import `restwell/...` exactly as users do, while
 * running against the working tree without a build.
 */
import { packageEntries } from './package-entries.mjs';

export const sourcePaths: Record<string, string> = Object.fromEntries(
  packageEntries().map((e) => [e.specifier, e.source]),
);
