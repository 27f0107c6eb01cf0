import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mediaType } from '../../src/compression/compressible.js';
import { mediaTypeOf } from '../../src/core/body.js';
import { toBuffer } from '../../src/core/bytes.js';
import {
  RestwellError,
  ServiceUnavailableError,
  serviceUnavailable,
} from '../../src/core/errors.js';
import { sha256, sha256Parts } from '../../src/core/hash.js';
import { renderProblem } from '../../src/core/problem.js';
import { fakeContext } from './fake.js';

describe('sha256 / sha256Parts', () => {
  it('is SHA-256 in base64url without padding (FIPS 180-4 test vector "abc")', () => {
    expect(sha256('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(sha256(new TextEncoder().encode('abc'))).toBe(sha256('abc'));
  });

  it('gives the digests the modules stored before, so keys survive an upgrade', () => {
    // rate-limit's long-key hash and byHeader's key: one value.
    const key = 'k'.repeat(300);
    expect(sha256(key)).toBe(createHash('sha256').update(key).digest('base64url'));
    // idempotency's store key and fingerprint: each part followed by NUL.
    const parts = ['principal:7', 'POST', '/v1/orders', 'key-1', new Uint8Array([0, 1, 2])];
    const old = createHash('sha256');
    for (const p of parts) {
      old.update(p);
      old.update('\u0000');
    }
    expect(sha256Parts(parts)).toBe(old.digest('base64url'));
  });

  it('keeps parts apart', () => {
    expect(sha256Parts(['ab', 'c'])).not.toBe(sha256Parts(['a', 'bc']));
    expect(sha256Parts(['abc'])).not.toBe(sha256('abc'));
  });
});

describe('toBuffer', () => {
  it('encodes strings, UTF-8 by default', () => {
    expect(toBuffer('é')).toEqual(Buffer.from([0xc3, 0xa9]));
    expect(toBuffer('é', 'latin1')).toEqual(Buffer.from([0xe9]));
  });

  it('returns a Buffer as is and wraps other bytes without copying', () => {
    const buf = Buffer.from('abc');
    expect(toBuffer(buf)).toBe(buf);
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const view = backing.subarray(1, 4);
    const wrapped = toBuffer(view);
    expect([...wrapped]).toEqual([1, 2, 3]);
    backing[2] = 7;
    expect(wrapped[1]).toBe(7);
  });
});

describe('mediaTypeOf is a drop-in for compression’s mediaType', () => {
  it.each([
    'text/html',
    'Text/HTML; charset=UTF-8',
    ' application/json ;q=1',
    'image/svg+xml',
    'text/event-stream',
    '',
    ';',
    '  ',
  ])('%j', (value) => {
    expect(mediaTypeOf(value) ?? '').toBe(mediaType(value));
  });
});

describe('serviceUnavailable', () => {
  it('is a 503 service-unavailable whose detail clients see, with Retry-After', () => {
    const cause = new Error('connect ECONNREFUSED 10.0.0.7:6379');
    const err = serviceUnavailable(
      'Rate limits cannot be checked right now. Retry later.',
      1,
      cause,
    );
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect(err).toBeInstanceOf(RestwellError);
    expect(err).toMatchObject({ status: 503, code: 'service-unavailable', retryAfterSeconds: 1 });
    expect(err.cause).toBe(cause);
    const ctx = fakeContext();
    renderProblem(ctx, err);
    const doc = JSON.parse(String(ctx.response.body));
    expect(doc.detail).toBe('Rate limits cannot be checked right now. Retry later.');
    expect(JSON.stringify(doc)).not.toMatch(/ECONNREFUSED|10\.0\.0\.7/);
    expect(ctx.response.headers.get('retry-after')).toBe('1');
    expect(ctx.logs[0]?.fields?.err).toBe(err);
  });

  it('sends Retry-After in whole seconds, rounded up, and none for a value that is not a number', () => {
    expect(serviceUnavailable('x', 1.2).headers).toEqual({ 'Retry-After': '2' });
    expect(serviceUnavailable('x', -5).headers).toEqual({ 'Retry-After': '0' });
    expect(serviceUnavailable('x', Number.NaN).headers).toEqual({});
    expect(serviceUnavailable('x').retryAfterSeconds).toBeUndefined();
  });
});
