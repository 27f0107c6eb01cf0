/**
 * jose is an optional peer dependency of `restwell/auth` alone: no other
 * module may load it, and within auth only jose.ts loads it (lazily), so that
 * an application with API keys only never needs it. And the challenge
 * helpers never write a parameter a client could misparse.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bearerChallenge,
  challengesFor,
  checkRealm,
  isScopeToken,
} from '../../src/auth/challenge.js';
import { tokenDescription } from '../../src/auth/errors.js';

const root = new URL('../../', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('jose stays inside restwell/auth', () => {
  const files = sources(join(root, 'src')).map((f) => ({
    file: relative(root, f),
    text: readFileSync(f, 'utf8'),
  }));
  const loadsJose =
    /(?:^|\n)\s*import\s+(?!type\b)[^;]*from\s+'jose'|(?<!typeof )import\(\s*'jose'\s*\)(?!\.[A-Z])|require\(\s*'jose'\s*\)/;

  it('no module outside src/auth mentions it', () => {
    const outside = files.filter(
      (f) => !f.file.startsWith('src/auth/') && /['"]jose['"]/.test(f.text),
    );
    expect(outside.map((f) => f.file)).toEqual([]);
  });

  it('within src/auth only jose.ts loads it, and with a dynamic import', () => {
    const loaders = files.filter((f) => loadsJose.test(f.text)).map((f) => f.file);
    expect(loaders).toEqual(['src/auth/jose.ts']);
    expect(files.find((f) => f.file === 'src/auth/jose.ts')!.text).toMatch(/import\('jose'\)/);
  });
});

describe('challenges are always well-formed quoted-strings (RFC 6750 §3)', () => {
  it('every fixed description is one', () => {
    for (const reason of [
      'malformed',
      'expired',
      'not-yet-valid',
      'too-old',
      'inactive',
    ] as const) {
      expect(tokenDescription(reason)).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
    }
  });

  it('a value with a quote or a backslash is refused, never sent', () => {
    expect(() => bearerChallenge({ description: 'say "hi"' })).toThrow(/quoted-string/);
    expect(() => bearerChallenge({ realm: 'a\\b' })).toThrow(/quoted-string/);
    expect(() => checkRealm('auth', 'x"y')).toThrow(/realm/);
    expect(() => checkRealm('auth', 'line\nbreak')).toThrow(/realm/);
    expect(checkRealm('auth', 'Payments API')).toBe('Payments API');
  });

  it('scope tokens exclude spaces, quotes and backslashes (RFC 6749 §3.3)', () => {
    expect(isScopeToken('users:write')).toBe(true);
    for (const bad of ['', 'a b', 'a"b', 'a\\b', 'ü']) expect(isScopeToken(bad)).toBe(false);
  });

  it('the parameters come in the order of RFC 6750 §3', () => {
    expect(
      challengesFor(
        { realm: 'api', bearer: true, apiKeyHeader: 'X-API-Key' },
        { error: 'insufficient_scope', scope: 'a b' },
      ),
    ).toBe(
      'Bearer realm="api", error="insufficient_scope", scope="a b", ApiKey realm="api", header="X-API-Key"',
    );
  });
});
