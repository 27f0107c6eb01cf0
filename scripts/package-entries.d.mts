export interface PackageEntry {
  /** The key in the exports map: `.`, `./express`, ... */
  subpath: string;
  /** What users import: `restwell`, `restwell/express`, ... */
  specifier: string;
  /** The tsup entry name: `index`, `adapters/express/index`, ... */
  entry: string;
  /** The source file: `src/index.ts`, ... */
  source: string;
}
export function packageEntries(): PackageEntry[];
export function entriesOf(pkg: { name: string; exports: Record<string, unknown> }): PackageEntry[];
export const packageName: string;
