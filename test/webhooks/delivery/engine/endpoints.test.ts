import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/core/errors.js';
import { WebhookUrlRefusedError } from '../../../../src/webhooks/delivery/errors.js';
import { ssrfGuard } from '../../../../src/webhooks/delivery/ssrf.js';
import { engine, receiver, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function setup(options: Parameters<typeof engine>[0] = {}) {
  const e = engine(options);
  cleanups.push(() => e.delivery.stop());
  return e;
}

describe('endpoints', () => {
  it('refuses loopback URLs with the default guard, a name that resolves to loopback included', async () => {
    const { delivery } = await setup({ guard: ssrfGuard() });
    for (const url of [
      'http://127.0.0.1:8080/hooks',
      'http://localhost:8080/hooks',
      'http://[::1]/',
    ]) {
      const err = await delivery.endpoints.create({ url }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WebhookUrlRefusedError);
      expect((err as WebhookUrlRefusedError).status).toBe(422);
    }
    expect(await delivery.endpoints.list()).toEqual([]);
    // The guard checks a URL change too.
    const ok = await setup({ guard: ssrfGuard({ resolve: async () => ['93.184.216.34'] }) });
    const { endpoint } = await ok.delivery.endpoints.create({ url: 'http://public.example/hooks' });
    await expect(
      ok.delivery.endpoints.update(endpoint.id, { url: 'http://10.0.0.1/' }),
    ).rejects.toBeInstanceOf(WebhookUrlRefusedError);
  });

  it('refuses https-less URLs unless allowHttp, unknown fields, and an empty disable reason', async () => {
    const { delivery } = await setup({ allowHttp: false, guard: false });
    await expect(delivery.endpoints.create({ url: 'http://example.com/' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(
      delivery.endpoints.create({ url: 'https://example.com/', secret: 'x' } as never),
    ).rejects.toMatchObject({ errors: [{ pointer: '/secret' }] });
    const { endpoint } = await delivery.endpoints.create({ url: 'https://example.com/' });
    await expect(delivery.endpoints.disable(endpoint.id, '')).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(delivery.endpoints.get('ep_missing')).rejects.toMatchObject({
      status: 404,
      code: 'webhook-endpoint-not-found',
    });
  });

  it('updates filters and limits; a deleted endpoint cancels its queued deliveries', async () => {
    const { delivery } = await setup();
    const r = await receiver(() => 200);
    cleanups.push(() => r.close());
    const { endpoint } = await delivery.endpoints.create({ url: r.url, eventTypes: ['a.*'] });
    const updated = await delivery.endpoints.update(endpoint.id, {
      eventTypes: ['b.c'],
      concurrency: 5,
    });
    expect(updated).toMatchObject({ eventTypes: ['b.c'], concurrency: 5 });
    expect((await delivery.dispatch({ type: 'a.x', data: {} })).deliveries).toHaveLength(0);
    const { deliveries } = await delivery.dispatch({ type: 'b.c', data: {} });
    await delivery.endpoints.delete(endpoint.id);
    delivery.startWorker();
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'canceled',
    );
    expect(r.requests).toHaveLength(0);
  });

  it('refuses at connect time a name that resolved to a public address at registration (DNS rebinding)', async () => {
    const r = await receiver(() => 200);
    cleanups.push(() => r.close());
    let answers = 0;
    const guard = ssrfGuard({
      resolve: async () => (answers++ === 0 ? ['93.184.216.34'] : ['127.0.0.1']),
    });
    const { delivery } = await setup({ guard });
    const port = new URL(r.url).port;
    const { endpoint } = await delivery.endpoints.create({
      url: `http://rebind.example:${port}/hooks`,
    });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'retrying',
    );
    const [attempt] = (await delivery.log.queryAttempts({ endpointId: endpoint.id })).items;
    expect(attempt).toMatchObject({ ok: false, failure: 'url-refused' });
    expect(r.requests).toHaveLength(0);
  });

  it('records a timeout as a failed attempt and retries it', async () => {
    const r = await receiver(() => 'hang');
    cleanups.push(() => r.close());
    const { delivery } = await setup({ timeoutMs: 200 });
    const { endpoint } = await delivery.endpoints.create({ url: r.url });
    delivery.startWorker();
    const { deliveries } = await delivery.dispatch({ type: 'a.b', data: {} });
    await until(
      async () => (await delivery.log.getDelivery(deliveries[0]!.id))?.status === 'retrying',
    );
    const [attempt] = (await delivery.log.queryAttempts({ endpointId: endpoint.id })).items;
    expect(attempt).toMatchObject({ ok: false, failure: 'timeout', attempt: 1 });
  });
});
