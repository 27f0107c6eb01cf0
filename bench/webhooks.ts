/**
 * Webhook verifications per second, per scheme, on a 1 KB and a 100 KB
 * payload, in process: restwell's verifiers against the reference libraries
 * in the same run.
 *
 * - HMAC `t=,v1=`: restwell `hmacVerifier` against stripe-node's
 *   `webhooks.signature.verifyHeader` (the check `constructEvent` makes, without
 *   its JSON parse).
 * - Standard Webhooks `v1`: restwell `standardWebhooksVerifier` against
 *   `standardwebhooks`' `Webhook.verify` with `jsonParse: false`.
 * - Standard Webhooks `v1a` (ed25519): restwell against a bare `node:crypto`
 *   `verify` of the same signed content (the JavaScript reference library has
 *   no `v1a`), the floor any implementation pays.
 *
 * Every implementation gets the body as the server has it, a Buffer of the
 * exact bytes, and headers signed a moment before, so that each verification
 * succeeds. Each case runs for `BENCH_WEBHOOK_MS` (default 400 ms) per round,
 * in `BENCH_WEBHOOK_ROUNDS` (default 5) interleaved rounds after a warm-up;
 * the table shows the median.
 *
 * `npm run build && TSX_TSCONFIG_PATH=bench/tsconfig.json node --import tsx bench/webhooks.ts`
 */
import { createPublicKey, verify as edVerify } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  generateWebhookKeyPair,
  generateWebhookSecret,
  hmacSigner,
  hmacVerifier,
  standardWebhooksSigner,
  standardWebhooksVerifier,
} from 'restwell/webhooks';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { median, table } from './harness.js';

// `restwell` must be the built package, as users run it.
const measured = fileURLToPath(import.meta.resolve('restwell/webhooks'));
if (!measured.includes('/dist/')) {
  console.error(
    `restwell/webhooks resolves to ${measured}, not the built package: run it with TSX_TSCONFIG_PATH=bench/tsconfig.json after npm run build.`,
  );
  process.exit(1);
}

const budgetMs = Number(process.env.BENCH_WEBHOOK_MS ?? 400);
const rounds = Number(process.env.BENCH_WEBHOOK_ROUNDS ?? 5);

/** A JSON event of exactly `bytes` bytes: line items, then padding in a last string member. */
function payload(bytes: number): Buffer {
  const items: Array<{ id: string; amount: number }> = [];
  const render = (pad: string) =>
    JSON.stringify({ id: 'evt_bench', type: 'invoice.paid', data: { items }, pad });
  while (render('').length + 40 < bytes)
    items.push({
      id: `li_${items.length.toString().padStart(6, '0')}`,
      amount: items.length * 100,
    });
  return Buffer.from(render('x'.repeat(bytes - render('').length)));
}

interface Case {
  scheme: string;
  implementation: string;
  run: () => unknown;
}

function cases(body: Buffer): Case[] {
  const secret = generateWebhookSecret();
  const { secretKey, publicKey } = generateWebhookKeyPair();

  const hmacHeader = hmacSigner({ secrets: secret }).signature(body);
  const ours = hmacVerifier({ secrets: secret });
  const oursHeaders = { 'x-signature': hmacHeader };
  const stripe = Stripe.webhooks.signature!;

  const v1Headers = standardWebhooksSigner({ secrets: secret }).sign(body, { id: 'msg_bench' });
  const v1Ours = standardWebhooksVerifier({ secrets: secret });
  const reference = new Webhook(secret);

  const v1aHeaders = standardWebhooksSigner({ secrets: secretKey }).sign(body, { id: 'msg_bench' });
  const v1aOurs = standardWebhooksVerifier({ secrets: publicKey });
  const v1aSignature = Buffer.from(v1aHeaders['webhook-signature'].slice('v1a,'.length), 'base64');
  const v1aContent = Buffer.concat([
    Buffer.from(`msg_bench.${v1aHeaders['webhook-timestamp']}.`),
    body,
  ]);
  const rawPublic = Buffer.from(publicKey.slice('whpk_'.length), 'base64');
  const publicKeyObject = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), rawPublic]),
    format: 'der',
    type: 'spki',
  });

  return [
    {
      scheme: 'HMAC t=,v1=',
      implementation: 'restwell',
      run: () => ours.verify(body, oursHeaders),
    },
    {
      scheme: 'HMAC t=,v1=',
      implementation: 'stripe verifyHeader',
      run: () => stripe.verifyHeader(body, hmacHeader, secret, 300),
    },
    {
      scheme: 'Standard Webhooks v1',
      implementation: 'restwell',
      run: () => v1Ours.verify(body, v1Headers),
    },
    {
      scheme: 'Standard Webhooks v1',
      implementation: 'standardwebhooks',
      run: () => reference.verify(body, v1Headers, { jsonParse: false }),
    },
    {
      scheme: 'Standard Webhooks v1a',
      implementation: 'restwell',
      run: () => v1aOurs.verify(body, v1aHeaders),
    },
    {
      scheme: 'Standard Webhooks v1a',
      implementation: 'node:crypto verify (floor)',
      run: () => {
        if (!edVerify(null, v1aContent, publicKeyObject, v1aSignature)) throw new Error('v1a');
      },
    },
  ].map((c) => {
    // Every case must verify (a throw here stops the run), or it would measure an error path.
    c.run();
    return c;
  });
}

/** Verifications per second of `run` over one budget. */
function opsPerSecond(run: () => unknown): number {
  let count = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(budgetMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 50; i++) run();
    count += 50;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

const rows: Array<Array<string | number>> = [];
for (const [label, bytes] of [
  ['1 KB', 1024],
  ['100 KB', 100 * 1024],
] as const) {
  const body = payload(bytes);
  const all = cases(body);
  // Warm-up: every case, so that none is measured cold.
  for (const c of all) for (let i = 0; i < 2000; i++) c.run();
  const samples = new Map<Case, number[]>(all.map((c) => [c, []]));
  for (let round = 0; round < rounds; round++)
    for (const c of all) samples.get(c)!.push(opsPerSecond(c.run));
  const restwell = new Map<string, number>();
  for (const c of all)
    if (c.implementation === 'restwell') restwell.set(c.scheme, median(samples.get(c)!));
  for (const c of all) {
    const ops = median(samples.get(c)!);
    rows.push([
      c.scheme,
      `${label} (${body.length} B)`,
      c.implementation,
      Math.round(ops),
      Number((1e6 / ops).toFixed(2)),
      c.implementation === 'restwell' ? '1.00x' : `${(restwell.get(c.scheme)! / ops).toFixed(2)}x`,
    ]);
  }
}

console.log(
  table(
    ['scheme', 'payload', 'implementation', 'verifications/s', 'µs each', 'restwell speed-up'],
    rows,
  ),
);
console.log(
  `\nNode ${process.version}, ${rounds} rounds of ${budgetMs} ms per case, median. "restwell speed-up": restwell's verifications per second over this implementation's.`,
);
