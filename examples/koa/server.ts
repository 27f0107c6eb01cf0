/** Starts the Koa example: `npm run start:koa` (PORT, default 3000; REDIS_URL switches to Redis). */
import { createServer } from 'node:http';
import { hardenServer } from 'restwell';
import { auditDatabase, createAuditLog } from '../shared/audit.js';
import { credentialsFromEnv } from '../shared/auth.js';
import { createDelivery, registerSelf } from '../shared/delivery.js';
import { webhookSecretFromEnv } from '../shared/webhooks.js';
import { createStores } from '../shared/stores.js';
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const stores = await createStores();
// The audit log: stdout, or PostgreSQL when DATABASE_URL is set, or Redis on Redis.
const auditPool = await auditDatabase();
const auditLog = createAuditLog({ ...stores, ...(auditPool ? { pool: auditPool } : {}) });
const webhookSecret = webhookSecretFromEnv();
// Outgoing webhooks: payments emit events; the worker runs in this process.
const outgoing = await createDelivery({ ...(stores.redis ? { redis: stores.redis } : {}) });
outgoing.delivery.startWorker();
// What Node's HTTP parser refuses itself (a control character in a header, bad framing, headers
// too large, a client too slow) is answered as a problem with a trace id, and the server gets
// timeouts a public API wants.
const server = hardenServer(
  createServer(
    createApp({
      ...stores,
      cursorSecret: process.env.CURSOR_SECRET,
      credentials: credentialsFromEnv(),
      auditLog,
      webhookSecret,
      outgoing,
      ...(process.env.HTTPS_HOST ? { httpsHost: process.env.HTTPS_HOST } : {}),
    }).callback(),
  ),
);
server.listen(port, async () => {
  // The example's own receiver gets the events it emits (WEBHOOK_SELF_DELIVERY=0 leaves it out).
  if (process.env.WEBHOOK_SELF_DELIVERY !== '0') {
    await registerSelf(outgoing.delivery, port, webhookSecret).catch((err: unknown) =>
      console.error('restwell example: could not register its own webhook receiver', err),
    );
  }
  console.log(`restwell example (Koa, ${stores.records.kind} store) on http://localhost:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close(
      () =>
        void outgoing.delivery
          .stop()
          .then(() => auditLog.close())
          .then(() => auditPool?.end())
          .then(() => stores.close())
          .then(() => process.exit(0)),
    );
  });
}
