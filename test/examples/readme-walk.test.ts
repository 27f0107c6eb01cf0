/**
 * examples/README.md is a walk through the example API with curl, meant to be
 * followed top to bottom on a fresh server. This runs it exactly so: every
 * `sh` block, in order, in one bash shell (so `$user` set by one step is there
 * for the next), against a fresh Express and a fresh Koa server, and checks
 * each step against the `# → ...` line the README writes after it:
 *
 *   # → 201 idempotency-key-reused      status, then optionally the problem code
 *   #   Idempotent-Replayed: true       a response header and its value (`…` is any text)
 *   #   Retry-After                     a header that must be present
 *   # → prints 201 201 429              what the step writes out (whitespace trimmed)
 *   # → RateLimit: "per-ip";r=299;t=…  headers only, for a step that prints headers alone
 *
 * A step is every command line since the previous expectation; its headers and
 * status are those of the last response it printed.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { RequestListener, Server } from 'node:http';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp as createExpressApp } from '../../examples/express/app.js';
import { createApp as createKoaApp } from '../../examples/koa/app.js';
import { type ExampleCredentials, parseApiKeys } from '../../examples/shared/auth.js';
import { createStores, type ExampleStores } from '../../examples/shared/stores.js';
import { JWT_SECRET } from '../helpers/example-client.js';
import { silentLogger } from '../../src/core/logger.js';
import { services } from '../helpers/services.js';
import { ciRequiresServers } from '../setup/services.js';

const README = join(import.meta.dirname, '..', '..', 'examples', 'README.md');

interface Expectation {
  status?: number;
  code?: string;
  headers: Array<{ name: string; value?: string }>;
  prints?: string;
}

interface Step {
  /** The README line of the step's `# →` line, for messages. */
  line: number;
  commands: string;
  expect: Expectation;
}

/** Reads the steps of every `sh` block of a README, in order. */
function parseWalk(markdown: string): Step[] {
  const steps: Step[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  let commands: string[] = [];
  let current: Expectation | undefined;
  const header = (text: string) => {
    const colon = text.indexOf(':');
    return colon === -1
      ? { name: text.trim() }
      : { name: text.slice(0, colon).trim(), value: text.slice(colon + 1).trim() };
  };
  lines.forEach((raw, index) => {
    const line = raw.trimEnd();
    if (!inBlock) {
      if (line === '```sh') inBlock = true;
      return;
    }
    if (line === '```') {
      if (commands.length > 0)
        throw new Error(`examples/README.md:${index}: a step without a "# →" line after it`);
      inBlock = false;
      current = undefined;
      return;
    }
    const arrow = /^# → (.*)$/.exec(line);
    if (arrow) {
      if (commands.length === 0)
        throw new Error(`examples/README.md:${index + 1}: "# →" with no command before it`);
      const text = arrow[1]!;
      current = { headers: [] };
      const status = /^(\d{3})(?: ([a-z-]+))?$/.exec(text);
      if (status) {
        current.status = Number(status[1]);
        if (status[2]) current.code = status[2];
      } else if (text.startsWith('prints ')) current.prints = text.slice('prints '.length);
      else current.headers.push(header(text));
      steps.push({ line: index + 1, commands: commands.join('\n'), expect: current });
      commands = [];
      return;
    }
    const more = /^# {3}(\S.*)$/.exec(line);
    if (more && current && commands.length === 0) {
      current.headers.push(header(more[1]!));
      return;
    }
    current = undefined;
    if (line === '' || line.startsWith('#')) return;
    commands.push(line);
  });
  return steps;
}

/** `…` stands for any text; everything else is literal. */
function pattern(text: string): RegExp {
  const parts = text.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[\\s\\S]*')}$`);
}

interface Printed {
  status?: number;
  headers: Map<string, string>;
  body: string;
  output: string;
}

/** The last response curl printed in a step's output (or, with no status line, its header lines). */
function lastResponse(output: string): Printed {
  const lines = output.replace(/\r/g, '').split('\n');
  let start = -1;
  lines.forEach((l, i) => {
    if (/^HTTP\/[\d.]+ \d{3}/.test(l)) start = i;
  });
  const headers = new Map<string, string>();
  const headerLines = start === -1 ? lines : lines.slice(start + 1);
  let end = headerLines.length;
  for (const [i, l] of headerLines.entries()) {
    if (start !== -1 && l === '') {
      end = i;
      break;
    }
    const m = /^([A-Za-z0-9-]+): ?(.*)$/.exec(l);
    if (m) headers.set(m[1]!.toLowerCase(), m[2]!);
  }
  return {
    ...(start === -1 ? {} : { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[start]!)![1]) }),
    headers,
    body: start === -1 ? '' : headerLines.slice(end + 1).join('\n'),
    output,
  };
}

/** What is wrong with a step's output, or an empty list. */
function checkStep(step: Step, output: string): string[] {
  const got = lastResponse(output);
  const wrong: string[] = [];
  const { expect: want } = step;
  if (want.prints !== undefined && !pattern(want.prints).test(output.trim()))
    wrong.push(`prints ${JSON.stringify(output.trim().slice(0, 300))}, not ${want.prints}`);
  if (want.status !== undefined && got.status !== want.status)
    wrong.push(`status ${got.status ?? 'none'}, not ${want.status}`);
  if (want.code !== undefined) {
    let code: unknown;
    try {
      code = (JSON.parse(got.body) as { code?: unknown }).code;
    } catch {}
    if (code !== want.code) wrong.push(`problem code ${String(code)}, not ${want.code}`);
  }
  for (const { name, value } of want.headers) {
    const actual = got.headers.get(name.toLowerCase());
    if (actual === undefined) wrong.push(`no ${name} header`);
    else if (value !== undefined && !pattern(value).test(actual))
      wrong.push(`${name}: ${actual}, not ${value}`);
  }
  return wrong;
}

const MARK = '@@restwell-walk-step@@';

/** Runs every step in one bash shell against a server on `port`; one output per step. */
async function runWalk(steps: Step[], port: number): Promise<string[]> {
  const script = steps
    .map(
      (s) =>
        `printf '\\n${MARK}\\n'\n${s.commands.replaceAll('localhost:3000', `127.0.0.1:${port}`)}`,
    )
    .join('\n');
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      'bash',
      ['--noprofile', '--norc', '-c', script],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH ?? '' } },
      (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out)),
    );
  });
  return stdout.split(`\n${MARK}\n`).slice(1);
}

function which(binary: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(join(dir, binary)));
}

const haveCurl = which('curl') && which('bash');
if (!haveCurl && ciRequiresServers(process.env)) {
  throw new Error('curl and bash are required under CI to run the examples/README.md walk');
}

/** The server the walk talks to holds the keys the README starts it with (`API_KEYS=... npm start`). */
function walkCredentials(markdown: string): ExampleCredentials {
  const keys = /^API_KEYS=(\S+) npm start$/m.exec(markdown);
  if (!keys) throw new Error('examples/README.md: no "API_KEYS=... npm start" line');
  return { apiKeys: parseApiKeys(keys[1]!), jwtSecret: JWT_SECRET };
}

const credentials = walkCredentials(readFileSync(README, 'utf8'));

const apps: Array<{ name: string; make(stores: ExampleStores): RequestListener }> = [
  {
    name: 'Express',
    make: (stores) =>
      createExpressApp({
        ...stores,
        logger: silentLogger,
        credentials,
      }) as unknown as RequestListener,
  },
  {
    name: 'Koa',
    make: (stores) => createKoaApp({ ...stores, logger: silentLogger, credentials }).callback(),
  },
];

describe('the examples/README.md walk is parsed', () => {
  const steps = parseWalk(readFileSync(README, 'utf8'));

  it('has a stated expectation after every step', () => {
    expect(steps.length).toBeGreaterThanOrEqual(30);
    for (const step of steps)
      expect(
        step.expect.status !== undefined ||
          step.expect.prints !== undefined ||
          step.expect.headers.length > 0,
        `examples/README.md:${step.line}`,
      ).toBe(true);
  });

  it('reads statuses, problem codes, headers and printed text', () => {
    const [first, second] = parseWalk(
      [
        '```sh',
        '# a comment',
        'curl -i -X POST localhost:3000/x \\',
        "  -d '{}'",
        '# → 422 idempotency-key-reused',
        '#   Retry-After',
        '#   ETag: "v…"',
        'echo hi',
        '# → prints hi',
        '```',
      ].join('\n'),
    );
    expect(first).toEqual({
      line: 5,
      commands: "curl -i -X POST localhost:3000/x \\\n  -d '{}'",
      expect: {
        status: 422,
        code: 'idempotency-key-reused',
        headers: [{ name: 'Retry-After' }, { name: 'ETag', value: '"v…"' }],
      },
    });
    expect(second?.expect).toEqual({ headers: [], prints: 'hi' });
    const response =
      'HTTP/1.1 422 Unprocessable\r\nETag: "v2"\r\n\r\n{"code":"idempotency-key-reused"}';
    expect(checkStep(first!, response)).toEqual(['no Retry-After header']);
    expect(checkStep(second!, 'ho\n')).toEqual(['prints "ho", not hi']);
  });

  it('refuses a step without an expectation', () => {
    expect(() => parseWalk('```sh\ncurl -i localhost:3000/health\n```\n')).toThrow(/without/);
  });
});

// On Redis too, when it runs: the walk's keys live under a prefix of their own, removed afterwards.
const runs = [
  ...apps.map((app) => ({ ...app, store: 'memory', env: {} as NodeJS.ProcessEnv })),
  ...(services.redis
    ? [
        {
          ...apps[0]!,
          store: 'Redis',
          env: {
            REDIS_URL: services.redisUrl,
            REDIS_PREFIX: `restwell-walk-${randomUUID()}:`,
          } as NodeJS.ProcessEnv,
        },
      ]
    : []),
];

describe.runIf(haveCurl).each(runs)(
  'examples/README.md, followed top to bottom on $name ($store)',
  ({ make, env }) => {
    let server: Server | undefined;
    let stores: ExampleStores | undefined;
    afterEach(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      if (stores?.redis && env.REDIS_PREFIX) {
        const keys = await stores.redis.keys(`${env.REDIS_PREFIX}*`);
        if (keys.length > 0) await stores.redis.del(...keys);
      }
      await stores?.close();
    });

    it('answers every step as the text says', async () => {
      stores = await createStores(env);
      server = createServer(make(stores));
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const steps = parseWalk(readFileSync(README, 'utf8'));
      const outputs = await runWalk(steps, port);
      expect(outputs).toHaveLength(steps.length);
      const failures = steps.flatMap((step, i) => {
        const wrong = checkStep(step, outputs[i]!);
        return wrong.length === 0
          ? []
          : [
              `examples/README.md:${step.line}: ${step.commands.split('\n')[0]}\n    ${wrong.join('\n    ')}`,
            ];
      });
      expect(failures.join('\n')).toBe('');
    }, 60_000);
  },
);
