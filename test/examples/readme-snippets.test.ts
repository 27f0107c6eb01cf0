/** The TypeScript snippets of README.md compile as written (test/helpers/snippets.ts). */
import { expect, it } from 'vitest';
import { compileSnippets, snippetsOf } from '../helpers/snippets.js';

it('README.md has TypeScript snippets that compile with their own imports', () => {
  const blocks = snippetsOf('README.md');
  expect(blocks.length).toBeGreaterThanOrEqual(3);
  compileSnippets('README.md', blocks);
}, 60_000);
