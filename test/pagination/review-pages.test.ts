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

  it('drops a fragment a client put in the request target, rather than putting the query in it', async () => {
    const pages = paginator();
    const res = await rawGet(listApp(adapter, pages), '/v1/rows#top?limit=1');
    expect(res.status).toBe(200);
    const next = linkOf(res, 'next') as string;
    expect(next).toMatch(/^\/v1\/rows\?limit=1&cursor=/);
    expect(res.body.links.self).toBe('/v1/rows?limit=1');
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
