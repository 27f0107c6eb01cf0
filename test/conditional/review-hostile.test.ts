/**
 * Hostile conditional fields through every adapter: malformed If-Match and
 * If-None-Match lists, commas inside tags, `*` mixed with tags, a thousand
 * tags, the obsolete HTTP-date formats, invalid dates, both If-None-Match and
 * If-Modified-Since (If-None-Match decides, RFC 9110 §13.1.3), repeated
 * fields. Never a 5xx; an If-Match that does not parse is a 412 problem, an
 * If-None-Match or a date that does not parse is ignored.
 */
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import { conditional } from '../../src/conditional/index.js';
import { adapters } from '../helpers/apps.js';
import { listen, rawRequest } from '../helpers/raw.js';

const TEXT = 'lorem ipsum dolor sit amet '.repeat(100);
const LM = 'Sun, 06 Nov 1994 08:49:37 GMT';

describe.each(adapters)('$name: hostile conditional fields', (adapter) => {
  const app = adapter.build({
    use: [compression(), conditional()],
    routes: [
      {
        method: 'get',
        path: '/r',
        handler: () => ({
          headers: { 'content-type': 'text/plain', etag: '"a,b"', 'last-modified': LM },
          body: TEXT,
        }),
      },
    ],
  });

  it('answers each as RFC 9110 §13 says, never with a 5xx', async () => {
    const server = await listen(app);
    const get = (headers: Record<string, string>) =>
      rawRequest(server.port, { path: '/r', headers: { 'accept-encoding': 'gzip', ...headers } });
    try {
      const cases: Array<[Record<string, string>, number]> = [
        // A comma inside a tag is part of it (§8.8.3): "a,b" matches, "a" does not.
        [{ 'if-none-match': '"a,b"' }, 304],
        [{ 'if-none-match': '"a", "b"' }, 200],
        [{ 'if-none-match': '"a,b-gzip"' }, 304],
        // Unterminated, unquoted, `*` mixed with tags: never matches.
        [{ 'if-none-match': '"a,b' }, 200],
        [{ 'if-none-match': 'a,b' }, 200],
        [{ 'if-none-match': '*, "a,b"' }, 200],
        [{ 'if-match': '"a,b' }, 412],
        [{ 'if-match': '*, "a,b"' }, 412],
        // If-Match compares strongly: W/ never matches (§13.1.1).
        [{ 'if-match': 'W/"a,b"' }, 412],
        [{ 'if-match': '"x", "a,b-gzip"' }, 200],
        [
          {
            'if-none-match': `${Array.from({ length: 1000 }, (_, i) => `"t${i}"`).join(',')}, W/"a,b"`,
          },
          304,
        ],
        // The three HTTP-date formats (§5.6.7); anything else is ignored.
        [{ 'if-modified-since': 'Sunday, 06-Nov-94 08:49:37 GMT' }, 304],
        [{ 'if-modified-since': 'Sun Nov  6 08:49:37 1994' }, 304],
        [{ 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' }, 200],
        [{ 'if-modified-since': 'Sun, 31 Feb 1994 08:49:37 GMT' }, 200],
        [{ 'if-modified-since': '1994-11-06T08:49:37Z' }, 200],
        [{ 'if-modified-since': `${LM}, ${LM}` }, 200],
        [{ 'if-unmodified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' }, 412],
        [{ 'if-unmodified-since': 'not a date' }, 200],
        // If-None-Match decides; If-Modified-Since is then ignored (§13.1.3).
        [{ 'if-none-match': '"other"', 'if-modified-since': LM }, 200],
        [{ 'if-none-match': '"a,b"', 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' }, 304],
      ];
      for (const [headers, status] of cases) {
        const res = await get(headers);
        expect(res.status, JSON.stringify(headers)).toBe(status);
        if (status === 412) {
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        }
      }
    } finally {
      await server.close();
    }
  });
});
