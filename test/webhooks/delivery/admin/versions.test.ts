/** PATCH of an endpoint's pinned versions through the admin API, by the name GET shows. */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { defineVersions } from '../../../../src/versioning/api.js';
import { versionChange } from '../../../../src/versioning/changes.js';
import { ADMIN, adapters, adminApp, BASE } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const versions = defineVersions({
  versions: [
    { version: '2024-11-20' },
    {
      version: '2025-06-01',
      changes: [versionChange({ description: 'A new field.', additive: true })],
    },
  ],
});

describe.each(adapters)('the admin API and pinned versions on $name', (adapter) => {
  it('patches `versions`, the name GET shows, and refuses it beside `version`', async () => {
    const s = adminApp(adapter, { engine: { versions } });
    cleanups.push(() => s.delivery.stop());
    const created = await request(s.app)
      .post(BASE)
      .set(ADMIN)
      .send({ url: 'http://127.0.0.1:9/hooks', id: 'ep_v' })
      .expect(201);
    expect(created.body.versions).toEqual(['2025-06-01']);

    const read = await request(s.app).get(`${BASE}/ep_v`).set(ADMIN).expect(200);
    const both = await request(s.app)
      .patch(`${BASE}/ep_v`)
      .set(ADMIN)
      .set('content-type', 'application/merge-patch+json')
      .send({ versions: ['2024-11-20', ...read.body.versions] })
      .expect(200);
    expect([...both.body.versions].sort()).toEqual(['2024-11-20', '2025-06-01']);

    const conflict = await request(s.app)
      .patch(`${BASE}/ep_v`)
      .set(ADMIN)
      .set('content-type', 'application/merge-patch+json')
      .send({ versions: ['2024-11-20'], version: '2025-06-01' })
      .expect(400);
    expect(conflict.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/versions']);

    const unknown = await request(s.app)
      .patch(`${BASE}/ep_v`)
      .set(ADMIN)
      .set('content-type', 'application/merge-patch+json')
      .send({ versions: ['1999-01-01'] })
      .expect(400);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
