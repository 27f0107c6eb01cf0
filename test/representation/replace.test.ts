import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonBody } from '../../src/core/body.js';
import { ValidationError } from '../../src/core/errors.js';
import { validate } from '../../src/core/validate.js';
import {
  applyPatch,
  JSON_PATCH_MEDIA_TYPE,
  JsonPatchConflictError,
  MERGE_PATCH_MEDIA_TYPE,
  replacementShape,
  replaceRepresentation,
} from '../../src/representation/index.js';
import { adapters } from '../helpers/apps.js';

interface User {
  id: string;
  version: number;
  createdAt: string;
  email: string | null;
  name: string | null;
  nickname: string | null;
  locale: string;
  tags: string[];
  passwordHash?: string;
}

const current: User = {
  id: 'usr_ada',
  version: 3,
  createdAt: '2026-01-01T00:00:00.000Z',
  email: 'ada@example.com',
  name: 'Ada',
  nickname: 'A',
  locale: 'fr',
  tags: ['math'],
  passwordHash: 'secret-hash',
};

const userShape = replacementShape({
  fields: { email: null, name: null, nickname: null, locale: 'en', tags: [] },
  readOnly: ['id', 'version', 'createdAt'],
});

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('replaceRepresentation(): PUT replaces, as stated (RFC 9110 §9.3.4)', () => {
  it('sets every field the body leaves out to its default, and keeps what the server owns', () => {
    const next = replaceRepresentation(current, { name: 'Alice' }, userShape);
    expect(next).toEqual({
      id: 'usr_ada',
      version: 3,
      createdAt: '2026-01-01T00:00:00.000Z',
      email: null,
      name: 'Alice',
      nickname: null,
      locale: 'en',
      tags: [],
      passwordHash: 'secret-hash',
    });
  });

  it('keeps an explicit null as null, and takes every value the body gives', () => {
    const next = replaceRepresentation(
      current,
      { email: 'x@example.com', name: null, nickname: 'X', locale: 'de', tags: ['a'] },
      userShape,
    );
    expect(next).toMatchObject({
      email: 'x@example.com',
      name: null,
      nickname: 'X',
      locale: 'de',
      tags: ['a'],
    });
  });

  it('accepts the representation sent back as read, read-only members included', () => {
    const { passwordHash: _hidden, ...shown } = current;
    expect(replaceRepresentation(current, shown, userShape)).toEqual(current);
  });

  it('changes neither argument, and never shares a default between results', () => {
    const input = { name: 'B' };
    const before = structuredClone(current);
    const a = replaceRepresentation(current, input, userShape);
    const b = replaceRepresentation(current, input, userShape);
    expect(current).toEqual(before);
    expect(input).toEqual({ name: 'B' });
    a.tags.push('changed');
    expect(b.tags).toEqual([]);
    expect(userShape.fields.tags).toEqual([]);
  });

  it('refuses unknown members, listing every one with a pointer into the body', () => {
    const err = validationError(() =>
      replaceRepresentation(current, { name: 'A', emial: 'typo', 'a/b': 1 }, userShape),
    );
    expect(err.status).toBe(400);
    expect(err.code).toBe('validation-failed');
    expect(err.errors.map((e) => e.pointer)).toEqual(['/emial', '/a~1b']);
    expect(err.errors[0]?.in).toBe('body');
    expect(err.errors[0]?.detail).toContain('email, name, nickname, locale, tags');
  });

  it("drops unknown members with unknownFields: 'drop'", () => {
    const shape = replacementShape({ fields: { name: null }, unknownFields: 'drop' });
    expect(replaceRepresentation({ name: 'A' }, { name: 'B', extra: 1 }, shape)).toEqual({
      name: 'B',
    });
  });

  it('refuses a changed read-only member, and lists it with unknown ones at once', () => {
    const err = validationError(() =>
      replaceRepresentation(current, { id: 'usr_other', version: 4, bogus: true }, userShape),
    );
    expect(err.errors.map((e) => e.pointer)).toEqual(['/id', '/version', '/bogus']);
    expect(err.errors[0]?.detail).toMatch(/^Read-only/);
  });

  it("keeps the current read-only value with readOnlyChanges: 'ignore'", () => {
    const shape = replacementShape({
      fields: { name: null },
      readOnly: ['id'],
      readOnlyChanges: 'ignore',
    });
    expect(replaceRepresentation({ id: 'a', name: 'x' }, { id: 'b', name: 'y' }, shape)).toEqual({
      id: 'a',
      name: 'y',
    });
  });

  it('compares read-only members as JSON: a Date equals the ISO string a client read', () => {
    const shape = replacementShape({ fields: { name: null }, readOnly: ['createdAt'] });
    const stored = { createdAt: new Date(0), name: 'A' };
    const next = replaceRepresentation(
      stored,
      { createdAt: '1970-01-01T00:00:00.000Z', name: 'B' },
      shape,
    );
    expect(next.createdAt).toBe(stored.createdAt);
    expect(() =>
      replaceRepresentation(stored, { createdAt: '2000-01-01T00:00:00.000Z' }, shape),
    ).toThrow(ValidationError);
  });

  it('on a PUT that creates (no current), refuses read-only members the client chose', () => {
    expect(replaceRepresentation(undefined, { name: 'New' }, userShape)).toEqual({
      email: null,
      name: 'New',
      nickname: null,
      locale: 'en',
      tags: [],
    });
    expect(() => replaceRepresentation(null, { id: 'mine' }, userShape)).toThrow(ValidationError);
  });

  it('refuses a body that is not an object', () => {
    for (const body of [null, [], 'text', 5, undefined]) {
      const err = validationError(() => replaceRepresentation(current, body, userShape));
      expect(err.errors[0]?.pointer).toBe('');
    }
  });

  it('never touches a prototype: __proto__ in the body is an unknown member, or a field', () => {
    const body: unknown = JSON.parse('{"__proto__":{"polluted":true},"name":"A"}');
    expect(() => replaceRepresentation(current, body, userShape)).toThrow(ValidationError);
    const shape = replacementShape({ fields: { name: null, ['__proto__']: null } });
    const next = replaceRepresentation({}, body, shape) as Record<string, unknown>;
    expect(Object.getPrototypeOf(next)).toBe(Object.prototype);
    expect(Object.hasOwn(next, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('PATCH through the shape: apply the patch to the representation, then replace with the result', () => {
  const { passwordHash: _hidden, ...shown } = current;
  const patch = (body: unknown, type: string) =>
    replaceRepresentation(current, applyPatch(shown, body, type), userShape);

  it('keeps server-owned and hidden members, whichever format the patch is in', () => {
    const merged = patch({ name: 'Countess', nickname: null }, MERGE_PATCH_MEDIA_TYPE);
    expect(merged).toMatchObject({ id: 'usr_ada', version: 3, name: 'Countess', nickname: null });
    expect(merged.passwordHash).toBe('secret-hash');
    const listed = patch([{ op: 'add', path: '/tags/-', value: 'poetry' }], JSON_PATCH_MEDIA_TYPE);
    expect(listed.tags).toEqual(['math', 'poetry']);
    expect(listed.passwordHash).toBe('secret-hash');
  });

  it('refuses a patch that changes a read-only member or adds an unknown one', () => {
    expect(() =>
      patch([{ op: 'replace', path: '/id', value: 'usr_evil' }], JSON_PATCH_MEDIA_TYPE),
    ).toThrow(ValidationError);
    expect(() => patch({ version: 99 }, MERGE_PATCH_MEDIA_TYPE)).toThrow(ValidationError);
    expect(() => patch({ admin: true }, MERGE_PATCH_MEDIA_TYPE)).toThrow(ValidationError);
  });

  it('a member a merge patch removes takes its default, as a PUT leaving it out would', () => {
    expect(patch({ locale: null }, MERGE_PATCH_MEDIA_TYPE).locale).toBe('en');
  });

  it('hidden members cannot be probed by a test operation: they are not in the representation', () => {
    expect(() =>
      patch([{ op: 'test', path: '/passwordHash', value: 'secret-hash' }], JSON_PATCH_MEDIA_TYPE),
    ).toThrow(JsonPatchConflictError);
  });
});

describe('replacementShape(): checked once, at construction', () => {
  it('refuses unknown options, with hints', () => {
    expect(() => replacementShape({ fields: { a: null }, readonly: [] } as never)).toThrow(
      /Did you mean "readOnly"/,
    );
    expect(() => replacementShape({ fields: { a: null }, strict: true } as never)).toThrow(
      /unknownFields/,
    );
  });

  it('refuses bad declarations', () => {
    expect(() => replacementShape({} as never)).toThrow(/fields/);
    expect(() => replacementShape({ fields: {} })).toThrow(/at least one/);
    expect(() => replacementShape({ fields: { a: undefined } })).toThrow(/fields\.a/);
    expect(() => replacementShape({ fields: { a: new Date() } })).toThrow(/JSON value/);
    expect(() => replacementShape({ fields: { a: null }, readOnly: ['a'] })).toThrow(/both/);
    expect(() => replacementShape({ fields: { a: null }, readOnly: 'id' as never })).toThrow(
      /readOnly/,
    );
    expect(() => replacementShape({ fields: { a: null }, unknownFields: 'keep' as never })).toThrow(
      /unknownFields/,
    );
    expect(() =>
      replacementShape({ fields: { a: null }, readOnlyChanges: 'allow' as never }),
    ).toThrow(/readOnlyChanges/);
  });

  it('refuses a shape that did not come from replacementShape()', () => {
    expect(() =>
      replaceRepresentation({}, {}, {
        fields: { a: null },
        readOnly: [],
        unknownFields: 'drop',
        readOnlyChanges: 'ignore',
      } as never),
    ).toThrow(/replacementShape/);
  });
});

describe.each(adapters)(
  'PUT with a Standard Schema and replaceRepresentation() on $name',
  (adapter) => {
    // The schema checks types and fills defaults (zod .default()); a loose object lets unknown and
    // read-only members through to replaceRepresentation(), which refuses them by name.
    const ReplaceUser = z.looseObject({
      email: z.email().nullable().default(null),
      name: z.string().min(1),
      nickname: z.string().nullable().default(null),
      locale: z.string().default('en'),
      tags: z.array(z.string()).default([]),
    });

    function app() {
      const users = new Map([[current.id, current]]);
      return adapter.build({
        use: [jsonBody()],
        routes: [
          {
            method: 'put',
            path: '/v1/users/:id',
            use: [validate({ body: ReplaceUser })],
            handler: (req) => {
              const next = replaceRepresentation(users.get(req.params.id!), req.body, userShape);
              users.set(req.params.id!, next);
              const { passwordHash: _hidden, ...shown } = next;
              return { body: shown };
            },
          },
        ],
      });
    }

    it('a partial PUT resets what it leaves out to the defaults, stated in the schema and the shape', async () => {
      const res = await request(app()).put('/v1/users/usr_ada').send({ name: 'Alice' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        id: 'usr_ada',
        version: 3,
        createdAt: '2026-01-01T00:00:00.000Z',
        email: null,
        name: 'Alice',
        nickname: null,
        locale: 'en',
        tags: [],
      });
    });

    it('the schema refuses bad values; replaceRepresentation() refuses unknown and read-only members', async () => {
      const bad = await request(app()).put('/v1/users/usr_ada').send({ email: 'nope' });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('validation-failed');
      const unknown = await request(app())
        .put('/v1/users/usr_ada')
        .send({ name: 'A', id: 'usr_evil', admin: true });
      expect(unknown.status).toBe(400);
      expect(unknown.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual([
        '/id',
        '/admin',
      ]);
    });
  },
);
