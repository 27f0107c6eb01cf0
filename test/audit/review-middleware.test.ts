/**
 * audit() mounted first in the global chain, on every adapter: the record
 * holds the status the client got, and a hash of the payload it sent,
 * whatever the body and whoever parsed it.
 */
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { ChainedRecord } from '../../src/audit/chain.js';
import { audit } from '../../src/audit/middleware.js';
import { callbackSink } from '../../src/audit/sinks.js';
import { jsonBody } from '../../src/core/body.js';
import { silentLogger } from '../../src/core/logger.js';
import { rateLimit } from '../../src/rate-limit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { adapters } from '../helpers/apps.js';

const KEY = 'm'.repeat(32);

function recorded() {
  const records: ChainedRecord[] = [];
  const auditLog = audit({
    sink: callbackSink((r) => void records.push(r)),
    key: KEY,
    logger: silentLogger,
  });
  return { records, auditLog };
}

describe.each(adapters)('audit() first in the chain through $name', (adapter) => {
  it('records the status the client got, for answers the handler never gave', async () => {
    const { records, auditLog } = recorded();
    const server = adapter.build({
      use: [
        auditLog,
        rateLimit({ store: new MemoryStore(), limit: 1, windowMs: 60_000, key: () => 'one' }),
        jsonBody({ limit: 64 }),
      ],
      routes: [
        { method: 'post', path: '/v1/things/:id', handler: () => ({ status: 201, body: {} }) },
        { method: 'get', path: '/v1/things/:id', handler: () => ({ body: {} }) },
      ],
    });
    const statuses = [
      (await request(server).post('/v1/things/1').send({ a: 1 })).status,
      (await request(server).post('/v1/things/1').send({ a: 1 })).status,
    ];
    await auditLog.flush();
    expect(statuses).toEqual([201, 429]);
    expect(records.map((r) => [r.status, r.route])).toEqual([
      [201, '/v1/things/:id'],
      [429, null],
    ]);

    const server2 = adapter.build({
      use: [auditLog, jsonBody({ limit: 64 })],
      routes: [
        { method: 'post', path: '/v1/things/:id', handler: () => ({ status: 201, body: {} }) },
        { method: 'get', path: '/v1/things/:id', handler: () => ({ body: {} }) },
        {
          method: 'put',
          path: '/v1/conflict',
          // A framework's error that carries statusCode only (as fastify's and many clients' do).
          handler: () => {
            throw Object.assign(new Error('taken'), { statusCode: 409 });
          },
        },
        {
          method: 'patch',
          path: '/v1/odd',
          handler: () => {
            throw Object.assign(new Error('odd'), { status: 418.5 });
          },
        },
      ],
    });
    const more = [
      (await request(server2).delete('/v1/things/1')).status,
      (await request(server2).post('/v1/nothing')).status,
      (await request(server2).put('/v1/conflict')).status,
      (await request(server2).patch('/v1/odd')).status,
      (
        await request(server2)
          .post('/v1/things/2')
          .send({ a: 'x'.repeat(100) })
      ).status,
      (await request(server2).post('/v1/things/2').type('text/plain').send('x')).status,
    ];
    await auditLog.flush();
    expect(more).toEqual([405, 404, 409, 500, 413, 415]);
    expect(records.slice(2).map((r) => r.status)).toEqual(more);
  });
});
