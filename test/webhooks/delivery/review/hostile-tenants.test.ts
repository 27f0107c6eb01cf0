/**
 * A tenant registering hostile endpoint URLs and ids: every spelling of a
 * loopback, private or metadata address, names that resolve to them (at
 * registration, or only at connect time), port 0, credentials, ids that are
 * not strings. The resolver is injected, so no DNS is asked.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import { sendAttempt } from '../../../../src/webhooks/delivery/attempt.js';
import {
  MemoryEndpointStore,
  WebhookEndpoints,
} from '../../../../src/webhooks/delivery/endpoints.js';
import { WebhookUrlRefusedError } from '../../../../src/webhooks/delivery/errors.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';

const PUBLIC = '93.184.216.34';
const names: Record<string, string[]> = {
  'public.test': [PUBLIC],
  'both.test': [PUBLIC, '10.0.0.1'],
  'mapped.test': ['::ffff:169.254.169.254'],
  'nat64.test': ['64:ff9b::7f00:1'],
  'localhost.': ['127.0.0.1', '::1'],
  'xn--pple-43d.com': ['127.0.0.1'],
};
const guard = ssrfGuard({ resolve: async (host) => names[host] ?? [] });

async function refusal(url: string): Promise<string | undefined> {
  try {
    await guard.check(url);
    return undefined;
  } catch (err) {
    if (!(err instanceof WebhookUrlRefusedError)) throw err;
    return err.addressClass === undefined ? err.reason : `${err.reason}:${err.addressClass}`;
  }
}

describe('hostile endpoint URLs', () => {
  it.each([
    ['http://[::ffff:7f00:1]/', 'address:loopback'],
    ['http://[::ffff:127.0.0.1]/', 'address:loopback'],
    ['http://0/', 'address:unspecified'],
    ['http://0.0.0.0/', 'address:unspecified'],
    ['http://127.1/', 'address:loopback'],
    ['http://0x7f.1/', 'address:loopback'],
    ['http://2130706433/', 'address:loopback'],
    ['http://0177.0.0.1/', 'address:loopback'],
    ['http://127.0.0.1./', 'address:loopback'],
    ['http://[::1]/', 'address:loopback'],
    ['http://[::]/', 'address:unspecified'],
    ['http://169.254.169.254/', 'address:metadata'],
    ['http://[::ffff:a9fe:a9fe]/', 'address:metadata'],
    ['http://[64:ff9b::a9fe:a9fe]/', 'address:metadata'],
    ['http://[fd00:ec2::254]/', 'address:metadata'],
    ['http://[fe80::1]/', 'address:link-local'],
    ['http://[2002:7f00:1::]/', 'address:loopback'],
    ['http://[::127.0.0.1]/', 'address:loopback'],
    ['http://100.64.0.1/', 'address:shared'],
    ['http://localhost./', 'address:loopback'],
    ['http://аpple.com/', 'address:loopback'],
    ['http://both.test/', 'address:private'],
    ['http://mapped.test/', 'address:metadata'],
    ['http://nat64.test/', 'address:loopback'],
    ['http://unknown.test/', 'unresolvable'],
    ['http://user:pass@public.test/', 'credentials'],
    ['http://@public.test/', undefined],
    ['https://public.test:0/', 'invalid-url'],
    ['https://public.test:00/', 'invalid-url'],
    ['https://public.test:65535/', undefined],
    ['ftp://public.test/', 'scheme'],
    ['https://public.test/', undefined],
  ])('%s → %s', async (url, expected) => {
    expect(await refusal(url)).toBe(expected);
  });

  it('port 0 is refused at registration and at send time, before any connection', async () => {
    const endpoints = new WebhookEndpoints({ store: new MemoryEndpointStore(), now: () => 0 });
    const error = await endpoints
      .create({ url: 'https://public.test:0/hooks' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).errors).toEqual([
      expect.objectContaining({ pointer: '/url', detail: 'must have a port from 1 to 65535' }),
    ]);
    const result = await sendAttempt({
      url: `https://${PUBLIC}:0/`,
      body: '{}',
      headers: {},
      guard,
    });
    expect(result).toMatchObject({ ok: false, failure: 'url-refused' });
  });

  it('an endpoint id that is not a string is refused, not stored under a number', async () => {
    const endpoints = new WebhookEndpoints({ store: new MemoryEndpointStore(), now: () => 0 });
    for (const id of [123, ['ep_1'], { toString: () => 'ep_1' }]) {
      const error = await endpoints
        .create({ url: 'https://public.test/', id: id as unknown as string })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).errors[0]).toMatchObject({ pointer: '/id' });
    }
    expect(await endpoints.list()).toEqual([]);
  });

  it('refuses at connect time a name that turned private after registration (rebinding)', async () => {
    let answer = [PUBLIC];
    const rebinding = ssrfGuard({ resolve: async () => answer });
    await rebinding.check('http://rebind.test/');
    answer = ['127.0.0.1'];
    const result = await sendAttempt({
      url: 'http://rebind.test/',
      body: '{}',
      headers: {},
      guard: rebinding,
    });
    expect(result).toMatchObject({ ok: false, failure: 'url-refused' });
    // half public, half private at connect time: refused too, not raced
    answer = [PUBLIC, '10.1.2.3'];
    expect(
      await sendAttempt({ url: 'http://rebind.test/', body: '{}', headers: {}, guard: rebinding }),
    ).toMatchObject({ ok: false, failure: 'url-refused' });
  });
});
