/** Exports without a doc comment yet, by specifier; the list only shrinks. */
export const KNOWN_UNDOCUMENTED: Record<string, string[]>;
/** Every problem with the package at `root`, one line each. */
export function checkPackage(options: {
  root: string;
  pkg?: unknown;
  tsconfig?: unknown;
  knownUndocumented?: Record<string, string[]>;
  /** `false` skips the check that dist/ holds every file the exports name. @default true */
  built?: boolean;
}): string[];
