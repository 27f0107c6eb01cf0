/**
 * The admin suites' fixtures: an engine on a manual clock with loopback
 * allowed, the admin API mounted on an app of each adapter, the principal set
 * by the adapter's `principal` option (the framework's own authentication)
 * from a test header, and a logger that keeps every line.
 */
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import type { Principal } from '../../../../src/core/context.js';
import type { Logger } from '../../../../src/core/logger.js';
import { type WebhookAdminOptions, webhookAdmin } from '../../../../src/webhooks/delivery/admin.js';
import type { WebhookDeliveryOptions } from '../../../../src/webhooks/delivery/delivery.js';
import { type AdapterCase, adapters } from '../../../helpers/apps.js';
import { engine } from '../engine/helpers.js';

export { receiver, START, until } from '../engine/helpers.js';
export { adapters };

export const BASE = '/v1/webhook-endpoints';

/** A logger that keeps every line, to prove what never reaches it. */
export function recordingLogger() {
  const lines: string[] = [];
  const write =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push(`${level} ${message} ${safeJson(fields)}`);
    };
  const logger: Logger = {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
  return { logger, lines };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) =>
      v instanceof Error ? { message: v.message, stack: v.stack } : v,
    );
  } catch {
    return String(value);
  }
}

/**
 * `x-test-principal: <id>;<role>,<role>` plays the application's own
 * authentication (`req.user`), read by the adapters' `principal` option.
 */
export function principalFrom(headers: IncomingHttpHeaders): Principal | undefined {
  const raw = headers['x-test-principal'];
  if (typeof raw !== 'string') return undefined;
  const [id, roles = ''] = raw.split(';');
  return { id: id!, roles: roles.split(',').filter((r) => r !== '') };
}

export const ADMIN = { 'x-test-principal': 'ops_ada;admin' };
export const MEMBER = { 'x-test-principal': 'usr_bob;member' };

/** An engine (memory queue, log and store; manual clock) and the admin API over it on `adapter`. */
export function adminApp(
  adapter: AdapterCase,
  options: {
    engine?: Partial<WebhookDeliveryOptions>;
    admin?: WebhookAdminOptions;
  } = {},
) {
  const { logger, lines } = recordingLogger();
  const e = engine({ logger, ...options.engine });
  const app: RequestListener = adapter.build({
    use: [webhookAdmin(e.delivery, options.admin)],
    routes: [{ method: 'get', path: '/health', handler: () => ({ body: { ok: true } }) }],
    options: { logger },
    expressOptions: { principal: (req) => principalFrom(req.headers) },
    koaOptions: { principal: (ctx) => principalFrom(ctx.req.headers) },
  });
  return { ...e, app, lines };
}
