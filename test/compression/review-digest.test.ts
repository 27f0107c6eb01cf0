/**
 * A digest field (RFC 9530 Content-Digest / Repr-Digest) is computed over the
 * content as sent, coding included: compressing a body that a digest
 * middleware labelled from its identity bytes would make the digest wrong.
 * Such a response is sent as is, without Vary, and its 304 agrees.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import type { Middleware } from '../../src/core/context.js';
import { bodyBytes, isStreamBody } from '../../src/core/context.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

const TEXT = 'lorem ipsum dolor sit amet '.repeat(100);

/** The digest middleware of restwell/kit's example, mounted inside compression(). */
const digest: Middleware = async (ctx, next) => {
  await next();
  if (isStreamBody(ctx.response.body)) return;
  const bytes = bodyBytes(ctx.response.body);
  if (bytes === undefined) return;
  const hash = createHash('sha256').update(bytes).digest('base64');
  ctx.response.headers.set('repr-digest', `sha-256=:${hash}:`);
};

describe.each(adapters)('$name: responses carrying a digest', (adapter) => {
  const app = adapter.build({
    use: [compression(), conditional(), digest],
    routes: [
      {
        method: 'get',
        path: '/d',
        handler: () => ({ headers: { 'content-type': 'text/plain' }, body: TEXT }),
      },
      {
        method: 'get',
        path: '/c',
        handler: () => ({
          headers: { 'content-type': 'text/plain', 'content-digest': 'sha-256=:x:' },
          body: TEXT,
        }),
      },
    ],
  });

  it('are sent as is, so that the digest matches the bytes', async () => {
    const res = await raw(app, { path: '/d', headers: { 'accept-encoding': 'br, gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
    const expected = createHash('sha256').update(res.body).digest('base64');
    expect(res.headers['repr-digest']).toBe(`sha-256=:${expected}:`);
    const handlerSet = await raw(app, { path: '/c', headers: { 'accept-encoding': 'gzip' } });
    expect(handlerSet.headers['content-encoding']).toBeUndefined();
  });

  it('get a 304 labelled as their 200', async () => {
    const first = await raw(app, { path: '/c', headers: { 'accept-encoding': 'br' } });
    const again = await raw(app, {
      path: '/c',
      headers: { 'accept-encoding': 'br', 'if-none-match': String(first.headers.etag) },
    });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers.vary).toBeUndefined();
  });
});
