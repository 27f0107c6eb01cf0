/**
 * `MemoryApiKeyStore`: API key records in this process's memory, for tests,
 * demos and single-process deployments that seed their keys at start. The
 * same semantics as the Redis and PostgreSQL stores (one contract suite).
 */
import type { ApiKeyRecord, ApiKeyStore } from '../api-keys.js';

/**
 * API key records in memory. Records are copied in and out, so a caller
 * that changes an object it passed or got back changes nothing stored.
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
    const record = this.records.get(id);
    return record === undefined ? null : structuredClone(record);
  }

  async create(record: ApiKeyRecord): Promise<boolean> {
    if (this.records.has(record.id)) return false;
    this.records.set(record.id, structuredClone(record));
    return true;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    const record = this.records.get(id);
    if (record === undefined) return false;
    if (record.revokedAt === undefined) this.records.set(id, { ...record, revokedAt: at });
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
