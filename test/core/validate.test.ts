import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/core/errors.js';
import { validate } from '../../src/core/validate.js';
import { fakeContext } from './fake.js';

const User = z.object({ email: z.email(), name: z.string().min(1), age: z.number().int() });

async function failure(body: unknown, maxErrors?: number): Promise<ValidationError> {
  const ctx = fakeContext();
  ctx.request.body = body;
  try {
    await validate({ body: User }, maxErrors === undefined ? {} : { maxErrors })(
      ctx,
      async () => {},
    );
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('validate() let an invalid body through');
}

const threeBad = { email: 'nope', name: '', age: 1.5 };

describe('validate(): the count in the detail', () => {
  it('maxErrors: 1 with three invalid fields says "1 or more", not "One field"', async () => {
    const err = await failure(threeBad, 1);
    expect(err.errors).toHaveLength(1);
    expect(err.detail).toBe('1 or more fields are invalid.');
    expect(err.extensions).toMatchObject({ errorsTruncated: true });
  });

  it('maxErrors: 2 with three invalid fields says "2 or more"', async () => {
    const err = await failure(threeBad, 2);
    expect(err.errors).toHaveLength(2);
    expect(err.detail).toBe('2 or more fields are invalid.');
  });

  it('every issue listed: the exact count, no truncation flag', async () => {
    const err = await failure(threeBad);
    expect(err.errors.map((e) => e.pointer)).toEqual(['/email', '/name', '/age']);
    expect(err.detail).toBe('3 fields are invalid.');
    expect(err.extensions).not.toHaveProperty('errorsTruncated');
  });

  it('exactly maxErrors issues is not truncated', async () => {
    const err = await failure(threeBad, 3);
    expect(err.detail).toBe('3 fields are invalid.');
    expect(err.extensions).not.toHaveProperty('errorsTruncated');
  });

  it('one invalid field says "One field is invalid."', async () => {
    const err = await failure({ email: 'a@example.com', name: 'A', age: 'x' }, 1);
    expect(err.detail).toBe('One field is invalid.');
  });

  it('counts fields, not issues: one field breaking two rules is one field', async () => {
    const ctx = fakeContext();
    ctx.request.body = { code: 'ab' };
    const Code = z.object({
      code: z
        .string()
        .min(5)
        .regex(/^[0-9]+$/),
    });
    const err = await Promise.resolve(validate({ body: Code })(ctx, async () => {})).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).errors).toHaveLength(2);
    expect((err as ValidationError).detail).toBe('One field is invalid.');
  });

  it('the same pointer in two parts is two fields', () => {
    const err = new ValidationError([
      { pointer: '/id', detail: 'bad', in: 'query' },
      { pointer: '/id', detail: 'bad', in: 'params' },
    ]);
    expect(err.detail).toBe('2 fields are invalid.');
  });
});

describe('validate(): bodies a framework parser produced are bounded in depth', () => {
  type Tree = { child?: Tree };
  const TreeSchema: z.ZodType<Tree> = z.lazy(() => z.object({ child: TreeSchema.optional() }));
  const deep = (levels: number): Tree => {
    let node: Tree = {};
    for (let i = 0; i < levels; i++) node = { child: node };
    return node;
  };

  it('refuses an 8,000-level body with 400 json-too-deep before a recursive schema walks it', async () => {
    const ctx = fakeContext();
    ctx.request.body = deep(8000);
    await expect(validate({ body: TreeSchema })(ctx, async () => {})).rejects.toMatchObject({
      status: 400,
      code: 'json-too-deep',
    });
  });

  it('validates a body within maxDepth, and one jsonBody() already bounded (raw bytes kept)', async () => {
    const ctx = fakeContext();
    ctx.request.body = deep(10);
    await expect(validate({ body: TreeSchema })(ctx, async () => {})).resolves.toBeUndefined();
    const parsed = fakeContext();
    parsed.request.body = deep(80);
    parsed.request.rawBody = new Uint8Array(1);
    await expect(validate({ body: TreeSchema })(parsed, async () => {})).resolves.toBeUndefined();
    const strict = fakeContext();
    strict.request.body = deep(80);
    await expect(
      validate({ body: TreeSchema }, { maxDepth: 100 })(strict, async () => {}),
    ).resolves.toBeUndefined();
  });

  it('names the nearest option for a typo in the schemas or the options', () => {
    expect(() => validate({ qurey: z.object({}) } as never)).toThrow(/Did you mean "query"/);
    expect(() => validate({ body: User }, { maxError: 1 } as never)).toThrow(
      /Did you mean "maxErrors"/,
    );
  });
});
