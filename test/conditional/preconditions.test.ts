/**
 * evaluatePreconditions(): RFC 9110 §13.1 (each field) and §13.2.2 (their
 * order), on plain values.
 */
import { describe, expect, it } from 'vitest';
import {
  evaluatePreconditions,
  hasPreconditions,
  type Validators,
} from '../../src/conditional/preconditions.js';

const LM = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));
const AT = 'Wed, 01 May 2024 12:00:00 GMT';
const EARLIER = 'Wed, 01 May 2024 11:00:00 GMT';
const LATER = 'Wed, 01 May 2024 13:00:00 GMT';
const current: Validators = { etag: '"v3"', lastModified: LM };
const weakCurrent: Validators = { etag: 'W/"v3"', lastModified: LM };

/** The outcome against `current`, or against the validators given (`undefined`: no such resource). */
const outcome = (
  method: string,
  headers: Parameters<typeof evaluatePreconditions>[1],
  ...v: [Validators | undefined] | []
) => evaluatePreconditions(method, headers, v.length === 0 ? current : v[0]).outcome;

describe('no preconditions', () => {
  it('proceeds', () => {
    expect(outcome('GET', {})).toBe('proceed');
    expect(outcome('PUT', {})).toBe('proceed');
    expect(hasPreconditions({})).toBe(false);
    expect(hasPreconditions({ ifModifiedSince: AT })).toBe(true);
  });
});

describe('If-Match (§13.1.1)', () => {
  it('passes on a strong match, fails otherwise', () => {
    expect(outcome('PUT', { ifMatch: '"v3"' })).toBe('proceed');
    expect(outcome('PUT', { ifMatch: '"v2"' })).toBe('failed');
    expect(outcome('PUT', { ifMatch: '"v2", "v3"' })).toBe('proceed');
  });

  it('uses the strong comparison: weak tags never match', () => {
    expect(outcome('PUT', { ifMatch: 'W/"v3"' })).toBe('failed');
    expect(outcome('PUT', { ifMatch: '"v3"' }, weakCurrent)).toBe('failed');
  });

  it('* passes when a current representation exists, fails when none does', () => {
    expect(outcome('PUT', { ifMatch: '*' })).toBe('proceed');
    expect(outcome('PUT', { ifMatch: '*' }, undefined)).toBe('failed');
    expect(outcome('PUT', { ifMatch: '*' }, {})).toBe('proceed');
  });

  it('fails without a current ETag, or when the field is malformed', () => {
    expect(outcome('PUT', { ifMatch: '"v3"' }, { lastModified: LM })).toBe('failed');
    expect(outcome('PUT', { ifMatch: '"v3"' }, undefined)).toBe('failed');
    expect(outcome('PUT', { ifMatch: 'v3' })).toBe('failed');
    expect(outcome('PUT', { ifMatch: '*, "v3"' })).toBe('failed');
  });

  it('names the field that failed', () => {
    expect(evaluatePreconditions('PUT', { ifMatch: '"x"' }, current)).toEqual({
      outcome: 'failed',
      by: 'If-Match',
    });
  });
});

describe('If-Unmodified-Since (§13.1.4)', () => {
  it('fails when modified after the date, passes at or before it', () => {
    expect(outcome('PUT', { ifUnmodifiedSince: EARLIER })).toBe('failed');
    expect(outcome('PUT', { ifUnmodifiedSince: AT })).toBe('proceed');
    expect(outcome('PUT', { ifUnmodifiedSince: LATER })).toBe('proceed');
  });

  it('is ignored with If-Match present, an invalid date, or no modification date', () => {
    expect(outcome('PUT', { ifMatch: '"v3"', ifUnmodifiedSince: EARLIER })).toBe('proceed');
    expect(outcome('PUT', { ifUnmodifiedSince: 'yesterday' })).toBe('proceed');
    expect(outcome('PUT', { ifUnmodifiedSince: EARLIER }, { etag: '"v3"' })).toBe('proceed');
  });

  it('compares whole seconds', () => {
    const lm = new Date(LM.getTime() + 500);
    expect(outcome('PUT', { ifUnmodifiedSince: AT }, { lastModified: lm })).toBe('proceed');
  });
});

describe('If-None-Match (§13.1.2)', () => {
  it('GET/HEAD: 304 on a weak match', () => {
    expect(outcome('GET', { ifNoneMatch: '"v3"' })).toBe('not-modified');
    expect(outcome('HEAD', { ifNoneMatch: 'W/"v3"' })).toBe('not-modified');
    expect(outcome('GET', { ifNoneMatch: '"v3"' }, weakCurrent)).toBe('not-modified');
    expect(outcome('GET', { ifNoneMatch: '"v1", "v2"' })).toBe('proceed');
  });

  it('other methods: 412 on a match', () => {
    expect(outcome('PUT', { ifNoneMatch: '"v3"' })).toBe('failed');
    expect(outcome('POST', { ifNoneMatch: '*' })).toBe('failed');
    expect(outcome('PUT', { ifNoneMatch: '*' }, undefined)).toBe('proceed');
  });

  it('* matches any current representation', () => {
    expect(outcome('GET', { ifNoneMatch: '*' })).toBe('not-modified');
    expect(outcome('GET', { ifNoneMatch: '*' }, undefined)).toBe('proceed');
  });

  it('malformed: never matches', () => {
    expect(outcome('GET', { ifNoneMatch: 'v3' })).toBe('proceed');
    expect(outcome('PUT', { ifNoneMatch: '*, "v3"' })).toBe('proceed');
  });

  it('sends the current ETag on the 304', () => {
    expect(evaluatePreconditions('GET', { ifNoneMatch: 'W/"v3"' }, current)).toEqual({
      outcome: 'not-modified',
      by: 'If-None-Match',
      etag: '"v3"',
    });
  });
});

describe('If-Modified-Since (§13.1.3)', () => {
  it('GET/HEAD: 304 when not modified since the date', () => {
    expect(outcome('GET', { ifModifiedSince: AT })).toBe('not-modified');
    expect(outcome('HEAD', { ifModifiedSince: LATER })).toBe('not-modified');
    expect(outcome('GET', { ifModifiedSince: EARLIER })).toBe('proceed');
  });

  it('is ignored for other methods, for invalid dates, without Last-Modified, and with If-None-Match', () => {
    expect(outcome('PUT', { ifModifiedSince: LATER })).toBe('proceed');
    expect(outcome('GET', { ifModifiedSince: '2024-05-01T13:00:00Z' })).toBe('proceed');
    expect(outcome('GET', { ifModifiedSince: LATER }, { etag: '"v3"' })).toBe('proceed');
    expect(outcome('GET', { ifNoneMatch: '"v2"', ifModifiedSince: LATER })).toBe('proceed');
  });
});

describe('order of evaluation (§13.2.2)', () => {
  it('1. If-Match before everything', () => {
    expect(outcome('GET', { ifMatch: '"v2"', ifNoneMatch: '"v3"' })).toBe('failed');
    expect(
      evaluatePreconditions('GET', { ifMatch: '"v2"', ifUnmodifiedSince: LATER }, current),
    ).toMatchObject({ by: 'If-Match' });
  });

  it('2. If-Unmodified-Since before If-None-Match', () => {
    expect(outcome('GET', { ifUnmodifiedSince: EARLIER, ifNoneMatch: '"v3"' })).toBe('failed');
  });

  it('3. If-None-Match decides before If-Modified-Since', () => {
    expect(outcome('GET', { ifNoneMatch: '"v3"', ifModifiedSince: EARLIER })).toBe('not-modified');
  });

  it('a passing If-Match still lets If-None-Match answer 304', () => {
    expect(outcome('GET', { ifMatch: '"v3"', ifNoneMatch: '"v3"' })).toBe('not-modified');
  });
});

describe('encoding suffixes (restwell/compression)', () => {
  const codings = ['br', 'gzip'];
  it('compares the identity tag behind a suffixed request tag', () => {
    const r = evaluatePreconditions('GET', { ifNoneMatch: '"v3-br"' }, current, { codings });
    expect(r).toEqual({ outcome: 'not-modified', by: 'If-None-Match', etag: '"v3-br"' });
    expect(
      evaluatePreconditions('PUT', { ifMatch: '"v3-gzip"' }, current, { codings }).outcome,
    ).toBe('proceed');
    // Without compression mounted, a suffixed tag is just another tag.
    expect(outcome('GET', { ifNoneMatch: '"v3-br"' })).toBe('proceed');
  });

  it("on a 304, echoes the variant of the request's negotiated coding", () => {
    const r = evaluatePreconditions('GET', { ifNoneMatch: '"v3-gzip", "v3", "v3-br"' }, current, {
      codings,
      preferredCoding: 'br',
    });
    expect(r).toMatchObject({ etag: '"v3-br"' });
    const identity = evaluatePreconditions('GET', { ifNoneMatch: '"v3-gzip", "v3"' }, current, {
      codings,
      preferredCoding: 'br',
    });
    expect(identity).toMatchObject({ etag: '"v3"' });
  });
});
