import { describe, expect, it } from 'vitest';
import { jsonLogger, serializeError } from '../../src/core/logger.js';

describe('jsonLogger', () => {
  it('writes one JSON line per entry, errors with their cause chain', () => {
    const lines: string[] = [];
    const log = jsonLogger((line) => lines.push(line));
    log.error('request failed', {
      traceId: 'abc',
      err: new Error('outer', { cause: new Error('inner') }),
      big: 10n,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    const entry = JSON.parse(lines[0] ?? '');
    expect(entry).toMatchObject({
      level: 'error',
      msg: 'request failed',
      traceId: 'abc',
      big: '10',
    });
    expect(entry.err).toMatchObject({
      name: 'Error',
      message: 'outer',
      cause: { message: 'inner' },
    });
  });

  it('keeps the trace id when the fields cannot be serialised', () => {
    const lines: string[] = [];
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    jsonLogger((line) => lines.push(line)).warn('w', { traceId: 'abc', cyclic });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'warn',
      msg: 'w',
      traceId: 'abc',
      fieldsDropped: true,
    });
  });
});

describe('serializeError', () => {
  it('follows at most five causes', () => {
    let err = new Error('0');
    for (let i = 1; i < 10; i++) err = new Error(String(i), { cause: err });
    let depth = 0;
    let node = serializeError(err) as { cause?: unknown } | undefined;
    while (node?.cause !== undefined) {
      depth++;
      node = node.cause as { cause?: unknown };
    }
    expect(depth).toBe(5);
  });
});
