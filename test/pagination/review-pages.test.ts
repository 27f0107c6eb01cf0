import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/core/link.js';
import { createCursorCodec } from '../../src/pagination/cursor.js';
import {
  type KeysetPaginationOptions,
  type KeysetPaginator,
  keysetPagination,
} from '../../src/pagination/keyset-pages.js';
import { offsetPagination } from '../../src/pagination/offset-pages.js';
import { formatInstant, instantOf, parseInstant } from '../../src/pagination/params.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

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

function linkOf(res: { headers: Record<string, unknown> }, rel: string): string | undefined {
  const field = res.headers.link;
  const value = Array.isArray(field) ? field.join(', ') : (field as string | undefined);
  return parseLinkHeader(value).find((l) => l.rel.includes(rel))?.href;
}

/** A GET with the target sent as written (supertest would normalise `\\` and drop `#...`). */
async function rawGet(app: ReturnType<typeof listApp>, path: string) {
  const res = await raw(app, { path });
  return { status: res.status, headers: res.headers, body: JSON.parse(res.body.toString()) };
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

describe.each(adapters)('keysetPagination links, through $name', (adapter) => {
  it('writes the body links as the Link header does: percent-encoded, never naming another host', async () => {
    const pages = paginator();
    const app = listApp(adapter, pages, '/:org/rows');
    for (const [path, encoded] of [
      ['/\\evil.example/rows', '/%5Cevil.example/rows'],
      ['/o"x/rows', '/o%22x/rows'],
      ['/[o]/rows', '/%5Bo%5D/rows'],
      ['/o%2Fx/rows', '/o%2Fx/rows'],
    ] as const) {
      const res = await rawGet(app, `${path}?limit=1`);
      expect(res.status).toBe(200);
      for (const rel of ['first', 'next', 'last'] as const) {
        expect(res.body.links[rel]).toBe(linkOf(res, rel));
        expect(res.body.links[rel].startsWith(`${encoded}?`)).toBe(true);
        // Resolved as a browser resolves it, the link stays on the API's host.
        expect(new URL(res.body.links[rel], 'https://api.example.com/').host).toBe(
          'api.example.com',
        );
      }
      expect(res.body.links.self).toBe(`${encoded}?limit=1`);
    }
  });

  it('drops a fragment a client put in the request target, as the router does', async () => {
    const pages = paginator();
    // What follows a # is no query (parseurl stops there too): the links carry none of it.
    const res = await rawGet(listApp(adapter, pages), '/v1/rows#top?limit=1');
    expect(res.status).toBe(200);
    expect(linkOf(res, 'next') as string).toMatch(/^\/v1\/rows\?cursor=/);
    expect(res.body.links.self).toBe('/v1/rows');
    const after = await rawGet(listApp(adapter, pages), '/v1/rows?limit=1#top');
    expect(linkOf(after, 'next') as string).toMatch(/^\/v1\/rows\?limit=1&cursor=/);
    expect(after.body.links.self).toBe('/v1/rows?limit=1');
  });

  it('writes each relation once when the handler responds twice', async () => {
    const pages = paginator();
    const app = adapter.build({
      routes: [
        {
          method: 'get',
          path: '/v1/rows',
          use: [pages],
          handler: ({ context }) => {
            const page = pages.request(context);
            pages.links(context, pages.array(rows, page));
            return { body: pages.respond(context, pages.array(rows, page)) };
          },
        },
      ],
      framework: {
        express: [
          (_req, res, next) => {
            res.append('Link', '</v1/other>; rel="alternate"');
            next();
          },
        ],
        koa: [
          async (ctx, next) => {
            ctx.append('Link', '</v1/other>; rel="alternate"');
            await next();
          },
        ],
      },
    });
    const res = await request(app).get('/v1/rows').expect(200);
    const links = parseLinkHeader(res.headers.link as string);
    expect(links.map((l) => l.rel.join(' '))).toEqual(['alternate', 'first', 'next', 'last']);
  });
});

describe.each(adapters)(
  'keysetPagination cursors of another configuration, through $name',
  (adapter) => {
    const numbered = rows.map((r, i) => ({ ...r, id: String(1000 + i), rank: i }));
    const ranked = numbered.map((r, i) => ({ ...r, rank: i < 3 ? null : i }));

    it.each([
      [
        'text ids became bigints',
        paginator({ unique: 'id' }),
        rows,
        paginator({ unique: { column: 'id', type: 'bigint' } }),
      ],
      [
        'a nullable column became NOT NULL',
        paginator({ sortable: { rank: { column: 'rank', nullable: true } }, defaultSort: '-rank' }),
        ranked,
        paginator({ sortable: { rank: { column: 'rank' } }, defaultSort: '-rank' }),
      ],
    ] as const)('refuses a cursor made before %s: 400, not 500', async (_, old, oldRows, now) => {
      const issued = await request(listApp(adapter, old, '/v1/rows', () => oldRows))
        .get('/v1/rows')
        .expect(200);
      const cursor = issued.body.pagination.nextCursor as string;
      const app = listApp(adapter, now, '/v1/rows', () => numbered);
      await request(app).get('/v1/rows').expect(200);
      const res = await request(app)
        .get(`/v1/rows?cursor=${cursor}`)
        .expect(400)
        .expect('content-type', /application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'malformed' });
    });
  },
);

describe('instantOf reads local mean time offsets, which PostgreSQL writes to the second', () => {
  it.each([
    ['1850-01-01 05:53:28+05:53:28', '1850-01-01T00:00:00.000000Z'],
    ['1850-01-01 00:00:00.000001-04:56:02', '1850-01-01T04:56:02.000001Z'],
    ['1900-06-01 00:19:32+00:19:32', '1900-06-01T00:00:00.000000Z'],
  ])('%s is %s', (text, iso) => {
    const at = instantOf(text);
    expect(at).toBeDefined();
    expect(formatInstant(at as bigint)).toBe(iso);
  });

  it.each(['1850-01-01 05:53:28+05:53:60', '1850-01-01 05:53:28+05:53:2'])('refuses %s', (text) => {
    expect(instantOf(text)).toBeUndefined();
  });
});

describe('parseInstant reads any number of fraction digits (RFC 3339 §5.6: "." 1*DIGIT)', () => {
  it.each([
    ['2026-01-31T09:30:00.0000000000Z', '2026-01-31T09:30:00.000000Z'],
    ['2026-01-31T09:30:00.123456000000000000Z', '2026-01-31T09:30:00.123456Z'],
  ])('reads %s as %s', (input, iso) => {
    expect(parseInstant(input)?.iso).toBe(iso);
  });

  it('still refuses a fraction finer than a microsecond', () => {
    expect(parseInstant('2026-01-31T09:30:00.1234560000001Z')).toBeUndefined();
  });
});

describe('offsetPagination parameter names', () => {
  it.each([
    [{ params: { offset: 'limit' } }],
    [{ style: 'page', params: { page: 'size' } }],
    [{ total: true, params: { total: 'offset' } }],
    [{ style: 'page', total: true, params: { size: 'total' } }],
  ] as const)('refuses %j: two parameters read from one name', (options) => {
    expect(() => offsetPagination(options as Parameters<typeof offsetPagination>[0])).toThrow(
      /params/,
    );
  });

  it('accepts a name the style does not read', () => {
    expect(() => offsetPagination({ style: 'offset', params: { page: 'limit' } })).not.toThrow();
  });
});

describe.each(adapters)(
  'keysetPagination filters named like Object members, through $name',
  (adapter) => {
    it.each(['__proto__', 'constructor', 'toString'])(
      'binds a cursor to the filter %s',
      async (name) => {
        const pages = paginator({ filters: [name] });
        const app = listApp(adapter, pages);
        const first = await request(app).get(`/v1/rows?${name}=a`).expect(200);
        const cursor = first.body.pagination.nextCursor as string;
        await request(app).get(`/v1/rows?${name}=a&cursor=${cursor}`).expect(200);
        const res = await request(app).get(`/v1/rows?${name}=b&cursor=${cursor}`).expect(400);
        expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
      },
    );
  },
);

interface Ranked {
  id: string;
  name: string;
  rank: number | null;
  at: string;
}

/** 23 rows: names and ranks tie, a third of the ranks NULL. */
function rankedRows(): Ranked[] {
  return Array.from({ length: 23 }, (_, i) => ({
    id: `k${String(i).padStart(2, '0')}`,
    name: ['Ada', 'Alan', 'Grace', 'Hedy'][i % 4] as string,
    rank: i % 3 === 0 ? null : i % 5,
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, Math.floor(i / 3))).toISOString(),
  }));
}

const rankedOptions: Partial<KeysetPaginationOptions> = {
  sortable: {
    name: { column: 'name' },
    rank: { column: 'rank', nullable: true },
    at: { column: 'at' },
  },
  filters: ['team'],
  window: { field: 'at' },
  total: true,
};

describe.each(adapters)('keysetPagination walks, through $name', (adapter) => {
  function rankedApp(list: Ranked[], pages = paginator(rankedOptions)) {
    return adapter.build({
      routes: [
        {
          method: 'get',
          path: '/v1/ranked',
          use: [pages],
          handler: ({ context }) => {
            const page = pages.request(context);
            return {
              body: pages.respond(
                context,
                pages.array(list, page),
                page.total ? { total: list.length } : {},
              ),
            };
          },
        },
      ],
    });
  }

  async function walk(
    app: ReturnType<typeof rankedApp>,
    start: string,
    rel: 'next' | 'prev',
    between?: (step: number) => void,
  ) {
    const pages: Array<{ ids: string[]; hasNext: boolean; hasPrev: boolean }> = [];
    let url: string | undefined = start;
    while (url !== undefined) {
      const res: request.Response = await request(app).get(url).expect(200);
      expect(res.body.links[rel]).toBe(linkOf(res, rel));
      pages.push({
        ids: res.body.data.map((r: Ranked) => r.id),
        hasNext: res.body.pagination.hasNext,
        hasPrev: res.body.pagination.hasPrev,
      });
      url = linkOf(res, rel);
      between?.(pages.length);
      if (pages.length > 60) throw new Error('the walk does not end');
    }
    return pages;
  }

  it('walks limit=1 forward and back over a mixed-direction sort with NULLs: every row once, in order, hasNext and hasPrev exact', async () => {
    const list = rankedRows();
    const app = rankedApp(list);
    const forward = await walk(app, '/v1/ranked?sort=-rank,name&limit=1', 'next');
    const order = forward.flatMap((p) => p.ids);
    expect([...order].sort()).toEqual(list.map((r) => r.id).sort());
    // NULLs first (descending), then ranks 4..0, each tie by name then id ascending.
    const expected = [...list]
      .sort((a, b) => {
        if (a.rank !== b.rank) {
          if (a.rank === null) return -1;
          if (b.rank === null) return 1;
          return b.rank - a.rank;
        }
        if (a.name !== b.name) return a.name < b.name ? -1 : 1;
        return a.id < b.id ? -1 : 1;
      })
      .map((r) => r.id);
    expect(order).toEqual(expected);
    forward.forEach((p, i) => {
      expect(p.hasPrev).toBe(i > 0);
      expect(p.hasNext).toBe(i < forward.length - 1);
    });
    const first = await request(app).get('/v1/ranked?sort=-rank,name&limit=1').expect(200);
    const back = await walk(app, linkOf(first, 'last') as string, 'prev');
    expect(back.flatMap((p) => p.ids).reverse()).toEqual(expected);
    back.forEach((p, i) => {
      expect(p.hasNext).toBe(i > 0);
      expect(p.hasPrev).toBe(i < back.length - 1);
    });
  });

  it('walks backward while rows come and go, never skipping or repeating one that stays', async () => {
    const list = rankedRows();
    const survivors = new Set(list.map((r) => r.id));
    const app = rankedApp(list);
    const first = await request(app).get('/v1/ranked?sort=name,-at&limit=4').expect(200);
    let added = 0;
    const back = await walk(app, linkOf(first, 'last') as string, 'prev', (step) => {
      const victim = list.find((r, k) => k % 4 === step % 4 && survivors.has(r.id));
      if (victim !== undefined) {
        list.splice(list.indexOf(victim), 1);
        survivors.delete(victim.id);
      }
      for (const name of ['Aaron', 'Betty', 'Zed']) {
        list.push({ id: `new${added++}`, name, rank: 1, at: '2026-01-01T00:00:03.000Z' });
      }
    });
    const seen = back.flatMap((p) => p.ids);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of survivors) if (!id.startsWith('new')) expect(seen).toContain(id);
  });

  it('says hasNext false on a list of exactly limit rows, and gives an empty list its first and last links only', async () => {
    const list = rankedRows().slice(0, 5);
    const full = await request(rankedApp(list)).get('/v1/ranked?limit=5').expect(200);
    expect(full.body.pagination).toMatchObject({
      hasNext: false,
      hasPrev: false,
      nextCursor: null,
    });
    expect(Object.keys(full.body.links).sort()).toEqual(['first', 'last', 'self']);
    const last = await request(rankedApp(list))
      .get(full.body.links.last as string)
      .expect(200);
    expect(last.body.data).toEqual(full.body.data);
    expect(last.body.pagination).toMatchObject({ hasNext: false, hasPrev: false });

    const empty = await request(rankedApp([])).get('/v1/ranked?total=true').expect(200);
    expect(empty.body.data).toEqual([]);
    expect(empty.body.pagination).toMatchObject({ hasNext: false, hasPrev: false, total: 0 });
    expect(parseLinkHeader(empty.headers.link).map((l) => l.rel[0])).toEqual(['first', 'last']);
  });

  it('binds prev and last cursors to the filters and the window as next cursors are', async () => {
    const list = rankedRows();
    const app = rankedApp(list);
    const window = 'since=2026-01-01T00:00:01Z&until=2026-01-01T00:00:06Z';
    const p1 = await request(app).get(`/v1/ranked?team=a&${window}&limit=2`).expect(200);
    const p2 = await request(app)
      .get(linkOf(p1, 'next') as string)
      .expect(200);
    const prev = p2.body.pagination.prevCursor as string;
    const last = new URL(linkOf(p1, 'last') as string, 'http://x').searchParams.get('cursor');
    for (const cursor of [prev, last]) {
      for (const query of [
        `team=b&${window}&limit=2`,
        `team=a&since=2026-01-01T00:00:01Z&limit=2`,
        `team=a&${window}&limit=3`,
        `team=a&team=a&${window}&limit=2`,
      ]) {
        const res = await request(app).get(`/v1/ranked?${query}&cursor=${cursor}`).expect(400);
        expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
      }
    }
    // The last page of the window: its rows, nothing outside it.
    const lastPage = await request(app)
      .get(linkOf(p1, 'last') as string)
      .expect(200);
    expect(lastPage.body.data.map((r: Ranked) => r.at)).toEqual(
      list
        .filter((r) => r.at >= '2026-01-01T00:00:01.000Z' && r.at < '2026-01-01T00:00:06.000Z')
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1))
        .slice(-2)
        .map((r) => r.at),
    );
  });
});

describe.each(adapters)(
  'keysetPagination binds cursors to their list, through $name',
  (adapter) => {
    it("refuses one account's cursor on another account's list (the path is a filter too)", async () => {
      const pages = paginator();
      const app = listApp(adapter, pages, '/v1/accounts/:account/rows');
      const a = await request(app).get('/v1/accounts/acc_a/rows').expect(200);
      const cursor = a.body.pagination.nextCursor as string;
      await request(app).get(`/v1/accounts/acc_a/rows?cursor=${cursor}`).expect(200);
      const res = await request(app).get(`/v1/accounts/acc_b/rows?cursor=${cursor}`).expect(400);
      expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
    });

    it('refuses the cursor of another list that shares the codec, sort and size', async () => {
      const users = paginator();
      const payments = paginator();
      const app = adapter.build({
        routes: [['/v1/users', users] as const, ['/v1/payments', payments] as const].map(
          ([path, pages]) => ({
            method: 'get' as const,
            path,
            use: [pages],
            handler: ({ context }: { context: Parameters<KeysetPaginator['request']>[0] }) => ({
              body: pages.respond(context, pages.array(rows, pages.request(context))),
            }),
          }),
        ),
      });
      const cursor = (await request(app).get('/v1/users').expect(200)).body.pagination
        .nextCursor as string;
      const res = await request(app).get(`/v1/payments?cursor=${cursor}`).expect(400);
      expect(res.body).toMatchObject({ code: 'invalid-cursor', reason: 'mismatch' });
    });

    it('keeps the cursors of links it wrote from a path spelled oddly', async () => {
      const pages = paginator();
      const app = listApp(adapter, pages, '/:org/rows');
      for (const target of ['/\\o/rows?limit=1', '/o/rows?limit=1#top']) {
        const first = await rawGet(app, target);
        expect(first.status).toBe(200);
        const next = await request(app)
          .get(linkOf(first, 'next') as string)
          .expect(200);
        expect(next.body.data).toHaveLength(1);
        expect(next.body.data[0].id).not.toBe(first.body.data[0].id);
      }
    });
  },
);
