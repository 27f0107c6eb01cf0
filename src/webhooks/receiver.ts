/**
 * `webhookReceiver()`: the middleware of a webhook endpoint. In order:
 *
 * 1. transport: HTTPS only when `requireHttps` (on by default when
 *    `NODE_ENV=production`), and the sender's address in `allowedSenderIps`
 *    when given (the client IP as the adapter's `trustProxy` resolves it);
 * 2. the exact body bytes, captured at the route (see raw-body.ts), bounded by `limit`;
 * 3. the signature, by the first verifier whose header is present: 401 problems;
 * 4. the payload, parsed as JSON when it is JSON, only after it verified;
 * 5. with `dedupe`, the event id claimed in the ledger: a duplicate is answered
 *    200 without being processed; a duplicate still in flight waits, then 409;
 * 6. the event is handed on: to `queue` (and answered 200 at once), or to the
 *    route's handler, which reads it with `webhookOf(ctx)` and answers 2xx. A
 *    2xx records the event as processed; anything else releases it, so the
 *    sender's retry is processed.
 *
 * The endpoint is authenticated by its signature: mount it without the API's
 * key or token authentication.
 */
import type { Context, ContextState, Middleware } from '../core/context.js';
import { answeredBy } from '../core/context.js';
import {
  InvalidUtf8Error,
  JsonTooDeepError,
  MalformedJsonError,
  mediaTypeOf,
  nestsDeeperThan,
} from '../core/body.js';
import { checkOptions, invalidOption, isStoreError, StoreFullError } from '../core/errors.js';
import { compileTrust } from '../core/ip.js';
import { LogThrottle } from '../core/logger.js';
import { buildProblem, PROBLEM_CONTENT_TYPE, type ProblemOptions } from '../core/problem.js';
import { HttpsRequiredError } from '../security/errors.js';
import {
  WebhookEventIdMissingError,
  WebhookInFlightError,
  WebhookSenderForbiddenError,
  WebhookVerificationError,
} from './errors.js';
import { type ClaimedEvent, WebhookEventLedger } from './ledger.js';
import type { WebhookQueue } from './queue.js';
import { readRawBody } from './raw-body.js';
import {
  isPrintableId,
  readHeader,
  type VerifiedSignature,
  type WebhookVerifier,
} from './verify.js';

/** A delivery that verified, as the receiver hands it on. Plain data: a durable queue may serialise it (but for `rawBody`). */
export interface ReceivedWebhook {
  /** The event id it is deduplicated by: `eventId(...)`, else the scheme's id header, else the payload's `id`. */
  readonly id: string | undefined;
  /** Which verifier accepted it. */
  readonly scheme: string;
  /** The signed timestamp, in seconds since the epoch, for schemes that sign one. */
  readonly timestamp: number | undefined;
  /** Which of that verifier's secrets verified it (see `VerifiedSignature.secretIndex`). */
  readonly secretIndex: number;
  /** The parsed JSON payload, or `undefined` for an empty or non-JSON body. */
  readonly payload: unknown;
  /** The exact bytes that were verified. */
  readonly rawBody: Uint8Array;
}

/** Options of {@link webhookReceiver}. */
export interface WebhookReceiverOptions {
  /**
   * How deliveries are verified: one verifier, or several on one route (each
   * delivery is checked by the first whose header it carries). Required.
   */
  verify: WebhookVerifier | readonly WebhookVerifier[];
  /**
   * Deduplicate deliveries by event id: a `WebhookEventLedger` on a ledger store.
   * Without it every verified delivery is handed on, duplicates included.
   * @default undefined (no deduplication)
   */
  dedupe?: WebhookEventLedger;
  /**
   * The event id of a verified delivery. Return `undefined` to fall back to the
   * default. @default the scheme's id header (`webhook-id`, `X-GitHub-Delivery`),
   * else the payload's `id` member (a string, or an integer)
   */
  eventId?: (payload: unknown, signature: VerifiedSignature) => string | undefined;
  /**
   * Hand each claimed event to this queue and answer 200 at once, without
   * calling the route's handler; the event counts as processed once the queue
   * accepted it. @default undefined (the route's handler processes the event)
   */
  queue?: WebhookQueue<ReceivedWebhook>;
  /** Largest body accepted, in bytes. @default 1_048_576 (1 MiB) */
  limit?: number;
  /** Deepest JSON nesting accepted in a payload (see `jsonBody`'s `maxDepth`). @default 64 */
  maxDepth?: number;
  /**
   * Refuse deliveries over plain HTTP with 403 `https-required` (the seed:
   * never accept deliveries over HTTP). Behind a TLS-terminating proxy, set the
   * adapter's `trustProxy` so that its `X-Forwarded-Proto` is believed.
   * @default process.env.NODE_ENV === 'production'
   */
  requireHttps?: boolean;
  /**
   * Accept deliveries only from these senders: addresses, CIDR ranges
   * (`192.0.2.0/24`, `2001:db8::/32`) or presets (`loopback`, `linklocal`,
   * `uniquelocal`), checked against the client IP as the adapter's `trustProxy`
   * resolves it. Others get 403 `webhook-sender-forbidden`. @default undefined (any sender)
   */
  allowedSenderIps?: readonly string[];
  /** `Retry-After` seconds sent with 409 `webhook-in-flight` and 503 answers. @default 1 */
  retryAfterSeconds?: number;
}

const OPTION_NAMES = [
  'verify',
  'dedupe',
  'eventId',
  'queue',
  'limit',
  'maxDepth',
  'requireHttps',
  'allowedSenderIps',
  'retryAfterSeconds',
] as const;

const OPTION_HINTS: Readonly<Record<string, string>> = {
  secret: 'Pass a verifier: verify: hmacVerifier({ secrets: [secret] }).',
  secrets: 'Pass a verifier: verify: hmacVerifier({ secrets }).',
  store: 'Pass a ledger: dedupe: new WebhookEventLedger({ store }).',
  tolerance: "Tolerance is the verifier's: hmacVerifier({ secrets, toleranceSeconds }).",
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ACK = '{"received":true}';
const ACK_DUPLICATE = '{"received":true,"duplicate":true}';

/** The adapter's problem options, when the context is one an adapter built. */
function problemOptions(ctx: Context): ProblemOptions {
  return (ctx as { settings?: { problems?: ProblemOptions } }).settings?.problems ?? {};
}

function acknowledge(ctx: Context, body: string): void {
  ctx.response.headers.set('content-type', 'application/json');
  ctx.response.status = 200;
  ctx.response.body = body;
}

/**
 * An empty plain object: what body-parser 1.x and koa-bodyparser leave in
 * `body` when they decline a request without reading it. It stands for nothing.
 */
function standIn(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const proto = Object.getPrototypeOf(body);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const _ in body) return false;
  return true;
}

function isJsonType(type: string | undefined): boolean {
  return type === undefined || type === 'application/json' || type.endsWith('+json');
}

/** The payload's own `id`, when it has a usable one. */
function payloadId(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const id = (payload as { id?: unknown }).id;
  if (typeof id === 'string') return isPrintableId(id) ? id : undefined;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id);
  return undefined;
}

function checkVerifiers(value: unknown): readonly WebhookVerifier[] {
  const list = Array.isArray(value) ? value : [value];
  if (
    list.length === 0 ||
    list.some(
      (v) =>
        v === null ||
        typeof v !== 'object' ||
        typeof (v as WebhookVerifier).verify !== 'function' ||
        typeof (v as WebhookVerifier).scheme !== 'string' ||
        !Array.isArray((v as WebhookVerifier).headers),
    )
  ) {
    invalidOption(
      'webhooks',
      'verify',
      'a verifier (hmacVerifier(), standardWebhooksVerifier(), githubVerifier()) or a list of them',
      value,
    );
  }
  return list as readonly WebhookVerifier[];
}

/** A predicate over client addresses, or a TypeError naming the entry that is not one. */
function compileAllowlist(value: unknown): (address: string) => boolean {
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string'))
    invalidOption(
      'webhooks',
      'allowedSenderIps',
      'a non-empty list of addresses or CIDR ranges',
      value,
    );
  for (const entry of value as string[]) {
    try {
      compileTrust([entry]);
    } catch {
      invalidOption(
        'webhooks',
        'allowedSenderIps',
        'addresses, CIDR ranges or presets (loopback, linklocal, uniquelocal)',
        entry,
      );
    }
  }
  const trusted = compileTrust(value as string[]);
  return (address) => trusted(address, 0);
}

/**
 * The middleware of a webhook endpoint: verifies, deduplicates and hands on
 * each delivery (see the file comment). Failures are problems: 401 for a
 * signature, 403 for the transport or the sender, 413, 415 and 400 for a body
 * it cannot read, 409 for a duplicate still in flight; a processed duplicate is
 * answered 200.
 *
 * @example
 * ```ts
 * const receiver = webhookReceiver({
 *   verify: [hmacVerifier({ secrets: [secret] }), standardWebhooksVerifier({ secrets: [secret] })],
 *   dedupe: new WebhookEventLedger({ store }),
 * });
 * app.post('/webhooks/restwell', rw(receiver), (req, res) => {
 *   const { id, payload } = webhookOf(contextOf(req));
 *   ...
 *   res.sendStatus(204);
 * });
 * ```
 */
export function webhookReceiver(options: WebhookReceiverOptions): Middleware {
  checkOptions('webhooks', options, OPTION_NAMES, OPTION_HINTS);
  const {
    verify,
    dedupe,
    eventId,
    queue,
    limit = 1_048_576,
    maxDepth = 64,
    requireHttps = process.env.NODE_ENV === 'production',
    allowedSenderIps,
    retryAfterSeconds = 1,
  } = options ?? ({} as WebhookReceiverOptions);
  const verifiers = checkVerifiers(verify);
  if (dedupe !== undefined && !(dedupe instanceof WebhookEventLedger))
    invalidOption('webhooks', 'dedupe', 'a WebhookEventLedger', dedupe);
  if (eventId !== undefined && typeof eventId !== 'function')
    invalidOption('webhooks', 'eventId', 'a function', eventId);
  if (
    queue !== undefined &&
    (queue === null || typeof queue !== 'object' || typeof queue.enqueue !== 'function')
  )
    invalidOption('webhooks', 'queue', 'a queue with an enqueue() method', queue);
  if (!Number.isSafeInteger(limit) || limit < 0)
    invalidOption('webhooks', 'limit', 'a non-negative integer of bytes', limit);
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1)
    invalidOption('webhooks', 'maxDepth', 'a positive integer', maxDepth);
  if (typeof requireHttps !== 'boolean')
    invalidOption('webhooks', 'requireHttps', 'true or false', requireHttps);
  if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 1)
    invalidOption('webhooks', 'retryAfterSeconds', 'a positive integer', retryAfterSeconds);
  const allowed = allowedSenderIps === undefined ? undefined : compileAllowlist(allowedSenderIps);
  const storeLog = new LogThrottle();

  function pick(ctx: Context): WebhookVerifier {
    if (verifiers.length === 1) return verifiers[0]!;
    for (const verifier of verifiers) {
      if (verifier.headers.some((name) => readHeader(ctx.request.headers, name) !== undefined))
        return verifier;
    }
    // None of their headers: the first one says which signature is missing.
    return verifiers[0]!;
  }

  function parse(ctx: Context, raw: Uint8Array): unknown {
    if (raw.byteLength === 0 || !isJsonType(mediaTypeOf(ctx.request.header('content-type'))))
      return undefined;
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch (err) {
      throw new InvalidUtf8Error(err);
    }
    if (nestsDeeperThan(raw, maxDepth)) throw new JsonTooDeepError(maxDepth);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new MalformedJsonError('The webhook payload is not valid JSON.', err);
    }
  }

  /**
   * A store that cannot record event ids: the delivery is refused with 503 and
   * `Retry-After` (the sender retries), and logged once per interval rather
   * than once per delivery of an outage.
   */
  function storeFailed(ctx: Context, err: unknown): void {
    const pass = storeLog.pass();
    if (pass !== undefined)
      ctx.log.error('restwell/webhooks: the dedupe ledger failed; deliveries are answered 503', {
        traceId: ctx.traceId,
        suppressed: pass.suppressed,
        err,
      });
    const full = err instanceof StoreFullError;
    const doc = buildProblem(
      {
        status: 503,
        code: full ? 'store-full' : 'service-unavailable',
        detail:
          'The webhook was not processed: its event id cannot be recorded right now. Retry later.',
        exposeDetail: true,
      },
      ctx,
      problemOptions(ctx),
    );
    ctx.response.headers.set('Retry-After', String(retryAfterSeconds));
    ctx.response.headers.set('content-type', PROBLEM_CONTENT_TYPE);
    ctx.response.status = 503;
    ctx.response.body = JSON.stringify(doc);
  }

  async function handOn(
    ctx: Context,
    webhook: ReceivedWebhook,
    next: () => Promise<void>,
  ): Promise<boolean> {
    if (queue !== undefined) {
      await queue.enqueue(webhook);
      acknowledge(ctx, ACK);
      return true;
    }
    await next();
    const { status } = ctx.response;
    return status >= 200 && status < 300;
  }

  return async function receiveWebhook(ctx, next) {
    const req = ctx.request;
    if (requireHttps && req.protocol !== 'https') throw new HttpsRequiredError();
    if (allowed !== undefined) {
      const ip = req.ip;
      if (ip === undefined || !allowed(ip)) throw new WebhookSenderForbiddenError();
    }
    const raw = await readRawBody(ctx, limit);
    const verifier = pick(ctx);
    let signature: VerifiedSignature;
    try {
      signature = verifier.verify(raw, req.headers);
    } catch (err) {
      if (err instanceof WebhookVerificationError) answeredBy(ctx, 'webhooks', err.code);
      throw err;
    }
    const payload = parse(ctx, raw);
    if (req.body === undefined || req.body instanceof Uint8Array || standIn(req.body))
      req.body = payload;
    const custom = eventId?.(payload, signature);
    const id =
      (typeof custom === 'string' && custom.length > 0 ? custom : undefined) ??
      signature.id ??
      payloadId(payload);
    const webhook: ReceivedWebhook = {
      id,
      scheme: signature.scheme,
      timestamp: signature.timestamp,
      secretIndex: signature.secretIndex,
      payload,
      rawBody: raw,
    };
    ctx.state.webhook = webhook;
    if (dedupe === undefined) {
      await handOn(ctx, webhook, next);
      return;
    }
    if (id === undefined) throw new WebhookEventIdMissingError();
    let claim: Awaited<ReturnType<WebhookEventLedger['claim']>>;
    try {
      claim = await dedupe.claim(id);
    } catch (err) {
      if (isStoreError(err)) return storeFailed(ctx, err);
      throw err;
    }
    if (claim.outcome === 'duplicate') {
      answeredBy(ctx, 'webhooks', 'duplicate');
      acknowledge(ctx, ACK_DUPLICATE);
      return;
    }
    if (claim.outcome === 'in-flight') {
      answeredBy(ctx, 'webhooks', 'duplicate in flight');
      throw new WebhookInFlightError(retryAfterSeconds);
    }
    const held: ClaimedEvent = claim;
    let succeeded: boolean;
    try {
      succeeded = await handOn(ctx, webhook, next);
    } catch (err) {
      await held.release();
      throw err;
    }
    if (succeeded) await held.complete();
    else await held.release();
  };
}

/**
 * The delivery `webhookReceiver()` verified for this request. Throws a
 * `TypeError` when no receiver ran on it (a wiring error).
 *
 * @example
 * ```ts
 * app.post('/webhooks/restwell', rw(receiver), (req, res) => {
 *   const { id, payload } = webhookOf(contextOf(req));
 * });
 * ```
 */
export function webhookOf(ctx: { readonly state: ContextState }): ReceivedWebhook {
  const webhook = ctx.state.webhook;
  if (webhook === undefined)
    throw new TypeError(
      'restwell/webhooks: webhookOf() found no verified webhook on this request; mount webhookReceiver() on its route.',
    );
  return webhook;
}
