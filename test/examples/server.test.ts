/**
 * The example servers as `npm start` and `npm run start:koa` run them: what
 * Node's own HTTP parser refuses (a control character in a header value) is
 * answered as a problem with a trace id, not Node's bare 400.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('http://localhost:')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the example exited with ${code}: ${out}`)));
  });
}

function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.once('end', () => resolve(answer));
    socket.once('close', () => resolve(answer));
    socket.once('error', reject);
  });
}

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGTERM');
  child = undefined;
});

describe.each([
  ['express', 'examples/express/server.ts'],
  ['koa', 'examples/koa/server.ts'],
])('the %s example server', (_name, script) => {
  it('answers a header Node refuses with a problem and a trace id', async () => {
    const port = await freePort();
    child = spawn(tsx, [script], {
      cwd: root,
      env: { ...process.env, PORT: String(port), REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await started(child);
    const answer = await raw(port, 'GET /v1/users HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(answer).toMatch(/\r\ntrace-id: [0-9a-f]{32}\r\n/i);
    expect(answer).toMatch(/"code":"bad-request"/);
  }, 30_000);
});
