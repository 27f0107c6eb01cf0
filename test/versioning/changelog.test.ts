/**
 * The changelog, generated from the changes' descriptions, newest version
 * first: as data, as Markdown, and served by an endpoint on every adapter.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  changelog,
  changelogMarkdown,
  changelogOf,
  defineVersions,
  versionChange,
} from '../../src/versioning/index.js';
import { adapters } from '../helpers/apps.js';
import { emails, fullName, nickname } from './fixtures.js';

const api = defineVersions({
  versions: [
    { version: 'v1', deprecation: '2025-01-01', sunset: '2025-07-01' },
    { version: 'v3', changes: [emails, nickname] },
    { version: 'v2', changes: [fullName] },
  ],
  maxActive: 3,
});

describe('the changelog', () => {
  it('lists versions newest first, with their dates and changes in declared order', () => {
    expect(changelogOf(api)).toEqual({
      versions: [
        {
          version: 'v3',
          newest: true,
          changes: [
            { description: emails.description, breaking: true },
            { description: 'Users have an optional `nickname`.', breaking: false },
          ],
        },
        {
          version: 'v2',
          newest: false,
          changes: [{ description: 'Users: `name` is renamed `fullName`.', breaking: true }],
        },
        {
          version: 'v1',
          newest: false,
          deprecation: '2025-01-01T00:00:00.000Z',
          sunset: '2025-07-01T00:00:00.000Z',
          changes: [],
        },
      ],
    });
  });

  it('renders Markdown, one section per version, newest first', () => {
    const md = changelogMarkdown(api, { title: 'Users API changelog' });
    expect(md).toBe(
      [
        '# Users API changelog',
        '',
        '## v3 (newest)',
        '',
        `- **Breaking:** ${emails.description}`,
        '- Users have an optional `nickname`.',
        '',
        '## v2',
        '',
        '- **Breaking:** Users: `name` is renamed `fullName`.',
        '',
        '## v1 (deprecated 2025-01-01, sunset 2025-07-01)',
        '',
        '- The first version.',
        '',
      ].join('\n'),
    );
  });

  it('keeps a description that spans lines on its own list item', () => {
    const multi = defineVersions({
      versions: [
        { version: 'v1' },
        {
          version: 'v2',
          changes: [
            versionChange({ description: 'One\nline.\n\n## not a heading', additive: true }),
          ],
        },
      ],
    });
    expect(changelogMarkdown(multi)).toContain('- One line. ## not a heading\n');
  });
});

describe.each(adapters)('the changelog endpoint on $name', (adapter) => {
  const server = () =>
    adapter.build({
      routes: [
        {
          method: 'get',
          path: '/changelog',
          use: [changelog(api)],
          handler: () => ({ status: 500 }),
        },
      ],
    });

  it('answers JSON by default, varying on Accept', async () => {
    const res = await request(server()).get('/changelog').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(changelogOf(api))));
    expect(res.headers.vary).toMatch(/accept/i);
  });

  it('answers Markdown to a client that prefers it', async () => {
    for (const accept of ['text/markdown', 'text/markdown, application/json;q=0.5', 'text/*']) {
      const res = await request(server()).get('/changelog').set('Accept', accept).expect(200);
      expect(res.headers['content-type'], accept).toMatch(/^text\/markdown; charset=utf-8/);
      expect(res.text).toBe(changelogMarkdown(api));
    }
    const json = await request(server())
      .get('/changelog')
      .set('Accept', 'application/json, text/markdown;q=0.1');
    expect(json.headers['content-type']).toMatch(/^application\/json/);
  });
});
