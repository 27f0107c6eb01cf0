/**
 * The SSRF guard: address classes in every spelling, literal IP hosts as the
 * WHATWG URL parser normalises them, names that resolve to loopback or to a
 * mix of addresses, DNS rebinding caught by the connect-time lookup, the
 * policy's switches and lists, and the 422 problem it throws.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { RestwellError } from '../../../../src/core/errors.js';
import { WebhookUrlRefusedError } from '../../../../src/webhooks/delivery/errors.js';
import {
  type AddressClass,
  classifyAddress,
  type SsrfGuard,
  ssrfGuard,
} from '../../../../src/webhooks/delivery/ssrf.js';

/** A resolver from a fixed table; unknown names fail as the system resolver does. */
function table(entries: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    const found = entries[host];
    if (found === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found;
  };
  return { resolve, asked };
}

async function refusal(guard: SsrfGuard, url: string): Promise<WebhookUrlRefusedError | undefined> {
  try {
    await guard.check(url);
  } catch (err) {
    if (err instanceof WebhookUrlRefusedError) return err;
    throw err;
  }
  return undefined;
}

function lookup(
  guard: SsrfGuard,
  host: string,
  options: LookupOptions = {},
): Promise<{ address: string | LookupAddress[]; family: number | undefined }> {
  return new Promise((resolve, reject) => {
    guard.lookup(host, options, (err, address, family) =>
      err ? reject(err) : resolve({ address, family }),
    );
  });
}

describe('classifyAddress', () => {
  it.each<[string, AddressClass]>([
    // IPv4
    ['8.8.8.8', 'public'],
    ['93.184.215.14', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['100.128.0.1', 'public'],
    ['100.63.255.255', 'public'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.20.0.1', 'public'],
    ['198.51.100.1', 'reserved'],
    ['203.0.113.1', 'reserved'],
    ['192.88.99.1', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fd00:ec2::254', 'metadata'],
    ['FD00:EC2:0:0:0:0:0:254', 'metadata'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['3fff::1', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['100::1', 'reserved'],
    ['::2', 'unspecified'], // IPv4-compatible 0.0.0.2
    ['4000::1', 'reserved'], // outside 2000::/3
    ['64:ff9b:1::1', 'private'],
    // IPv4 inside IPv6
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:A9FE:A9FE', 'metadata'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0:10.0.0.1', 'private'], // SIIT
    ['::127.0.0.1', 'loopback'], // IPv4-compatible
    ['::8.8.8.8', 'reserved'], // IPv4-compatible, deprecated
    ['::ffff:0:8.8.8.8', 'reserved'], // SIIT, deprecated
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['64:ff9b::169.254.169.254', 'metadata'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:a00:1::1', 'private'],
    ['2002:808:808::1', 'public'],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it.each(['localhost', '', '127.1', '0x7f000001', '1.2.3.4.5', '::g', '[::1'])(
    'refuses %j, not an IP address, with a TypeError',
    (address) => {
      expect(() => classifyAddress(address)).toThrow(TypeError);
    },
  );
});

describe('literal IP hosts', () => {
  const guard = ssrfGuard({
    resolve: async () => {
      throw new Error('a literal host is never resolved');
    },
  });

  it.each<[string, string]>([
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://0x7f000001/', 'loopback'],
    ['http://0x7f.0.0.1/', 'loopback'],
    ['http://2130706433/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://127.000.000.001/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:7f00:1]/', 'loopback'],
    ['http://[0:0:0:0:0:ffff:127.0.0.1]/', 'loopback'],
    ['http://[64:ff9b::127.0.0.1]/', 'loopback'],
    ['http://[2002:7f00:1::]/', 'loopback'],
    ['https://127.0.0.1:8443/hooks', 'loopback'],
    ['http://169.254.169.254/latest/meta-data/', 'metadata'],
    ['http://0xa9fea9fe/', 'metadata'],
    ['http://2852039166/', 'metadata'],
    ['http://[fd00:ec2::254]/', 'metadata'],
    ['http://[::ffff:169.254.169.254]/', 'metadata'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://10.0.0.1/', 'private'],
    ['http://192.168.0.1:8080/', 'private'],
    ['http://[fd00::1]/', 'private'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://100.64.0.1/', 'shared'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://255.255.255.255/', 'reserved'],
  ])('refuses %s (%s)', async (url, kind) => {
    const err = await refusal(guard, url);
    expect(err?.reason).toBe('address');
    expect(err?.addressClass).toBe(kind);
    // the synchronous check sees it too, without DNS
    expect(() => guard.parseUrl(url)).toThrow(WebhookUrlRefusedError);
  });

  it.each(['http://8.8.8.8/', 'https://[2606:4700:4700::1111]:443/hooks', 'http://1.1.1.1:8080/'])(
    'accepts the public %s',
    async (url) => {
      await expect(guard.check(url)).resolves.toBeUndefined();
      expect(guard.parseUrl(url).href).toBe(new URL(url).href);
    },
  );
});

describe('the URL itself', () => {
  const guard = ssrfGuard({ resolve: async () => ['93.184.215.14'] });

  it.each<[string, string]>([
    ['ftp://example.com/', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['gopher://example.com:6379/_FLUSHALL', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['ws://example.com/', 'scheme'],
    ['https://user:pass@example.com/', 'credentials'],
    ['https://user@example.com/', 'credentials'],
    ['https://:pass@example.com/', 'credentials'],
    ['not a url', 'invalid-url'],
    ['/relative/path', 'invalid-url'],
    ['http://', 'invalid-url'],
    ['http://[fe80::1%25eth0]/', 'invalid-url'],
    ['http://1.2.3.4.5/', 'invalid-url'],
    [`https://example.com/${'a'.repeat(2048)}`, 'invalid-url'],
  ])('refuses %s (%s)', async (url, reason) => {
    expect((await refusal(guard, url))?.reason).toBe(reason);
  });

  it('accepts any port', async () => {
    await expect(guard.check('https://example.com:8443/hooks')).resolves.toBeUndefined();
    await expect(guard.check('http://example.com:1/')).resolves.toBeUndefined();
  });

  it('refuses a value that is not a string', async () => {
    expect((await refusal(guard, 42 as never))?.reason).toBe('invalid-url');
  });
});

describe('names that resolve', () => {
  it('refuses a name that resolves to loopback (a *.localtest.me-style name)', async () => {
    const { resolve, asked } = table({ 'app.localtest.me': ['127.0.0.1'] });
    const err = await refusal(ssrfGuard({ resolve }), 'https://app.localtest.me/hooks');
    expect(asked).toEqual(['app.localtest.me']);
    expect(err?.reason).toBe('address');
    expect(err?.addressClass).toBe('loopback');
  });

  it('allows it with allowLoopback', async () => {
    const { resolve } = table({ 'app.localtest.me': ['127.0.0.1', '::1'] });
    await expect(
      ssrfGuard({ resolve, allowLoopback: true }).check('https://app.localtest.me/hooks'),
    ).resolves.toBeUndefined();
  });

  it('refuses localhost through the system resolver', async () => {
    const err = await refusal(ssrfGuard(), 'http://localhost:3000/hooks');
    expect(err?.addressClass).toBe('loopback');
    await expect(
      ssrfGuard({ allowLoopback: true }).check('http://localhost:3000/hooks'),
    ).resolves.toBeUndefined();
  });

  it('refuses a name when any one of its addresses is refused', async () => {
    const { resolve } = table({ 'mixed.example': ['93.184.215.14', '10.0.0.5'] });
    const err = await refusal(ssrfGuard({ resolve }), 'https://mixed.example/');
    expect(err?.addressClass).toBe('private');
  });

  it('refuses a name resolving to a mapped address in its hex spelling', async () => {
    const { resolve } = table({ 'sneaky.example': ['::ffff:a9fe:a9fe'] });
    expect((await refusal(ssrfGuard({ resolve }), 'https://sneaky.example/'))?.addressClass).toBe(
      'metadata',
    );
  });

  it('accepts a name whose addresses are all public', async () => {
    const { resolve } = table({
      'hooks.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    });
    await expect(ssrfGuard({ resolve }).check('https://hooks.example/')).resolves.toBeUndefined();
  });

  it('refuses a name that does not resolve, or resolves to nothing', async () => {
    const { resolve } = table({ 'empty.example': [] });
    const guard = ssrfGuard({ resolve });
    expect((await refusal(guard, 'https://nowhere.invalid/'))?.reason).toBe('unresolvable');
    expect((await refusal(guard, 'https://empty.example/'))?.reason).toBe('unresolvable');
  });

  it('refuses a name the system resolver does not know (.invalid, RFC 6761)', async () => {
    expect((await refusal(ssrfGuard(), 'https://no-such-host.invalid/'))?.reason).toBe(
      'unresolvable',
    );
  });

  it('refuses a resolver answer that is not an address', async () => {
    const { resolve } = table({ 'odd.example': ['not-an-ip'] });
    expect((await refusal(ssrfGuard({ resolve }), 'https://odd.example/'))?.reason).toBe(
      'unresolvable',
    );
  });

  it('gives up on a resolver that never answers, after resolveTimeoutMs', async () => {
    const guard = ssrfGuard({ resolve: () => new Promise(() => {}), resolveTimeoutMs: 30 });
    expect((await refusal(guard, 'https://slow.example/'))?.reason).toBe('unresolvable');
  });
});

describe('the policy', () => {
  const { resolve } = table({});

  it('allowPrivate allows private and shared addresses, never metadata or link-local', async () => {
    const guard = ssrfGuard({ resolve, allowPrivate: true });
    for (const url of ['http://10.0.0.1/', 'http://[fd00::1]/', 'http://100.64.0.1/']) {
      await expect(guard.check(url)).resolves.toBeUndefined();
    }
    expect((await refusal(guard, 'http://169.254.169.254/'))?.addressClass).toBe('metadata');
    expect((await refusal(guard, 'http://[fd00:ec2::254]/'))?.addressClass).toBe('metadata');
    expect((await refusal(guard, 'http://169.254.1.1/'))?.addressClass).toBe('link-local');
    expect((await refusal(guard, 'http://127.0.0.1/'))?.addressClass).toBe('loopback');
  });

  it('allowLoopback allows loopback, not the unspecified address', async () => {
    const guard = ssrfGuard({ resolve, allowLoopback: true });
    await expect(guard.check('http://127.0.0.1:8080/')).resolves.toBeUndefined();
    await expect(guard.check('http://[::1]:8080/')).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://0.0.0.0:8080/'))?.addressClass).toBe('unspecified');
    expect((await refusal(guard, 'http://10.0.0.1/'))?.addressClass).toBe('private');
  });

  it('allow lists ranges allowed whatever their class', async () => {
    const guard = ssrfGuard({ resolve, allow: ['10.1.2.0/24', 'fd12::/16', '169.254.10.10'] });
    await expect(guard.check('http://10.1.2.3/')).resolves.toBeUndefined();
    await expect(guard.check('http://[fd12::5]/')).resolves.toBeUndefined();
    await expect(guard.check('http://169.254.10.10/')).resolves.toBeUndefined();
    await expect(guard.check('http://[::ffff:10.1.2.3]/')).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://10.1.3.1/'))?.addressClass).toBe('private');
    expect((await refusal(guard, 'http://169.254.10.11/'))?.addressClass).toBe('link-local');
  });

  it('deny refuses ranges even when public, and IPv4 ranges cover mapped addresses', async () => {
    const guard = ssrfGuard({ resolve, deny: ['8.8.8.0/24', '2606:4700::/32'] });
    expect((await refusal(guard, 'http://8.8.8.8/'))?.reason).toBe('denied');
    expect((await refusal(guard, 'http://[::ffff:8.8.8.8]/'))?.reason).toBe('denied');
    expect((await refusal(guard, 'http://[2606:4700::1111]/'))?.reason).toBe('denied');
    await expect(guard.check('http://8.8.4.4/')).resolves.toBeUndefined();
  });

  it('the longest prefix decides between allow and deny; deny wins a tie', async () => {
    const guard = ssrfGuard({
      resolve,
      allow: ['10.0.0.0/8', '192.0.2.7/32', '172.16.0.0/12'],
      deny: ['10.9.0.0/16', '192.0.2.0/24', '172.16.0.0/12'],
    });
    await expect(guard.check('http://10.1.0.1/')).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://10.9.0.1/'))?.reason).toBe('denied');
    await expect(guard.check('http://192.0.2.7/')).resolves.toBeUndefined();
    expect((await refusal(guard, 'http://192.0.2.8/'))?.reason).toBe('denied');
    expect((await refusal(guard, 'http://172.16.0.1/'))?.reason).toBe('denied');
  });

  it('a mapped range in allow is the IPv4 range', async () => {
    const guard = ssrfGuard({ resolve, allow: ['::ffff:10.0.0.0/104'] });
    await expect(guard.check('http://10.2.3.4/')).resolves.toBeUndefined();
  });

  it('checkAddress applies the policy to one address', () => {
    const guard = ssrfGuard({ allowLoopback: true });
    expect(() => guard.checkAddress('127.0.0.1')).not.toThrow();
    expect(() => guard.checkAddress('10.0.0.1')).toThrow(WebhookUrlRefusedError);
    expect(() => guard.checkAddress('nonsense')).toThrow(WebhookUrlRefusedError);
  });
});

describe('the connect-time lookup', () => {
  it('resolves through the policy: one address, or all of them', async () => {
    const { resolve } = table({ 'hooks.example': ['93.184.215.14', '2606:4700:4700::1111'] });
    const guard = ssrfGuard({ resolve });
    expect(await lookup(guard, 'hooks.example')).toEqual({ address: '93.184.215.14', family: 4 });
    expect((await lookup(guard, 'hooks.example', { all: true })).address).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700:4700::1111', family: 6 },
    ]);
    expect(await lookup(guard, 'hooks.example', { family: 6 })).toEqual({
      address: '2606:4700:4700::1111',
      family: 6,
    });
  });

  it('catches DNS rebinding: public at registration, loopback at connect time', async () => {
    let calls = 0;
    const guard = ssrfGuard({
      resolve: async () => (++calls === 1 ? ['93.184.215.14'] : ['127.0.0.1']),
    });
    await expect(guard.check('https://rebind.example/')).resolves.toBeUndefined();
    const err = await lookup(guard, 'rebind.example').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookUrlRefusedError);
    expect((err as WebhookUrlRefusedError).addressClass).toBe('loopback');
    expect(calls).toBe(2);
  });

  it("passes the resolver's error on", async () => {
    const err = await lookup(ssrfGuard({ resolve: table({}).resolve }), 'gone.example').catch(
      (e: unknown) => e,
    );
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('fails with ENOTFOUND when no address of the family asked for exists', async () => {
    const guard = ssrfGuard({ resolve: table({ 'v4.example': ['93.184.215.14'] }).resolve });
    const err = await lookup(guard, 'v4.example', { family: 6 }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('checks a literal address handed to it', async () => {
    const err = await lookup(ssrfGuard(), '127.0.0.1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookUrlRefusedError);
  });
});

describe('the problem', () => {
  it('is a 422 restwell problem with the reason and class, never the address', async () => {
    const { resolve } = table({ 'internal.example': ['10.20.30.40'] });
    const err = await refusal(ssrfGuard({ resolve }), 'https://internal.example/hooks');
    expect(err).toBeInstanceOf(RestwellError);
    expect(err?.status).toBe(422);
    expect(err?.code).toBe('webhook-url-refused');
    expect(err?.expose).toBe(true);
    expect(err?.extensions).toEqual({ reason: 'address', addressClass: 'private' });
    expect(err?.detail).toMatch(/private/);
    expect(JSON.stringify([err?.detail, err?.message, err?.extensions])).not.toMatch(/10\.20/);
  });
});

describe('checking the policy', () => {
  it.each([
    [{ allowLoopback: 'yes' }, /"allowLoopback" must be a boolean/],
    [{ allowPrivate: 1 }, /"allowPrivate" must be a boolean/],
    [{ allow: '10.0.0.0/8' }, /"allow" must be an array/],
    [{ allow: ['10.0.0.0/33'] }, /"allow\[0\]" must be a CIDR prefix length from 0 to 32/],
    [{ deny: ['fd00::/129'] }, /"deny\[0\]" must be a CIDR prefix length from 0 to 128/],
    [{ deny: ['example.com'] }, /"deny\[0\]" must be an IP address or CIDR range/],
    [{ deny: ['10.0.0.0/8/8'] }, /"deny\[0\]"/],
    [{ deny: ['10.0.0.0/x'] }, /"deny\[0\]"/],
    [{ allow: [42] }, /"allow\[0\]"/],
    [{ resolve: 'dns' }, /"resolve" must be a function/],
    [{ resolveTimeoutMs: 0 }, /"resolveTimeoutMs"/],
    [{ allowLocalhost: true }, /unknown option "allowLocalhost". Use "allowLoopback"/],
    [{ allow: ['::ffff:10.0.0.0/64'] }, /"allow\[0\]" must be a CIDR prefix length from 96 to 128/],
  ])('refuses %j', (policy, message) => {
    expect(() => ssrfGuard(policy as never)).toThrow(TypeError);
    expect(() => ssrfGuard(policy as never)).toThrow(message);
  });
});
