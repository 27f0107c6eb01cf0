/** docs/webhook-delivery.md's TypeScript snippets compile as written (test/helpers/snippets.ts). */
import { expect, it } from 'vitest';
import { compileSnippets, snippetsOf } from '../../../helpers/snippets.js';

it('docs/webhook-delivery.md has TypeScript snippets that compile with their own imports', () => {
  const blocks = snippetsOf('docs/webhook-delivery.md');
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  compileSnippets('docs/webhook-delivery.md', blocks);
}, 90_000);
