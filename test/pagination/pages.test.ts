import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/core/link.js';
import { createCursorCodec } from '../../src/pagination/cursor.js';
import {
  type KeysetPaginationOptions,
  keysetPagination,
} from '../../src/pagination/keyset-pages.js';
import { offsetPagination } from '../../src/pagination/offset-pages.js';
import { type AdapterCase, adapters } from '../helpers/apps.js';

interface Item {
  id: string;
  createdAt: string;
  name: string;
  rank: number | null;
  status: 'open' | 'closed';
}

const SECRET = 'x'.repeat(32);
const cursors = createCursorCodec({ secrets: [SECRET] });

/** 47 items: createdAt ties (five per second), names repeating, a nullable rank. */
function makeItems(): Item[] {
  return Array.from({ length: 47 }, (_, i) => ({
    id: `it_${String(i).padStart(3, '0')}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, Math.floor(i / 5))).toISOString(),
    name: ['Ada', 'Alan', 'Grace'][i % 3] as string,
    rank: i % 4 === 0 ? null : i % 7,
    status: i % 2 === 0 ? 'open' : 'closed',
  }));
}

const baseOptions: KeysetPaginationOptions = {
  cursors,
  sortable: {
    createdAt: { column: 'created_at', key: 'createdAt' },
    name: { column: 'name' },
    rank: { column: 'rank', nullable: true },
  },
  unique: 'id',
  defaultSort: '-createdAt',
  defaultLimit: 7,
  maxLimit: 25,
  filters: ['status'],
  total: true,
};

function listApp(
  adapter: AdapterCase,
  items: Item[],
  options: Partial<KeysetPaginationOptions> = {},
) {
  const pages = keysetPagination({ ...baseOptions, ...options });
  return adapter.build({
    routes: [
      {
        method: 'get',
        path: '/v1/items',
        use: [pages],
        handler: ({ context }) => {
          const page = pages.request(context);
          const status = context.request.query.get('status');
          const rows = status === null ? items : items.filter((i) => i.status === status);
          const result = pages.array(rows, page);
          return {
            body: pages.respond(context, result, page.total ? { total: rows.length } : {}),
          };
        },
      },
    ],
  });
}

function linkOf(res: request.Response, rel: string): string | undefined {
  return parseLinkHeader(res.headers.link as string | undefined).find((l) => l.rel.includes(rel))
    ?.href;
}

async function walk(
  app: ReturnType<AdapterCase['build']>,
  start: string,
  rel: 'next' | 'prev',
  between?: (step: number) => void,
): Promise<{ ids: string[][]; steps: number }> {
  const ids: string[][] = [];
  let url: string | undefined = start;
  let steps = 0;
  while (url !== undefined) {
    const res = await request(app).get(url).expect(200);
    ids.push(res.body.data.map((i: Item) => i.id));
    // The body's links are the header's.
    expect(res.body.links[rel]).toBe(linkOf(res, rel));
    url = linkOf(res, rel);
    between?.(steps);
    if (++steps > 100) throw new Error('the walk does not end');
  }
  return { ids, steps };
}

function sorted(items: Item[], compare: (a: Item, b: Item) => number): string[] {
  return [...items].sort(compare).map((i) => i.id);
}

const byCreatedDesc = (a: Item, b: Item) =>
  a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1;

describe.each(adapters)('keysetPagination through $name', (adapter) => {
  it('walks forward through every row once, in order, and back again', async () => {
    const items = makeItems();
    const app = listApp(adapter, items);
    const forward = await walk(app, '/v1/items', 'next');
    expect(forward.ids.flat()).toEqual(sorted(items, byCreatedDesc));
    expect(forward.ids.every((p, i) => p.length === 7 || i === forward.ids.length - 1)).toBe(true);

    // From the last page back to the first: the same pages, each in the sort's order.
    const first = await request(app).get('/v1/items').expect(200);
    const back = await walk(app, linkOf(first, 'last') as string, 'prev');
    const backPages = back.ids.reverse();
    expect(backPages.flat()).toEqual(sorted(items, byCreatedDesc));
    // Backward pages count from the end: every page but the first is full.
    expect(backPages.slice(1).every((p) => p.length === 7)).toBe(true);
  });

  it('gives the exact inverse page when going back from a next page', async () => {
    const app = listApp(adapter, makeItems());
    const p1 = await request(app).get('/v1/items?limit=5').expect(200);
    const p2 = await request(app)
      .get(linkOf(p1, 'next') as string)
      .expect(200);
    const back = await request(app)
      .get(linkOf(p2, 'prev') as string)
      .expect(200);
    expect(back.body.data).toEqual(p1.body.data);
    expect(back.body.pagination).toMatchObject({ hasPrev: false, hasNext: true });
    expect(p1.body.pagination).toMatchObject({ hasPrev: false, hasNext: true, prevCursor: null });
    expect(p2.body.pagination).toMatchObject({ hasPrev: true, hasNext: true });
  });

  it('sorts by an allowlisted multi-field sort with mixed directions and NULLs', async () => {
    const items = makeItems();
    const app = listApp(adapter, items);
    const rankAsc = (a: Item, b: Item) => {
      // PostgreSQL's default: NULLs last in ascending order.
      if (a.rank !== b.rank) {
        if (a.rank === null) return 1;
        if (b.rank === null) return -1;
        return a.rank - b.rank;
      }
      if (a.name !== b.name) return a.name < b.name ? 1 : -1;
      return a.id < b.id ? 1 : -1;
    };
    const { ids } = await walk(app, '/v1/items?sort=rank,-name&limit=4', 'next');
    expect(ids.flat()).toEqual(sorted(items, rankAsc));
  });

  it('refuses every bad parameter in one 400 problem', async () => {
    const app = listApp(adapter, makeItems());
    const res = await request(app)
      .get('/v1/items?limit=500&sort=-createdAt,password&cursor=forged&total=yes')
      .expect(400)
      .expect('content-type', /application\/problem\+json/);
    expect(res.body.code ?? res.body.type).toBeDefined();
    const pointers = res.body.errors.map((e: { pointer: string }) => e.pointer).sort();
    expect(pointers).toEqual(['/cursor', '/limit', '/sort', '/total']);
    const sortIssue = res.body.errors.find((e: { pointer: string }) => e.pointer === '/sort');
    expect(sortIssue.detail).toContain('createdAt, name, rank');
    expect(res.body.errors.every((e: { in: string }) => e.in === 'query')).toBe(true);
  });

  it.each([
    ['limit=0', '/limit'],
    ['limit=-1', '/limit'],
    ['limit=1e1', '/limit'],
    ['limit=%2010', '/limit'],
    ['limit=', '/limit'],
    ['limit=5&limit=6', '/limit'],
    ['sort=', '/sort'],
    ['sort=name,,rank', '/sort'],
    ['sort=name,name', '/sort'],
    ['sort=a,b,c,d', '/sort'],
    ['sort=__proto__', '/sort'],
    ['sort=created_at', '/sort'],
  ])('refuses %s', async (query, pointer) => {
    const res = await request(app0(adapter)).get(`/v1/items?${query}`).expect(400);
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
  });

  it('refuses a tampered, foreign or mismatched cursor with invalid-cursor, never a 500', async () => {
    const app = listApp(adapter, makeItems());
    const p1 = await request(app).get('/v1/items?status=open&limit=3').expect(200);
    const next = p1.body.pagination.nextCursor as string;
    const tampered = `${next.slice(0, -2)}${next.endsWith('A') ? 'B' : 'A'}A`;
    const foreign = createCursorCodec({ secrets: ['y'.repeat(32)] }).encode(['a', 'x'], {});
    for (const [query, reason] of [
      [`status=open&limit=3&cursor=${tampered}`, ['signature', 'malformed']],
      [`status=open&limit=3&cursor=${foreign}`, ['signature']],
      [`status=closed&limit=3&cursor=${next}`, ['mismatch']],
      [`status=open&limit=4&cursor=${next}`, ['mismatch']],
      [`status=open&limit=3&sort=name&cursor=${next}`, ['mismatch']],
      [`limit=3&cursor=${next}`, ['mismatch']],
      [`status=open&limit=3&cursor=${'A'.repeat(5000)}`, ['malformed']],
      [`status=open&limit=3&cursor=%00%FF`, ['malformed']],
    ] as const) {
      const res = await request(app).get(`/v1/items?${query}`).expect(400);
      expect(res.body.code).toBe('invalid-cursor');
      expect(reason).toContain(res.body.reason);
    }
    // The same cursor with its own parameters, in any order, works.
    await request(app).get(`/v1/items?cursor=${next}&limit=3&status=open`).expect(200);
  });

  it('refuses a cursor whose payload is not a page position', async () => {
    const app = listApp(adapter, makeItems());
    const binding = {
      path: '/v1/items',
      sort: '-createdAt',
      limit: 7,
      filters: { status: [] },
      since: null,
      until: null,
    };
    for (const payload of [['z', 'x', 'y'], ['a', 'only-one'], ['l', 'extra'], []]) {
      const cursor = cursors.encode(payload, binding);
      const res = await request(app).get(`/v1/items?cursor=${cursor}`).expect(400);
      expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'malformed' });
    }
  });

  it('keeps other query parameters in the links, relative by default and absolute under baseUrl', async () => {
    const items = makeItems();
    const rel = listApp(adapter, items);
    const res = await request(rel).get('/v1/items?status=open&limit=2&q=a%20b%26c').expect(200);
    const next = new URL(linkOf(res, 'next') as string, 'http://x');
    expect(next.pathname).toBe('/v1/items');
    expect(next.searchParams.get('status')).toBe('open');
    expect(next.searchParams.get('q')).toBe('a b&c');
    expect(next.searchParams.get('limit')).toBe('2');
    expect(linkOf(res, 'first')).toBe('/v1/items?status=open&limit=2&q=a+b%26c');
    expect(res.body.links.self).toBe('/v1/items?status=open&limit=2&q=a+b%26c');
    expect(res.body.pagination.total).toBeUndefined();

    const abs = listApp(adapter, items, { baseUrl: 'https://api.example.com/api/' });
    const res2 = await request(abs).get('/v1/items?limit=2').expect(200);
    expect(linkOf(res2, 'next')).toMatch(
      /^https:\/\/api\.example\.com\/api\/v1\/items\?limit=2&cursor=/,
    );
  });

  it('counts the total only when asked, and only when allowed', async () => {
    const items = makeItems();
    const app = listApp(adapter, items);
    const res = await request(app).get('/v1/items?total=true&status=open').expect(200);
    expect(res.body.pagination.total).toBe(items.filter((i) => i.status === 'open').length);
    const off = listApp(adapter, items, { total: false });
    const res2 = await request(off).get('/v1/items?total=true').expect(200);
    expect(res2.body.pagination.total).toBeUndefined();
  });

  it('never skips or repeats a row that exists throughout while rows come and go', async () => {
    const items = makeItems();
    const survivors = new Set(items.map((i) => i.id));
    const app = listApp(adapter, items);
    let added = 0;
    const seen = await walk(app, '/v1/items?limit=6', 'next', (step) => {
      // Delete one row somewhere ahead, and add rows before and after the walk's position.
      const victim = items.find((i, k) => k % 5 === step % 5 && survivors.has(i.id));
      if (victim !== undefined) {
        items.splice(items.indexOf(victim), 1);
        survivors.delete(victim.id);
      }
      for (const createdAt of [
        '2025-12-31T00:00:00.000Z',
        '2026-01-01T00:00:04.000Z',
        '2027-01-01T00:00:00.000Z',
      ]) {
        items.push({ id: `new_${added++}`, createdAt, name: 'New', rank: 1, status: 'open' });
      }
    });
    const flat = seen.ids.flat();
    expect(new Set(flat).size).toBe(flat.length); // nothing twice
    for (const id of survivors) {
      if (!id.startsWith('new_')) expect(flat).toContain(id); // nothing that stayed is skipped
    }
  });

  it('links an empty page past the end to the last page, and before the start to the first', async () => {
    const items = makeItems();
    const app = listApp(adapter, items);
    const beforeLast = await request(app).get('/v1/items?limit=3').expect(200);
    // Take a next cursor, then delete everything after its position.
    const next = linkOf(beforeLast, 'next') as string;
    const kept = [...items];
    const firstPage = new Set(beforeLast.body.data.map((i: Item) => i.id));
    items.splice(0, items.length, ...kept.filter((i) => firstPage.has(i.id)));
    const empty = await request(app).get(next).expect(200);
    expect(empty.body.data).toEqual([]);
    expect(empty.body.pagination).toMatchObject({
      hasNext: false,
      hasPrev: true,
      prevCursor: null,
    });
    const prev = await request(app)
      .get(linkOf(empty, 'prev') as string)
      .expect(200);
    expect(prev.body.data.map((i: Item) => i.id)).toEqual(
      beforeLast.body.data.map((i: Item) => i.id),
    );
    // And the other way: a prev cursor, with every row before its position deleted since.
    items.splice(0, items.length, ...kept);
    const p1 = await request(app).get('/v1/items?limit=3').expect(200);
    const p2 = await request(app)
      .get(linkOf(p1, 'next') as string)
      .expect(200);
    const prevUrl = linkOf(p2, 'prev') as string;
    items.splice(
      0,
      items.length,
      ...kept.filter((i) => !p1.body.data.some((d: Item) => d.id === i.id)),
    );
    const gone = await request(app).get(prevUrl).expect(200);
    expect(gone.body.data).toEqual([]);
    expect(gone.body.pagination).toMatchObject({ hasNext: true, hasPrev: false, nextCursor: null });
    expect(linkOf(gone, 'next')).toBe(linkOf(gone, 'first'));
    const again = await request(app)
      .get(linkOf(gone, 'next') as string)
      .expect(200);
    expect(again.body.data).toEqual(p2.body.data);
  });

  it('pages a time window: since included, until excluded, ties paged by the cursor', async () => {
    const items = makeItems();
    const app = listApp(adapter, items, {
      window: { field: 'createdAt' },
      defaultSort: 'createdAt',
    });
    const since = '2026-01-01T00:00:02Z';
    const until = '2026-01-01T01:00:05+01:00'; // 00:00:05Z
    const { ids } = await walk(
      app,
      `/v1/items?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}&limit=2`,
      'next',
    );
    const expected = items
      .filter(
        (i) =>
          i.createdAt >= '2026-01-01T00:00:02.000Z' && i.createdAt < '2026-01-01T00:00:05.000Z',
      )
      .map((i) => i.id);
    expect(ids.flat()).toEqual(expected); // 15 rows: three seconds of five ties each
    expect(expected).toHaveLength(15);

    for (const [query, pointer] of [
      ['since=yesterday', '/since'],
      ['since=2026-01-01', '/since'],
      ['since=2026-01-01 00:00:00Z', '/since'],
      ['since=2026-02-30T00:00:00Z', '/since'],
      ['until=2026-01-01T00:00:60Z', '/until'],
      ['until=2026-01-01T00:00:00.1234567Z', '/until'],
      ['since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z', '/until'],
      ['since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00.000Z', '/until'],
    ] as const) {
      const res = await request(app)
        .get(`/v1/items?${query.replaceAll('+', '%2B')}`)
        .expect(400);
      expect(res.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual([pointer]);
    }
    // A cursor is bound to its window.
    const p1 = await request(app).get(`/v1/items?since=${since}&limit=2`).expect(200);
    const cursor = p1.body.pagination.nextCursor as string;
    const res = await request(app)
      .get(`/v1/items?since=2026-01-01T00:00:01Z&limit=2&cursor=${cursor}`)
      .expect(400);
    expect(res.body.reason).toBe('mismatch');
  });
});

function app0(adapter: AdapterCase) {
  return listApp(adapter, makeItems());
}

describe('keysetPagination options', () => {
  it.each([
    [{ cursors: undefined }, /cursors/],
    [{ sortable: {} }, /sortable/],
    [{ defaultSort: 'nope' }, /defaultSort/],
    [{ defaultSort: '-createdAt,-createdAt' }, /defaultSort/],
    [{ defaultLimit: 50, maxLimit: 10 }, /defaultLimit/],
    [{ maxLimit: 0 }, /maxLimit/],
    [{ filters: ['limit'] }, /filters/],
    [{ params: { cursor: 'limit' } }, /params/],
    [{ window: { field: 'updatedAt' } }, /window\.field/],
    [{ baseUrl: 'api.example.com' }, /baseUrl/],
    [{ baseUrl: 'https://user:secret@api.example.com' }, /baseUrl/],
    [{ baseUrl: 'https://api.example.com/?x=1' }, /baseUrl/],
    [{ unique: 'id; DROP TABLE users' }, /identifier/],
    [{ sortable: { createdAt: { column: 'created_at', nullable: 'yes' } } }, /nullable/],
    [{ defualtSort: '-createdAt' }, /defaultSort/],
  ])('refuses %o', (patch, message) => {
    expect(() =>
      keysetPagination({ ...baseOptions, ...(patch as object) } as KeysetPaginationOptions),
    ).toThrow(message);
  });

  it('does not serialise a secret-bearing baseUrl in its message', () => {
    expect(() =>
      keysetPagination({ ...baseOptions, baseUrl: 'https://user:hunter2@api.example.com' }),
    ).toThrow(/baseUrl/);
  });

  it('builds SQL that ANDs the time window with the keyset condition, numbered after the caller', () => {
    const pages = keysetPagination({ ...baseOptions, window: { field: 'createdAt' } });
    const ctx = fakeContext('/v1/items?since=2026-01-01T00:00:00.5Z&until=2026-01-02T00:00:00Z');
    const page = pages.request(ctx);
    const q = pages.sql(page, 1);
    expect(q.where).toBe('(created_at >= $2 AND created_at < $3 AND TRUE)');
    expect(q.params).toEqual(['2026-01-01T00:00:00.500000Z', '2026-01-02T00:00:00.000000Z']);
    expect(q.orderBy).toBe('created_at DESC, id DESC');
    expect(q.limit).toBe(8);
    expect(() => pages.sql({ ...page }, 0)).toThrow(/request this paginator read/);
  });
});

function fakeContext(url: string) {
  const [path, search = ''] = url.split('?') as [string, string?];
  const headers = new Map<string, string>();
  return {
    request: { url, path, query: new URLSearchParams(search), headers: {}, method: 'GET' },
    response: {
      status: 200,
      body: null,
      headers: {
        get: (n: string) => headers.get(n),
        has: (n: string) => headers.has(n),
        set: (n: string, v: string) => headers.set(n, v),
        append: (n: string, v: string) =>
          headers.set(n, headers.has(n) ? `${headers.get(n)}, ${v}` : v),
        delete: (n: string) => headers.delete(n),
        names: () => [...headers.keys()],
      },
    },
    state: {},
  } as unknown as import('../../src/core/context.js').Context;
}

describe.each(adapters)('offsetPagination through $name', (adapter) => {
  const items = Array.from({ length: 45 }, (_, i) => ({ id: i + 1 }));
  function app(options: Parameters<typeof offsetPagination>[0] = {}) {
    const pages = offsetPagination({ total: true, ...options });
    return adapter.build({
      routes: [
        {
          method: 'get',
          path: '/v1/audit',
          use: [pages],
          handler: ({ context }) => {
            const page = pages.request(context);
            return {
              body: pages.respond(
                context,
                pages.array(items, page),
                page.total ? { total: items.length } : {},
              ),
            };
          },
        },
      ],
    });
  }

  it('pages with offset and limit, with first, prev, next and last links', async () => {
    const res = await request(app()).get('/v1/audit?offset=20&limit=10&total=true&q=x').expect(200);
    expect(res.body.data.map((r: { id: number }) => r.id)).toEqual([
      21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    ]);
    expect(res.body.pagination).toEqual({
      offset: 20,
      limit: 10,
      page: 3,
      hasNext: true,
      hasPrev: true,
      total: 45,
    });
    expect(res.body.links).toEqual({
      self: '/v1/audit?offset=20&limit=10&total=true&q=x',
      first: '/v1/audit?limit=10&total=true&q=x',
      prev: '/v1/audit?offset=10&limit=10&total=true&q=x',
      next: '/v1/audit?offset=30&limit=10&total=true&q=x',
      last: '/v1/audit?offset=40&limit=10&total=true&q=x',
    });
    expect(linkOf(res, 'last')).toBe(res.body.links.last);
    expect(linkOf(res, 'self')).toBeUndefined();
  });

  it('pages with page and size', async () => {
    const res = await request(app({ style: 'page' }))
      .get('/v1/audit?page=5&size=10')
      .expect(200);
    expect(res.body.data.map((r: { id: number }) => r.id)).toEqual([41, 42, 43, 44, 45]);
    expect(res.body.pagination).toMatchObject({ page: 5, hasNext: false, hasPrev: true });
    expect(res.body.links.prev).toBe('/v1/audit?page=4&size=10');
    expect(res.body.links.next).toBeUndefined();
    expect(res.body.links.first).toBe('/v1/audit?size=10');
  });

  it('refuses an offset past the maximum, and every other bad parameter, in one problem', async () => {
    const res = await request(app({ maxOffset: 100 }))
      .get('/v1/audit?offset=101&limit=abc&total=1')
      .expect(400);
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/limit',
      '/offset',
      '/total',
    ]);
    const res2 = await request(app({ style: 'page', maxOffset: 100 }))
      .get('/v1/audit?page=12&size=10')
      .expect(400);
    expect(res2.body.errors[0].detail).toContain('from 1 to 11');
  });

  it('clamps prev to the first rows when the offset is not a multiple of the limit', async () => {
    const res = await request(app()).get('/v1/audit?offset=5&limit=10').expect(200);
    expect(res.body.links.prev).toBe('/v1/audit?limit=10');
    expect(res.body.pagination.page).toBeUndefined();
  });
});
