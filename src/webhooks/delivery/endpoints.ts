/**
 * Webhook endpoints: where events go, which ones, in which version's shape,
 * how fast, and signed with which secrets.
 *
 * {@link EndpointStore} is the persistence contract (a PostgreSQL table
 * implements it the same way); {@link MemoryEndpointStore} the embedded one.
 * {@link WebhookEndpoints} is the service on top of it: it checks input,
 * checks a URL with the SSRF guard at registration, generates the secret
 * (returned once, from `create()` and `rotateSecret()`, never by a read),
 * and keeps the old secret through a rotation's overlap window.
 */
import { ValidationError, type ValidationIssue } from '../../core/errors.js';
import {
  generateWebhookSecret,
  MAX_SECRET_BYTES,
  MIN_SECRET_BYTES,
  parseWebhookKey,
} from '../secrets.js';
import { generateId, ID_PATTERN, isEventFilter } from './events.js';
import { WebhookEndpointNotFoundError } from './problems.js';

/** One signing secret of an endpoint. */
export interface EndpointSecret {
  readonly secret: string;
  readonly createdAt: number;
  /** When a rotated-out secret stops signing; `undefined` for the current one. */
  readonly expiresAt?: number;
}

/** Why an endpoint is disabled. */
export type DisabledBy = 'user' | 'gone' | 'health';

/** An endpoint as stored: JSON-serializable, secrets included. */
export interface EndpointRecord {
  readonly id: string;
  readonly url: string;
  readonly description?: string;
  /** Event-type filters: `*`, exact types, `payment.*`. */
  readonly eventTypes: readonly string[];
  /**
   * The API versions its payloads are shaped for: one (the pin), or two during
   * a migration (each event delivered in both shapes). Empty when the engine
   * shapes no payloads.
   */
  readonly versions: readonly string[];
  readonly payload: 'fat' | 'thin';
  /** Most attempts in flight to it at once. */
  readonly concurrency: number;
  /** Most attempts started per second; `undefined` for no limit. */
  readonly rateLimitPerSecond?: number;
  /** Newest first; expired ones are dropped on the next write. */
  readonly secrets: readonly EndpointSecret[];
  readonly disabled?: { readonly by: DisabledBy; readonly reason: string; readonly at: number };
  readonly metadata?: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** An endpoint as read: everything but the secrets. */
export interface WebhookEndpoint extends Omit<EndpointRecord, 'secrets'> {
  /** Until when a rotated-out secret still signs, when a rotation is in its overlap. */
  readonly rotationEndsAt?: number;
}

/**
 * Where endpoints are kept. Every method is one atomic step: `update` reads
 * and writes under one lock (a `SELECT … FOR UPDATE` in PostgreSQL), so two
 * concurrent rotations or a disable racing an enable never lose a write.
 */
export interface EndpointStore {
  /** Stores a new endpoint; resolves `false` when the id is taken. */
  insert(record: EndpointRecord): Promise<boolean>;
  get(id: string): Promise<EndpointRecord | undefined>;
  /** Every endpoint (step one keeps them all in view; a store may index by filter later). */
  list(): Promise<readonly EndpointRecord[]>;
  /** Applies `change` to the current record atomically; `undefined` when there is none. */
  update(
    id: string,
    change: (current: EndpointRecord) => EndpointRecord,
  ): Promise<EndpointRecord | undefined>;
  delete(id: string): Promise<boolean>;
}

/** The embedded {@link EndpointStore}: a Map of frozen copies. */
export class MemoryEndpointStore implements EndpointStore {
  private readonly records = new Map<string, EndpointRecord>();

  async insert(record: EndpointRecord): Promise<boolean> {
    if (this.records.has(record.id)) return false;
    this.records.set(record.id, freeze(record));
    return true;
  }

  async get(id: string): Promise<EndpointRecord | undefined> {
    return this.records.get(id);
  }

  async list(): Promise<readonly EndpointRecord[]> {
    return [...this.records.values()];
  }

  async update(
    id: string,
    change: (current: EndpointRecord) => EndpointRecord,
  ): Promise<EndpointRecord | undefined> {
    const current = this.records.get(id);
    if (current === undefined) return undefined;
    const next = freeze(change(current));
    this.records.set(id, next);
    return next;
  }

  async delete(id: string): Promise<boolean> {
    return this.records.delete(id);
  }
}

function freeze(record: EndpointRecord): EndpointRecord {
  // A JSON round trip: what a durable store would give back, and no shared references.
  const copy = JSON.parse(JSON.stringify(record)) as EndpointRecord;
  Object.freeze(copy.eventTypes);
  Object.freeze(copy.versions);
  Object.freeze(copy.secrets);
  return Object.freeze(copy);
}

/** What registers an endpoint. */
export interface CreateEndpointInput {
  /** The `https://` URL deliveries are POSTed to (`http://` only with `allowHttp`). Required. */
  url: string;
  description?: string;
  /** @default ['*'] */
  eventTypes?: readonly string[];
  /**
   * The version(s) to shape payloads for: one, or two during a migration.
   * @default the newest version, when the engine has `versions`
   */
  version?: string | readonly string[];
  /** @default 'fat' */
  payload?: 'fat' | 'thin';
  /** Most attempts in flight at once, 1 to 100. @default 3 */
  concurrency?: number;
  /** Most attempts started per second, 1 to 10000. @default no limit */
  rateLimitPerSecond?: number;
  metadata?: Record<string, string>;
  /** An id of your own (A-Z, a-z, 0-9, `_`, `-`). @default `ep_` + random */
  id?: string;
  /**
   * The signing secret, when the receiver already holds one (`whsec_` + base64 of 24 to 64
   * random bytes, as `generateWebhookSecret()` makes): an endpoint moved from another sender, or
   * a receiver configured ahead. Only at creation; later changes go through `rotateSecret`.
   * @default a new secret from the CSPRNG
   */
  secret?: string;
}

/** What may change after registration (the secret changes through `rotateSecret`). */
export type UpdateEndpointInput = Partial<Omit<CreateEndpointInput, 'id' | 'secret'>>;

/** Something that refuses URLs: the SSRF guard's `check`. */
export interface UrlGuard {
  /** Resolves when `url` may be delivered to; throws (a 4xx problem) when not. */
  check(url: string): Promise<void>;
}

/** Options of {@link WebhookEndpoints}. */
export interface WebhookEndpointsOptions {
  store: EndpointStore;
  /** Checks each URL at registration and on a URL change. */
  guard?: UrlGuard;
  /** Accept `http://` URLs (local development). @default false */
  allowHttp?: boolean;
  /** The versions an endpoint may pin, newest first; empty when payloads are not versioned. */
  versions?: readonly string[];
  /** The version an endpoint pins when it names none. */
  defaultVersion?: string;
  now: () => number;
  /** Called after an endpoint is enabled (the engine re-queues its held events). */
  onEnable?: (endpoint: WebhookEndpoint) => void | Promise<void>;
}

/** A rotation's result: the new secret, shown this once. */
export interface RotatedSecret {
  readonly secret: string;
  /** Until when the previous secret still signs (both signatures are sent until then). */
  readonly previousExpiresAt: number;
}

/** The default overlap of a rotation: both secrets sign for a day. */
export const DEFAULT_ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;
const MAX_VERSIONS = 2;

/** Registers, reads and changes endpoints; see the module comment. */
export class WebhookEndpoints {
  private readonly options: WebhookEndpointsOptions;

  constructor(options: WebhookEndpointsOptions) {
    this.options = options;
  }

  /** Registers an endpoint; its secret is in the result, and never shown again. */
  async create(input: CreateEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const now = this.options.now();
    const fields = await this.check(input, true);
    const id = input.id ?? generateId('ep');
    const secret = input.secret ?? generateWebhookSecret();
    const record: EndpointRecord = {
      id,
      url: fields.url!,
      ...(fields.description === undefined ? {} : { description: fields.description }),
      eventTypes: fields.eventTypes ?? ['*'],
      versions:
        fields.versions ??
        (this.options.defaultVersion === undefined ? [] : [this.options.defaultVersion]),
      payload: fields.payload ?? 'fat',
      concurrency: fields.concurrency ?? 3,
      ...(fields.rateLimitPerSecond === undefined
        ? {}
        : { rateLimitPerSecond: fields.rateLimitPerSecond }),
      secrets: [{ secret, createdAt: now }],
      ...(fields.metadata === undefined ? {} : { metadata: fields.metadata }),
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.options.store.insert(record))) {
      throw new ValidationError([
        { pointer: '/id', detail: 'is the id of another endpoint', in: 'body' },
      ]);
    }
    return { endpoint: this.view(record), secret };
  }

  /** The endpoint, without its secrets. */
  async get(id: string): Promise<WebhookEndpoint> {
    return this.view(await this.record(id));
  }

  /** The stored record, secrets included: for the engine's own use. */
  async record(id: string): Promise<EndpointRecord> {
    const record = await this.options.store.get(id);
    if (record === undefined) throw new WebhookEndpointNotFoundError(id);
    return record;
  }

  async list(): Promise<WebhookEndpoint[]> {
    return (await this.options.store.list()).map((r) => this.view(r));
  }

  async update(id: string, input: UpdateEndpointInput): Promise<WebhookEndpoint> {
    if (input !== null && typeof input === 'object' && 'id' in input) {
      throw new ValidationError([{ pointer: '/id', detail: 'cannot change', in: 'body' }]);
    }
    const fields = await this.check(input, false);
    const now = this.options.now();
    return this.view(
      await this.change(id, (r) => {
        const next: { -readonly [K in keyof EndpointRecord]: EndpointRecord[K] } = {
          ...r,
          updatedAt: now,
        };
        if (fields.url !== undefined) next.url = fields.url;
        if (fields.description !== undefined) next.description = fields.description;
        if (fields.eventTypes !== undefined) next.eventTypes = fields.eventTypes;
        if (fields.versions !== undefined) next.versions = fields.versions;
        if (fields.payload !== undefined) next.payload = fields.payload;
        if (fields.concurrency !== undefined) next.concurrency = fields.concurrency;
        if (fields.rateLimitPerSecond !== undefined)
          next.rateLimitPerSecond = fields.rateLimitPerSecond;
        if (fields.metadata !== undefined) next.metadata = fields.metadata;
        return next;
      }),
    );
  }

  /**
   * Stops deliveries to the endpoint. Events keep arriving for it and are
   * kept, held, until it is enabled again.
   */
  async disable(id: string, reason: string, by: DisabledBy = 'user'): Promise<WebhookEndpoint> {
    const issues = checkReason(reason);
    if (issues.length > 0) throw new ValidationError(issues);
    const now = this.options.now();
    return this.view(
      await this.change(id, (r) => ({ ...r, disabled: { by, reason, at: now }, updatedAt: now })),
    );
  }

  /** Resumes deliveries; its held events are queued again (with a fresh retry budget). */
  async enable(id: string): Promise<WebhookEndpoint> {
    const now = this.options.now();
    let wasDisabled = false;
    const record = await this.change(id, (r) => {
      wasDisabled = r.disabled !== undefined;
      const { disabled: _, ...rest } = r;
      return { ...rest, updatedAt: now };
    });
    const endpoint = this.view(record);
    if (wasDisabled) await this.options.onEnable?.(endpoint);
    return endpoint;
  }

  /**
   * A new secret, shown this once. Until `now + overlapMs` the previous one
   * keeps signing too: each delivery then carries a signature per secret, and
   * a receiver holding either verifies it. Secrets rotated out earlier, and
   * past their own overlap, are dropped.
   */
  async rotateSecret(
    id: string,
    options: { overlapMs?: number } = {},
  ): Promise<RotatedSecret & { endpoint: WebhookEndpoint }> {
    const overlapMs = options.overlapMs ?? DEFAULT_ROTATION_OVERLAP_MS;
    if (!Number.isSafeInteger(overlapMs) || overlapMs < 0) {
      throw new ValidationError([
        { pointer: '/overlapMs', detail: 'must be a non-negative integer', in: 'body' },
      ]);
    }
    const now = this.options.now();
    const secret = generateWebhookSecret();
    const previousExpiresAt = now + overlapMs;
    const record = await this.change(id, (r) => ({
      ...r,
      secrets: [
        { secret, createdAt: now },
        ...r.secrets
          .map((s) => ({
            ...s,
            expiresAt: Math.min(s.expiresAt ?? previousExpiresAt, previousExpiresAt),
          }))
          .filter((s) => s.expiresAt > now),
      ].slice(0, 16),
      updatedAt: now,
    }));
    return { secret, previousExpiresAt, endpoint: this.view(record) };
  }

  async delete(id: string): Promise<void> {
    if (!(await this.options.store.delete(id))) throw new WebhookEndpointNotFoundError(id);
  }

  /** The endpoint's secrets that sign at `now`, newest first. */
  activeSecrets(record: EndpointRecord, now: number): string[] {
    return record.secrets
      .filter((s) => s.expiresAt === undefined || s.expiresAt > now)
      .map((s) => s.secret);
  }

  /** The public view of a record. */
  view(record: EndpointRecord): WebhookEndpoint {
    const { secrets, ...rest } = record;
    const now = this.options.now();
    let rotationEndsAt: number | undefined;
    for (const s of secrets) {
      if (s.expiresAt !== undefined && s.expiresAt > now)
        rotationEndsAt = Math.max(rotationEndsAt ?? 0, s.expiresAt);
    }
    return rotationEndsAt === undefined ? rest : { ...rest, rotationEndsAt };
  }

  private async change(
    id: string,
    change: (current: EndpointRecord) => EndpointRecord,
  ): Promise<EndpointRecord> {
    const record = await this.options.store.update(id, change);
    if (record === undefined) throw new WebhookEndpointNotFoundError(id);
    return record;
  }

  /** Checks every given field at once; a 400 lists every problem. */
  private async check(
    input: UpdateEndpointInput & { id?: string },
    creating: boolean,
  ): Promise<UpdateEndpointInput & { versions?: readonly string[] }> {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw new ValidationError([{ pointer: '', detail: 'must be an object', in: 'body' }]);
    }
    const issues: ValidationIssue[] = [];
    const issue = (pointer: string, detail: string) => issues.push({ pointer, detail, in: 'body' });
    const known = [
      'url',
      'description',
      'eventTypes',
      'version',
      'payload',
      'concurrency',
      'rateLimitPerSecond',
      'metadata',
      ...(creating ? ['id', 'secret'] : []),
    ];
    for (const key of Object.keys(input)) {
      if (!known.includes(key)) issue(`/${key}`, 'is not a field of an endpoint');
    }
    const out: UpdateEndpointInput & { versions?: readonly string[] } = {};
    if (creating || input.url !== undefined) {
      const url = checkUrl(input.url, this.options.allowHttp === true);
      if (typeof url === 'string') out.url = url;
      else issue('/url', url.problem);
    }
    if (
      creating &&
      input.id !== undefined &&
      (typeof input.id !== 'string' || !ID_PATTERN.test(input.id))
    ) {
      issue('/id', 'must be 1 to 100 characters of A-Z, a-z, 0-9, "_" and "-"');
    }
    if (creating && (input as CreateEndpointInput).secret !== undefined) {
      // Checked as the signers check it, without echoing it: a short or undecodable secret
      // would sign with a weaker key than the receiver expects, or not at all.
      try {
        parseWebhookKey('webhooks', 'secret', (input as CreateEndpointInput).secret, 'symmetric');
      } catch {
        issue(
          '/secret',
          `must be "whsec_" + base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} random bytes (generateWebhookSecret() makes one)`,
        );
      }
    }
    if (input.description !== undefined) {
      if (typeof input.description !== 'string' || input.description.length > 500)
        issue('/description', 'must be a string of at most 500 characters');
      else out.description = input.description;
    }
    if (input.eventTypes !== undefined) {
      const types = input.eventTypes;
      if (!Array.isArray(types) || types.length === 0 || types.length > 100) {
        issue('/eventTypes', 'must be a list of 1 to 100 event types or filters');
      } else {
        types.forEach((t: unknown, i: number) => {
          if (!isEventFilter(t))
            issue(`/eventTypes/${i}`, 'must be an event type, a prefix ending in ".*", or "*"');
        });
        out.eventTypes = [...new Set(types as string[])];
      }
    }
    if (input.version !== undefined) {
      const list = typeof input.version === 'string' ? [input.version] : input.version;
      const served = this.options.versions ?? [];
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_VERSIONS) {
        issue('/version', 'must be a version, or a list of two during a migration');
      } else if (served.length === 0) {
        issue('/version', 'cannot be set: webhook payloads are not versioned');
      } else {
        list.forEach((v: unknown, i: number) => {
          if (typeof v !== 'string' || !served.includes(v))
            issue(
              typeof input.version === 'string' ? '/version' : `/version/${i}`,
              `must be one of ${served.join(', ')}`,
            );
        });
        // Newest first, as `served` lists them, so that the order never depends on the input.
        out.versions = served.filter((v) => (list as readonly unknown[]).includes(v));
      }
    }
    if (input.payload !== undefined) {
      if (input.payload !== 'fat' && input.payload !== 'thin')
        issue('/payload', 'must be "fat" or "thin"');
      else out.payload = input.payload;
    }
    if (input.concurrency !== undefined) {
      if (
        !Number.isSafeInteger(input.concurrency) ||
        input.concurrency < 1 ||
        input.concurrency > 100
      )
        issue('/concurrency', 'must be an integer from 1 to 100');
      else out.concurrency = input.concurrency;
    }
    if (input.rateLimitPerSecond !== undefined) {
      const r = input.rateLimitPerSecond;
      if (!Number.isSafeInteger(r) || r < 1 || r > 10_000)
        issue('/rateLimitPerSecond', 'must be an integer from 1 to 10000');
      else out.rateLimitPerSecond = r;
    }
    if (input.metadata !== undefined) {
      const m = input.metadata;
      const entries = m !== null && typeof m === 'object' ? Object.entries(m) : undefined;
      if (
        entries === undefined ||
        Array.isArray(m) ||
        entries.length > 50 ||
        entries.some(([k, v]) => k.length > 100 || typeof v !== 'string' || v.length > 500)
      )
        issue('/metadata', 'must be at most 50 string values of at most 500 characters');
      else out.metadata = { ...m };
    }
    if (issues.length > 0) throw new ValidationError(issues);
    // The SSRF guard last: it may resolve DNS, which bad input need not cost.
    if (out.url !== undefined) await this.options.guard?.check(out.url);
    return out;
  }
}

function checkReason(reason: unknown): ValidationIssue[] {
  return typeof reason === 'string' && reason.length > 0 && reason.length <= 500
    ? []
    : [{ pointer: '/reason', detail: 'must be a string of 1 to 500 characters', in: 'body' }];
}

/** The URL normalised, or why it is refused. */
function checkUrl(value: unknown, allowHttp: boolean): string | { problem: string } {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048)
    return { problem: 'must be a URL of at most 2048 characters' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'must be an absolute URL' };
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:'))
    return { problem: allowHttp ? 'must be an http or https URL' : 'must be an https URL' };
  // Credentials in a URL end up in logs and in every admin view of the endpoint.
  if (url.username !== '' || url.password !== '')
    return { problem: 'must not carry a user name or password' };
  if (url.hash !== '') return { problem: 'must not have a fragment' };
  // Port 0 is no port: nothing can listen on it (the URL parser accepts it).
  if (url.port === '0') return { problem: 'must have a port from 1 to 65535' };
  return url.href;
}
