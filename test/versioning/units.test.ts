/**
 * The framework-free pieces: version identifiers, path patterns, the field
 * helpers, entity-tag labels and Accept parsing.
 */
import { describe, expect, it } from 'vitest';
import { ifMatchFor, ifNoneMatchFor, labelETag } from '../../src/versioning/etag.js';
import {
  addField,
  objectsAt,
  parseVersionId,
  removeField,
  renameField,
  transformField,
} from '../../src/versioning/index.js';
import {
  acceptedVersions,
  acceptQuality,
  locate,
  versionedContentType,
} from '../../src/versioning/negotiate.js';
import { compilePathPattern, matchPathPattern } from '../../src/versioning/paths.js';
import { parseHeaderVersion } from '../../src/versioning/version-id.js';

describe('version identifiers', () => {
  it('reads majors and calendar dates, ordered within their kind', () => {
    expect(parseVersionId('v1')).toEqual({ name: 'v1', kind: 'major', order: 1 });
    expect(parseVersionId('V12')).toEqual({ name: 'v12', kind: 'major', order: 12 });
    expect(parseVersionId('v0')?.order).toBe(0);
    expect(parseVersionId('2025-06-01')).toEqual({
      name: '2025-06-01',
      kind: 'dated',
      order: Date.UTC(2025, 5, 1),
    });
    expect(parseVersionId('2024-02-29')?.kind).toBe('dated');
  });

  it.each([
    '',
    'v',
    '1',
    'v01',
    'v-1',
    'v1.2',
    'v1234567890',
    '2025-02-29',
    '2025-13-01',
    '25-01-01',
    '2025-01-01x',
    '1969-12-31',
  ])('refuses %j', (text) => {
    expect(parseVersionId(text)).toBeUndefined();
  });

  it('reads a header’s bare major and trims it', () => {
    expect(parseHeaderVersion('2')?.name).toBe('v2');
    expect(parseHeaderVersion(' v3 ')?.name).toBe('v3');
    expect(parseHeaderVersion('02')).toBeUndefined();
    expect(parseHeaderVersion('v1, v2')).toBeUndefined();
  });
});

describe('path patterns', () => {
  const match = (pattern: string, method: string, path: string) =>
    matchPathPattern(compilePathPattern(pattern, 'p'), method, path);

  it('match as the routers do: case-insensitive literals, one optional trailing slash', () => {
    expect(match('/users', 'GET', '/users')).toEqual({});
    expect(match('/users', 'GET', '/Users/')).toEqual({});
    expect(match('/users', 'GET', '/users//')).toBeUndefined();
    expect(match('/users', 'GET', '/users/7')).toBeUndefined();
    expect(match('/users', 'GET', '/us%65rs')).toBeUndefined();
    expect(match('/', 'GET', '/')).toEqual({});
  });

  it('capture parameters, decoded, and only non-empty segments', () => {
    expect(match('/users/:id', 'GET', '/users/a%20b')).toEqual({ id: 'a b' });
    expect(match('/users/:id', 'GET', '/users/%E0%A4%A')).toEqual({ id: '%E0%A4%A' });
    expect(match('/users/:id/orders/:order', 'GET', '/users/1/orders/2')).toEqual({
      id: '1',
      order: '2',
    });
    expect(match('/users/:id', 'GET', '/users/')).toBeUndefined();
  });

  it('match the rest with a final *', () => {
    expect(match('/files/*', 'GET', '/files')).toEqual({});
    expect(match('/files/*', 'GET', '/files/a/b/c')).toEqual({});
    expect(match('/files/*', 'GET', '/filesx')).toBeUndefined();
  });

  it('filter by method, a GET pattern matching HEAD too', () => {
    expect(match('POST /users', 'POST', '/users')).toEqual({});
    expect(match('post /users', 'POST', '/users')).toEqual({});
    expect(match('POST /users', 'GET', '/users')).toBeUndefined();
    expect(match('GET /users', 'HEAD', '/users')).toEqual({});
    expect(match('HEAD /users', 'GET', '/users')).toBeUndefined();
  });
});

describe('field helpers', () => {
  it('rename a member in its place, and replace an existing target', () => {
    const user: Record<string, unknown> = { id: 1, name: 'Ada', email: 'a@x', role: 'x' };
    renameField(user, 'name', 'fullName');
    expect(Object.entries(user)).toEqual([
      ['id', 1],
      ['fullName', 'Ada'],
      ['email', 'a@x'],
      ['role', 'x'],
    ]);
    const last: Record<string, unknown> = { id: 1, name: 'Ada' };
    renameField(last, 'name', 'fullName');
    expect(Object.entries(last)).toEqual([
      ['id', 1],
      ['fullName', 'Ada'],
    ]);
    const clash: Record<string, unknown> = { a: 1, b: 2 };
    renameField(clash, 'a', 'b');
    expect(clash).toEqual({ b: 1 });
  });

  it('do nothing on what is not an object, or lacks the member', () => {
    for (const value of [null, undefined, 3, 'name', ['name']]) {
      expect(() => renameField(value, 'name', 'fullName')).not.toThrow();
      expect(() => addField(value, 'x', 1)).not.toThrow();
      expect(() => removeField(value, 'x')).not.toThrow();
      expect(() => transformField(value, 'x', () => 1)).not.toThrow();
    }
    const user = { id: 1 };
    renameField(user, 'name', 'fullName');
    transformField(user, 'name', () => 'x');
    expect(user).toEqual({ id: 1 });
  });

  it('add a default, or one computed from the object, only when absent', () => {
    const user: Record<string, unknown> = { first: 'Ada', last: 'Lovelace', tier: 'pro' };
    addField(user, 'tier', 'free');
    addField(user, 'fullName', (u: Record<string, unknown>) => `${u.first} ${u.last}`);
    expect(user).toEqual({ first: 'Ada', last: 'Lovelace', tier: 'pro', fullName: 'Ada Lovelace' });
  });

  it('write __proto__ as a member, never as the prototype', () => {
    const target: Record<string, unknown> = { evil: { polluted: true } };
    renameField(target, 'evil', '__proto__');
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
    expect(Object.hasOwn(target, '__proto__')).toBe(true);
    addField(target, 'constructor', 1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('find objects at a JSON Pointer with * for every element', () => {
    const body = { data: [{ id: 1 }, 'x', { id: 2 }], meta: { a: { id: 3 } }, 'a/b': { id: 4 } };
    expect(objectsAt(body, '')).toEqual([body]);
    expect(objectsAt(body, '/data/*')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(objectsAt(body, '/data/1')).toEqual([]);
    expect(objectsAt(body, '/data/2')).toEqual([{ id: 2 }]);
    expect(objectsAt(body, '/meta/*')).toEqual([{ id: 3 }]);
    expect(objectsAt(body, '/a~1b')).toEqual([{ id: 4 }]);
    expect(objectsAt(body, '/missing/*')).toEqual([]);
    expect(objectsAt([1, 2], '')).toEqual([]);
    expect(() => objectsAt(body, 'data')).toThrow(/not a JSON Pointer/);
  });
});

describe('entity-tag labels', () => {
  const names = ['v1', 'v2', 'v3'];

  it('label strong and weak tags, and leave invalid ones', () => {
    expect(labelETag('"abc"', 'v1')).toBe('"v1~abc"');
    expect(labelETag('W/"abc"', '2025-06-01')).toBe('W/"2025-06-01~abc"');
    expect(labelETag('abc', 'v1')).toBe('abc');
  });

  it('keep only the client version’s tags in If-None-Match, unlabelled', () => {
    expect(ifNoneMatchFor('"v1~a", "v2~b", "c"', 'v1', false, names)).toBe('"a"');
    expect(ifNoneMatchFor('"v1~a", "v2~b", "c"', 'v3', true, names)).toBe('"c"');
    expect(ifNoneMatchFor('"v2~b"', 'v1', false, names)).toBeUndefined();
    expect(ifNoneMatchFor('*', 'v1', false, names)).toBe('*');
    expect(ifNoneMatchFor('not a list', 'v1', false, names)).toBe('not a list');
    expect(ifNoneMatchFor('W/"v1~a"', 'v1', false, names)).toBe('W/"a"');
    // A tag of the application's that merely contains the separator is no label.
    expect(ifNoneMatchFor('"x~y"', 'v3', true, names)).toBe('"x~y"');
  });

  it('remove every version’s label from If-Match', () => {
    expect(ifMatchFor('"v1~a", "v2~b", "c"', names)).toBe('"a", "b", "c"');
    expect(ifMatchFor('*', names)).toBe('*');
  });
});

describe('where the version is', () => {
  it('locates the routed path under the base, and only version-looking segments', () => {
    expect(locate('/v1/users/7', '', true)).toEqual({ routedPath: '/users/7', segment: 'v1' });
    expect(locate('/v1', '', true)).toEqual({ routedPath: '/', segment: 'v1' });
    expect(locate('/health', '', true)).toBeUndefined();
    expect(locate('/api/v2/users', '/api', true)).toEqual({ routedPath: '/users', segment: 'v2' });
    expect(locate('/apix/v2/users', '/api', true)).toBeUndefined();
    expect(locate('/API/users', '/api', false)).toEqual({
      routedPath: '/users',
      segment: undefined,
    });
    expect(locate('/2025-06-01/users', '', true)?.segment).toBe('2025-06-01');
  });

  it('reads versioned vendor types from Accept, with their q-values', () => {
    expect(acceptedVersions(undefined, 'acme')).toEqual({ kind: 'none' });
    expect(acceptedVersions('application/json, */*', 'acme')).toEqual({ kind: 'none' });
    expect(acceptedVersions('application/vnd.acme+json', 'acme')).toEqual({ kind: 'none' });
    expect(
      acceptedVersions('application/vnd.acme.v1+json;q=0.5, application/vnd.acme.v2+json', 'acme'),
    ).toEqual({
      kind: 'versions',
      candidates: [
        ['v1', 0.5],
        ['v2', 1],
      ],
      fallback: false,
    });
    // Another range that accepts an answer in the default version (RFC 9110 §12.5.1).
    for (const other of ['*/*', 'application/*', 'application/json', 'application/vnd.acme+json']) {
      expect(acceptedVersions(`application/vnd.acme.v9+json, ${other}`, 'acme')).toEqual({
        kind: 'versions',
        candidates: [['v9', 1]],
        fallback: true,
      });
    }
    for (const other of ['*/*;q=0', 'text/html', 'application/xml']) {
      expect(acceptedVersions(`application/vnd.acme.v9+json, ${other}`, 'acme')).toMatchObject({
        fallback: false,
      });
    }
    expect(acceptedVersions('application/vnd.other.v1+json', 'acme')).toEqual({ kind: 'none' });
    expect(acceptedVersions('text/plain; x="a, application/vnd.acme.v1+json"', 'acme')).toEqual({
      kind: 'none',
    });
  });

  it('reads a version spelt as a media-type parameter as one it will not serve', () => {
    for (const accept of [
      'application/vnd.acme+json; version=2',
      'application/json;v=2',
      'application/json; API-Version="2"',
      '*/*, application/vnd.acme.v2+json; version=2',
    ]) {
      expect(acceptedVersions(accept, 'acme'), accept).toEqual({ kind: 'parameter' });
    }
    // Refused ranges and other types' parameters name nothing.
    expect(acceptedVersions('application/json;version=2;q=0', 'acme')).toEqual({ kind: 'none' });
    expect(acceptedVersions('text/html;version=5', 'acme')).toEqual({ kind: 'none' });
  });

  it('weighs a type by its most specific range, and reads at most 64 ranges', () => {
    const json = 'application/json';
    expect(acceptQuality(undefined, json)).toBe(1);
    expect(acceptQuality('', json)).toBe(1);
    expect(acceptQuality('*/*;q=0.1, application/*;q=0.5, application/json;q=0.8', json)).toBe(0.8);
    expect(acceptQuality('*/*;q=0.1, application/*;q=0.5', json)).toBe(0.5);
    expect(acceptQuality('application/json;q=0, */*', json)).toBe(0);
    expect(acceptQuality('text/*', json)).toBe(0);
    expect(acceptQuality('APPLICATION/JSON;Q=0.3', json)).toBe(0.3);
    // A q-value outside the grammar (RFC 9110 §12.4.2) weighs as 1, never above it.
    expect(acceptQuality('application/json;q=7', json)).toBe(1);
    const many = `${'text/plain, '.repeat(64)}application/json`;
    expect(acceptQuality(many, json)).toBe(0);
  });

  it('echoes the version in a Content-Type the client accepts (RFC 9110 §12.5.1)', () => {
    const ct = (accept: string | undefined) =>
      versionedContentType('application/json; charset=utf-8', 'acme', 'v2', accept);
    expect(ct(undefined)).toBe('application/vnd.acme.v2+json; charset=utf-8');
    expect(ct('*/*')).toBe('application/vnd.acme.v2+json; charset=utf-8');
    expect(ct('application/vnd.acme.v2+json')).toBe('application/vnd.acme.v2+json; charset=utf-8');
    expect(ct('application/vnd.acme+json')).toBe('application/vnd.acme+json; charset=utf-8');
    expect(ct('application/json')).toBeUndefined();
    expect(ct('application/json, application/vnd.acme.v9+json')).toBeUndefined();
    // Nothing JSON accepted: the answer is the versioned type all the same.
    expect(ct('text/html')).toBe('application/vnd.acme.v2+json; charset=utf-8');
    expect(
      versionedContentType('application/vnd.acme+json', 'acme', 'v2', 'application/json'),
    ).toBe('application/json');
  });

  it('echoes the version in a JSON Content-Type, keeping parameters', () => {
    expect(versionedContentType('application/json; charset=utf-8', 'acme', 'v2')).toBe(
      'application/vnd.acme.v2+json; charset=utf-8',
    );
    expect(versionedContentType('application/problem+json', 'acme', 'v2')).toBeUndefined();
    expect(versionedContentType('text/plain', 'acme', 'v2')).toBeUndefined();
  });
});
