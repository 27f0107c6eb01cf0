/**
 * The changelog, generated from the changes' descriptions, newest version
 * first: as data (a JSON endpoint) and as Markdown.
 *
 * @module
 */
import { type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { vary } from '../conditional/vary.js';
import type { ApiVersions } from './api.js';
import { acceptQuality } from './negotiate.js';

/** One change as the changelog lists it. */
export interface ChangelogChange {
  description: string;
  /** `false` for an additive change, which old clients do not notice. */
  breaking: boolean;
}

/** One version as the changelog lists it. */
export interface ChangelogVersion {
  version: string;
  /** Whether it is the newest version. */
  newest: boolean;
  /** The deprecation date (ISO 8601), when one is set. */
  deprecation?: string;
  /** The sunset date (ISO 8601), when one is set. */
  sunset?: string;
  /** What changed since the version before, in the order declared. */
  changes: ChangelogChange[];
}

/** The changelog document: versions newest first. */
export interface Changelog {
  versions: ChangelogVersion[];
}

/** The changelog of an API, newest version first. */
export function changelogOf(api: ApiVersions): Changelog {
  const versions: ChangelogVersion[] = [];
  for (let i = api.versions.length - 1; i >= 0; i--) {
    const v = api.versions[i]!;
    versions.push({
      version: v.name,
      newest: v === api.newest,
      ...(v.policy?.deprecation === undefined
        ? {}
        : { deprecation: v.policy.deprecation.toISOString() }),
      ...(v.policy?.sunset === undefined ? {} : { sunset: v.policy.sunset.toISOString() }),
      changes: v.changes.map((c) => ({ description: c.description, breaking: !c.additive })),
    });
  }
  return { versions };
}

/** Options of {@link changelogMarkdown} and {@link changelog}. */
export interface ChangelogOptions {
  /** The document's title. @default 'API changelog' */
  title?: string;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/**
 * The changelog as Markdown: one section per version, newest first, its
 * deprecation and sunset dates, and its changes in the order declared,
 * breaking ones marked **Breaking**.
 */
export function changelogMarkdown(api: ApiVersions, options: ChangelogOptions = {}): string {
  checkOptions('versioning changelog', options, ['title']);
  const { title = 'API changelog' } = options;
  if (typeof title !== 'string') invalidOption('versioning', 'title', 'a string', title);
  const lines = [`# ${oneLine(title)}`, ''];
  for (const v of changelogOf(api).versions) {
    const notes: string[] = [];
    if (v.newest) notes.push('newest');
    if (v.deprecation !== undefined) notes.push(`deprecated ${v.deprecation.slice(0, 10)}`);
    if (v.sunset !== undefined) notes.push(`sunset ${v.sunset.slice(0, 10)}`);
    lines.push(`## ${v.version}${notes.length === 0 ? '' : ` (${notes.join(', ')})`}`, '');
    if (v.changes.length === 0) lines.push('- The first version.', '');
    else {
      for (const c of v.changes)
        lines.push(`- ${c.breaking ? '**Breaking:** ' : ''}${oneLine(c.description)}`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

/**
 * A middleware that answers GET and HEAD with the changelog: Markdown
 * (`text/markdown; charset=utf-8`) when `Accept` prefers it, JSON otherwise.
 * Other methods pass on.
 *
 * @example
 * ```ts
 * app.get('/changelog', rw(changelog(api)));
 * ```
 */
export function changelog(api: ApiVersions, options: ChangelogOptions = {}): Middleware {
  const markdown = changelogMarkdown(api, options);
  const json = JSON.stringify(changelogOf(api));
  return responseBlind(async function versionChangelog(ctx, next) {
    const method = ctx.request.method;
    if (method !== 'GET' && method !== 'HEAD') return next();
    const accept = ctx.request.header('accept');
    const asMarkdown =
      acceptQuality(accept, 'text/markdown') > acceptQuality(accept, 'application/json');
    const { response } = ctx;
    vary(response.headers, 'Accept');
    response.status = 200;
    response.headers.set(
      'Content-Type',
      asMarkdown ? 'text/markdown; charset=utf-8' : 'application/json; charset=utf-8',
    );
    response.body = asMarkdown ? markdown : json;
  });
}
