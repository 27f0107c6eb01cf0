/**
 * Two rateLimit() instances on one store whose policies share a name share
 * counters. A global limit and a stricter one on `/login`, both left with the
 * default name, read each other's state with their own limits: five logins
 * push the shared token bucket a minute ahead, and the global limit of 100
 * then refuses the client on every route.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

describe('one store, several rateLimit() instances', () => {
  it('refuses a second instance that counts a policy name with other limits', () => {
    const store = new MemoryStore();
    rateLimit({ store, limit: 100, windowMs: 60_000 });
    expect(() => rateLimit({ store, limit: 5, windowMs: 60_000 })).toThrow(TypeError);
    expect(() => rateLimit({ store, limit: 5, windowMs: 60_000 })).toThrow(
      /option "policies".*another rateLimit\(\) counts "default" there/,
    );
    expect(() =>
      rateLimit({ store, limit: 100, windowMs: 60_000, algorithm: 'fixed-window' }),
    ).toThrow(TypeError);
  });

  it('accepts the same policy twice (a shared quota), distinct names, or another store', () => {
    const store = new MemoryStore();
    rateLimit({ store, limit: 100, windowMs: 60_000 });
    expect(() => rateLimit({ store, limit: 100, windowMs: 60_000, burst: 100 })).not.toThrow();
    expect(() => rateLimit({ store, name: 'login', limit: 5, windowMs: 60_000 })).not.toThrow();
    expect(() => rateLimit({ store: new MemoryStore(), limit: 5, windowMs: 60_000 })).not.toThrow();
    // On another hash tag the counters are other keys.
    expect(() => rateLimit({ store, limit: 5, windowMs: 60_000, hashTag: 'login' })).not.toThrow();
  });

  it.each(adapters)(
    'with distinct names, a stricter login limit leaves the global one alone ($name)',
    async (adapter) => {
      const store = new MemoryStore();
      const listener = adapter.build({
        use: [rateLimit({ store, limit: 100, windowMs: 60_000 })],
        routes: [
          {
            method: 'post',
            path: '/login',
            use: [rateLimit({ store, name: 'login', limit: 5, windowMs: 60_000 })],
            handler: () => ({ status: 204 }),
          },
          { method: 'get', path: '/things', handler: () => ({ body: {} }) },
        ],
      });
      for (let i = 0; i < 5; i++) await request(listener).post('/login').expect(204);
      await request(listener).post('/login').expect(429);
      await request(listener).get('/things').expect(200);
    },
  );
});
