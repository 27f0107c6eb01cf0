#!/usr/bin/env node
/**
 * Checks the package's shape after a build (`npm run check:package`):
 * - every export has `import` and `require` conditions, each with `types` first;
 * - every file an export names exists in dist/;
 * - every module's public face (src/<module>/index.ts) is exported, and every
 *   subpath is built from its folder's `index.ts` (`restwell/express` from
 *   `src/adapters/express/index.ts`, `restwell/errors` from `src/errors/index.ts`)
 *   or from a file of its name (`restwell/idempotency/postgres`);
 * - `typesVersions` maps every subpath to its types, for TypeScript's classic
 *   `moduleResolution: node` (node10), which does not read `exports`;
 * - every name an entry exports has a doc comment where it is declared (the
 *   names in KNOWN_UNDOCUMENTED excepted, until they get one);
 * - tsconfig.json `paths` (used by the examples) name exactly the exported subpaths.
 * Exits non-zero with one line per problem. `checkPackage()` runs the same
 * checks on any package root, for the checks' own tests.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { entriesOf } from './package-entries.mjs';

/**
 * Exports that have no doc comment yet, by subpath. The list only shrinks: a
 * name documented since is reported, so that it leaves the list, and a new
 * export must come documented.
 */
export const KNOWN_UNDOCUMENTED = {};

/**
 * Every problem with the package at `root`, one line each.
 * @param {{ root: string, pkg?: any, tsconfig?: any, knownUndocumented?: Record<string, string[]>, built?: boolean }} options
 *   `built: false` skips the check that dist/ holds every file the exports name.
 * @returns {string[]}
 */
export function checkPackage({
  root,
  pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')),
  tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')),
  knownUndocumented = KNOWN_UNDOCUMENTED,
  built = true,
}) {
  const problems = [];
  const entries = entriesOf(pkg);

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
        else if (built && !existsSync(join(root, file)))
          problems.push(
            `exports["${subpath}"].${condition}: ${file} is missing (run npm run build)`,
          );
      }
    }
  }

  const exported = new Set(entries.map((e) => e.source));
  for (const e of entries) {
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

  // Each subpath is its folder's index.ts, or a file named as its last segment.
  for (const e of entries) {
    if (e.subpath === '.') {
      if (e.source !== 'src/index.ts')
        problems.push(`the root entry must be src/index.ts, not ${e.source}`);
      continue;
    }
    const last = e.subpath.split('/').at(-1);
    if (!e.source.endsWith(`/${last}/index.ts`) && !e.source.endsWith(`/${last}.ts`))
      problems.push(
        `${e.specifier} is built from ${e.source}: expected src/.../${last}/index.ts (or src/.../${last}.ts)`,
      );
  }

  // node10 resolution ignores `exports`; typesVersions gives it each subpath's types.
  const typesVersions = pkg.typesVersions?.['*'] ?? {};
  for (const [subpath, conditions] of Object.entries(pkg.exports)) {
    if (subpath === '.' || subpath === './package.json') continue;
    const want = conditions.require?.types;
    const got = typesVersions[subpath.slice(2)];
    if (!Array.isArray(got) || got.length !== 1 || got[0] !== want)
      problems.push(`typesVersions["*"]["${subpath.slice(2)}"] must be ["${want}"]`);
  }
  for (const name of Object.keys(typesVersions)) {
    if (!(`./${name}` in pkg.exports))
      problems.push(`typesVersions["*"]["${name}"] is not an export`);
  }
  if (Object.keys(pkg.typesVersions ?? {}).some((range) => range !== '*'))
    problems.push('typesVersions has a range other than "*"');

  // Every exported name has a doc comment where it is declared, as editors show it.
  {
    const present = entries.filter((e) => existsSync(join(root, e.source)));
    const program = ts.createProgram(
      present.map((e) => join(root, e.source)),
      {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        skipLibCheck: true,
        types: ['node'],
      },
    );
    const checker = program.getTypeChecker();
    for (const e of present) {
      const file = program.getSourceFile(join(root, e.source));
      const module = file && checker.getSymbolAtLocation(file);
      if (!module) {
        problems.push(`${e.source} exports nothing`);
        continue;
      }
      const known = new Set(knownUndocumented[e.specifier] ?? []);
      for (const symbol of checker.getExportsOfModule(module)) {
        const target =
          symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        const documented = target.getDocumentationComment(checker).length > 0;
        if (!documented && !known.has(symbol.name))
          problems.push(`${e.specifier} exports ${symbol.name}, which has no doc comment`);
        if (documented && known.has(symbol.name))
          problems.push(
            `${e.specifier}: ${symbol.name} is documented now; remove it from KNOWN_UNDOCUMENTED`,
          );
        known.delete(symbol.name);
      }
      for (const name of known)
        problems.push(`${e.specifier}: KNOWN_UNDOCUMENTED lists ${name}, which it does not export`);
    }
  }

  const paths = tsconfig.compilerOptions?.paths ?? {};
  for (const e of entries) {
    const mapped = paths[e.specifier]?.[0];
    if (mapped !== `./${e.source}`)
      problems.push(`tsconfig.json paths["${e.specifier}"] must be ["./${e.source}"]`);
  }
  for (const specifier of Object.keys(paths)) {
    if (!entries.some((e) => e.specifier === specifier))
      problems.push(`tsconfig.json paths["${specifier}"] is not an export`);
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const problems = checkPackage({ root });
  if (problems.length > 0) {
    for (const p of problems) console.error(`check-package: ${p}`);
    process.exit(1);
  }
  console.log(
    `check-package: ${entriesOf(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))).length} subpaths, all consistent`,
  );
}
