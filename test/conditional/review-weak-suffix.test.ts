/**
 * If-None-Match uses the weak comparison (RFC 9110 §8.8.3.2, §13.1.2): `W/` is
 * ignored. A client (or an intermediary that weakened the tag after changing
 * the response) revalidating with `W/"<tag>-br"`, the weakened tag of a brotli
 * 200, must get its 304, labelled with the tag the 200 carries.
 */
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional, evaluatePreconditions } from '../../src/conditional/index.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

const TEXT = 'lorem ipsum dolor sit amet '.repeat(100);

describe('evaluatePreconditions: weakened suffixed tags', () => {
  const options = { codings: ['br', 'gzip'], preferredCoding: 'br' };
  it('matches W/"v3-br" against "v3" weakly, and answers the strong tag of the 200', () => {
    expect(
      evaluatePreconditions('GET', { ifNoneMatch: 'W/"v3-br"' }, { etag: '"v3"' }, options),
    ).toEqual({ outcome: 'not-modified', by: 'If-None-Match', etag: '"v3-br"' });
    expect(
      evaluatePreconditions('GET', { ifNoneMatch: '"x", W/"v3-gzip"' }, { etag: '"v3"' }, options),
    ).toEqual({ outcome: 'not-modified', by: 'If-None-Match', etag: '"v3-gzip"' });
    // A write is refused in the same way.
    expect(
      evaluatePreconditions('PUT', { ifNoneMatch: 'W/"v3-br"' }, { etag: '"v3"' }, options),
    ).toEqual({ outcome: 'failed', by: 'If-None-Match' });
  });

  it('still never lets a weak tag pass If-Match (strong comparison)', () => {
    expect(
      evaluatePreconditions('PUT', { ifMatch: 'W/"v3-br"' }, { etag: '"v3"' }, options),
    ).toEqual({ outcome: 'failed', by: 'If-Match' });
  });
});

describe.each(adapters)('$name: a weakened brotli tag revalidates', (adapter) => {
  it('answers 304 with the strong coded tag', async () => {
    const app = adapter.build({
      use: [compression(), conditional()],
      routes: [
        {
          method: 'get',
          path: '/t',
          handler: () => ({ headers: { 'content-type': 'text/plain' }, body: TEXT }),
        },
      ],
    });
    const first = await raw(app, { path: '/t', headers: { 'accept-encoding': 'br' } });
    const tag = String(first.headers.etag);
    expect(tag).toMatch(/-br"$/);
    const again = await raw(app, {
      path: '/t',
      headers: { 'accept-encoding': 'br', 'if-none-match': `W/${tag}` },
    });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe(tag);
  });
});
