import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RestwellError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import {
  lastResortProblemBody,
  PROBLEM_CONTENT_TYPE,
  problemInitFrom,
  renderLastResortProblem,
  renderProblem,
  renderStatusProblem,
} from '../../src/core/problem.js';
import { adapters } from '../helpers/apps.js';
import { fakeContext } from './fake.js';

const GENERIC = 'The server could not complete the request. Quote the traceId when reporting it.';
const TRACE = '0af7651916cd43dd8448eb211c80319c';

function sent(ctx: ReturnType<typeof fakeContext>) {
  return {
    status: ctx.response.status,
    type: ctx.response.headers.get('content-type'),
    doc: JSON.parse(String(ctx.response.body)) as Record<string, unknown>,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a 5xx detail reaches the client only when exposed', () => {
  it('problems.map returning a 5xx with a detail: the generic detail replaces it', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new Error('x'), {
      map: () => ({
        status: 500,
        code: 'internal-error',
        detail: 'duplicate key value violates unique constraint "users_email_key" on db-7.internal',
      }),
    });
    const { status, doc } = sent(ctx);
    expect(status).toBe(500);
    expect(doc.detail).toBe(GENERIC);
    expect(JSON.stringify(doc)).not.toMatch(/users_email_key|db-7/);
    // The log keeps the error for the operator.
    expect(ctx.logs[0]?.fields?.traceId).toBe(TRACE);
  });

  it('problems.map with exposeDetail: the detail is shown', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new Error('x'), {
      map: () => ({
        status: 503,
        code: 'service-unavailable',
        detail: 'Payments are paused for maintenance; nothing was charged.',
        exposeDetail: true,
        headers: { 'Retry-After': '30' },
      }),
    });
    expect(sent(ctx).doc.detail).toBe('Payments are paused for maintenance; nothing was charged.');
    expect(ctx.response.headers.get('retry-after')).toBe('30');
  });

  it('a 4xx from problems.map keeps its detail', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new Error('x'), {
      map: () => ({ status: 402, code: 'payment-required', detail: 'Card declined.' }),
    });
    expect(sent(ctx).doc.detail).toBe('Card declined.');
  });
});

describe('foreign errors', () => {
  it("a foreign 5xx's headers are not copied (they may be an upstream's)", () => {
    const upstream = Object.assign(new Error('upstream said no'), {
      status: 502,
      headers: { 'set-cookie': 'upstream-session=abc', 'x-served-by': 'db-7.internal' },
    });
    expect(problemInitFrom(upstream).headers).toBeUndefined();
    const ctx = fakeContext();
    renderProblem(ctx, upstream);
    expect(ctx.response.status).toBe(502);
    expect(ctx.response.headers.has('set-cookie')).toBe(false);
    expect(ctx.response.headers.has('x-served-by')).toBe(false);
    expect(sent(ctx).doc.detail).toBe(GENERIC);
  });

  it("a foreign 4xx's headers are its own and are sent", () => {
    const err = Object.assign(new Error('Unauthorized'), {
      status: 401,
      expose: true,
      headers: { 'WWW-Authenticate': 'Bearer realm="api"' },
    });
    const ctx = fakeContext();
    renderProblem(ctx, err);
    expect(ctx.response.headers.get('www-authenticate')).toBe('Bearer realm="api"');
  });
});

describe('rendering never throws', () => {
  function expectLastResort(ctx: ReturnType<typeof fakeContext>, traceId = TRACE) {
    const { status, type, doc } = sent(ctx);
    expect(status).toBe(500);
    expect(type).toBe(PROBLEM_CONTENT_TYPE);
    expect(doc).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: GENERIC,
      code: 'internal-error',
      traceId,
    });
  }

  it('a throwing problems.map gives the last-resort 500 and logs both errors', () => {
    const ctx = fakeContext();
    const mapFailure = new Error('map broke');
    const original = new RestwellError('not-found', 404, 'Not Found');
    const doc = renderProblem(ctx, original, {
      map: () => {
        throw mapFailure;
      },
    });
    expect(doc.status).toBe(500);
    expectLastResort(ctx);
    expect(ctx.logs).toHaveLength(1);
    expect(ctx.logs[0]?.fields).toMatchObject({
      err: original,
      failure: mapFailure,
      traceId: TRACE,
    });
  });

  it('a problems.map returning something that is not a problem gives the last-resort 500', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new Error('x'), { map: () => 'teapot' as never });
    expectLastResort(ctx);
  });

  it('a problems.map returning null falls through to the defaults', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new RestwellError('conflict', 409, 'Conflict'), {
      map: () => null as never,
    });
    expect(ctx.response.status).toBe(409);
  });

  it('a throwing problems.instance gives the last-resort 500', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new RestwellError('conflict', 409, 'Conflict'), {
      instance: () => {
        throw new Error('instance broke');
      },
    });
    expectLastResort(ctx);
  });

  it('an extension that cannot be serialised gives the last-resort 500', () => {
    const ctx = fakeContext();
    renderProblem(
      ctx,
      new RestwellError('conflict', 409, 'Conflict', { extensions: { version: 10n } }),
    );
    expectLastResort(ctx);
  });

  it('a header the response refuses: the last-resort 500 without the headers already set', () => {
    const ctx = fakeContext();
    renderProblem(ctx, new Error('x'), {
      map: () => ({
        status: 429,
        code: 'rate-limited',
        headers: { 'Retry-After': '5', 'X-Bad': 'a\r\nSet-Cookie: x=1' },
      }),
    });
    expectLastResort(ctx);
    expect(ctx.response.headers.has('retry-after')).toBe(false);
  });

  it('a throwing logger: the response stands and the entry goes to stderr', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const throwing: Logger = {
      error() {
        throw new Error('logger broke');
      },
      warn() {
        throw new Error('logger broke');
      },
      info() {},
    };
    const ctx = fakeContext({}, throwing);
    const doc = renderProblem(
      ctx,
      new RestwellError('store-unavailable', 503, 'down', { headers: { 'Retry-After': '1' } }),
    );
    expect(doc.status).toBe(503);
    expect(ctx.response.status).toBe(503);
    expect(ctx.response.headers.get('retry-after')).toBe('1');
    expect(String(write.mock.calls[0]?.[0])).toMatch(/"msg":"request failed".*"logger broke"/);
  });

  it('a throwing map and a throwing logger together still answer', () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const throwing: Logger = {
      error() {
        throw new Error('logger broke');
      },
      warn() {},
      info() {},
    };
    const ctx = fakeContext({}, throwing);
    expect(() =>
      renderProblem(ctx, new Error('x'), {
        map: () => {
          throw new Error('map broke');
        },
      }),
    ).not.toThrow();
    expectLastResort(ctx);
  });

  it('a context whose trace id throws: a fresh trace id, shared by the log and the client', () => {
    const ctx = fakeContext();
    Object.defineProperty(ctx, 'traceId', {
      get() {
        throw new Error('no trace id');
      },
    });
    renderProblem(ctx, new Error('x'));
    const { doc } = sent(ctx);
    expect(doc.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ctx.logs[0]?.fields?.traceId).toBe(doc.traceId);
  });

  it('a response view that refuses writes: renderLastResortProblem writes what it can', () => {
    const ctx = fakeContext();
    Object.defineProperty(ctx.response, 'headers', {
      get() {
        throw new Error('headers already sent');
      },
    });
    expect(() => renderLastResortProblem(ctx, new Error('x'))).not.toThrow();
    expect(ctx.response.status).toBe(500);
    expect(JSON.parse(String(ctx.response.body)).traceId).toBe(TRACE);
  });

  it('renderStatusProblem goes through the same guard', () => {
    const ctx = fakeContext();
    ctx.response.status = 404;
    renderStatusProblem(ctx, {
      instance: () => {
        throw new Error('instance broke');
      },
    });
    expectLastResort(ctx);
  });

  it('lastResortProblemBody is a fixed document, with or without a trace id', () => {
    expect(JSON.parse(lastResortProblemBody(TRACE)).traceId).toBe(TRACE);
    const bare = JSON.parse(lastResortProblemBody());
    expect(bare).not.toHaveProperty('traceId');
    expect(bare.status).toBe(500);
  });
});

describe.each(adapters)('a throwing problems.map on $name', (adapter) => {
  it('still answers a problem document with the trace id, not the framework’s own 500 page', async () => {
    const app = adapter.build({
      options: {
        problems: {
          map: () => {
            throw new Error('map broke');
          },
        },
      },
      use: [
        () => {
          throw new RestwellError('conflict', 409, 'Conflict');
        },
      ],
      routes: [{ method: 'get', path: '/x', handler: () => ({ body: 'unreachable' }) }],
    });
    const res = await request(app).get('/x');
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('internal-error');
    expect(res.body.traceId).toBe(res.headers['trace-id']);
  });
});
