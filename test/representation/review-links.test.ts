/**
 * links() against a hostile reading: a base URL must never put the links
 * into a query or a fragment.
 */
import { describe, expect, it } from 'vitest';
import { links } from '../../src/representation/index.js';

describe('links(): base', () => {
  it('refuses a base ending in an empty query or fragment, which would make every href one page', () => {
    for (const base of ['https://api.example.com/p?', 'https://api.example.com/p#']) {
      expect(() => links({ self: '/v1/users' }, { base }), base).toThrow(
        /without query or fragment/,
      );
    }
  });
});
