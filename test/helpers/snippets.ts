/**
 * Type-checks a markdown page's TypeScript snippets as written: each `ts` block a module of its
 * own, with the imports it needs, under the project's settings (strict), with every `restwell/...`
 * subpath of the exports map resolved to its source. Throws with tsc's output, naming each block
 * `snippet-N` (the Nth `ts` block of the page).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageEntries } from '../../scripts/package-entries.mjs';

const root = join(import.meta.dirname, '..', '..');

/** The `ts` blocks of a page (a path from the repository's root), in order. */
export function snippetsOf(page: string): string[] {
  const markdown = readFileSync(join(root, page), 'utf8');
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** Compiles `blocks` (the snippets of `page`); throws when tsc reports anything. */
export function compileSnippets(page: string, blocks: readonly string[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'restwell-snippets-'));
  try {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const files = blocks.map((code, i) => {
      const file = `snippet-${i + 1}.mts`;
      writeFileSync(join(dir, file), code);
      return file;
    });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.json'),
        compilerOptions: {
          paths: Object.fromEntries(
            packageEntries().map((e) => [e.specifier, [join(root, e.source)]]),
          ),
        },
        include: [],
        files,
      }),
    );
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (err) {
      const out = (err as { stdout?: string }).stdout ?? String(err);
      throw new Error(`${page} snippets do not compile (snippet-N is the Nth ts block):\n${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
