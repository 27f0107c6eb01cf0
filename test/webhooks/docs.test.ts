/** docs/webhooks.md's TypeScript snippets compile as written (test/helpers/snippets.ts). */
import { expect, it } from 'vitest';
import { compileSnippets, snippetsOf } from '../helpers/snippets.js';

it('docs/webhooks.md has TypeScript snippets that compile with their own imports', () => {
  const blocks = snippetsOf('docs/webhooks.md');
  expect(blocks.length).toBeGreaterThanOrEqual(6);
  compileSnippets('docs/webhooks.md', blocks);
}, 90_000);
