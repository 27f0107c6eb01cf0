/**
 * compression() and conditional() together, end to end through every adapter:
 * each encoded representation has its own strong ETag, and revalidating with
 * that ETag still gets a 304 (compression outside conditional, which
 * understands the suffix).
 */
import etag from 'etag';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional, type Validators } from '../../src/conditional/index.js';
import { getEncodingNegotiation } from '../../src/conditional/encoding.js';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';
import { listen, raw, rawRequest } from '../helpers/raw.js';

const LIST = { items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) };
const LIST_JSON = JSON.stringify(LIST);
const IDENTITY_TAG = etag(LIST_JSON);
const suffixed = (tag: string, coding: string) => `${tag.slice(0, -1)}-${coding}"`;

function quietLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m), error() {}, info() {} };
}

describe.each(adapters)('compression() + conditional() through $name', (adapter) => {
  function app() {
    const calls = { list: 0, reads: 0, writes: 0 };
    let version = 1;
    const load = (): Validators => ({ etag: `"v${version}"` });
    const listener = adapter.build({
      options: { logger: quietLogger() },
      use: [jsonBody(), compression(), conditional()],
      routes: [
        {
          method: 'get',
          path: '/list',
          handler: () => {
            calls.list++;
            return { body: LIST };
          },
        },
        {
          method: 'get',
          path: '/small',
          handler: () => ({ body: { ok: true } }),
        },
        {
          method: 'get',
          path: '/docs/1',
          use: [conditional({ load })],
          handler: () => {
            calls.reads++;
            return { body: LIST };
          },
        },
        {
          method: 'put',
          path: '/docs/1',
          use: [conditional({ load, requirePrecondition: true })],
          handler: () => {
            calls.writes++;
            version++;
            return { headers: { etag: `"v${version}"` }, body: LIST };
          },
        },
      ],
    });
    return { listener, calls };
  }
  const get = (
    listener: ReturnType<typeof app>['listener'],
    path: string,
    headers: Record<string, string>,
  ) => raw(listener, { path, headers });

  it('hashes the identity body and names each encoding with its own ETag', async () => {
    const { listener } = app();
    const br = await get(listener, '/list', { 'accept-encoding': 'br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.etag).toBe(suffixed(IDENTITY_TAG, 'br'));
    const gz = await get(listener, '/list', { 'accept-encoding': 'gzip' });
    expect(gz.headers.etag).toBe(suffixed(IDENTITY_TAG, 'gzip'));
    const plain = await get(listener, '/list', {});
    expect(plain.headers.etag).toBe(IDENTITY_TAG);
    expect(new Set([br.headers.etag, gz.headers.etag, plain.headers.etag]).size).toBe(3);
  });

  it('answers 304 to If-None-Match with the encoded ETag, echoing it, with Vary', async () => {
    const { listener, calls } = app();
    const first = await get(listener, '/list', { 'accept-encoding': 'br' });
    const res = await get(listener, '/list', {
      'accept-encoding': 'br',
      'if-none-match': first.headers.etag as string,
    });
    expect(res.status).toBe(304);
    expect(res.headers.etag).toBe(first.headers.etag);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.headers.vary?.toLowerCase()).toContain('accept-encoding');
    expect(res.body.length).toBe(0);
    // Without load the handler runs to produce the body that is hashed, then thrown away.
    expect(calls.list).toBe(2);
  });

  it("on a 304, picks from a cache's list the variant of this request's coding", async () => {
    const { listener } = app();
    const all = [IDENTITY_TAG, suffixed(IDENTITY_TAG, 'gzip'), suffixed(IDENTITY_TAG, 'br')];
    const gz = await get(listener, '/list', {
      'accept-encoding': 'gzip',
      'if-none-match': all.join(', '),
    });
    expect(gz.status).toBe(304);
    expect(gz.headers.etag).toBe(suffixed(IDENTITY_TAG, 'gzip'));
    const plain = await get(listener, '/list', { 'if-none-match': all.join(', ') });
    expect(plain.status).toBe(304);
    expect(plain.headers.etag).toBe(IDENTITY_TAG);
  });

  it('answers the full, compressed body to a stale encoded ETag', async () => {
    const { listener } = app();
    const res = await get(listener, '/list', {
      'accept-encoding': 'br',
      'if-none-match': '"0-stale-br"',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('br');
  });

  it('leaves small responses unsuffixed and still revalidates them', async () => {
    const { listener } = app();
    const first = await get(listener, '/small', { 'accept-encoding': 'br' });
    expect(first.headers['content-encoding']).toBeUndefined();
    const tag = first.headers.etag as string;
    expect(tag).toBe(etag('{"ok":true}'));
    const again = await get(listener, '/small', { 'accept-encoding': 'br', 'if-none-match': tag });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe(tag);
  });

  it('load: 304 for the encoded ETag without running the handler; If-Match with it authorises a write', async () => {
    const { listener, calls } = app();
    const read = await get(listener, '/docs/1', { 'accept-encoding': 'br' });
    expect(read.headers.etag).toBe('"v1-br"');
    expect(calls.reads).toBe(1);
    const again = await get(listener, '/docs/1', {
      'accept-encoding': 'br',
      'if-none-match': '"v1-br"',
    });
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe('"v1-br"');
    expect(calls.reads).toBe(1);

    const write = await raw(listener, {
      method: 'PUT',
      path: '/docs/1',
      headers: {
        'if-match': '"v1-br"',
        'content-type': 'application/json',
        'accept-encoding': 'br',
      },
      body: '{}',
    });
    expect(write.status).toBe(200);
    expect(write.headers.etag).toBe('"v2-br"');
    const stale = await raw(listener, {
      method: 'PUT',
      path: '/docs/1',
      headers: { 'if-match': '"v1-gzip"', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(stale.status).toBe(412);
    expect(calls.writes).toBe(1);
  });
});

describe.each(adapters)('negotiation through $name', (adapter) => {
  it('is computed once per distinct Accept-Encoding value and shared by the requests that send it', async () => {
    const seen: unknown[] = [];
    const listener = adapter.build({
      options: { logger: quietLogger() },
      use: [
        compression(),
        (ctx, next) => {
          seen.push(getEncodingNegotiation(ctx));
          return next();
        },
      ],
      routes: [{ method: 'get', path: '/list', handler: () => ({ body: LIST }) }],
    });
    for (const ae of ['br, gzip', 'gzip', 'br, gzip', 'gzip']) {
      await raw(listener, { path: '/list', headers: { 'accept-encoding': ae } });
    }
    expect(seen[0]).toBe(seen[2]);
    expect(seen[1]).toBe(seen[3]);
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen.map((n) => (n as { coding: string }).coding)).toEqual(['br', 'gzip', 'br', 'gzip']);
  });
});

describe('negotiation cache', () => {
  it('is bounded: after 256 other values, the first is negotiated afresh', async () => {
    const seen = new Map<string, unknown[]>();
    const listener = adapters[2]!.build({
      options: { logger: quietLogger() },
      use: [
        compression(),
        (ctx, next) => {
          const ae = ctx.request.header('accept-encoding') ?? '';
          seen.set(ae, [...(seen.get(ae) ?? []), getEncodingNegotiation(ctx)]);
          return next();
        },
      ],
      routes: [{ method: 'get', path: '/small', handler: () => ({ body: { ok: true } }) }],
    });
    const server = await listen(listener);
    try {
      const send = (ae: string) =>
        rawRequest(server.port, { path: '/small', headers: { 'accept-encoding': ae } });
      await send('gzip');
      await send('gzip');
      for (let i = 0; i < 256; i++)
        await send(`br;q=0.${String(i).padStart(3, '0').slice(-3)}, x-${i}`);
      await send('gzip');
      const [first, again, afterwards] = seen.get('gzip')!;
      expect(again).toBe(first);
      expect(afterwards).not.toBe(first);
      expect(afterwards).toEqual(first);
    } finally {
      await server.close();
    }
  });
});

describe.each(adapters)('mounting order through $name', (adapter) => {
  it('warns once when conditional() is mounted outside compression()', async () => {
    const logger = quietLogger();
    const listener = adapter.build({
      options: { logger },
      use: [conditional(), compression()],
      routes: [{ method: 'get', path: '/list', handler: () => ({ body: LIST }) }],
    });
    await raw(listener, { path: '/list', headers: { 'accept-encoding': 'br' } });
    await raw(listener, { path: '/list', headers: { 'accept-encoding': 'br' } });
    expect(logger.warnings.filter((w) => w.includes('mount compression() before'))).toHaveLength(1);
  });
});
