/**
 * webhookReceiver() over HTTP on Express 4 and 5 and Koa 2 and 3: the exact
 * bytes reach the verifier through every adapter, whatever parser ran first;
 * a parser that consumed the stream without keeping the bytes is a clear
 * error naming the fix; failures are problems; HTTPS-only and the sender
 * allowlist; and no hostile input gets a 5xx.
 */
import { type IncomingMessage, type RequestListener, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import express5 from 'express';
import type Koa3 from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body.js';
import type { Logger } from '../../src/core/logger.js';
import { hmacSigner, hmacVerifier } from '../../src/webhooks/hmac.js';
import {
  type WebhookReceiverOptions,
  webhookOf,
  webhookReceiver,
} from '../../src/webhooks/receiver.js';
import { generateWebhookSecret } from '../../src/webhooks/secrets.js';
import { standardWebhooksSigner, standardWebhooksVerifier } from '../../src/webhooks/standard.js';
import { type AdapterCase, type AppSpec, adapters } from '../helpers/apps.js';
import { listen } from '../helpers/raw.js';

const SECRET = generateWebhookSecret();
const hmac = hmacSigner({ secrets: SECRET });
const standard = standardWebhooksSigner({ secrets: SECRET });
const verify = [hmacVerifier({ secrets: SECRET }), standardWebhooksVerifier({ secrets: SECRET })];
// Deliberately not what JSON.stringify would write: re-serialising would change the bytes.
const BODY = '{ "id": "evt_1",  "type": "payment.succeeded", "amount": 4200.0 }\n';

interface Seen {
  id: string | undefined;
  scheme: string;
  payload: unknown;
  raw: string;
  body: unknown;
}

function receiverApp(
  adapter: AdapterCase,
  options: Partial<WebhookReceiverOptions> = {},
  spec: Partial<AppSpec> = {},
  before: AppSpec['routes'][number]['use'] = [],
) {
  return adapter.build({
    ...spec,
    routes: [
      {
        method: 'post',
        path: '/webhooks/restwell',
        use: [...before, webhookReceiver({ verify, ...options })],
        handler: ({ context, body }) => {
          const webhook = webhookOf(context);
          const seen: Seen = {
            id: webhook.id,
            scheme: webhook.scheme,
            payload: webhook.payload,
            raw: Buffer.from(webhook.rawBody).toString('utf8'),
            body,
          };
          return { status: 200, body: seen };
        },
      },
    ],
  });
}

function problem(res: request.Response): { code: string; status: number; detail?: string } {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  return JSON.parse(res.text);
}

function post(app: ReturnType<typeof receiverApp>, headers: Record<string, string>, body = BODY) {
  return request(app)
    .post('/webhooks/restwell')
    .set('content-type', 'application/json')
    .set(headers)
    .send(body);
}

/** Sends `body` chunked (Transfer-Encoding, no Content-Length), in two writes. */
async function postChunked(
  app: RequestListener,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  const server = await listen(app);
  try {
    return await new Promise((resolve, reject) => {
      const r = httpRequest(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: '/webhooks/restwell',
          headers: { 'content-type': 'application/json', connection: 'close', ...headers },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
        },
      );
      r.on('error', reject);
      const half = Math.floor(body.length / 2);
      r.write(body.slice(0, half));
      r.end(body.slice(half));
    });
  } finally {
    await server.close();
  }
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string, fields?: Record<string, unknown>) => {
    const err = fields?.err as Error | undefined;
    lines.push(`${message} ${err?.message ?? ''}`);
  };
  return { lines, error: keep, warn: keep, info: keep, debug: keep };
}

/** What koa-bodyparser does: reads the stream, parses it, and (optionally) keeps the text. */
function koaParser(keepRaw: boolean): Koa3.Middleware {
  return async (ctx, next) => {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req as IncomingMessage) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const request = ctx.request as unknown as { body?: unknown; rawBody?: string };
    request.body = text === '' ? {} : JSON.parse(text);
    if (keepRaw) request.rawBody = text;
    await next();
  };
}

describe.each(adapters)('webhookReceiver through $name', (adapter) => {
  const app = receiverApp(adapter);

  describe('the exact bytes reach the verifier', () => {
    it('verifies the seed scheme and hands the parsed payload and raw bytes to the handler', async () => {
      const res = await post(app, hmac.sign(BODY)).expect(200);
      const seen = res.body as Seen;
      expect(seen.raw).toBe(BODY);
      expect(seen.scheme).toBe('hmac-sha256');
      expect(seen.payload).toEqual({ id: 'evt_1', type: 'payment.succeeded', amount: 4200 });
      // The payload's own id, since the seed scheme has no id header.
      expect(seen.id).toBe('evt_1');
      // The framework's own body is the parsed payload too.
      expect(seen.body).toEqual(seen.payload);
    });

    it('verifies Standard Webhooks on the same route, deduplicating by webhook-id', async () => {
      const res = await post(app, standard.sign(BODY, { id: 'msg_abc' })).expect(200);
      expect((res.body as Seen).scheme).toBe('standard-webhooks');
      expect((res.body as Seen).id).toBe('msg_abc');
    });

    it('verifies a chunked body', async () => {
      const res = await postChunked(app, hmac.sign(BODY), BODY);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.text) as Seen).raw).toBe(BODY);
    });

    it('uses the bytes restwell jsonBody() kept when it ran first', async () => {
      const withParser = receiverApp(adapter, {}, {}, [jsonBody()]);
      const res = await post(withParser, hmac.sign(BODY)).expect(200);
      expect((res.body as Seen).raw).toBe(BODY);
    });

    it('verifies non-JSON bodies as bytes, leaving the payload undefined', async () => {
      const text = 'payload=%7B%22a%22%3A1%7D';
      const res = await request(app)
        .post('/webhooks/restwell')
        .set('content-type', 'application/x-www-form-urlencoded')
        .set(hmac.sign(text))
        .send(text)
        .expect(200);
      expect((res.body as Seen).raw).toBe(text);
      expect((res.body as Seen).payload).toBeUndefined();
    });

    it('verifies an empty body', async () => {
      const res = await request(app).post('/webhooks/restwell').set(hmac.sign('')).expect(200);
      expect((res.body as Seen).raw).toBe('');
    });
  });

  describe('failures are problems', () => {
    it('answers an unsigned delivery 401 signature-missing with a WWW-Authenticate challenge', async () => {
      const res = await post(app, {}).expect(401);
      expect(problem(res).code).toBe('signature-missing');
      expect(res.headers['www-authenticate']).toBe('Webhook-Signature scheme="hmac-sha256"');
    });

    it('answers a body changed in transit 401 signature-mismatch', async () => {
      const res = await post(app, hmac.sign(BODY), BODY.replace('4200', '9999')).expect(401);
      expect(problem(res).code).toBe('signature-mismatch');
    });

    it('answers a delivery signed too long ago 401 timestamp-outside-tolerance', async () => {
      const old = hmac.sign(BODY, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
      expect(problem(await post(app, old).expect(401)).code).toBe('timestamp-outside-tolerance');
      const ahead = hmac.sign(BODY, { timestamp: Math.floor(Date.now() / 1000) + 3600 });
      expect(problem(await post(app, ahead).expect(401)).code).toBe('timestamp-outside-tolerance');
    });

    it('answers malformed JSON that verified 400, and never parses before verifying', async () => {
      const bad = '{"id": "evt_1",';
      expect(problem(await post(app, hmac.sign(bad), bad).expect(400)).code).toBe('malformed-json');
      // Unsigned malformed JSON: the signature is checked first.
      expect(problem(await post(app, {}, bad).expect(401)).code).toBe('signature-missing');
    });

    it('answers a body over the limit 413, from Content-Length or while reading', async () => {
      const small = receiverApp(adapter, { limit: 16 });
      expect(problem(await post(small, hmac.sign(BODY)).expect(413)).code).toBe(
        'payload-too-large',
      );
      const chunked = await postChunked(small, hmac.sign(BODY), BODY);
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.text).code).toBe('payload-too-large');
    });

    it('answers a coded body 415 with Accept-Encoding: identity (RFC 9110 §12.5.3)', async () => {
      const res = await post(app, { ...hmac.sign(BODY), 'content-encoding': 'gzip' }).expect(415);
      expect(problem(res).code).toBe('unsupported-media-type');
      expect(res.headers['accept-encoding']).toBe('identity');
      // Really gzipped, signed over the bytes sent or over the plain payload: refused alike.
      const zipped = gzipSync(BODY);
      for (const signed of [zipped.toString('latin1'), BODY]) {
        const gz = await request(app)
          .post('/webhooks/restwell')
          .set('content-type', 'application/json')
          .set('content-encoding', 'gzip')
          .set(hmac.sign(signed === BODY ? BODY : zipped))
          .send(zipped)
          .expect(415);
        expect(problem(gz).code).toBe('unsupported-media-type');
      }
      // Only a refusal for the coding says it.
      const plain = await post(app, hmac.sign(BODY));
      expect(plain.headers['accept-encoding']).toBeUndefined();
    });

    it('verifies a body sent slowly, in small pieces with pauses between them', async () => {
      const server = await listen(app);
      try {
        const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const r = httpRequest(
            {
              host: '127.0.0.1',
              port: server.port,
              method: 'POST',
              path: '/webhooks/restwell',
              headers: {
                'content-type': 'application/json',
                connection: 'close',
                ...hmac.sign(BODY),
              },
              agent: false,
            },
            (response) => {
              const chunks: Buffer[] = [];
              response.on('data', (c: Buffer) => chunks.push(c));
              response.on('end', () =>
                resolve({
                  status: response.statusCode ?? 0,
                  text: Buffer.concat(chunks).toString(),
                }),
              );
            },
          );
          r.on('error', reject);
          const pieces = BODY.match(/.{1,7}/gs) ?? [];
          const send = (i: number): void => {
            if (i === pieces.length) {
              r.end();
              return;
            }
            r.write(pieces[i]);
            setTimeout(() => send(i + 1), 15);
          };
          send(0);
        });
        expect(res.status).toBe(200);
        expect((JSON.parse(res.text) as Seen).raw).toBe(BODY);
      } finally {
        await server.close();
      }
    });
  });

  describe('no input yields a 5xx', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const hostile: Array<[string, () => Record<string, string>, string?]> = [
      [
        'a 12 KB signature header',
        () => ({ 'x-signature': `t=${now()},v1=${'a'.repeat(12_000)}` }),
      ],
      [
        'two hundred signatures',
        () => ({
          'x-signature': `t=${now()},${Array.from({ length: 200 }, () => `v1=${'b'.repeat(64)}`).join(',')}`,
        }),
      ],
      ['garbage hex', () => ({ 'x-signature': `t=${now()},v1=${'z'.repeat(64)}` })],
      [
        'garbage base64',
        () => ({
          'webhook-id': 'msg_1',
          'webhook-timestamp': String(now()),
          'webhook-signature': 'v1,@@@@ v1,==== v1a,!',
        }),
      ],
      ['a non-numeric timestamp', () => ({ 'x-signature': `t=soon,v1=${'a'.repeat(64)}` })],
      ['t= padded with spaces', () => ({ 'x-signature': `t=  ${now()},v1=${'a'.repeat(64)}` })],
      ['t= padded with zeros', () => ({ 'x-signature': `t=000${now()},v1=${'a'.repeat(64)}` })],
      ['a huge timestamp', () => ({ 'x-signature': `t=${'9'.repeat(200)},v1=${'a'.repeat(64)}` })],
      ['an empty signature header', () => ({ 'x-signature': '' })],
      ['only separators', () => ({ 'x-signature': ',,,=,=,' })],
      [
        'a huge webhook-id',
        () => ({
          'webhook-id': 'x'.repeat(5000),
          'webhook-timestamp': String(now()),
          'webhook-signature': 'v1,AAAA',
        }),
      ],
      ['an empty body', () => ({ 'x-signature': `t=${now()},v1=${'a'.repeat(64)}` }), ''],
      ['an empty body with a valid signature', () => hmac.sign(''), ''],
      [
        'invalid UTF-8 that verified',
        () => hmac.sign(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')),
        '{\u00ff}',
      ],
      [
        'deep JSON that verified',
        () => hmac.sign('['.repeat(200) + ']'.repeat(200)),
        '['.repeat(200) + ']'.repeat(200),
      ],
    ];

    it.each(hostile)('%s gets a 4xx or 200', async (_label, headers, body) => {
      const res = await post(app, headers(), body ?? BODY);
      expect(res.status, res.text).toBeLessThan(500);
      if (res.status >= 400) expect(problem(res).status).toBe(res.status);
    });
  });

  describe('transport', () => {
    it('refuses plain HTTP with 403 https-required when requireHttps is on', async () => {
      const strict = receiverApp(adapter, { requireHttps: true });
      expect(problem(await post(strict, hmac.sign(BODY)).expect(403)).code).toBe('https-required');
    });

    it('accepts HTTPS reported by a trusted proxy', async () => {
      const behindProxy = receiverApp(
        adapter,
        { requireHttps: true },
        { options: { trustProxy: 'loopback' } },
      );
      await post(behindProxy, { ...hmac.sign(BODY), 'x-forwarded-proto': 'https' }).expect(200);
      // The same header from an untrusted peer is not believed.
      await post(receiverApp(adapter, { requireHttps: true }), {
        ...hmac.sign(BODY),
        'x-forwarded-proto': 'https',
      }).expect(403);
    });

    it('accepts senders in allowedSenderIps only, by the client IP the adapter resolves', async () => {
      const elsewhere = receiverApp(adapter, { allowedSenderIps: ['203.0.113.0/24'] });
      expect(problem(await post(elsewhere, hmac.sign(BODY)).expect(403)).code).toBe(
        'webhook-sender-forbidden',
      );
      await post(receiverApp(adapter, { allowedSenderIps: ['loopback'] }), hmac.sign(BODY)).expect(
        200,
      );
      const proxied = receiverApp(
        adapter,
        { allowedSenderIps: ['203.0.113.0/24', '2001:db8::/32'] },
        { options: { trustProxy: 'loopback' } },
      );
      await post(proxied, { ...hmac.sign(BODY), 'x-forwarded-for': '203.0.113.7' }).expect(200);
      await post(proxied, { ...hmac.sign(BODY), 'x-forwarded-for': '198.51.100.7' }).expect(403);
    });

    it('believes only the X-Forwarded-Proto value the trusted proxy added, not one a client forged', async () => {
      const behindProxy = receiverApp(
        adapter,
        { requireHttps: true },
        { options: { trustProxy: 'loopback' } },
      );
      // The client sent "https"; the proxy, which terminated plain HTTP, appended "http".
      const res = await post(behindProxy, {
        ...hmac.sign(BODY),
        'x-forwarded-proto': 'https, http',
      }).expect(403);
      expect(problem(res).code).toBe('https-required');
    });

    it('is not fooled by a spoofed X-Forwarded-For, without a trusted proxy or before one', async () => {
      const direct = receiverApp(adapter, { allowedSenderIps: ['203.0.113.0/24'] });
      // No trusted proxy: the header is the client's word, and the socket's address is used.
      const res = await post(direct, { ...hmac.sign(BODY), 'x-forwarded-for': '203.0.113.7' });
      expect(res.status).toBe(403);
      expect(problem(res).code).toBe('webhook-sender-forbidden');
      // Behind a trusted proxy, an entry the client prepended is not the client.
      const proxied = receiverApp(
        adapter,
        { allowedSenderIps: ['203.0.113.0/24'] },
        { options: { trustProxy: 'loopback' } },
      );
      await post(proxied, {
        ...hmac.sign(BODY),
        'x-forwarded-for': '203.0.113.7, 198.51.100.7',
      }).expect(403);
    });
  });
});

describe('a framework parser that ran first', () => {
  const express = adapters.filter((a) => a.framework === 'express');
  const koa = adapters.filter((a) => a.framework === 'koa');

  describe.each(express)('$name', (adapter) => {
    it('express.json() without the bytes: a 500 whose logged message names the fix', async () => {
      const logger = capture();
      const app = receiverApp(
        adapter,
        {},
        { options: { logger }, framework: { express: [express5.json()] } },
      );
      const res = await post(app, hmac.sign(BODY)).expect(500);
      expect(problem(res).code).toBe('webhook-body-consumed');
      // The client is told nothing about the wiring: no fix, no stack, no file path.
      expect(res.text).not.toMatch(/express\.json|rawBody|\bat |\.ts:|node_modules/);
      const logged = logger.lines.join('\n');
      expect(logged).toContain(
        'express.json({ verify: (req, _res, buf) => { req.rawBody = buf } })',
      );
      expect(logged).toContain('express.raw(');
    });

    it('express.json({ verify }) keeping req.rawBody: verified, the parsed body kept', async () => {
      const parser = express5.json({
        verify: (req, _res, buf) => {
          (req as { rawBody?: Buffer }).rawBody = buf;
        },
      });
      const app = receiverApp(adapter, {}, { framework: { express: [parser] } });
      const res = await post(app, hmac.sign(BODY)).expect(200);
      expect((res.body as Seen).raw).toBe(BODY);
    });

    it('express.raw(): the Buffer body is the bytes, and becomes the parsed payload', async () => {
      const app = receiverApp(
        adapter,
        {},
        { framework: { express: [express5.raw({ type: 'application/json' })] } },
      );
      const res = await post(app, hmac.sign(BODY)).expect(200);
      expect((res.body as Seen).raw).toBe(BODY);
      expect((res.body as Seen).body).toEqual({
        id: 'evt_1',
        type: 'payment.succeeded',
        amount: 4200,
      });
    });

    it('express.json() that declined another media type leaves the stream for the receiver', async () => {
      const app = receiverApp(adapter, {}, { framework: { express: [express5.json()] } });
      const text = 'a=1';
      const res = await request(app)
        .post('/webhooks/restwell')
        .set('content-type', 'text/plain')
        .set(hmac.sign(text))
        .send(text)
        .expect(200);
      expect((res.body as Seen).raw).toBe(text);
    });
  });

  describe.each(koa)('$name', (adapter) => {
    it('a parser that keeps ctx.request.rawBody (as koa-bodyparser does): verified', async () => {
      const app = receiverApp(adapter, {}, { framework: { koa: [koaParser(true)] } });
      const res = await post(app, hmac.sign(BODY)).expect(200);
      expect((res.body as Seen).raw).toBe(BODY);
    });

    it('a parser that keeps no bytes: a 500 whose logged message names the fix', async () => {
      const logger = capture();
      const app = receiverApp(
        adapter,
        {},
        { options: { logger }, framework: { koa: [koaParser(false)] } },
      );
      const res = await post(app, hmac.sign(BODY)).expect(500);
      expect(problem(res).code).toBe('webhook-body-consumed');
      // The client gets the code and the generic text: no fix, no stack, no file path.
      expect(res.text).not.toMatch(/koa-bodyparser|rawBody|\bat |\.ts:|node_modules/);
      expect(problem(res).detail).toBe(
        'The server could not complete the request. Quote the traceId when reporting it.',
      );
      expect(logger.lines.join('\n')).toContain('koa-bodyparser (which keeps ctx.request.rawBody)');
    });
  });
});

describe('configuration is checked at construction', () => {
  it('refuses a missing or wrong verifier, and names the habit from other libraries', () => {
    expect(() => webhookReceiver({} as never)).toThrow(/"verify"/);
    expect(() => webhookReceiver({ verify: {} as never })).toThrow(/"verify"/);
    expect(() => webhookReceiver({ verify, secret: SECRET } as never)).toThrow(/hmacVerifier/);
  });

  it('refuses bad allowlist entries, naming the entry', () => {
    expect(() => webhookReceiver({ verify, allowedSenderIps: ['10.0.0.0/33'] })).toThrow(
      /10\.0\.0\.0\/33/,
    );
    expect(() => webhookReceiver({ verify, allowedSenderIps: ['not-an-ip'] })).toThrow(/not-an-ip/);
    expect(() => webhookReceiver({ verify, allowedSenderIps: [] })).toThrow(/allowedSenderIps/);
  });

  it('defaults requireHttps to on in production only', async () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    const inProduction = receiverApp(adapters[0]!);
    process.env.NODE_ENV = previous;
    expect(problem(await post(inProduction, hmac.sign(BODY)).expect(403)).code).toBe(
      'https-required',
    );
    await post(receiverApp(adapters[0]!), hmac.sign(BODY)).expect(200);
  });

  it('webhookOf() without a receiver is a TypeError naming the fix', () => {
    expect(() => webhookOf({ state: {} })).toThrow(/mount webhookReceiver/);
  });
});
