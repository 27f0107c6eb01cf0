/**
 * An error whose toJSON() throws, or returns something else than the error:
 * JSON.stringify calls toJSON before any replacer sees the error, so the line
 * lost the error (or logged whatever toJSON chose). The log line keeps the
 * error's name, message, code and stack.
 */
import { describe, expect, it } from 'vitest';
import { jsonLogger } from '../../src/core/logger.js';

function lines(): { logger: ReturnType<typeof jsonLogger>; out: string[] } {
  const out: string[] = [];
  return { logger: jsonLogger((line) => out.push(line)), out };
}

describe('jsonLogger and errors with their own toJSON', () => {
  it('an error whose toJSON throws is still logged', () => {
    const { logger, out } = lines();
    const err = Object.assign(new Error('db down'), {
      code: 'ECONNREFUSED',
      toJSON() {
        throw new Error('toJSON broke');
      },
    });
    logger.error('request failed', { traceId: 't1', err });
    const line = JSON.parse(out[0] ?? '{}');
    expect(line.fieldsDropped).toBeUndefined();
    expect(line.err).toMatchObject({ name: 'Error', message: 'db down', code: 'ECONNREFUSED' });
    expect(line.err.stack).toContain('db down');
  });

  it('an error whose toJSON returns a summary is logged as an error, cause included', () => {
    const { logger, out } = lines();
    const err = Object.assign(new Error('upstream failed', { cause: new Error('reset') }), {
      toJSON: () => ({ summary: 'only this' }),
    });
    logger.error('request failed', { err });
    const line = JSON.parse(out[0] ?? '{}');
    expect(line.err).toMatchObject({ message: 'upstream failed', cause: { message: 'reset' } });
  });
});
