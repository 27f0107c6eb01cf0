/**
 * Hostile Accept-Encoding values: a member whose weight breaks the grammar
 * (RFC 9110 §12.4.2: at most three decimals, never above 1) must not become
 * acceptable through a `*` in the same header.
 */
import { describe, expect, it } from 'vitest';
import { compression, negotiateEncoding } from '../../src/compression/index.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

const TEXT = 'lorem ipsum dolor sit amet '.repeat(100);

describe('negotiateEncoding(): broken weights', () => {
  it('reads an over-precise zero as a refusal, even beside *', () => {
    expect(negotiateEncoding('br;q=0.00000, *', ['br', 'gzip'])).toBe('gzip');
    expect(negotiateEncoding('br;q, *', ['br', 'gzip'])).toBe('gzip');
    expect(negotiateEncoding('br;q=2, gzip;q=0.0001, *;q=0.5', ['br', 'gzip'])).toBe('identity');
  });

  it('still sends identity when every coding is refused that way', () => {
    expect(negotiateEncoding('br;q=2', ['br', 'gzip'])).toBe('identity');
    expect(negotiateEncoding('gzip;q=0.0001', ['br', 'gzip'])).toBe('identity');
  });
});

describe.each(adapters)('$name: a broken weight beside *', (adapter) => {
  it('does not send the coding the client weighed', async () => {
    const app = adapter.build({
      use: [compression()],
      routes: [
        {
          method: 'get',
          path: '/t',
          handler: () => ({ headers: { 'content-type': 'text/plain' }, body: TEXT }),
        },
      ],
    });
    const res = await raw(app, { path: '/t', headers: { 'accept-encoding': 'br;q=0.00000, *' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
  });
});
