/**
 * varyEntityTag(): a module inside a hashing conditional() names what its
 * representation varies by besides the body, and the tag conditional() computes
 * for that response mixes it in (RFC 9110 §8.8.1: a strong validator changes
 * with the observable metadata too). Labels are hashed, never written into the
 * tag, so the tag stays a valid entity-tag of the usual shape (§8.8.3) and a
 * coding suffix is never mistaken for a label. Validators the application
 * states (a handler's ETag, a load) are left alone.
 */
import etag from 'etag';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/compression/index.js';
import type { Context, Middleware } from '../../src/core/context.js';
import {
  conditional,
  encodingETag,
  entityTag,
  entityTagLabels,
  parseEntityTag,
  parseETagList,
  stripEncodingSuffix,
  toEntityTag,
  varyEntityTag,
} from '../../src/conditional/index.js';
import { adapters, type RouteSpec } from '../helpers/apps.js';

const SHAPE = /^"[0-9a-f]+-[A-Za-z0-9+/]{27}"$/;
const BODY = Buffer.from('{"ok":true}');

function bareContext(): Context {
  return { state: {} } as unknown as Context;
}

/** Labels the response with every `X-Label` of the request, after the handler, as versioning() does. */
const labelling: Middleware = async (ctx, next) => {
  await next();
  const label = ctx.request.header('x-label');
  if (label !== undefined) varyEntityTag(ctx, label);
};

describe('the labelled entity-tag', () => {
  it('is the etag package’s tag when there is no label', () => {
    expect(entityTag(BODY)).toBe(etag(BODY));
    expect(entityTag(BODY, false, [])).toBe(etag(BODY));
    expect(entityTag(BODY, true, [])).toBe(etag(BODY, { weak: true }));
  });

  it('keeps the shape and the body’s length, and differs from the unlabelled tag', () => {
    const plain = entityTag(BODY);
    const labelled = entityTag(BODY, false, ['v1']);
    expect(labelled).toMatch(SHAPE);
    expect(labelled).not.toBe(plain);
    expect(labelled.slice(0, labelled.indexOf('-'))).toBe(plain.slice(0, plain.indexOf('-')));
    expect(entityTag(BODY, true, ['v1'])).toBe(`W/${labelled}`);
    // Stable: the same label and body give the same tag.
    expect(entityTag(Buffer.from(BODY), false, ['v1'])).toBe(labelled);
  });

  it('frames labels so that no two sets of labels hash alike', () => {
    const tags = [
      [],
      ['a'],
      ['b'],
      ['ab'],
      ['a', 'b'],
      ['a:b'],
      ['1:a'],
      ['a', ''],
      ['{"ok":true}'],
    ].map((labels) => entityTag(BODY, false, labels));
    expect(new Set(tags).size).toBe(tags.length);
    // A label is not body bytes moved in front: the length prefix tells them apart.
    expect(entityTag(Buffer.from('x'), false, ['{"ok":true}'])).not.toBe(
      entityTag(Buffer.from('{"ok":true}x')),
    );
  });

  it('never collides with a coding suffix: a label that spells one is not one', () => {
    const plain = entityTag(BODY);
    for (const label of ['gzip', '-gzip', 'br', `${plain.slice(1, -1)}-gzip`]) {
      const labelled = entityTag(BODY, false, [label]);
      expect(labelled, label).not.toBe(encodingETag(plain, 'gzip'));
      expect(labelled, label).not.toMatch(/-(gzip|br)"$/);
      // The coded variant of a labelled tag strips back to the labelled tag.
      const coded = encodingETag(labelled, 'gzip');
      expect(coded).toBe(`${labelled.slice(0, -1)}-gzip"`);
      expect(stripEncodingSuffix(parseEntityTag(coded)!, ['br', 'gzip']).opaque).toBe(labelled);
    }
  });

  it('is a valid entity-tag (etagc only) whatever characters the label holds', () => {
    const odd = [
      '"',
      ' ',
      ',',
      '"a", "b"',
      'W/"x"',
      '\\',
      '\u0000',
      '\r\n',
      'é',
      '日本',
      '🙂',
      '*',
    ];
    const tags = odd.map((label) => entityTag(BODY, false, [label]));
    for (const [i, tag] of tags.entries()) {
      expect(tag, JSON.stringify(odd[i])).toMatch(SHAPE);
      expect(parseEntityTag(tag)?.opaque).toBe(tag);
      expect(toEntityTag(tag)).toBe(tag);
      const list = parseETagList(`${tag}, ${encodingETag(tag, 'br')}`);
      expect(list?.kind === 'tags' && list.tags.length).toBe(2);
    }
    expect(new Set(tags).size).toBe(tags.length);
  });
});

describe('varyEntityTag()', () => {
  it('records each label once, in an order that does not depend on who labelled first', () => {
    const one = bareContext();
    varyEntityTag(one, 'v1');
    varyEntityTag(one, 'tenant:a');
    varyEntityTag(one, 'v1');
    const two = bareContext();
    varyEntityTag(two, 'tenant:a');
    varyEntityTag(two, 'v1');
    expect(entityTagLabels(one)).toEqual(['tenant:a', 'v1']);
    expect(entityTagLabels(two)).toEqual(entityTagLabels(one));
    expect(entityTagLabels(bareContext())).toEqual([]);
  });

  it('refuses a label that is not a non-empty string', () => {
    expect(() => varyEntityTag(bareContext(), '')).toThrow(/non-empty string/);
    expect(() => varyEntityTag(bareContext(), 1 as unknown as string)).toThrow(/got number/);
  });
});

describe.each(adapters)('labels through conditional() on $name', (adapter) => {
  const routes: RouteSpec[] = [
    { method: 'get', path: '/same', handler: () => ({ body: { ok: true } }) },
    {
      method: 'get',
      path: '/own',
      handler: () => ({ headers: { etag: '"mine"' }, body: { ok: true } }),
    },
    {
      method: 'get',
      path: '/loaded',
      use: [conditional({ load: () => ({ etag: '"row7"' }) })],
      handler: () => ({ body: { ok: true } }),
    },
    {
      method: 'get',
      path: '/text',
      handler: () => ({
        headers: { 'content-type': 'text/plain' },
        body: 'the same bytes, whatever the label '.repeat(40),
      }),
    },
  ];
  const app = (outer: Middleware[] = [conditional()]) =>
    adapter.build({ use: [...outer, labelling], routes });

  it('gives one body a tag per label, and compares a request’s tags with the labelled one', async () => {
    const server = app();
    const plain = await request(server).get('/same').expect(200);
    const a = await request(server).get('/same').set('X-Label', 'a').expect(200);
    const b = await request(server).get('/same').set('X-Label', 'b').expect(200);
    expect(plain.headers.etag).toBe(etag(Buffer.from('{"ok":true}')));
    expect(a.headers.etag).toMatch(SHAPE);
    expect(new Set([plain.headers.etag, a.headers.etag, b.headers.etag]).size).toBe(3);
    const again = await request(server)
      .get('/same')
      .set('X-Label', 'a')
      .set('If-None-Match', String(a.headers.etag))
      .expect(304);
    expect(again.headers.etag).toBe(a.headers.etag);
    const other = await request(server)
      .get('/same')
      .set('X-Label', 'b')
      .set('If-None-Match', String(a.headers.etag))
      .expect(200);
    expect(other.headers.etag).toBe(b.headers.etag);
    await request(server).get('/same').set('If-None-Match', String(a.headers.etag)).expect(200);
  });

  it('labels weak tags too', async () => {
    const server = app([conditional({ etag: 'weak' })]);
    const a = await request(server).get('/same').set('X-Label', 'a').expect(200);
    const b = await request(server).get('/same').set('X-Label', 'b').expect(200);
    expect(a.headers.etag).toMatch(/^W\/"/);
    expect(a.headers.etag).not.toBe(b.headers.etag);
    await request(server)
      .get('/same')
      .set('X-Label', 'a')
      .set('If-None-Match', String(a.headers.etag))
      .expect(304);
  });

  it('leaves the handler’s ETag and the validators a load supplied alone', async () => {
    const server = app();
    const own = await request(server).get('/own').set('X-Label', 'a').expect(200);
    expect(own.headers.etag).toBe('"mine"');
    await request(server)
      .get('/own')
      .set('X-Label', 'a')
      .set('If-None-Match', '"mine"')
      .expect(304);
    const loaded = await request(server).get('/loaded').set('X-Label', 'a').expect(200);
    expect(loaded.headers.etag).toBe('"row7"');
    await request(server)
      .get('/loaded')
      .set('X-Label', 'b')
      .set('If-None-Match', '"row7"')
      .expect(304);
  });

  it('under compression(): coded and identity tags stay apart per label, and each revalidates', async () => {
    const server = app([compression({ threshold: 0 }), conditional()]);
    const identity = await request(server)
      .get('/text')
      .set('X-Label', 'a')
      .set('Accept-Encoding', 'identity')
      .expect(200);
    const gzip = await request(server)
      .get('/text')
      .set('X-Label', 'a')
      .set('Accept-Encoding', 'gzip')
      .expect(200);
    const otherGzip = await request(server)
      .get('/text')
      .set('X-Label', 'b')
      .set('Accept-Encoding', 'gzip')
      .expect(200);
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(identity.headers['content-encoding']).toBeUndefined();
    const tag = String(identity.headers.etag);
    expect(tag).toMatch(SHAPE);
    expect(gzip.headers.etag).toBe(encodingETag(tag, 'gzip'));
    expect(otherGzip.headers.etag).not.toBe(gzip.headers.etag);
    const gzip304 = await request(server)
      .get('/text')
      .set('X-Label', 'a')
      .set('Accept-Encoding', 'gzip')
      .set('If-None-Match', String(gzip.headers.etag))
      .expect(304);
    expect(gzip304.headers.etag).toBe(gzip.headers.etag);
    const identity304 = await request(server)
      .get('/text')
      .set('X-Label', 'a')
      .set('Accept-Encoding', 'identity')
      .set('If-None-Match', tag)
      .expect(304);
    expect(identity304.headers.etag).toBe(tag);
    // The other label's coded tag names another representation.
    await request(server)
      .get('/text')
      .set('X-Label', 'a')
      .set('Accept-Encoding', 'gzip')
      .set('If-None-Match', String(otherGzip.headers.etag))
      .expect(200);
  });
});
