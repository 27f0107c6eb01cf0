/**
 * conditionsRead(): what the conditional() middlewares of a request have read,
 * for modules that rewrite the conditional fields before an inner
 * conditional() evaluates them (versioning() does). With `forget`, the next
 * conditional() reads the fields again, as rewritten; without it, every
 * conditional() of the request shares the first one's reading.
 */
import type { IncomingHttpHeaders } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { type ConditionsRead, conditional, conditionsRead } from '../../src/conditional/index.js';
import type { Middleware } from '../../src/core/context.js';
import { adapters } from '../helpers/apps.js';

describe.each(adapters)('conditionsRead() through $name', (adapter) => {
  /** An app whose route runs `probe` between a global conditional() and a route's conditional({ load }). */
  function app(probe: Middleware, outer = true) {
    return adapter.build({
      use: outer ? [conditional(), probe] : [probe],
      routes: [
        {
          method: 'get',
          path: '/doc',
          use: [conditional({ load: () => ({ etag: '"new"' }) })],
          handler: () => ({ body: { ok: true } }),
        },
      ],
    });
  }

  /** Rewrites If-None-Match from the tag a client holds to the current one, as versioning() does. */
  const rewrite =
    (forget: boolean, seen: Array<ConditionsRead | undefined>): Middleware =>
    async (ctx, next) => {
      (ctx.request.headers as IncomingHttpHeaders)['if-none-match'] = '"new"';
      seen.push(conditionsRead(ctx, { forget }));
      await next();
      seen.push(conditionsRead(ctx));
    };

  it('is undefined before any conditional() ran', async () => {
    const seen: Array<ConditionsRead | undefined> = [];
    await request(app(rewrite(false, seen), false))
      .get('/doc')
      .set('If-None-Match', '"old"')
      .expect(304);
    expect(seen[0]).toBeUndefined();
    // The route's conditional({ load }) read the field as rewritten, and supplied validators.
    expect(seen[1]).toEqual({
      conditions: expect.objectContaining({ ifNoneMatch: '"new"' }),
      validatorsLoaded: true,
    });
  });

  it('reports the fields the first conditional() read, and whether a load supplied validators', async () => {
    const seen: Array<ConditionsRead | undefined> = [];
    await request(app(rewrite(false, seen)))
      .get('/doc')
      .set('If-None-Match', '"old"')
      .set('If-Modified-Since', 'Tue, 01 Jul 2025 00:00:00 GMT')
      .expect(200);
    expect(seen[0]).toEqual({
      conditions: {
        ifMatch: undefined,
        ifNoneMatch: '"old"',
        ifModifiedSince: 'Tue, 01 Jul 2025 00:00:00 GMT',
        ifUnmodifiedSince: undefined,
      },
      validatorsLoaded: false,
    });
    // Without forget, the inner conditional() evaluated the first reading: "old" is not "new".
    expect(seen[1]?.conditions.ifNoneMatch).toBe('"old"');
    expect(seen[1]?.validatorsLoaded).toBe(true);
  });

  it('with forget, lets the next conditional() read the rewritten fields', async () => {
    const seen: Array<ConditionsRead | undefined> = [];
    await request(app(rewrite(true, seen)))
      .get('/doc')
      .set('If-None-Match', '"old"')
      .expect(304);
    expect(seen[0]?.conditions.ifNoneMatch).toBe('"old"');
    expect(seen[1]?.conditions.ifNoneMatch).toBe('"new"');
  });
});
