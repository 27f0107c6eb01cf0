/**
 * What a HEAD and a 304 say about the 200 they stand for, under
 * compression() + conditional(), through every adapter: a HEAD carries the
 * Content-Encoding, ETag and Vary its GET would (RFC 9110 §9.3.2, §8.6), never
 * an identity Content-Length for a coded GET; a 304 carries the Vary and the
 * ETag of the 200 this client would get (§15.4.5).
 */
import { PassThrough } from 'node:stream';
import etag from 'etag';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';
import { type RawResponse, raw } from '../helpers/raw.js';

const LIST = { items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) };
const LIST_JSON = JSON.stringify(LIST);
const LIST_TAG = etag(LIST_JSON);
const SMALL_JSON = JSON.stringify({ ok: true });
const MODIFIED = 'Wed, 01 May 2024 12:00:00 GMT';
const CONDITIONS: Array<Record<string, string>> = [
  { 'if-modified-since': MODIFIED },
  { 'if-none-match': '*' },
];
const suffixed = (tag: string, coding: string) => `${tag.slice(0, -1)}-${coding}"`;
const varyOf = (res: RawResponse) =>
  String(res.headers.vary ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

/** The headers a HEAD must share with its GET. */
const mirrored = (res: RawResponse) => ({
  status: res.status,
  encoding: res.headers['content-encoding'],
  etag: res.headers.etag,
  vary: varyOf(res),
});

describe.each(adapters)('HEAD and 304 mirror the 200 through $name', (adapter) => {
  const listener = adapter.build({
    options: { logger: silentLogger },
    use: [compression(), conditional()],
    routes: [
      {
        method: 'get',
        path: '/list',
        handler: () => ({ headers: { 'last-modified': MODIFIED }, body: LIST }),
      },
      {
        method: 'get',
        path: '/versioned',
        handler: () => ({ headers: { etag: '"v3"' }, body: LIST }),
      },
      {
        method: 'get',
        path: '/stream',
        handler: () => {
          const body = new PassThrough();
          body.end('streamed line\n'.repeat(200));
          return { headers: { 'content-type': 'application/x-ndjson' }, body };
        },
      },
      {
        method: 'get',
        path: '/small',
        handler: () => ({ headers: { 'last-modified': MODIFIED }, body: JSON.parse(SMALL_JSON) }),
      },
    ],
  });
  const send = (method: string, path: string, headers: Record<string, string>) =>
    raw(listener, { method, path, headers });

  describe('HEAD (RFC 9110 §9.3.2)', () => {
    it('carries the Content-Encoding, ETag and Vary of a coded GET, and no identity Content-Length', async () => {
      for (const coding of ['br', 'gzip']) {
        const ae = { 'accept-encoding': coding };
        const get = await send('GET', '/versioned', ae);
        const head = await send('HEAD', '/versioned', ae);
        expect(get.headers['content-encoding']).toBe(coding);
        expect(mirrored(head)).toEqual(mirrored(get));
        expect(head.headers.etag).toBe(`"v3-${coding}"`);
        expect(head.body.length).toBe(0);
        // Either no length at all, or the coded length the GET sends: never the identity one.
        const length = head.headers['content-length'];
        if (length !== undefined) expect(Number(length)).toBe(get.body.length);
        expect(Number(length)).not.toBe(LIST_JSON.length);
      }
    });

    it('a streamed GET: the same coding and Vary, no length', async () => {
      const ae = { 'accept-encoding': 'gzip' };
      const get = await send('GET', '/stream', ae);
      const head = await send('HEAD', '/stream', ae);
      expect(get.headers['content-encoding']).toBe('gzip');
      expect(mirrored(head)).toEqual(mirrored(get));
      expect(head.headers['content-length']).toBeUndefined();
      expect(head.body.length).toBe(0);
    });

    it('carries the identity length, and no coding, to a client that asks for none', async () => {
      const get = await send('GET', '/versioned', {});
      const head = await send('HEAD', '/versioned', {});
      expect(mirrored(head)).toEqual(mirrored(get));
      expect(head.headers['content-encoding']).toBeUndefined();
      expect(Number(head.headers['content-length'])).toBe(LIST_JSON.length);
    });

    it('a body below the threshold: no coding and no Vary, as its GET', async () => {
      const get = await send('GET', '/small', { 'accept-encoding': 'br' });
      const head = await send('HEAD', '/small', { 'accept-encoding': 'br' });
      expect(get.headers['content-encoding']).toBeUndefined();
      expect(mirrored(head).encoding).toBeUndefined();
      expect(mirrored(head).vary).toEqual(mirrored(get).vary);
      expect(Number(head.headers['content-length'])).toBe(SMALL_JSON.length);
    });

    // The adapters hand HEAD the body its GET would have had (src/core/response.ts).
    it('carries the ETag hashed from the body its GET would have had, suffixed for its coding', async () => {
      const get = await send('GET', '/list', { 'accept-encoding': 'br' });
      const head = await send('HEAD', '/list', { 'accept-encoding': 'br' });
      expect(get.headers.etag).toBe(suffixed(LIST_TAG, 'br'));
      expect(mirrored(head)).toEqual(mirrored(get));
      expect(Number(head.headers['content-length'])).toBe(get.body.length);
    });
  });

  describe('304 (RFC 9110 §15.4.5)', () => {
    it("a body below the threshold: the 304's Vary is the 200's (none from compression)", async () => {
      const full = await send('GET', '/small', { 'accept-encoding': 'br' });
      expect(full.headers.vary).toBeUndefined();
      const hit = await send('GET', '/small', {
        'accept-encoding': 'br',
        'if-none-match': String(full.headers.etag),
      });
      expect(hit.status).toBe(304);
      expect(hit.headers.vary).toBeUndefined();
      expect(hit.headers.etag).toBe(full.headers.etag);
    });

    it("If-Modified-Since and If-None-Match: * get the 200's coded ETag and Vary", async () => {
      for (const coding of ['br', 'gzip']) {
        const ae = { 'accept-encoding': coding };
        const full = await send('GET', '/list', ae);
        expect(full.headers.etag).toBe(suffixed(LIST_TAG, coding));
        for (const condition of CONDITIONS) {
          const hit = await send('GET', '/list', { ...ae, ...condition });
          expect(hit.status).toBe(304);
          expect(hit.headers.etag).toBe(full.headers.etag);
          expect(varyOf(hit)).toEqual(varyOf(full));
        }
      }
      const plain = await send('GET', '/list', { 'if-modified-since': MODIFIED });
      expect(plain.status).toBe(304);
      expect(plain.headers.etag).toBe(LIST_TAG);
      expect(varyOf(plain)).toEqual(['accept-encoding']);
    });

    it('a small body revalidated by date: the identity ETag and no Vary, as its 200', async () => {
      const hit = await send('GET', '/small', {
        'accept-encoding': 'br',
        'if-modified-since': MODIFIED,
      });
      expect(hit.status).toBe(304);
      expect(hit.headers.etag).toBe(etag(SMALL_JSON));
      expect(hit.headers.vary).toBeUndefined();
    });
  });
});
