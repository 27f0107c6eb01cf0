/**
 * The TypeScript snippets of README.md compile as written: each `ts` block is
 * a module of its own, with the imports it needs, type-checked (strict, the
 * project's settings) with every `restwell/...` subpath of the exports map
 * resolved to its source.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageEntries } from '../../scripts/package-entries.mjs';

const root = join(import.meta.dirname, '..', '..');

function snippets(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

it('README.md has TypeScript snippets that compile with their own imports', () => {
  const blocks = snippets(readFileSync(join(root, 'README.md'), 'utf8'));
  expect(blocks.length).toBeGreaterThanOrEqual(3);
  const dir = mkdtempSync(join(tmpdir(), 'restwell-readme-'));
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
        // The project's settings; every subpath of the exports map resolves to its source.
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
      throw new Error(`README.md snippets do not compile (snippet-N is the Nth ts block):\n${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
