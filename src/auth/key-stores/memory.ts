/**
 * `MemoryApiKeyStore`: API key records in this process's memory, for tests,
 * demos and single-process deployments that seed their keys at start. The
 * same semantics as the Redis and PostgreSQL stores (one contract suite).
 */
import type { ApiKeyRecord, ApiKeyStore } from '../api-keys.js';

function frozenCopy(record: ApiKeyRecord): ApiKeyRecord {
  const copy = structuredClone(record) as ApiKeyRecord & Record<string, unknown>;
  for (const value of Object.values(copy)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(copy);
}

/**
 * API key records in memory. A record is copied and deeply frozen when it is
 * stored, and handed out as it is: a caller that changes the object it passed
 * changes nothing stored, one that tries to change what it got back throws
 * (in strict mode), and a read costs no copy.
 *
 * @example
 * ```ts
 * const store = new MemoryApiKeyStore();
 * const { key } = await issueApiKey(store, { subject: 'svc_ci', roles: ['deployer'] });
 * ```
 */
export class MemoryApiKeyStore implements ApiKeyStore {
  readonly kind = 'memory';
  private readonly records = new Map<string, ApiKeyRecord>();

  async get(id: string): Promise<ApiKeyRecord | null> {
    return this.records.get(id) ?? null;
  }

  async create(record: ApiKeyRecord): Promise<boolean> {
    if (this.records.has(record.id)) return false;
    this.records.set(record.id, frozenCopy(record));
    return true;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    const record = this.records.get(id);
    if (record === undefined) return false;
    if (record.revokedAt === undefined)
      this.records.set(id, frozenCopy({ ...record, revokedAt: at }));
    return true;
  }

  async delete(id: string): Promise<boolean> {
    return this.records.delete(id);
  }

  /** How many records are held. */
  get size(): number {
    return this.records.size;
  }
}
