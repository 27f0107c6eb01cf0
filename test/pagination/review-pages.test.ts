import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/core/link.js';
import { createCursorCodec } from '../../src/pagination/cursor.js';
import {
  type KeysetPaginationOptions,
  type KeysetPaginator,
  keysetPagination,
} from '../../src/pagination/keyset-pages.js';
import { adapters } from '../helpers/apps.js';

interface Row {
  id: string;
  name: string;
  at: string;
}

const cursors = createCursorCodec({ secrets: ['r'.repeat(32)] });

const rows: Row[] = Array.from({ length: 9 }, (_, i) => ({
  id: `r${i}`,
  name: ['Ada', 'Alan', 'Grace'][i % 3] as string,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
}));

function paginator(options: Partial<KeysetPaginationOptions> = {}): KeysetPaginator {
  return keysetPagination({
    cursors,
    sortable: { name: { column: 'name' }, at: { column: 'at' } },
    unique: 'id',
    defaultSort: 'name',
    defaultLimit: 2,
    ...options,
  });
}

/** A list route on `path` answering from `list`, with the paginator mounted on it. */
function listApp(
  adapter: (typeof adapters)[number],
  pages: KeysetPaginator,
  path = '/v1/rows',
  list: () => readonly Row[] = () => rows,
) {
  return adapter.build({
    routes: [
      {
        method: 'get',
        path,
        use: [pages],
        handler: ({ context }) => ({
          body: pages.respond(context, pages.array(list(), pages.request(context))),
        }),
      },
    ],
  });
}

function linkOf(res: request.Response, rel: string): string | undefined {
  return parseLinkHeader(res.headers.link as string | undefined).find((l) => l.rel.includes(rel))
    ?.href;
}

describe.each(adapters)('keysetPagination sorts a client chooses, through $name', (adapter) => {
  it('refuses a sort with fields after the unique column: 400, not 500', async () => {
    const pages = paginator({
      sortable: { id: { column: 'id' }, name: { column: 'name' } },
      defaultSort: 'id',
    });
    const app = listApp(adapter, pages);
    const res = await request(app)
      .get('/v1/rows?sort=id,name')
      .expect(400)
      .expect('content-type', /application\/problem\+json/);
    expect(res.body.errors).toEqual([expect.objectContaining({ in: 'query', pointer: '/sort' })]);
    expect(res.body.errors[0].detail).toContain('id');
    // The unique column last, or alone, is a sort like any other.
    const ok = await request(app).get('/v1/rows?sort=-name,id').expect(200);
    expect(ok.body.data.map((r: Row) => r.id)).toEqual(['r2', 'r5']);
    await request(app).get('/v1/rows?sort=-id').expect(200);
  });

  it('refuses two fields that sort by one column: 400, not 500', async () => {
    const pages = paginator({
      sortable: { at: { column: 'at' }, createdAt: { column: 'at' }, name: { column: 'name' } },
    });
    const res = await request(listApp(adapter, pages))
      .get('/v1/rows?sort=createdAt,name,-at')
      .expect(400);
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/sort']);
    expect(res.body.errors[0].detail).toMatch(/createdAt.*at|at.*createdAt/);
  });
});
