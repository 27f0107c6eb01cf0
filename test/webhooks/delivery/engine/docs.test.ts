/**
 * docs/webhook-delivery.md's TypeScript snippets compile as written, each
 * `ts` block a module of its own. `restwell/webhooks` resolves to the
 * delivery barrel (which the package's `restwell/webhooks` re-exports), the
 * other subpaths to their sources.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { packageEntries } from '../../../../scripts/package-entries.mjs';

const root = join(import.meta.dirname, '..', '..', '..', '..');

it('docs/webhook-delivery.md has TypeScript snippets that compile with their own imports', () => {
  const markdown = readFileSync(join(root, 'docs', 'webhook-delivery.md'), 'utf8');
  const blocks = [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  const dir = mkdtempSync(join(tmpdir(), 'restwell-webhook-delivery-docs-'));
  try {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const files = blocks.map((code, i) => {
      const file = `snippet-${i + 1}.mts`;
      writeFileSync(join(dir, file), code);
      return file;
    });
    const paths: Record<string, string[]> = Object.fromEntries(
      packageEntries().map((e) => [e.specifier, [join(root, e.source)]]),
    );
    paths['restwell/webhooks'] = [join(root, 'src', 'webhooks', 'index.ts')];
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.json'),
        compilerOptions: { paths },
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
      throw new Error(`docs/webhook-delivery.md snippets do not compile:\n${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
