/**
 * A 5xx problem never delivers a cookie the failed code set for the answer it
 * never finished; a 4xx problem, a deliberate answer, keeps it.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Middleware } from '../../src/core/context.js';
import { RestwellError } from '../../src/core/errors.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

const failsAfterCookie =
  (status: number): Middleware =>
  async (ctx) => {
    ctx.response.headers.set('set-cookie', 'session=half-made; HttpOnly');
    ctx.response.headers.set('access-control-allow-origin', 'https://app.example');
    throw status >= 500
      ? new Error('database gone')
      : new RestwellError('bad-request', status, 'Bad Request', { detail: 'no' });
  };

describe.each(adapters)('$name', (adapter: AdapterCase) => {
  const app = adapter.build({
    routes: [
      { method: 'get', path: '/500', use: [failsAfterCookie(500)], handler: () => ({}) },
      { method: 'get', path: '/400', use: [failsAfterCookie(400)], handler: () => ({}) },
    ],
  });

  it('drops Set-Cookie from a 500 problem and keeps the CORS field', async () => {
    const res = await request(app).get('/500').expect(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('keeps Set-Cookie on a 4xx problem', async () => {
    const res = await request(app).get('/400').expect(400);
    expect(res.headers['set-cookie']).toEqual(['session=half-made; HttpOnly']);
  });
});
