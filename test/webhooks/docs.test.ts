/**
 * docs/webhooks.md's TypeScript snippets compile as written: each `ts` block
 * a module of its own, with its own imports, type-checked (strict, the
 * project's settings) with every `restwell/...` subpath resolved to its source.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageEntries } from '../../scripts/package-entries.mjs';

const root = join(import.meta.dirname, '..', '..');

it('docs/webhooks.md has TypeScript snippets that compile with their own imports', () => {
  const markdown = readFileSync(join(root, 'docs', 'webhooks.md'), 'utf8');
  const blocks = [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  const dir = mkdtempSync(join(tmpdir(), 'restwell-webhooks-docs-'));
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
      throw new Error(
        `docs/webhooks.md snippets do not compile (snippet-N is the Nth ts block):\n${out}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
