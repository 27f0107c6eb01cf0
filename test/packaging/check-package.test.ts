/**
 * scripts/check-package.mjs, on a small fixture package
 * (test/fixtures/packaging/check): it finds each kind of problem it promises
 * to, and nothing on a package without them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPackage } from '../../scripts/check-package.mjs';

const root = join(import.meta.dirname, '..', 'fixtures', 'packaging', 'check');
const pkg = () => JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const known = { 'fixture/things': ['undocumented'] };
const check = (overrides: { pkg?: unknown; knownUndocumented?: Record<string, string[]> } = {}) =>
  checkPackage({ root, built: false, knownUndocumented: known, ...overrides });

describe('check-package', () => {
  it('finds nothing wrong with a consistent package', () => {
    expect(check()).toEqual([]);
  });

  it('reports an export without a doc comment, and a listed name documented since', () => {
    expect(check({ knownUndocumented: {} })).toEqual([
      'fixture/things exports undocumented, which has no doc comment',
    ]);
    expect(check({ knownUndocumented: { ...known, fixture: ['answer'] } })).toEqual([
      'fixture: answer is documented now; remove it from KNOWN_UNDOCUMENTED',
    ]);
  });

  it('reports a subpath without typesVersions types, which node10 resolution would not find', () => {
    const p = pkg();
    delete p.typesVersions;
    expect(check({ pkg: p })).toEqual([
      'typesVersions["*"]["things"] must be ["./dist/things/index.d.cts"]',
    ]);
  });

  it('reports a subpath not built from its folder’s index.ts', () => {
    const p = pkg();
    p.exports['./stuff'] = p.exports['./things'];
    p.typesVersions['*'].stuff = ['./dist/things/index.d.cts'];
    expect(check({ pkg: p })).toEqual(
      expect.arrayContaining([
        'fixture/stuff is built from src/things/index.ts: expected src/.../stuff/index.ts (or src/.../stuff.ts)',
      ]),
    );
  });

  it('reports a module’s index.ts that is not exported', () => {
    const p = pkg();
    delete p.exports['./things'];
    delete p.typesVersions['*'].things;
    expect(check({ pkg: p, knownUndocumented: {} })).toEqual(
      expect.arrayContaining([
        "src/things/index.ts is a module's public face but is not in package.json exports",
      ]),
    );
  });
});
