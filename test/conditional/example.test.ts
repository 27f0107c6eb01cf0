/**
 * The example's versioned users (examples/shared/caching.ts): a conditional
 * request for a user that does not exist is the handler's 404, for every
 * method, since no method of that API creates its target (RFC 9110 §13.2.1).
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { silentLogger } from '../../src/core/logger.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { ADMIN_KEY, asClient, EXAMPLE_CREDENTIALS } from '../helpers/example-client.js';

const stores = () => ({
  counters: new MemoryStore(),
  records: new MemoryStore({ evict: false }),
  logger: silentLogger,
  credentials: EXAMPLE_CREDENTIALS,
});
const apps: Array<{ name: string; make(): RequestListener }> = [
  {
    name: 'express',
    make: () => asClient(createExpressApp(stores()) as unknown as RequestListener),
  },
  { name: 'koa', make: () => asClient(createKoaApp(stores()).callback() as RequestListener) },
];

describe.each(apps)('example users on $name', ({ make }) => {
  it('answers 404, not 412, to a conditional write of a user that does not exist', async () => {
    const app = make();
    const user = { name: 'Nobody', email: 'nobody@example.com' };
    await request(app).put('/v1/users/usr_none').set('If-Match', '"v1"').send(user).expect(404);
    await request(app).put('/v1/users/usr_none').set('If-Match', '*').send(user).expect(404);
    await request(app)
      .patch('/v1/users/usr_none')
      .set('If-Match', '"v1"')
      .set('content-type', 'application/merge-patch+json')
      .send(user)
      .expect(404);
    await request(app)
      .delete('/v1/users/usr_none')
      .set('X-API-Key', ADMIN_KEY)
      .set('If-Match', '"v1"')
      .expect(404);
    const res = await request(app).get('/v1/users/usr_none').set('If-None-Match', '*');
    expect(res.status).toBe(404);
  });
});
