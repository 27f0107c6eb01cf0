#!/usr/bin/env node
/**
 * Checks the package's shape after a build (`npm run check:package`):
 * - every export has `import` and `require` conditions, each with `types` first;
 * - every file an export names exists in dist/;
 * - every module's public face (src/<module>/index.ts) is exported;
 * - tsconfig.json `paths` (used by the examples) name exactly the exported subpaths.
 * Exits non-zero with one line per problem.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageEntries } from './package-entries.mjs';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const problems = [];

for (const [subpath, conditions] of Object.entries(pkg.exports)) {
  if (subpath === './package.json') continue;
  for (const condition of ['import', 'require']) {
    const c = conditions[condition];
    if (!c) {
      problems.push(`exports["${subpath}"] has no "${condition}" condition`);
      continue;
    }
    const keys = Object.keys(c);
    if (keys[0] !== 'types')
      problems.push(`exports["${subpath}"].${condition}: "types" must come first`);
    for (const file of [c.types, c.default]) {
      if (!file) problems.push(`exports["${subpath}"].${condition} lacks types or default`);
      else if (!existsSync(join(root, file)))
        problems.push(`exports["${subpath}"].${condition}: ${file} is missing (run npm run build)`);
    }
  }
}

const exported = new Set(packageEntries().map((e) => e.source));
for (const e of packageEntries()) {
  if (!existsSync(join(root, e.source)))
    problems.push(`${e.specifier} is built from ${e.source}, which does not exist`);
}
// A folder under src/ with an index.ts is a module's public face, and must be exported.
function walk(dir) {
  for (const name of readdirSync(join(root, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(root, rel)).isDirectory()) walk(rel);
    else if (name === 'index.ts' && !exported.has(rel))
      problems.push(`${rel} is a module's public face but is not in package.json exports`);
  }
}
walk('src');

const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
const paths = tsconfig.compilerOptions?.paths ?? {};
for (const e of packageEntries()) {
  const mapped = paths[e.specifier]?.[0];
  if (mapped !== `./${e.source}`)
    problems.push(`tsconfig.json paths["${e.specifier}"] must be ["./${e.source}"]`);
}
for (const specifier of Object.keys(paths)) {
  if (!packageEntries().some((e) => e.specifier === specifier))
    problems.push(`tsconfig.json paths["${specifier}"] is not an export`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`check-package: ${p}`);
  process.exit(1);
}
console.log(`check-package: ${packageEntries().length} subpaths, all consistent`);
