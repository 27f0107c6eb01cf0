/**
 * The package's public subpaths, read from the `exports` map in package.json:
 * the one list that tsup's entries, the examples' source paths and the
 * packaging checks all derive from. `./dist/<name>.js` is built from
 * `src/<name>.ts`.
 */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** @returns {Array<{ subpath: string, specifier: string, entry: string, source: string }>} */
export function packageEntries() {
  return entriesOf(pkg);
}

/**
 * The entries of any package.json object with the same layout, for the
 * packaging checks' own tests.
 * @returns {Array<{ subpath: string, specifier: string, entry: string, source: string }>}
 */
export function entriesOf(pkg) {
  return Object.entries(pkg.exports)
    .filter(([subpath]) => subpath !== './package.json')
    .map(([subpath, conditions]) => {
      const file = conditions.import.default; // ./dist/<entry>.js
      const entry = file.replace(/^\.\/dist\//, '').replace(/\.js$/, '');
      return {
        subpath,
        specifier: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`,
        entry,
        source: `src/${entry}.ts`,
      };
    });
}

export const packageName = pkg.name;
