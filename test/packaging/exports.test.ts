/**
 * The built package works the way users load it: every subpath in the
 * `exports` map can be `import`ed and `require`d (by package self-reference,
 * so Node resolves through the exports map exactly as for an installed
 * package), both give the same names, the root exports what applications
 * call and `restwell/kit` what middleware authors need, and the types resolve
 * under `moduleResolution: node16` from ESM and CommonJS TypeScript files and
 * under the classic `node` (node10) resolution, through `typesVersions`.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageEntries } from '../../scripts/package-entries.mjs';

const root = join(import.meta.dirname, '..', '..');
const entries = packageEntries();

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const s = statSync(path);
    newest = Math.max(newest, s.isDirectory() ? newestSource(path) : s.mtimeMs);
  }
  return newest;
}

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

beforeAll(() => {
  const built = join(root, 'dist', 'index.js');
  const stale =
    !entries.every((e) => existsSync(join(root, 'dist', `${e.entry}.js`))) ||
    statSync(built).mtimeMs <
      Math.max(newestSource(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs);
  if (stale)
    execFileSync(join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], {
      cwd: root,
      stdio: 'pipe',
    });
}, 120_000);

describe('the built package', () => {
  it('is imported (ESM) and required (CJS) through every subpath, with the same names', () => {
    const specifiers = JSON.stringify(entries.map((e) => e.specifier));
    const esm = JSON.parse(
      node([
        '--input-type=module',
        '-e',
        `const out = {}; for (const s of ${specifiers}) out[s] = Object.keys(await import(s)).filter((k) => k !== 'default').sort(); console.log(JSON.stringify(out));`,
      ]),
    ) as Record<string, string[]>;
    const cjs = JSON.parse(
      node([
        '-e',
        `const out = {}; for (const s of ${specifiers}) out[s] = Object.keys(require(s)).sort(); console.log(JSON.stringify(out));`,
      ]),
    ) as Record<string, string[]>;
    for (const { specifier } of entries) {
      expect(esm[specifier], `${specifier} (import)`).not.toHaveLength(0);
      expect(cjs[specifier], `${specifier} (require)`).toEqual(esm[specifier]);
    }
  });

  it('exposes the documented entry points', () => {
    const names = JSON.parse(
      node([
        '-e',
        `console.log(JSON.stringify({ root: Object.keys(require('restwell')), express: Object.keys(require('restwell/express')), koa: Object.keys(require('restwell/koa')), redis: Object.keys(require('restwell/redis')), postgres: Object.keys(require('restwell/postgres')), memory: Object.keys(require('restwell/memory')), errors: Object.keys(require('restwell/errors')) }))`,
      ]),
    ) as Record<string, string[]>;
    expect(names.root).toEqual(
      expect.arrayContaining([
        'RestwellError',
        'compose',
        'jsonBody',
        'validate',
        'principalId',
        'MemoryStore',
      ]),
    );
    expect(names.express).toContain('expressAdapter');
    expect(names.koa).toContain('koaAdapter');
    expect(names.redis).toContain('RedisStore');
    expect(names.postgres).toEqual(expect.arrayContaining(['PostgresStore', 'migrate']));
    expect(names.memory).toContain('MemoryStore');
    expect(names.errors).toEqual(expect.arrayContaining(['RestwellError', 'ValidationError']));
    // The errors' subpath holds errors, not the option helpers that live beside them.
    for (const helper of ['checkOptions', 'invalidOption', 'describeValue', 'nearestName'])
      expect(names.errors).not.toContain(helper);
  });

  it('exports from the root what applications call, and internals from nowhere', () => {
    const names = JSON.parse(
      node([
        '-e',
        `console.log(JSON.stringify({ root: Object.keys(require('restwell')), kit: Object.keys(require('restwell/kit')) }))`,
      ]),
    ) as { root: string[]; kit: string[] };
    // The root's full runtime surface: anything more must be a decision, made here.
    expect(names.root.sort()).toEqual(
      [
        'InvalidUtf8Error',
        'JsonTooDeepError',
        'MalformedJsonError',
        'MemoryStore',
        'MethodNotAllowedError',
        'NotFoundError',
        'PROBLEM_CONTENT_TYPE',
        'PayloadTooLargeError',
        'RestwellError',
        'ServiceUnavailableError',
        'StoreFullError',
        'StoreTimeoutError',
        'StoreUnavailableError',
        'UnsupportedMediaTypeError',
        'ValidationError',
        'answerOf',
        'compose',
        'defaultLogger',
        'formatLink',
        'formatLinks',
        'hardenServer',
        'isStoreError',
        'jsonBody',
        'jsonLogger',
        'parseLinkHeader',
        'principalId',
        'silentLogger',
        'validate',
        'validated',
      ].sort(),
    );
    // What a custom middleware or store needs is in restwell/kit.
    expect(names.kit.sort()).toEqual(
      [
        'LogThrottle',
        'MAX_TTL_MS',
        'answeredBy',
        'assertLedger',
        'assertTtl',
        'bodyBytes',
        'buildProblem',
        'checkOptions',
        'claimPreconditions',
        'describeValue',
        'invalidOption',
        'isStreamBody',
        'lastResortProblemBody',
        'mediaTypeOf',
        'nearestName',
        'problemInitFrom',
        'renderLastResortProblem',
        'renderProblem',
        'responseBlind',
        'serializeError',
        'serviceUnavailable',
        'toJsonPointer',
        'valueNestsDeeperThan',
      ].sort(),
    );
    // Adapter internals are nowhere public.
    for (const internal of [
      'seesResponse',
      'preconditionsClaimed',
      'compileTrust',
      'resolveClientIp',
    ])
      expect([...names.root, ...names.kit]).not.toContain(internal);
  });

  it('does not load optional peer dependencies until their store is used', () => {
    const loaded = node([
      '-e',
      `require('restwell'); require('restwell/express'); require('restwell/koa'); require('restwell/redis'); require('restwell/postgres'); console.log(JSON.stringify(Object.keys(require.cache).filter((p) => /node_modules\\/(ioredis|pg)\\//.test(p))))`,
    ]);
    expect(JSON.parse(loaded)).toEqual([]);
  });

  it('has types that resolve from ESM and CommonJS TypeScript (moduleResolution node16)', () => {
    const dir = join(root, 'test', 'fixtures', 'packaging', 'types', '.generated');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const lines = entries.map(
      (e, i) =>
        `import * as m${i} from '${e.specifier}';\nexport const n${i}: number = Object.keys(m${i}).length;`,
    );
    writeFileSync(
      join(dir, 'esm.mts'),
      `${lines.join('\n')}\nimport { expressAdapter } from 'restwell/express';\nimport { RestwellError, type RestwellErrorCode } from 'restwell';\nexport const rw = expressAdapter({ trustProxy: 'loopback' });\nexport function codeOf(e: unknown): RestwellErrorCode | undefined { return e instanceof RestwellError ? e.code : undefined; }\n`,
    );
    writeFileSync(
      join(dir, 'cjs.cts'),
      `${entries.map((e, i) => `import m${i} = require('${e.specifier}');\nexport const n${i}: number = Object.keys(m${i}).length;`).join('\n')}\n`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (err) {
      throw new Error(
        `types do not resolve:\n${(err as { stdout?: string }).stdout ?? String(err)}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // a whole tsc run: slow on a loaded machine
  it('has types for every subpath under the classic moduleResolution node (node10)', () => {
    // As installed: node10 resolution reads node_modules/restwell/package.json and, since it
    // ignores `exports`, finds each subpath's types through `typesVersions`.
    const dir = mkdtempSync(join(tmpdir(), 'restwell-node10-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(root, join(dir, 'node_modules', 'restwell'), 'dir');
      writeFileSync(
        join(dir, 'all.ts'),
        `${entries.map((e, i) => `import * as m${i} from '${e.specifier}';\nexport const n${i}: number = Object.keys(m${i}).length;`).join('\n')}\nimport { expressAdapter } from 'restwell/express';\nimport type { Middleware } from 'restwell';\nimport { responseBlind } from 'restwell/kit';\nexport const rw = expressAdapter({ trustProxy: 'loopback' });\nexport const blind: Middleware = responseBlind(async (_ctx, next) => next());\n`,
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'commonjs',
            moduleResolution: 'node10',
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            esModuleInterop: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
          },
          files: ['all.ts'],
        }),
      );
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (err) {
      throw new Error(
        `types do not resolve under node10:\n${(err as { stdout?: string }).stdout ?? String(err)}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // a whole tsc run: slow on a loaded machine
});
