/**
 * The in-process sinks with the destinations people give them: a pino
 * destination (sonic-boom), a stream that has ended or fails, two audit()
 * middlewares writing one log.
 */
import { PassThrough, Writable } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { ChainedRecord } from '../../src/audit/chain.js';
import { audit } from '../../src/audit/middleware.js';
import { callbackSink, streamSink } from '../../src/audit/sinks.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/core/logger.js';
import { adapters } from '../helpers/apps.js';

const KEY = 's'.repeat(32);

function appFor(...auditLogs: ReturnType<typeof audit>[]) {
  return adapters[0]!.build({
    use: auditLogs,
    routes: [{ method: 'post', path: '/v1/x', handler: () => ({ status: 201, body: {} }) }],
  });
}

describe('streamSink', () => {
  it('writes every record to a destination whose write() takes no callback (sonic-boom)', async () => {
    const lines: string[] = [];
    // pino.destination()'s write(data): it buffers and returns, and never calls a callback.
    const destination = {
      write(data: string): boolean {
        lines.push(data);
        return true;
      },
    };
    const auditLog = audit({
      sink: streamSink(destination),
      key: KEY,
      timeoutMs: 100,
      logger: silentLogger,
    });
    const server = appFor(auditLog);
    for (let i = 0; i < 3; i++) await request(server).post('/v1/x').expect(201);
    await auditLog.flush(2000);
    expect(auditLog.stats()).toMatchObject({ appended: 3, pending: 0 });
    expect(lines).toHaveLength(3);
    expect(verifyAuditLog(lines, { key: KEY }).ok).toBe(true);
  });

  it('keeps records waiting, and the process up, when the stream has ended or fails', async () => {
    const ended = new PassThrough();
    ended.end();
    const full = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('ENOSPC: no space left on device'));
      },
    });
    const a = audit({
      sink: streamSink(ended),
      key: KEY,
      log: 'a',
      timeoutMs: 100,
      logger: silentLogger,
    });
    const b = audit({
      sink: streamSink(full),
      key: KEY,
      log: 'b',
      timeoutMs: 100,
      logger: silentLogger,
    });
    const server = appFor(a, b);
    await request(server).post('/v1/x').expect(201);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Write errors are emitted as 'error' too: unheard, they would end the process.
    expect(a.stats()).toMatchObject({ appended: 0, pending: 1 });
    expect(b.stats()).toMatchObject({ appended: 0, pending: 1 });
    await a.close();
    await b.close();
  });
});

describe('two audit() middlewares on one in-process sink and log', () => {
  it('write one chain, however their appends interleave', async () => {
    const records: ChainedRecord[] = [];
    const sink = callbackSink(async (r) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      records.push(r);
    });
    const first = audit({ sink, key: KEY, log: 'shared', logger: silentLogger });
    const second = audit({ sink, key: KEY, log: 'shared', logger: silentLogger });
    const server = appFor(first, second);
    await Promise.all(Array.from({ length: 40 }, () => request(server).post('/v1/x').expect(201)));
    await first.flush();
    await second.flush();
    expect(records).toHaveLength(80);
    expect(verifyAuditLog(records, { key: KEY })).toMatchObject({ ok: true, records: 80 });
  });
});
