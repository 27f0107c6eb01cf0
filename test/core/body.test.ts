import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  jsonBody,
  mediaTypeOf,
  nestsDeeperThan,
  valueNestsDeeperThan,
} from '../../src/core/body.js';
import { RestwellError } from '../../src/core/errors.js';
import { adapters } from '../helpers/apps.js';
import { fakeContext } from './fake.js';

const JSON_TYPE = { 'content-type': 'application/json' };

async function parse(
  body: string | Uint8Array,
  options?: Parameters<typeof jsonBody>[0],
  headers: Record<string, string> = JSON_TYPE,
): Promise<{ value?: unknown; error?: RestwellError }> {
  const ctx = fakeContext({ headers, body });
  try {
    await jsonBody(options)(ctx, async () => {});
    return { value: ctx.request.body };
  } catch (err) {
    if (err instanceof RestwellError) return { error: err };
    throw err;
  }
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('jsonBody(): nesting depth', () => {
  it('accepts maxDepth levels and refuses one more with 400 json-too-deep', async () => {
    expect((await parse(nested(64))).error).toBeUndefined();
    const { error } = await parse(nested(65));
    expect(error?.status).toBe(400);
    expect(error?.code).toBe('json-too-deep');
    expect(error?.extensions).toEqual({ maxDepth: 64 });
  });

  it('counts objects and arrays alike', async () => {
    const mixed = `${'{"a":['.repeat(3)}1${']}'.repeat(3)}`;
    expect((await parse(mixed, { maxDepth: 6 })).value).toBeDefined();
    expect((await parse(mixed, { maxDepth: 5 })).error?.code).toBe('json-too-deep');
  });

  it('ignores brackets inside strings, escaped quotes included', async () => {
    const body = JSON.stringify({ s: '[[[[{{{{\\"[[[[', t: ['x"]]]]'] });
    expect((await parse(body, { maxDepth: 2 })).value).toEqual(JSON.parse(body));
    expect((await parse(body, { maxDepth: 1 })).error?.code).toBe('json-too-deep');
  });

  it('answers an 8,000-level body with 400, before parsing it', async () => {
    const body = nested(8000);
    expect(body.length).toBe(16_000);
    expect((await parse(body)).error?.code).toBe('json-too-deep');
    // Unbalanced too: JSON.parse would reject it, the depth check comes first.
    expect((await parse('['.repeat(8000))).error?.code).toBe('json-too-deep');
  });

  it('scans without recursion', () => {
    expect(nestsDeeperThan(Buffer.from(nested(1_000_000)), 64)).toBe(true);
    expect(nestsDeeperThan(Buffer.from('[]'.repeat(100_000)), 1)).toBe(false);
    expect(nestsDeeperThan(Buffer.from('"\\\\"[[['), 2)).toBe(true);
    // An escaped backslash, then an escaped quote: the string goes on.
    expect(nestsDeeperThan(Buffer.from('["\\\\\\"[[[[" ]'), 2)).toBe(false);
  });
});

describe('valueNestsDeeperThan: the same count over a parsed value', () => {
  it.each([
    ['1', 0],
    ['[]', 1],
    ['{"a":[1,{"b":{}}]}', 4],
    ['[[],[[[]]],{"x":[[[[]]]]}]', 6],
    [JSON.stringify({ s: '[[[[' }), 1],
  ])('%s has depth %i', (text, depth) => {
    const value = JSON.parse(text);
    expect(valueNestsDeeperThan(value, depth)).toBe(false);
    expect(nestsDeeperThan(Buffer.from(text), depth)).toBe(false);
    if (depth > 0) {
      expect(valueNestsDeeperThan(value, depth - 1)).toBe(true);
      expect(nestsDeeperThan(Buffer.from(text), depth - 1)).toBe(true);
    }
  });

  it('walks a value too deep for recursive code without overflowing the stack', () => {
    const value = JSON.parse(nested(500_000));
    expect(() => JSON.stringify(value)).toThrow(RangeError);
    expect(valueNestsDeeperThan(value, 64)).toBe(true);
  });

  it('counts a cycle as too deep', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(valueNestsDeeperThan(cyclic, 64)).toBe(true);
  });
});

describe('jsonBody(): UTF-8 (RFC 8259 §8.1)', () => {
  it('refuses bytes that are not UTF-8 with 400 invalid-utf8', async () => {
    const invalid = Buffer.concat([
      Buffer.from('{"a":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const { error } = await parse(invalid);
    expect(error?.status).toBe(400);
    expect(error?.code).toBe('invalid-utf8');
    // A lone surrogate encoded in UTF-8 (CESU) and an overlong "/" are not UTF-8 either.
    expect((await parse(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))).error?.code).toBe(
      'invalid-utf8',
    );
    expect((await parse(Buffer.from([0x22, 0xc0, 0xaf, 0x22]))).error?.code).toBe('invalid-utf8');
  });

  it('reads multi-byte characters', async () => {
    expect((await parse('{"name":"Zoë 🚀"}')).value).toEqual({ name: 'Zoë 🚀' });
  });

  it('ignores one leading byte order mark, as §8.1 allows', async () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
    expect((await parse(withBom)).value).toEqual({ a: 1 });
    const twoBoms = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]),
      Buffer.from('1'),
    ]);
    expect((await parse(twoBoms)).error?.code).toBe('malformed-json');
  });
});

describe('jsonBody(): what it already answered', () => {
  it('415 for another media type, charset or content coding', async () => {
    expect((await parse('{}', {}, { 'content-type': 'text/plain' })).error?.status).toBe(415);
    expect(
      (await parse('{}', {}, { 'content-type': 'application/json; charset=latin1' })).error?.status,
    ).toBe(415);
    expect(
      (await parse('{}', {}, { ...JSON_TYPE, 'content-encoding': 'gzip' })).error?.status,
    ).toBe(415);
  });

  it('413 over the limit, from Content-Length or from the bytes', async () => {
    expect((await parse('[1,2,3]', { limit: 3 })).error?.status).toBe(413);
    expect(
      (await parse('[1,2,3]', { limit: 3 }, { ...JSON_TYPE, 'content-length': '1' })).error?.status,
    ).toBe(413);
  });

  it('400 malformed-json with a position, never the input', async () => {
    const { error } = await parse('{"secret": hunter2}');
    expect(error?.code).toBe('malformed-json');
    expect(error?.detail).not.toMatch(/hunter2/);
  });
});

describe('jsonBody(): options', () => {
  it('rejects an unknown option with the nearest name', () => {
    expect(() => jsonBody({ limt: 1 } as never)).toThrow(
      'restwell/jsonBody: unknown option "limt". Did you mean "limit"?',
    );
    expect(() => jsonBody({ maxdepth: 1 } as never)).toThrow(/Did you mean "maxDepth"\?/);
    expect(() => jsonBody({ reviver: () => 1 } as never)).toThrow(/after jsonBody\(\)/);
  });

  it('rejects bad values by name', () => {
    expect(() => jsonBody({ maxDepth: 0 })).toThrow(/option "maxDepth" must be a positive integer/);
    expect(() => jsonBody({ maxDepth: Number.POSITIVE_INFINITY })).toThrow(/"maxDepth"/);
    expect(() => jsonBody({ limit: -1 })).toThrow(/option "limit"/);
  });
});

describe('mediaTypeOf', () => {
  it('lower-cases and drops parameters', () => {
    expect(mediaTypeOf('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(mediaTypeOf(' text/html ')).toBe('text/html');
    expect(mediaTypeOf('')).toBeUndefined();
    expect(mediaTypeOf(undefined)).toBeUndefined();
  });
});

describe.each(adapters)('jsonBody() hostile bodies on $name', (adapter) => {
  const app = adapter.build({
    use: [jsonBody()],
    routes: [{ method: 'post', path: '/x', handler: (req) => ({ body: { got: req.body } }) }],
  });

  it('a deep body is a 400 problem', async () => {
    const res = await request(app).post('/x').set(JSON_TYPE).send(nested(8000));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('json-too-deep');
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('invalid UTF-8 is a 400 problem', async () => {
    const res = await request(app)
      .post('/x')
      .set(JSON_TYPE)
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid-utf8');
  });
});
