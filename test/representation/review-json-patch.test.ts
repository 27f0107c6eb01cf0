/**
 * JSON Patch against a hostile client: documents that are JavaScript objects
 * rather than parsed JSON, and patches that try to make the server work or
 * write far more than the patch itself holds.
 */
import { describe, expect, it } from 'vitest';
import {
  applyJsonPatch,
  JsonPatchConflictError,
  JsonPatchUnprocessableError,
} from '../../src/representation/index.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function conflict(fn: () => unknown): JsonPatchConflictError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(JsonPatchConflictError);
  return err as JsonPatchConflictError;
}

function unprocessable(fn: () => unknown): JsonPatchUnprocessableError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(JsonPatchUnprocessableError);
  return err as JsonPatchUnprocessableError;
}

describe('applyJsonPatch reads the document as JSON.stringify writes it', () => {
  it('a non-enumerable member is not in the representation: test and copy cannot reach it', () => {
    const user: Record<string, unknown> = { id: 'usr_ada', name: 'Ada' };
    Object.defineProperty(user, 'passwordHash', { value: 'secret-hash', enumerable: false });
    expect(JSON.stringify(user)).toBe('{"id":"usr_ada","name":"Ada"}');
    expect(
      conflict(() =>
        applyJsonPatch(user, [{ op: 'test', path: '/passwordHash', value: 'secret-hash' }]),
      ).reason,
    ).toBe('path-not-found');
    expect(
      conflict(() => applyJsonPatch(user, [{ op: 'copy', from: '/passwordHash', path: '/leak' }]))
        .reason,
    ).toBe('from-not-found');
    expect(
      conflict(() => applyJsonPatch(user, [{ op: 'move', from: '/passwordHash', path: '/leak' }]))
        .reason,
    ).toBe('from-not-found');
    // add sets a member the client can then see, as on any object without it.
    expect(applyJsonPatch(user, [{ op: 'add', path: '/passwordHash', value: 'x' }])).toEqual({
      id: 'usr_ada',
      name: 'Ada',
      passwordHash: 'x',
    });
  });

  it('a member whose value is undefined is absent, as in the JSON the client read', () => {
    const payment = { id: 'pay_1', amount: 100, description: undefined };
    expect(JSON.stringify(payment)).toBe('{"id":"pay_1","amount":100}');
    expect(
      conflict(() => applyJsonPatch(payment, [{ op: 'remove', path: '/description' }])).reason,
    ).toBe('path-not-found');
    expect(
      conflict(() => applyJsonPatch(payment, [{ op: 'replace', path: '/description', value: 'x' }]))
        .reason,
    ).toBe('path-not-found');
    expect(
      applyJsonPatch(payment, [{ op: 'add', path: '/description', value: 'Lunch' }]),
    ).toMatchObject({ description: 'Lunch' });
  });

  it('test compares what the client read: undefined members left out, holes and undefined elements as null', () => {
    const doc = { a: { x: 1, y: undefined }, list: [1, undefined, 3], holes: new Array<number>(2) };
    doc.holes[1] = 2;
    expect(JSON.parse(JSON.stringify(doc))).toEqual({
      a: { x: 1 },
      list: [1, null, 3],
      holes: [null, 2],
    });
    expect(() =>
      applyJsonPatch(doc, [
        { op: 'test', path: '/a', value: { x: 1 } },
        { op: 'test', path: '/list', value: [1, null, 3] },
        { op: 'test', path: '/list/1', value: null },
        { op: 'test', path: '/holes', value: [null, 2] },
        { op: 'test', path: '/holes/0', value: null },
        { op: 'test', path: '', value: { a: { x: 1 }, list: [1, null, 3], holes: [null, 2] } },
      ]),
    ).not.toThrow();
    expect(
      conflict(() => applyJsonPatch(doc, [{ op: 'test', path: '/a', value: { x: 1, y: null } }]))
        .reason,
    ).toBe('test-failed');
    // A copied hole is the null the client saw, never undefined.
    const copied = applyJsonPatch<{ c: unknown }>(doc, [
      { op: 'copy', from: '/holes/0', path: '/c' },
    ]);
    expect(copied.c).toBeNull();
  });

  it('test compares a member holding a toJSON object as what it serialises to, at any depth', () => {
    const doc = { events: [{ at: new Date(0), note: undefined }] };
    expect(() =>
      applyJsonPatch(doc, [
        { op: 'test', path: '/events', value: [{ at: '1970-01-01T00:00:00.000Z' }] },
      ]),
    ).not.toThrow();
  });
});

describe('applyJsonPatch bounds what copies write, not only how many values they make', () => {
  it('a string counts one per character against maxCopiedValues', () => {
    const text = 'x'.repeat(1000);
    expect(
      unprocessable(() =>
        applyJsonPatch({ text }, [{ op: 'copy', from: '/text', path: '/again' }], {
          maxCopiedValues: 999,
        }),
      ).reason,
    ).toBe('copy-too-large');
    expect(
      applyJsonPatch({ text }, [{ op: 'copy', from: '/text', path: '/again' }], {
        maxCopiedValues: 1000,
      }),
    ).toEqual({ text, again: text });
    // The empty string still counts one, as every other value does.
    expect(
      unprocessable(() =>
        applyJsonPatch({ a: ['', ''] }, [{ op: 'copy', from: '/a', path: '/b' }], {
          maxCopiedValues: 2,
        }),
      ).reason,
    ).toBe('copy-too-large');
  });

  it('a patch of copies of one large string is a 422, never a response too large to serialise', () => {
    const large = 'x'.repeat(1_000_000);
    const patch: unknown[] = [{ op: 'add', path: '/s', value: large }];
    for (let i = 0; i < 999; i++) patch.push({ op: 'copy', from: '/s', path: `/c${i}` });
    const err = unprocessable(() => applyJsonPatch({}, patch));
    expect(err.reason).toBe('copy-too-large');
    expect(err.operation).toBe(1);
    // The same from the document: a large member copied over and over.
    const copies = Array.from({ length: 999 }, (_, i) => ({
      op: 'copy',
      from: '/bio',
      path: `/c${i}`,
    }));
    expect(unprocessable(() => applyJsonPatch({ bio: large }, copies)).reason).toBe(
      'copy-too-large',
    );
  });
});

describe('applyJsonPatch bounds the work of depth checks', () => {
  it('moving a large subtree down and back, hundreds of times, walks it once', () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => ({ i }));
    const patch: unknown[] = [];
    for (let i = 0; i < 500; i++) {
      patch.push({ op: 'move', from: '/rows', path: '/x/rows' });
      patch.push({ op: 'move', from: '/x/rows', path: '/rows' });
    }
    const started = performance.now();
    const out = applyJsonPatch<{ rows: unknown[]; x: object }>({ rows, x: {} }, patch);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(out.rows).toBe(rows);
    expect(out.x).toEqual({});
  });

  it('a subtree changed between moves is measured again', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 60; i++) deep = [deep];
    const doc = { a: { b: [] as unknown[] }, x: { y: {} } };
    // Moved down once while shallow, then made deeper, then moved down again: refused.
    const err = unprocessable(() =>
      applyJsonPatch(doc, [
        { op: 'move', from: '/a', path: '/x/y/a' },
        { op: 'move', from: '/x/y/a', path: '/a' },
        { op: 'add', path: '/a/b/-', value: deep },
        { op: 'move', from: '/a', path: '/x/y/a' },
      ]),
    );
    expect(err.reason).toBe('result-too-deep');
    expect(err.operation).toBe(3);
    expect(doc).toEqual({ a: { b: [] }, x: { y: {} } });
  });

  it('a subtree measured before still counts inside a larger one moved later', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 60; i++) deep = [deep];
    const doc = { p: { q: {}, deep }, x: { y: {} } };
    // The first move measures /p/deep (60 levels) as it goes under /p/q; then /p (1 + 1 + 60
    // levels) cannot go three levels down: 3 + 62 > 64.
    const err = unprocessable(() =>
      applyJsonPatch(doc, [
        { op: 'move', from: '/p/deep', path: '/p/q/deep' },
        { op: 'move', from: '/p', path: '/x/y/p' },
      ]),
    );
    expect(err.reason).toBe('result-too-deep');
    expect(err.operation).toBe(1);
    expect(() =>
      applyJsonPatch(doc, [
        { op: 'move', from: '/p/deep', path: '/p/q/deep' },
        { op: 'move', from: '/p', path: '/x/p' },
      ]),
    ).not.toThrow();
  });

  it('a large owned subtree moved down and back is walked once too', () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => ({ i }));
    // The first operation copies /rows into the working document; the moves then carry that copy.
    const patch: unknown[] = [{ op: 'add', path: '/rows/-', value: { i: -1 } }];
    for (let i = 0; i < 499; i++) {
      patch.push({ op: 'move', from: '/rows', path: '/x/rows' });
      patch.push({ op: 'move', from: '/x/rows', path: '/rows' });
    }
    const started = performance.now();
    const out = applyJsonPatch<{ rows: unknown[] }>({ rows, x: {} }, patch);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(out.rows).toHaveLength(100_001);
    expect(rows).toHaveLength(100_000);
  });
});
