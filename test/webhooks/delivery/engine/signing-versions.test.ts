import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import { defineVersions } from '../../../../src/versioning/api.js';
import { versionChange } from '../../../../src/versioning/changes.js';
import { WebhookVerificationError } from '../../../../src/webhooks/errors.js';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
import { standardWebhooksVerifier } from '../../../../src/webhooks/standard.js';
import { engine, receiver, START, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function setup(options: Parameters<typeof engine>[0] = {}) {
  const e = engine(options);
  cleanups.push(() => e.delivery.stop());
  return e;
}
async function hooks(answer: Parameters<typeof receiver>[0] = () => 200) {
  const r = await receiver(answer);
  cleanups.push(() => r.close());
  return r;
}

describe('secret rotation', () => {
  it.each(['hmac', 'standard-webhooks'] as const)(
    '%s: during the overlap each delivery carries a signature per secret; after it, only the new one',
    async (signing) => {
      const { clock, delivery } = await setup({ signing });
      const r = await hooks();
      const { endpoint, secret: old } = await delivery.endpoints.create({ url: r.url });
      const rotated = await delivery.endpoints.rotateSecret(endpoint.id, { overlapMs: 3_600_000 });
      expect(rotated.previousExpiresAt).toBe(START + 3_600_000);
      expect(rotated.endpoint.rotationEndsAt).toBe(START + 3_600_000);
      expect(JSON.stringify(await delivery.endpoints.get(endpoint.id))).not.toContain(
        rotated.secret,
      );
      const verifier = (secret: string) =>
        signing === 'hmac'
          ? hmacVerifier({ secrets: [secret], now: clock.now })
          : standardWebhooksVerifier({ secrets: [secret], now: clock.now });
      delivery.startWorker();
      await delivery.dispatch({ type: 'a.b', data: {} });
      await until(() => r.requests.length === 1);
      const first = r.requests[0]!;
      expect(() => verifier(old).verify(first.body, first.headers)).not.toThrow();
      expect(() => verifier(rotated.secret).verify(first.body, first.headers)).not.toThrow();

      await clock.advance(3_600_000);
      await delivery.dispatch({ type: 'a.b', data: {} });
      await until(() => r.requests.length === 2);
      const second = r.requests[1]!;
      expect(() => verifier(rotated.secret).verify(second.body, second.headers)).not.toThrow();
      expect(() => verifier(old).verify(second.body, second.headers)).toThrow(
        WebhookVerificationError,
      );
    },
  );
});

function api() {
  const renamed = versionChange({
    description: 'user.created carries fullName instead of name.',
    payload: {
      types: 'user.created',
      migrate: (p) => {
        const body = p.body as { data: { fullName?: string; name?: string } };
        body.data.name = body.data.fullName;
        delete body.data.fullName;
      },
    },
  });
  return defineVersions({
    now: () => START,
    versions: [
      {
        version: 'v1',
        deprecation: '2025-01-01',
        sunset: '2026-01-01',
        links: { deprecation: 'https://api.example.com/docs/v2-migration' },
      },
      { version: 'v2', changes: [renamed] },
    ],
  });
}

describe('version-pinned and dual delivery', () => {
  it('shapes each delivery for the pinned version; a deprecated one carries Deprecation and Sunset', async () => {
    const { delivery } = await setup({ versions: api() });
    const v1 = await hooks();
    const v2 = await hooks();
    const e1 = await delivery.endpoints.create({ url: v1.url, version: 'v1' });
    const e2 = await delivery.endpoints.create({ url: v2.url });
    expect(e1.endpoint.versions).toEqual(['v1']);
    expect(e2.endpoint.versions).toEqual(['v2']);
    delivery.startWorker();
    await delivery.dispatch({ type: 'user.created', data: { id: 'u1', fullName: 'Ada Lovelace' } });
    await until(() => v1.requests.length === 1 && v2.requests.length === 1);
    expect(v1.requests[0]!.json.data).toEqual({ id: 'u1', name: 'Ada Lovelace' });
    expect(v2.requests[0]!.json.data).toEqual({ id: 'u1', fullName: 'Ada Lovelace' });
    const h1 = v1.requests[0]!.headers;
    expect(h1['api-version']).toBe('v1');
    expect(h1.deprecation).toBe(`@${Date.parse('2025-01-01T00:00:00Z') / 1000}`);
    expect(h1.sunset).toBe('Thu, 01 Jan 2026 00:00:00 GMT');
    expect(h1.link).toBe('<https://api.example.com/docs/v2-migration>; rel="deprecation"');
    const h2 = v2.requests[0]!.headers;
    expect(h2['api-version']).toBe('v2');
    expect(h2.deprecation).toBeUndefined();
    expect(h2.sunset).toBeUndefined();
  });

  it('an endpoint listing two versions receives both shapes, told apart by Api-Version and webhook-id', async () => {
    const { clock, delivery } = await setup({ versions: api(), signing: 'standard-webhooks' });
    const r = await hooks();
    const { endpoint, secret } = await delivery.endpoints.create({
      url: r.url,
      version: ['v1', 'v2'],
    });
    expect(endpoint.versions).toEqual(['v2', 'v1']);
    delivery.startWorker();
    const { event, deliveries } = await delivery.dispatch({
      type: 'user.created',
      data: { id: 'u1', fullName: 'Ada Lovelace' },
    });
    expect(deliveries.map((d) => d.id).sort()).toEqual(
      [`${event.id}/${endpoint.id}/v1`, `${event.id}/${endpoint.id}/v2`].sort(),
    );
    await until(() => r.requests.length === 2);
    const byVersion = Object.fromEntries(r.requests.map((q) => [q.headers['api-version'], q]));
    expect(byVersion.v1!.json.data).toEqual({ id: 'u1', name: 'Ada Lovelace' });
    expect(byVersion.v2!.json.data).toEqual({ id: 'u1', fullName: 'Ada Lovelace' });
    const verifier = standardWebhooksVerifier({ secrets: [secret], now: clock.now });
    expect(verifier.verify(byVersion.v1!.body, byVersion.v1!.headers).id).toBe(`${event.id}/v1`);
    expect(verifier.verify(byVersion.v2!.body, byVersion.v2!.headers).id).toBe(`${event.id}/v2`);
  });

  it('refuses a version the API does not have, and a version when payloads are not versioned', async () => {
    const { delivery } = await setup({ versions: api() });
    await expect(
      delivery.endpoints.create({ url: 'http://127.0.0.1:1/', version: 'v9' }),
    ).rejects.toBeInstanceOf(ValidationError);
    const plain = await setup();
    await expect(
      plain.delivery.endpoints.create({ url: 'http://127.0.0.1:1/', version: 'v1' }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
