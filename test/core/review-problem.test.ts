/**
 * What a problems.map may return, and what a Content-Type must look like: a
 * result that is not a problem (a status outside 400-599) is the last-resort
 * 500, never a 500 carrying the map's code; a value without type/subtype is
 * no media type at all.
 */
import { describe, expect, it } from 'vitest';
import { mediaTypeOf } from '../../src/core/body.js';
import { renderProblem } from '../../src/core/problem.js';
import { fakeContext } from './fake.js';

describe('problems.map returning a status that is not an error status', () => {
  it.each([200, 302, 600, 404.5, Number.NaN, '404'])(
    'status %s gives the last-resort 500 and logs the failure',
    (status) => {
      const ctx = fakeContext();
      const doc = renderProblem(ctx, new Error('x'), {
        map: () => ({ status: status as number, code: 'bad-request', detail: 'mapped' }),
      });
      expect(doc.status).toBe(500);
      expect(doc.code).toBe('internal-error');
      expect(ctx.response.status).toBe(500);
      expect(String(ctx.response.body)).toContain('"code":"internal-error"');
      expect(String(ctx.response.body)).not.toContain('mapped');
      expect(ctx.logs[0]?.message).toMatch(/last-resort/);
    },
  );

  it('a valid status is kept', () => {
    const ctx = fakeContext();
    const doc = renderProblem(ctx, new Error('x'), {
      map: () => ({ status: 409, code: 'conflict', detail: 'mapped' }),
    });
    expect(doc).toMatchObject({ status: 409, code: 'conflict', detail: 'mapped' });
  });
});

describe('mediaTypeOf: type "/" subtype (RFC 9110 §8.3.1)', () => {
  it.each(['+json', 'json', '/json', 'application/', ';charset=utf-8', '/'])(
    '%s is no media type',
    (value) => {
      expect(mediaTypeOf(value)).toBeUndefined();
    },
  );

  it('keeps a real one', () => {
    expect(mediaTypeOf('application/vnd.api+json; charset=utf-8')).toBe('application/vnd.api+json');
  });
});
