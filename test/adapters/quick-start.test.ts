/**
 * The quick starts compile as written, under `strict`, with the request body
 * typed by the schema: the `ts` code block under each "Quick start" heading is
 * written to a project of its own that resolves `restwell/*` to the sources,
 * and type-checked with tsc.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const SUBPATHS: Record<string, string> = {
  restwell: 'src/index.ts',
  'restwell/errors': 'src/core/errors.ts',
  'restwell/express': 'src/adapters/express/index.ts',
  'restwell/koa': 'src/adapters/koa/index.ts',
  'restwell/memory': 'src/stores/memory/index.ts',
  'restwell/idempotency': 'src/idempotency/index.ts',
  'restwell/rate-limit': 'src/rate-limit/index.ts',
  'restwell/conditional': 'src/conditional/index.ts',
  'restwell/compression': 'src/compression/index.ts',
};

/** The first ```ts block under each `## Quick start: <name>` heading. */
function quickStarts(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const heading = /^## Quick start: (.+)$/gm;
  for (let m = heading.exec(markdown); m !== null; m = heading.exec(markdown)) {
    const rest = markdown.slice(m.index + m[0].length);
    const block = /^```ts\n([\s\S]*?)^```/m.exec(rest);
    const next = rest.search(/^## /m);
    if (block !== null && (next < 0 || block.index < next)) {
      out.set((m[1] ?? '').trim().toLowerCase(), block[1] ?? '');
    }
  }
  return out;
}

async function typeCheck(files: Map<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'restwell-quick-start-'));
  try {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    mkdirSync(join(dir, 'app'));
    const names: string[] = [];
    for (const [name, code] of files) {
      const file = `app/${name}.ts`;
      // `export {}` keeps each quick start a module of its own.
      writeFileSync(join(dir, file), `${code}\nexport {};\n`);
      names.push(file);
    }
    const paths = Object.fromEntries(
      Object.entries(SUBPATHS).map(([spec, file]) => [spec, [join(root, file)]]),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          esModuleInterop: true,
          types: ['node'],
          paths,
        },
        files: names,
      }),
    );
    const tsc = join(root, 'node_modules/typescript/lib/tsc.js');
    try {
      await promisify(execFile)(process.execPath, [tsc, '-p', dir], { cwd: dir });
      return '';
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      // Only the quick starts' own errors: what the sources would report is another test's.
      return `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('quickStarts()', () => {
  it('finds the ts block under each quick start heading', () => {
    const md =
      '# x\n\n## Quick start: A\n\n```ts\nconst a = 1;\n```\n\n## Other\n\n```ts\nno\n```\n';
    expect([...quickStarts(md)]).toEqual([['a', 'const a = 1;\n']]);
  });
});

// README.md and docs/adapters.md both carry the quick starts; both are held to compiling.
describe.each(['docs/adapters.md', 'README.md'])('the quick starts of %s', (file) => {
  const blocks = quickStarts(readFileSync(join(root, file), 'utf8'));

  it('include Express and Koa', () => {
    expect([...blocks.keys()].sort()).toEqual(['express', 'koa']);
  });

  it('compile under strict with the body typed by the schema', async () => {
    expect(await typeCheck(blocks)).toBe('');
  }, 120_000);
});
