/**
 * A minimal DeliveryLog and EndpointStore on Redis, for tests whose worker
 * processes must share one log and one endpoint store (the memory ones are per
 * process). Updates are optimistic (WATCH/MULTI, retried on conflict), so
 * `update`/`updateDelivery` are atomic as the contracts require. Queries
 * scan everything and return one page: enough for the tests, not a product.
 */
import type { Redis } from 'ioredis';
import type { EndpointRecord, EndpointStore } from '../../../../src/webhooks/delivery/endpoints.js';
import type { WebhookEvent } from '../../../../src/webhooks/delivery/events.js';
import type {
  AttemptQuery,
  AttemptRecord,
  DeliveryLog,
  DeliveryQuery,
  DeliveryRecord,
  EndpointLogStats,
  LogPage,
  SweepResult,
} from '../../../../src/webhooks/delivery/log.js';

/** WATCH is per connection: one optimistic update at a time on each client. */
const turns = new WeakMap<Redis, Promise<unknown>>();

function updateJson<T>(
  client: Redis,
  key: string,
  change: (current: T) => T,
): Promise<T | undefined> {
  const previous = turns.get(client) ?? Promise.resolve();
  const next = previous.then(
    () => tryUpdate(client, key, change),
    () => tryUpdate(client, key, change),
  );
  turns.set(
    client,
    next.catch(() => undefined),
  );
  return next;
}

async function tryUpdate<T>(
  client: Redis,
  key: string,
  change: (current: T) => T,
): Promise<T | undefined> {
  for (;;) {
    await client.watch(key);
    const raw = await client.get(key);
    if (raw === null) {
      await client.unwatch();
      return undefined;
    }
    const next = change(JSON.parse(raw) as T);
    const ok = await client.multi().set(key, JSON.stringify(next)).exec();
    if (ok !== null) return next;
  }
}

/** `client` is used for WATCH: give the stores a client no other code runs transactions on. */
export class RedisTestEndpointStore implements EndpointStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}
  #key(id: string) {
    return `${this.prefix}:endpoint:${id}`;
  }
  async insert(record: EndpointRecord): Promise<boolean> {
    const ok = await this.client.set(this.#key(record.id), JSON.stringify(record), 'NX');
    if (ok === 'OK') await this.client.sadd(`${this.prefix}:endpoints`, record.id);
    return ok === 'OK';
  }
  async get(id: string): Promise<EndpointRecord | undefined> {
    const raw = await this.client.get(this.#key(id));
    return raw === null ? undefined : (JSON.parse(raw) as EndpointRecord);
  }
  async list(): Promise<readonly EndpointRecord[]> {
    const ids = await this.client.smembers(`${this.prefix}:endpoints`);
    const out: EndpointRecord[] = [];
    for (const id of ids.sort()) {
      const r = await this.get(id);
      if (r !== undefined) out.push(r);
    }
    return out;
  }
  update(id: string, change: (current: EndpointRecord) => EndpointRecord) {
    return updateJson(this.client, this.#key(id), change);
  }
  async delete(id: string): Promise<boolean> {
    await this.client.srem(`${this.prefix}:endpoints`, id);
    return (await this.client.del(this.#key(id))) === 1;
  }
}

export class RedisTestDeliveryLog implements DeliveryLog {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}
  async putEvent(event: WebhookEvent): Promise<void> {
    await this.client.set(`${this.prefix}:event:${event.id}`, JSON.stringify(event), 'NX');
  }
  async getEvent(id: string): Promise<WebhookEvent | undefined> {
    const raw = await this.client.get(`${this.prefix}:event:${id}`);
    return raw === null ? undefined : (JSON.parse(raw) as WebhookEvent);
  }
  async insertDelivery(record: DeliveryRecord): Promise<boolean> {
    const ok = await this.client.set(
      `${this.prefix}:delivery:${record.id}`,
      JSON.stringify(record),
      'NX',
    );
    if (ok === 'OK') await this.client.rpush(`${this.prefix}:deliveries`, record.id);
    return ok === 'OK';
  }
  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const raw = await this.client.get(`${this.prefix}:delivery:${id}`);
    return raw === null ? undefined : (JSON.parse(raw) as DeliveryRecord);
  }
  updateDelivery(id: string, change: (current: DeliveryRecord) => DeliveryRecord) {
    return updateJson(this.client, `${this.prefix}:delivery:${id}`, change);
  }
  async recordAttempt(attempt: AttemptRecord): Promise<void> {
    await this.client.rpush(`${this.prefix}:attempts`, JSON.stringify(attempt));
  }
  async attempts(): Promise<AttemptRecord[]> {
    const raw = await this.client.lrange(`${this.prefix}:attempts`, 0, -1);
    return raw.map((r) => JSON.parse(r) as AttemptRecord);
  }
  async deliveries(): Promise<DeliveryRecord[]> {
    const ids = await this.client.lrange(`${this.prefix}:deliveries`, 0, -1);
    const out: DeliveryRecord[] = [];
    for (const id of ids) {
      const d = await this.getDelivery(id);
      if (d !== undefined) out.push(d);
    }
    return out;
  }
  async queryAttempts(query: AttemptQuery = {}): Promise<LogPage<AttemptRecord>> {
    const items = (await this.attempts())
      .filter(
        (a) =>
          (query.endpointId === undefined || a.endpointId === query.endpointId) &&
          (query.eventId === undefined || a.eventId === query.eventId) &&
          (query.deliveryId === undefined || a.deliveryId === query.deliveryId) &&
          (query.ok === undefined || a.ok === query.ok),
      )
      .reverse();
    return { items };
  }
  async queryDeliveries(query: DeliveryQuery = {}): Promise<LogPage<DeliveryRecord>> {
    const statuses =
      query.status === undefined ? undefined : ([] as string[]).concat(query.status as string);
    const items = (await this.deliveries())
      .filter(
        (d) =>
          (query.endpointId === undefined || d.endpointId === query.endpointId) &&
          (statuses === undefined || statuses.includes(d.status)),
      )
      .reverse();
    return { items };
  }
  async endpointStats(endpointId: string, since: number): Promise<EndpointLogStats> {
    const attempts = (await this.attempts()).filter(
      (a) => a.endpointId === endpointId && a.at >= since,
    );
    const deliveries = (await this.deliveries()).filter((d) => d.endpointId === endpointId);
    return {
      attempts: attempts.length,
      succeeded: attempts.filter((a) => a.ok).length,
      dead: deliveries.filter((d) => d.status === 'dead').length,
      held: deliveries.filter((d) => d.status === 'held').length,
      pending: deliveries.filter((d) => d.status === 'pending' || d.status === 'retrying').length,
    };
  }
  async sweep(): Promise<SweepResult> {
    return { attempts: 0, deliveries: 0, events: 0 };
  }
}
