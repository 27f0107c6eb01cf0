import { describe, expect, it } from 'vitest';
import {
  checkOptions,
  describeValue,
  invalidOption,
  nearestName,
  RestwellError,
  type RestwellErrorCode,
} from '../../src/core/errors.js';
import { LogThrottle } from '../../src/core/logger.js';

class Redis {
  options = { password: 'hunter2-secret' };
}
class Pool {
  options = { connectionString: 'postgres://app:hunter2@db/prod' };
}

describe('configuration messages never serialise a value', () => {
  it('names clients and pools by kind, without their fields', () => {
    expect(describeValue(new Redis())).toBe('a Redis client');
    expect(describeValue(new Pool())).toBe('a pg Pool');
    expect(() => invalidOption('idempotency', 'store', 'a Store', new Pool())).toThrow(
      /got a pg Pool\.$/,
    );
    try {
      invalidOption('idempotency', 'store', 'a Store', { url: 'redis://:hunter2@x' });
    } catch (err) {
      expect((err as Error).message).not.toMatch(/hunter2/);
      expect((err as Error).message).toMatch(/got an object\.$/);
    }
  });

  it('truncates long strings and counts arrays', () => {
    const shown = describeValue('x'.repeat(500));
    expect(shown.length).toBeLessThan(50);
    expect(shown).toMatch(/…"$/);
    expect(describeValue([1, 2, 3])).toBe('an array of 3');
    expect(describeValue(() => 1)).toBe('a function');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(Number.NaN)).toBe('NaN');
  });
});

describe('checkOptions', () => {
  const known = ['limit', 'types', 'maxDepth'];

  it('accepts known names and no options at all', () => {
    expect(() => checkOptions('jsonBody', { limit: 1 }, known)).not.toThrow();
    expect(() => checkOptions('jsonBody', undefined, known)).not.toThrow();
  });

  it('names the nearest valid option for a typo', () => {
    expect(() => checkOptions('jsonBody', { limt: 1 }, known)).toThrow(
      'restwell/jsonBody: unknown option "limt". Did you mean "limit"?',
    );
    expect(() => checkOptions('jsonBody', { maxdepht: 1 }, known)).toThrow(/"maxDepth"/);
  });

  it('lists the known options when nothing is near', () => {
    expect(() => checkOptions('jsonBody', { zzzzzzzz: 1 }, known)).toThrow(
      /Known options: limit, types, maxDepth\./,
    );
  });

  it('prefers a hint for a habit from another library', () => {
    expect(() =>
      checkOptions('rateLimit', { max: 5 }, ['policies'], {
        max: 'Use policies: [{ limit, windowMs }].',
      }),
    ).toThrow('restwell/rateLimit: unknown option "max". Use policies: [{ limit, windowMs }].');
  });

  it('refuses options that are not an object', () => {
    expect(() => checkOptions('jsonBody', 5, known)).toThrow(/options must be an object, got 5/);
    expect(() => checkOptions('jsonBody', [1], known)).toThrow(/an array of 1/);
  });

  it('finds near names case-insensitively and ignores far ones', () => {
    expect(nearestName('Treshold', ['threshold', 'filter'])).toBe('threshold');
    expect(nearestName('q', ['threshold', 'filter'])).toBeUndefined();
  });
});

describe('error codes', () => {
  it('narrow in a switch', () => {
    const err = new RestwellError('store-full', 503, 'full', { exposeDetail: true, detail: 'd' });
    const code: RestwellErrorCode = err.code;
    switch (code) {
      case 'store-full':
        expect(err.exposeDetail).toBe(true);
        break;
      default:
        throw new Error('unreachable');
    }
  });
});

describe('LogThrottle', () => {
  it('lets one line through per interval and counts the ones held back', () => {
    let now = 0;
    const t = new LogThrottle(1000, () => now);
    expect(t.pass()).toEqual({ suppressed: 0 });
    expect(t.pass()).toBeUndefined();
    now = 999;
    expect(t.pass()).toBeUndefined();
    now = 1000;
    expect(t.pass()).toEqual({ suppressed: 2 });
  });
});
