/**
 * Deprecation and sunset, per version and per route, through every adapter:
 * the header values are checked against their grammars (RFC 9745 §2.1: the
 * Deprecation value is an RFC 9651 Date structured field; RFC 8594 §3: Sunset
 * is an HTTP-date, RFC 9110 §5.6.7 IMF-fixdate; RFC 8288 §3: Link), and after
 * the sunset a version or route answers 410 Gone when asked to, with an
 * injectable clock.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../src/conditional/http-date.js';
import { parseLinkHeader } from '../../src/core/link.js';
import { deprecated, formatStructuredDate, versionOf } from '../../src/versioning/index.js';
import { adapters } from '../helpers/apps.js';
import { buildUsersApp, usersVersioning } from './app.js';
import { fullName } from './fixtures.js';

// RFC 9651 §3.3.7 and §3.3.1: sf-date = "@" sf-integer; sf-integer = ["-"] 1*15DIGIT.
const SF_DATE = /^@-?[0-9]{1,15}$/;
// RFC 9110 §5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT.
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$/;
// RFC 8288 §3, one link-value as restwell writes it: "<" URI-Reference ">" *( ";" link-param ).
const LINK_VALUE = /^<[^<>\s"]*>(; [a-z*]+=("[^"]*"|[!#$%&'*+.^_`|~0-9A-Za-z-]+))+$/;

const DEPRECATION = '2025-01-01';
const SUNSET = '2025-07-01';
const BEFORE_SUNSET = Date.UTC(2025, 2, 1);
const AFTER_SUNSET = Date.UTC(2025, 7, 1);

function linkValues(header: string | undefined): string[] {
  // Splits on the commas between link-values; restwell never writes one inside a target.
  return header === undefined ? [] : header.split(/,\s*(?=<)/);
}

function deprecatedV1(now: () => number, afterSunset: 'serve' | 'gone' = 'serve') {
  return usersVersioning(
    {},
    {
      now,
      versions: [
        {
          version: 'v1',
          deprecation: DEPRECATION,
          sunset: SUNSET,
          afterSunset,
          links: {
            deprecation: 'https://api.example.com/docs/migrate-to-v2',
            sunset: 'https://api.example.com/docs/sunset-policy',
          },
        },
        { version: 'v2', changes: [fullName] },
      ],
      maxActive: 2,
    },
  );
}

describe('the header values', () => {
  it('Deprecation is an RFC 9651 Date: @ and the epoch seconds, never true', () => {
    expect(formatStructuredDate(new Date('2025-01-01T00:00:00Z'))).toBe('@1735689600');
    expect(formatStructuredDate(new Date('2025-01-01T00:00:00.999Z'))).toBe('@1735689600');
    expect(formatStructuredDate(new Date(0))).toBe('@0');
    expect(formatStructuredDate(new Date('9999-12-31T23:59:59Z'))).toMatch(SF_DATE);
  });
});

describe.each(adapters)('deprecation on $name', (adapter) => {
  describe('of a version', () => {
    it('signals a deprecated version on every answer, errors included, by the grammars', async () => {
      const server = buildUsersApp(adapter, { versions: deprecatedV1(() => BEFORE_SUNSET) });
      for (const [path, status] of [
        ['/v1/users/u1', 200],
        ['/v1/users/nobody', 404],
      ] as const) {
        const res = await request(server).get(path).expect(status);
        const deprecation = String(res.headers.deprecation);
        expect(deprecation).toMatch(SF_DATE);
        expect(deprecation).not.toBe('true');
        expect(Number(deprecation.slice(1))).toBe(Date.parse(`${DEPRECATION}T00:00:00Z`) / 1000);
        expect(res.headers.sunset).toMatch(IMF_FIXDATE);
        expect(parseHttpDate(res.headers.sunset)?.toISOString()).toBe(`${SUNSET}T00:00:00.000Z`);
        for (const value of linkValues(res.headers.link)) expect(value).toMatch(LINK_VALUE);
        const links = parseLinkHeader(res.headers.link);
        expect(links).toEqual(
          expect.arrayContaining([
            {
              href: 'https://api.example.com/docs/migrate-to-v2',
              rel: ['deprecation'],
              params: {},
            },
            { href: 'https://api.example.com/docs/sunset-policy', rel: ['sunset'], params: {} },
          ]),
        );
        // Under the URI strategy the successor is the same path under the next version.
        expect(links.find((l) => l.rel.includes('successor-version'))?.href).toBe(
          path.replace('/v1/', '/v2/'),
        );
      }
    });

    it('sends nothing of the sort for a version that is not deprecated', async () => {
      const server = buildUsersApp(adapter, { versions: deprecatedV1(() => BEFORE_SUNSET) });
      const res = await request(server).get('/v2/users/u1').expect(200);
      expect(res.headers.deprecation).toBeUndefined();
      expect(res.headers.sunset).toBeUndefined();
      expect(res.headers.link).toBeUndefined();
    });

    it('announces a deprecation dated in the future (RFC 9745 §2.1); the state says it is not yet deprecated', async () => {
      const server = buildUsersApp(adapter, {
        versions: deprecatedV1(() => Date.UTC(2024, 5, 1)),
      });
      const res = await request(server).get('/v1/users').expect(200);
      expect(res.headers.deprecation).toBe('@1735689600');
      expect(res.body.seen.version).toBe('v1');
    });

    it('keeps serving after the sunset, with the headers, unless asked to answer 410', async () => {
      const server = buildUsersApp(adapter, { versions: deprecatedV1(() => AFTER_SUNSET) });
      const res = await request(server).get('/v1/users/u1').expect(200);
      expect(res.headers.sunset).toMatch(IMF_FIXDATE);
      expect(res.body.name).toBe('Ada Lovelace');
    });

    it('answers 410 Gone after the sunset with afterSunset: gone, naming the successor, without running the handler', async () => {
      let now = BEFORE_SUNSET;
      let ran = 0;
      const server = buildUsersApp(adapter, {
        versions: deprecatedV1(() => now, 'gone'),
        extraRoutes: [
          {
            method: 'post',
            path: '/v1/effects',
            handler: () => {
              ran++;
              return { status: 204 };
            },
          },
        ],
      });
      await request(server).post('/v1/effects').expect(204);
      expect(ran).toBe(1);
      now = AFTER_SUNSET;
      const res = await request(server).post('/v1/effects').expect(410);
      expect(ran).toBe(1);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        status: 410,
        code: 'version-sunset',
        version: 'v1',
        successor: 'v2',
        sunset: `${SUNSET}T00:00:00.000Z`,
      });
      const links = parseLinkHeader(res.headers.link);
      expect(links.find((l) => l.rel.includes('successor-version'))?.href).toBe('/v2/effects');
      // The successor still answers.
      await request(server).get('/v2/users/u1').expect(200);
    });
  });

  describe('under the header strategy', () => {
    it('links a successor only when one is configured', async () => {
      const versions = usersVersioning(
        { strategy: 'header' },
        {
          now: () => BEFORE_SUNSET,
          maxActive: 2,
          versions: [
            {
              version: 'v1',
              deprecation: DEPRECATION,
              links: { successor: 'https://api.example.com/docs/v2' },
            },
            { version: 'v2' },
          ],
        },
      );
      const res = await request(buildUsersApp(adapter, { versions }))
        .get('/users')
        .set('Api-Version', 'v1')
        .expect(200);
      expect(res.headers.deprecation).toBe('@1735689600');
      expect(res.headers.sunset).toBeUndefined();
      expect(parseLinkHeader(res.headers.link)).toEqual([
        { href: 'https://api.example.com/docs/v2', rel: ['successor-version'], params: {} },
      ]);
    });
  });

  describe('of a route', () => {
    const policy = {
      deprecation: '2025-01-01T12:00:00Z',
      sunset: SUNSET,
      links: {
        deprecation: 'https://api.example.com/docs/search',
        successor: '/v2/users?search=',
      },
    };

    it('signals deprecation on the route’s answers, errors included, and keeps the handler’s own links', async () => {
      const server = adapter.build({
        routes: [
          {
            method: 'get',
            path: '/search',
            use: [deprecated({ ...policy, now: () => BEFORE_SUNSET })],
            handler: (req) => {
              if (req.query.fail !== undefined) throw new Error('boom');
              return { headers: { link: '</search?page=2>; rel="next"' }, body: { ok: true } };
            },
          },
          { method: 'get', path: '/other', handler: () => ({ body: { ok: true } }) },
        ],
      });
      const ok = await request(server).get('/search').expect(200);
      expect(ok.headers.deprecation).toBe(`@${Date.parse(policy.deprecation) / 1000}`);
      expect(ok.headers.sunset).toBe('Tue, 01 Jul 2025 00:00:00 GMT');
      const rels = parseLinkHeader(ok.headers.link).map((l) => l.rel[0]);
      expect(rels).toEqual(expect.arrayContaining(['deprecation', 'successor-version']));
      const failed = await request(server).get('/search?fail=1').expect(500);
      expect(failed.headers.deprecation).toMatch(SF_DATE);
      const other = await request(server).get('/other').expect(200);
      expect(other.headers.deprecation).toBeUndefined();
    });

    it('answers 410 after the sunset with afterSunset: gone, naming the successor', async () => {
      let ran = 0;
      const server = adapter.build({
        routes: [
          {
            method: 'get',
            path: '/search',
            use: [deprecated({ ...policy, afterSunset: 'gone', now: () => AFTER_SUNSET })],
            handler: () => {
              ran++;
              return { body: { ok: true } };
            },
          },
        ],
      });
      const res = await request(server).get('/search').expect(410);
      expect(ran).toBe(0);
      expect(res.body).toMatchObject({
        code: 'resource-sunset',
        successor: '/v2/users?search=',
      });
      expect(
        parseLinkHeader(res.headers.link).find((l) => l.rel.includes('successor-version'))?.href,
      ).toBe('/v2/users?search=');
    });
  });

  it('exposes the deprecation on the state', async () => {
    const server = buildUsersApp(adapter, {
      versions: deprecatedV1(() => BEFORE_SUNSET),
      extraRoutes: [
        {
          method: 'get',
          path: '/v1/state',
          handler: (req) => ({ body: versionOf(req.state) ?? null }),
        },
      ],
    });
    const res = await request(server).get('/v1/state').expect(200);
    expect(res.body).toEqual({
      name: 'v1',
      source: 'uri',
      newest: false,
      deprecated: true,
      sunset: `${SUNSET}T00:00:00.000Z`,
    });
  });
});
