/**
 * Edge cases of conditional requests and compression together, through every
 * adapter: application tags that look like coding suffixes, caching headers on
 * problem answers, weak proofs for required preconditions, partial content,
 * loose `load` values, ranges of compressed bodies, streams cut short.
 */
import { Readable } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import type { Middleware } from '../../src/core/context.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

const BIG = JSON.stringify({
  items: Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item ${i}` })),
});

describe.each(adapters)('conditional and compression edge cases through $name', (adapter) => {
  it('matches an application ETag that ends like a coding suffix', async () => {
    let writes = 0;
    const app = adapter.build({
      use: [compression(), conditional()],
      routes: [
        {
          method: 'get',
          path: '/doc',
          handler: () => ({ headers: { etag: '"17-pt-br"' }, body: { small: true } }),
        },
        {
          method: 'put',
          path: '/doc',
          use: [conditional({ load: () => ({ etag: '"17-pt-br"' }) })],
          handler: () => {
            writes++;
            return { body: { ok: true } };
          },
        },
      ],
    });
    await request(app).get('/doc').set('If-None-Match', '"17-pt-br"').expect(304);
    await request(app).put('/doc').set('If-Match', '"17-pt-br"').send({}).expect(200);
    expect(writes).toBe(1);
  });

  it('sends no caching directives with a problem answer', async () => {
    const app = adapter.build({
      use: [conditional({ cacheControl: 'immutable' })],
      routes: [{ method: 'get', path: '/a', handler: () => ({ body: { a: 1 } }) }],
    });
    const ok = await request(app).get('/a').expect(200);
    expect(ok.headers['cache-control']).toMatch(/immutable/);
    const failed = await request(app).get('/a').set('If-Match', '"bogus"').expect(412);
    expect(failed.headers['cache-control']).toBeUndefined();
  });

  it('does not take an If-Unmodified-Since that is not a date as the required precondition', async () => {
    let writes = 0;
    const app = adapter.build({
      use: [
        conditional({
          requirePrecondition: true,
          load: () => ({ etag: '"v1"', lastModified: new Date('2024-01-01T00:00:00Z') }),
        }),
      ],
      routes: [
        {
          method: 'put',
          path: '/a',
          handler: () => {
            writes++;
            return { body: {} };
          },
        },
      ],
    });
    await request(app).put('/a').set('If-Unmodified-Since', 'whenever').send({}).expect(428);
    await request(app)
      .put('/a')
      .set('If-Unmodified-Since', 'Tue, 02 Jan 2024 00:00:00 GMT')
      .send({})
      .expect(200);
    expect(writes).toBe(1);
  });

  it('never labels a partial (206) answer with a hash of the part', async () => {
    const app = adapter.build({
      use: [conditional()],
      routes: [
        {
          method: 'get',
          path: '/file',
          handler: () => ({
            status: 206,
            headers: { 'content-range': 'bytes 0-3/10' },
            body: 'abcd',
          }),
        },
      ],
    });
    const res = await request(app).get('/file').expect(206);
    expect(res.headers.etag).toBeUndefined();
  });

  it('takes a row version that comes back as a number or padded', async () => {
    const app = adapter.build({
      use: [],
      routes: [
        {
          method: 'get',
          path: '/n',
          use: [conditional({ load: () => ({ etag: 42 as unknown as string }) })],
          handler: () => ({ body: {} }),
        },
        {
          method: 'get',
          path: '/p',
          use: [conditional({ load: () => ({ etag: 'v3   ' }) })],
          handler: () => ({ body: {} }),
        },
      ],
    });
    expect((await request(app).get('/n').expect(200)).headers.etag).toBe('"42"');
    await request(app).get('/p').set('If-None-Match', '"v3"').expect(304);
  });

  it('drops Accept-Ranges from a compressed answer', async () => {
    const app = adapter.build({
      use: [compression()],
      routes: [
        {
          method: 'get',
          path: '/big',
          handler: () => ({
            headers: { 'accept-ranges': 'bytes', 'content-type': 'application/json' },
            body: BIG,
          }),
        },
      ],
    });
    const br = await raw(app, { path: '/big', headers: { 'accept-encoding': 'br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['accept-ranges']).toBeUndefined();
    const identity = await raw(app, { path: '/big', headers: { 'accept-encoding': 'identity' } });
    expect(identity.headers['accept-ranges']).toBe('bytes');
  });

  it('aborts a compressed stream whose source is destroyed before its end', async () => {
    const cut: Middleware = (ctx) => {
      const source = new Readable({ read() {} });
      source.push(Buffer.alloc(4096, 'a'));
      setTimeout(() => source.destroy(), 20);
      ctx.response.status = 200;
      ctx.response.headers.set('content-type', 'text/plain');
      ctx.response.body = source;
    };
    const app = adapter.build({
      use: [compression(), cut],
      routes: [{ method: 'get', path: '/s', handler: () => ({ body: 'unused' }) }],
    });
    const outcome = await raw(app, { path: '/s', headers: { 'accept-encoding': 'gzip' } }).then(
      () => 'ended',
      () => 'aborted',
    );
    expect(outcome).toBe('aborted');
  }, 10_000);
});

describe('a stream piped into an Express response that becomes a 304', () => {
  it('is destroyed, so its file does not stay open', async () => {
    const { default: express } = await import('express');
    const { expressAdapter } = await import('../../src/adapters/express/index.js');
    const { silentLogger } = await import('../../src/core/logger.js');
    const { createReadStream, mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'restwell-')), 'big.txt');
    // Larger than the stream's buffers, so the reader is still open when the 304 is decided.
    writeFileSync(file, Buffer.alloc(4 * 1024 * 1024, 'x'));
    const opened: Readable[] = [];
    const app = express();
    app.set('etag', false);
    const rw = expressAdapter({ logger: silentLogger });
    app.use(rw(conditional()));
    app.get('/f', (_req, res) => {
      res.setHeader('ETag', '"file-v1"');
      res.setHeader('content-type', 'text/plain');
      const stream = createReadStream(file);
      opened.push(stream);
      stream.pipe(res);
    });
    for (let i = 0; i < 3; i++) {
      await request(app).get('/f').set('If-None-Match', '"file-v1"').expect(304);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(opened.map((s) => s.destroyed)).toEqual([true, true, true]);
  });
});
