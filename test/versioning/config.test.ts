/**
 * Configuration errors are loud and safe: every mistake throws a TypeError at
 * construction, naming the option (and the nearest valid name for a typo),
 * never serialising a value that may hold a secret.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  defineVersions,
  deprecated,
  type VersionDefinition,
  versionChange,
  versioning,
} from '../../src/versioning/index.js';
import { fullName } from './fixtures.js';

/** A breaking change of its own each time: a change belongs to one version. */
const rename = () =>
  versionChange({
    description: 'x',
    response: { migrate: () => {} },
  });

function define(versions: VersionDefinition[], extra: Record<string, unknown> = {}) {
  return () => defineVersions({ versions, maxActive: 5, ...extra });
}

describe('defineVersions', () => {
  it('accepts majors or dates, in any order, and sorts them', () => {
    const majors = defineVersions({
      versions: [{ version: 'v2', changes: [rename()] }, { version: 'v1' }],
    });
    expect(majors.supported).toEqual(['v2', 'v1']);
    expect(majors.newest.name).toBe('v2');
    expect(majors.kind).toBe('major');
    const dated = defineVersions({
      versions: [
        { version: '2025-06-01', changes: [rename()] },
        { version: '2024-11-20' },
        { version: '2025-01-15', changes: [rename()] },
      ],
      maxActive: 3,
    });
    expect(dated.supported).toEqual(['2025-06-01', '2025-01-15', '2024-11-20']);
    expect(dated.kind).toBe('dated');
    expect(dated.defaultVersion.name).toBe('2025-06-01');
  });

  it.each([['v01'], ['1'], ['V2'], ['2025-02-30'], ['2025-6-1'], ['1969-12-31'], ['latest']])(
    'refuses the version name %s',
    (name) => {
      expect(define([{ version: name }])).toThrow(/versions\[0\]\.version.*major.*date/);
    },
  );

  it('refuses majors mixed with dates, a version declared twice, or none', () => {
    expect(define([{ version: 'v1' }, { version: '2025-01-01', changes: [rename()] }])).toThrow(
      /one API uses one kind/,
    );
    expect(define([{ version: 'v1' }, { version: 'v1' }])).toThrow(/declared twice/);
    expect(define([])).toThrow(/"versions" must be a non-empty list/);
  });

  it('refuses breaking changes on the oldest version, and changes not made by versionChange()', () => {
    expect(define([{ version: 'v1', changes: [rename()] }, { version: 'v2' }])).toThrow(
      /oldest version.*no earlier version/,
    );
    const additive = versionChange({ description: 'New optional field.', additive: true });
    expect(define([{ version: 'v1', changes: [additive] }])).not.toThrow();
    expect(
      define([
        { version: 'v1' },
        { version: 'v2', changes: [{ description: 'x' } as unknown as ReturnType<typeof rename>] },
      ]),
    ).toThrow(/versions\[1\]\.changes\[0\]" must be a versionChange\(\)/);
  });

  it('refuses a sunset earlier than its deprecation, compared in whole seconds', () => {
    expect(
      define([
        { version: 'v1', deprecation: '2025-07-01', sunset: '2025-01-01' },
        { version: 'v2' },
      ]),
    ).toThrow(/"versions\[0\]\.sunset".*earlier than.*deprecation/);
    // The same second on the wire: allowed.
    expect(
      define([
        {
          version: 'v1',
          deprecation: '2025-01-01T12:00:00.900Z',
          sunset: '2025-01-01T12:00:00.100Z',
        },
        { version: 'v2' },
      ]),
    ).not.toThrow();
  });

  it.each([
    ['2025-02-30'],
    ['2025/01/01'],
    ['yesterday'],
    ['2025-01-01T00:00:00'],
    [new Date(Number.NaN)],
    [1735689600],
    ['1960-01-01'],
  ])('refuses the date %s', (date) => {
    expect(define([{ version: 'v1', deprecation: date as string }, { version: 'v2' }])).toThrow(
      /"versions\[0\]\.deprecation" must be a Date or an ISO 8601 date/,
    );
  });

  it.each([
    ['not a url'],
    ['docs/v2'],
    ['//elsewhere.example/x'],
    ['https://example.com/<x>'],
    ['https://example.com/"x"'],
  ])('refuses the malformed link %s', (href) => {
    expect(
      define([
        { version: 'v1', deprecation: '2025-01-01', links: { deprecation: href } },
        { version: 'v2' },
      ]),
    ).toThrow(/links\.deprecation" must be an absolute URI/);
  });

  it('refuses a link with user information without repeating it', () => {
    let message = '';
    try {
      define([
        {
          version: 'v1',
          deprecation: '2025-01-01',
          links: { sunset: 'https://admin:hunter2@docs.example.com/sunset' },
        },
        { version: 'v2' },
      ])();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/links\.sunset.*user information/);
    expect(message).not.toContain('hunter2');
  });

  it('counts active versions against maxActive (2 by default), at construction, by the clock', () => {
    const three: VersionDefinition[] = [
      { version: 'v1', deprecation: '2025-01-01', sunset: '2025-07-01', afterSunset: 'gone' },
      { version: 'v2', changes: [rename()] },
      { version: 'v3', changes: [rename()] },
    ];
    expect(() => defineVersions({ versions: three, now: () => Date.UTC(2025, 2, 1) })).toThrow(
      /3 versions are active \(v1, v2, v3\), more than maxActive \(2\)/,
    );
    // After v1's sunset it is gone: two remain active.
    expect(() =>
      defineVersions({ versions: three, now: () => Date.UTC(2025, 7, 1) }),
    ).not.toThrow();
    // Served after its sunset, it still counts.
    const served = three.map((v) =>
      v.version === 'v1' ? { ...v, afterSunset: 'serve' as const } : v,
    );
    expect(() => defineVersions({ versions: served, now: () => Date.UTC(2025, 7, 1) })).toThrow(
      /maxActive/,
    );
  });

  it('refuses a default it does not have or that is gone, and a newest version that would go', () => {
    expect(
      define([{ version: 'v1' }, { version: 'v2', changes: [rename()] }], { default: 'v3' }),
    ).toThrow(/"default" must be one of the versions \(v1, v2\)/);
    expect(
      define(
        [
          { version: 'v1', sunset: '2020-01-01', afterSunset: 'gone' },
          { version: 'v2', changes: [rename()] },
        ],
        { default: 'v1' },
      ),
    ).toThrow(/default version, v1, is past its sunset/);
    expect(define([{ version: 'v1', sunset: '2030-01-01', afterSunset: 'gone' }])).toThrow(
      /newest version, v1, has afterSunset: 'gone'/,
    );
    expect(
      define([
        { version: 'v1', afterSunset: 'gone' },
        { version: 'v2', changes: [rename()] },
      ]),
    ).toThrow(/sunset" must be a date when afterSunset is 'gone'/);
  });

  it('names the nearest option for a typo', () => {
    expect(() =>
      defineVersions({ versoins: [{ version: 'v1' }] } as unknown as Parameters<
        typeof defineVersions
      >[0]),
    ).toThrow(/unknown option "versoins". Did you mean "versions"\?/);
    expect(
      define([{ version: 'v1', sunsett: '2025-01-01' } as unknown as VersionDefinition]),
    ).toThrow(/Did you mean "sunset"\?/);
    expect(
      define([
        {
          version: 'v1',
          deprecation: '2025-01-01',
          links: { successsor: '/v2' },
        } as unknown as VersionDefinition,
        { version: 'v2' },
      ]),
    ).toThrow(/Did you mean "successor"\?/);
  });
});

describe('versionChange', () => {
  it('needs a description', () => {
    expect(() => versionChange({ description: ' ', additive: true })).toThrow(/"description"/);
  });

  it('refuses an additive change with migrations, and a breaking one without', () => {
    expect(() =>
      versionChange({ description: 'x', additive: true, response: { migrate: () => {} } }),
    ).toThrow(/additive but has migrations/);
    expect(() => versionChange({ description: 'x' })).toThrow(/has no migrations/);
  });

  it.each([['users'], ['POST users'], ['post/users'], ['/users/*/x'], ['/users/:'], ['/us ers']])(
    'refuses the path pattern %s',
    (pattern) => {
      expect(() =>
        versionChange({ description: 'x', request: { paths: [pattern], migrate: () => {} } }),
      ).toThrow(/request\[0\]\.paths\[0\]/);
    },
  );

  it('checks each migration’s options', () => {
    expect(() =>
      versionChange({ description: 'x', request: { migrate: 'rename' as unknown as () => void } }),
    ).toThrow(/request\[0\]\.migrate" must be a function/);
    expect(() =>
      versionChange({ description: 'x', request: { schema: { parse() {} } as never } }),
    ).toThrow(/request\[0\]\.schema" must be a Standard Schema/);
    expect(() => versionChange({ description: 'x', request: {} })).toThrow(
      /migrate, schema or both/,
    );
    expect(() =>
      versionChange({ description: 'x', response: { migrate: () => {}, errors: 'yes' as never } }),
    ).toThrow(/errors" must be true, false or 'only'/);
    expect(() =>
      versionChange({ description: 'x', response: { migrat: () => {} } as never }),
    ).toThrow(/Did you mean "migrate"\?/);
    expect(() =>
      versionChange({ description: 'x', payload: { types: [], migrate: () => {} } }),
    ).toThrow(/payload\[0\]\.types/);
    expect(() =>
      versionChange({ description: 'x', request: { schema: z.object({}) } }),
    ).not.toThrow();
  });
});

describe('versioning()', () => {
  const api = defineVersions({
    versions: [{ version: 'v1' }, { version: 'v2', changes: [fullName] }],
  });

  it('needs an API made by defineVersions()', () => {
    expect(() => versioning({ versions: [] } as never)).toThrow(
      /"api" must be the result of defineVersions\(\)/,
    );
  });

  it('never reads the query string, and says so', () => {
    expect(() => versioning(api, { query: 'version' } as never)).toThrow(
      /never read from the query string/,
    );
  });

  it('checks the strategy and its options', () => {
    expect(() => versioning(api, { strategy: 'query' as never })).toThrow(/"strategy"/);
    expect(() => versioning(api, { strategy: 'media-type' })).toThrow(/"vendor"/);
    expect(() => versioning(api, { strategy: 'media-type', vendor: 'Acme Corp' })).toThrow(
      /"vendor"/,
    );
    expect(() => versioning(api, { vendor: 'acme' })).toThrow(/"vendor" must be absent/);
    expect(() => versioning(api, { strategy: 'header', header: 'Api Version' })).toThrow(
      /"header"/,
    );
    expect(() => versioning(api, { echoHeader: '' })).toThrow(/"echoHeader"/);
    expect(() => versioning(api, { basePath: '/api/' })).toThrow(/"basePath"/);
    expect(() => versioning(api, { basePath: 'api' })).toThrow(/"basePath"/);
    expect(() => versioning(api, { usageTtlMs: 10 })).toThrow(/"usageTtlMs"/);
  });

  it('refuses pins under the URI strategy, where none is ever read', () => {
    expect(() => versioning(api, { pins: new MemoryStore({ evict: false }) })).toThrow(
      /"pins" needs strategy 'header' or 'media-type'/,
    );
  });

  it('refuses a pin store that may evict: pins are a ledger', () => {
    expect(() => versioning(api, { strategy: 'header', pins: new MemoryStore() })).toThrow(
      /option "pins" must be a store that never drops a live key/,
    );
    expect(() =>
      versioning(api, { strategy: 'header', pins: new MemoryStore({ evict: false }) }),
    ).not.toThrow();
    // Usage counters may live in a cache.
    expect(() => versioning(api, { usage: new MemoryStore() })).not.toThrow();
  });

  it('needs pins and usage for the operations on them', async () => {
    const plain = versioning(api);
    await expect(plain.pin('p1', 'v1')).rejects.toThrow(/pin\(\) needs the "pins" option/);
    await expect(plain.usageOf('p1')).rejects.toThrow(/usageOf\(\) needs the "usage" option/);
    const pinned = versioning(api, { strategy: 'header', pins: new MemoryStore({ evict: false }) });
    await expect(pinned.pin('p1', 'v9')).rejects.toThrow(/"version" must be one of v2, v1/);
    await expect(pinned.pin('', 'v1')).rejects.toThrow(/"principal"/);
  });
});

describe('deprecated()', () => {
  it('needs a deprecation date and checks its policy as versions do', () => {
    expect(() => deprecated({ sunset: '2025-01-01' })).toThrow(/"deprecation" must be a date/);
    expect(() => deprecated({ deprecation: '2025-07-01', sunset: '2025-01-01' })).toThrow(
      /earlier than/,
    );
    expect(() => deprecated({ deprecation: '2025-01-01', links: { successor: 'v2' } })).toThrow(
      /links\.successor/,
    );
    expect(() => deprecated({ deprecation: '2025-01-01', afterSunset: 'gone' })).toThrow(
      /when afterSunset is 'gone'/,
    );
    expect(() => deprecated({ deprecation: '2025-01-01', now: 5 as never })).toThrow(/"now"/);
  });
});
