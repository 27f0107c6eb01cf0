import { describe, expect, it } from 'vitest';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

describe.each(adapters)('a request target with a fragment, through $name', (adapter) => {
  it('is read up to the #, as the router reads it', async () => {
    const app = adapter.build({
      routes: [
        {
          method: 'get',
          path: '/v1/items',
          handler: ({ context, query }) => ({
            body: {
              url: context.request.url,
              path: context.request.path,
              restwell: context.request.query.get('userId'),
              framework: query.userId ?? null,
            },
          }),
        },
      ],
    });
    const res = await raw(app, { path: '/v1/items#?userId=usr_ada' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({
      url: '/v1/items',
      path: '/v1/items',
      restwell: null,
      framework: null,
    });
    const res2 = await raw(app, { path: '/v1/items?userId=usr_ada#top' });
    expect(JSON.parse(res2.body.toString())).toMatchObject({
      restwell: 'usr_ada',
      framework: 'usr_ada',
    });
  });
});
