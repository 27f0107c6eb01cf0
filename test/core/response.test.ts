/**
 * The response invariants of src/core/response.ts that decide which header
 * fields an answer keeps: the 304 allowlist (RFC 9110 §15.4.5) and the
 * last-resort 500, on a header store shaped like Node's.
 */
import { describe, expect, it } from 'vitest';
import { fakeContext } from './fake.js';
import { renderLastResortProblem } from '../../src/core/problem.js';
import { applyFraming, clearForLastResort } from '../../src/core/response.js';

/** Node's header store as the invariants use it: lower-case names. */
function store(fields: Record<string, string>) {
  const map = new Map(Object.entries(fields).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    map,
    getHeaderNames: () => [...map.keys()],
    hasHeader: (name: string) => map.has(name.toLowerCase()),
    removeHeader: (name: string) => {
      map.delete(name.toLowerCase());
    },
  };
}

const CORS = {
  'Access-Control-Allow-Origin': 'https://app.example.com',
  'Access-Control-Allow-Credentials': 'true',
  'Access-Control-Expose-Headers': 'ETag, Trace-Id',
};

const POLICY = {
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'",
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

describe('a 304 keeps what RFC 9110 §15.4.5 asks for, and the CORS fields', () => {
  it('keeps Access-Control-Allow-Origin, -Allow-Credentials, -Expose-Headers and Vary, so that Fetch passes the 304 to the script', () => {
    const res = store({
      ...CORS,
      Vary: 'Accept-Encoding, Origin',
      ETag: '"v1"',
      'Cache-Control': 'private, max-age=0',
      'Trace-Id': 'abc',
    });
    expect(applyFraming(res, 304, false, 'Trace-Id')).toBe(false);
    expect(Object.fromEntries(res.map)).toEqual({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'ETag, Trace-Id',
      vary: 'Accept-Encoding, Origin',
      etag: '"v1"',
      'cache-control': 'private, max-age=0',
      'trace-id': 'abc',
    });
  });

  it('still drops what a cache must not merge into the stored response', () => {
    const res = store({
      ...CORS,
      'Set-Cookie': 'sid=1',
      RateLimit: '"default";r=9;t=60',
      'Content-Length': '120',
      'Content-Type': 'application/json',
      'Access-Control-Allow-Methods': 'GET',
    });
    applyFraming(res, 304, false, false);
    expect([...res.map.keys()].sort()).toEqual([
      'access-control-allow-credentials',
      'access-control-allow-origin',
      'access-control-expose-headers',
    ]);
  });
});

describe('the last-resort 500 keeps the policy fields of the answer it replaces', () => {
  it('keeps the security headers, HSTS, the CORS fields and Vary', () => {
    const res = store({ ...POLICY, ...CORS, Vary: 'Origin' });
    clearForLastResort(res);
    expect(res.map.size).toBe(Object.keys(POLICY).length + Object.keys(CORS).length + 1);
  });

  it('drops what the failed answer set for itself', () => {
    const res = store({
      'X-Content-Type-Options': 'nosniff',
      'Set-Cookie': 'sid=1',
      Link: '</v1/things?cursor=x>; rel="next"',
      ETag: '"v1"',
      'Content-Type': 'text/html',
      'Content-Length': '99',
      'Content-Encoding': 'gzip',
      'X-Powered-By': 'Express',
      RateLimit: '"default";r=9;t=60',
    });
    clearForLastResort(res);
    expect([...res.map.keys()]).toEqual(['x-content-type-options']);
  });

  it('the core last resort (a failed rendering) drops Set-Cookie and keeps nosniff', () => {
    const ctx = fakeContext();
    ctx.response.headers.set('X-Content-Type-Options', 'nosniff');
    ctx.response.headers.set('Set-Cookie', 'sid=1');
    renderLastResortProblem(ctx, new Error('handler failed'), new Error('map failed'));
    expect(ctx.response.status).toBe(500);
    expect(ctx.response.headers.get('set-cookie')).toBeUndefined();
    expect(ctx.response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
