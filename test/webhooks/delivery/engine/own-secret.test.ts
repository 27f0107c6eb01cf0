/** An endpoint registered with a secret its receiver already holds. */
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import { hmacVerifier } from '../../../../src/webhooks/hmac.js';
import { generateWebhookSecret } from '../../../../src/webhooks/secrets.js';
import { engine, receiver, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('an endpoint with a secret of its own', () => {
  it('signs with the secret given, which the receiver verifies', async () => {
    const { clock, delivery } = engine();
    cleanups.push(() => delivery.stop());
    const r = await receiver();
    cleanups.push(() => r.close());
    const own = generateWebhookSecret();
    const { secret } = await delivery.endpoints.create({ url: r.url, secret: own });
    expect(secret).toBe(own);
    delivery.startWorker();
    await delivery.dispatch({ type: 'a.b', data: { n: 1 } });
    await until(() => r.requests.length === 1);
    const sent = r.requests[0]!;
    const verifier = hmacVerifier({ secrets: [own], now: clock.now });
    expect(() => verifier.verify(sent.body, sent.headers)).not.toThrow();
  });

  it.each([
    ['too short', 'whsec_c2hvcnQ='],
    ['not base64', 'whsec_!!!not-base64!!!'],
    ['without the prefix', Buffer.alloc(32, 7).toString('base64')],
    ['not a string', 42],
  ])('refuses a secret %s, naming the field and never echoing it', async (_why, secret) => {
    const { delivery } = engine();
    cleanups.push(() => delivery.stop());
    const attempt = delivery.endpoints.create({
      url: 'https://hooks.example.com/in',
      secret: secret as string,
    });
    const err = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    const issues = (err as ValidationError).errors;
    expect(JSON.stringify(err)).not.toContain(String(secret));
    expect(issues.map((i) => i.pointer)).toEqual(['/secret']);
  });
});
