/**
 * PATCH through the replacement shape, against a hostile client: a patch is
 * applied whole or not at all (RFC 5789 §2), so an operation on a member the
 * server owns is refused, never dropped; and a patch that is well formed and
 * applies but makes a representation the resource cannot have is a 422 (RFC
 * 5789 §2.2, "Unprocessable request"), not the 400 of a malformed document.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import { RestwellError, ValidationError } from '../../src/core/errors.js';
import {
  applyPatch,
  JSON_PATCH_MEDIA_TYPE,
  MERGE_PATCH_MEDIA_TYPE,
  patchedRepresentation,
  replacementShape,
  PatchedRepresentationError,
} from '../../src/representation/index.js';
import { adapters } from '../helpers/apps.js';

interface User {
  id: string;
  version: number;
  email: string | null;
  name: string | null;
  locale: string;
  passwordHash?: string;
}

const current: User = {
  id: 'usr_ada',
  version: 3,
  email: 'ada@example.com',
  name: 'Ada',
  locale: 'fr',
  passwordHash: 'secret-hash',
};
const { passwordHash: _hidden, ...shown } = current;

const userShape = replacementShape({
  fields: { email: null, name: null, locale: 'en' },
  readOnly: ['id', 'version'],
});

function unprocessable(fn: () => unknown): PatchedRepresentationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PatchedRepresentationError);
    return err as PatchedRepresentationError;
  }
  throw new Error('expected an PatchedRepresentationError');
}

const patch = (body: unknown, type: string) =>
  patchedRepresentation(current, applyPatch(shown, body, type), userShape);

describe('patchedRepresentation(): the resource after a PATCH, through the PUT shape', () => {
  it('takes what the patch changed, keeps server-owned and hidden members', () => {
    const next = patch({ name: 'Countess', locale: null }, MERGE_PATCH_MEDIA_TYPE);
    expect(next).toEqual({ ...current, name: 'Countess', locale: 'en' });
    expect(
      patch([{ op: 'replace', path: '/email', value: null }], JSON_PATCH_MEDIA_TYPE).email,
    ).toBeNull();
  });

  it('refuses a patch that removes a read-only member, instead of applying the rest without it', () => {
    const err = unprocessable(() =>
      patch(
        [
          { op: 'remove', path: '/id' },
          { op: 'replace', path: '/name', value: 'Countess' },
        ],
        JSON_PATCH_MEDIA_TYPE,
      ),
    );
    expect(err.status).toBe(422);
    expect(err.errors).toEqual([
      { pointer: '/id', detail: expect.stringMatching(/read-only.*cannot remove/i) },
    ]);
    // A move out of a read-only member removes it too.
    expect(
      unprocessable(() =>
        patch([{ op: 'move', from: '/version', path: '/name' }], JSON_PATCH_MEDIA_TYPE),
      ).errors.map((e) => e.pointer),
    ).toEqual(['/version']);
    expect(
      unprocessable(() => patch({ version: null }, MERGE_PATCH_MEDIA_TYPE)).errors[0]!.pointer,
    ).toBe('/version');
  });

  it('answers a changed read-only member or an added unknown one with 422, listing each', () => {
    const err = unprocessable(() =>
      patch(
        [
          { op: 'replace', path: '/id', value: 'usr_evil' },
          { op: 'copy', from: '/name', path: '/version' },
          { op: 'add', path: '/admin', value: true },
        ],
        JSON_PATCH_MEDIA_TYPE,
      ),
    );
    expect(err.code).toBe('unprocessable-entity');
    expect(err.errors.map((e) => e.pointer)).toEqual(['/id', '/version', '/admin']);
    // Pointers name the patched representation, not the patch body: no "in": "body".
    expect(err.errors.every((e) => !('in' in e))).toBe(true);
    expect(err.extensions.errors).toEqual(err.errors);
  });

  it('answers a merge patch that replaces the whole document with a non-object with 422', () => {
    for (const body of [null, [], 'x', 1]) {
      const err = unprocessable(() => patch(body, MERGE_PATCH_MEDIA_TYPE));
      expect(err.errors[0]!.pointer).toBe('');
    }
  });

  it('accepts a patch that writes a read-only member back unchanged', () => {
    expect(
      patch(
        [
          { op: 'replace', path: '/version', value: 3 },
          { op: 'test', path: '/id', value: 'usr_ada' },
        ],
        JSON_PATCH_MEDIA_TYPE,
      ),
    ).toEqual(current);
  });

  it("keeps the current read-only value with readOnlyChanges: 'ignore', a change or a removal", () => {
    const lenient = replacementShape({
      fields: { email: null, name: null, locale: 'en' },
      readOnly: ['id', 'version'],
      readOnlyChanges: 'ignore',
      unknownFields: 'drop',
    });
    const next = patchedRepresentation(
      current,
      applyPatch(
        shown,
        [
          { op: 'remove', path: '/id' },
          { op: 'replace', path: '/version', value: 99 },
          { op: 'add', path: '/admin', value: true },
        ],
        JSON_PATCH_MEDIA_TYPE,
      ),
      lenient,
    );
    expect(next).toEqual(current);
  });

  it('is a RestwellError, neither a ValidationError nor a 400', () => {
    const err = unprocessable(() => patch({ id: 'x' }, MERGE_PATCH_MEDIA_TYPE));
    expect(err).toBeInstanceOf(RestwellError);
    expect(err).not.toBeInstanceOf(ValidationError);
    expect(() => patchedRepresentation(current, {}, {} as never)).toThrow(TypeError);
  });
});

describe.each(adapters)('patchedRepresentation() in a PATCH handler on $name', (adapter) => {
  const app = () => {
    const users = new Map([[current.id, current]]);
    return adapter.build({
      use: [jsonBody()],
      routes: [
        {
          method: 'patch',
          path: '/v1/users/:id',
          handler: (req) => {
            const user = users.get(req.params.id!)!;
            const { passwordHash: _h, ...representation } = user;
            const next = patchedRepresentation(
              user,
              applyPatch(req.context, representation),
              userShape,
            );
            users.set(user.id, next);
            const { passwordHash: _n, ...body } = next;
            return { body };
          },
        },
      ],
    });
  };

  it('answers 422 problem+json naming the member, and changes nothing', async () => {
    const listener = app();
    const res = await request(listener)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', JSON_PATCH_MEDIA_TYPE)
      .send([
        { op: 'remove', path: '/version' },
        { op: 'replace', path: '/name', value: 'Countess' },
      ]);
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      status: 422,
      code: 'unprocessable-entity',
      errors: [{ pointer: '/version' }],
    });
    const ok = await request(listener)
      .patch('/v1/users/usr_ada')
      .set('Content-Type', MERGE_PATCH_MEDIA_TYPE)
      .send({ locale: 'de' });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ ...shown, locale: 'de' });
  });
});
