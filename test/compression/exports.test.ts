/**
 * Each subpath exports what its users call, and nothing borrowed: the
 * response-header helpers a custom middleware needs (Vary, Cache-Control,
 * per-coding ETags, precondition evaluation) live in `restwell/conditional`
 * only; `restwell/compression` exports compression and its negotiation.
 */
import { describe, expect, it } from 'vitest';

describe('public faces', () => {
  it('restwell/compression: the middleware, its filter default and negotiation', async () => {
    const names = Object.keys(await import('../../src/compression/index.js')).sort();
    expect(names).toEqual([
      'compressible',
      'compression',
      'negotiateEncoding',
      'parseAcceptEncoding',
    ]);
  });

  it('restwell/conditional: the middleware and every helper a custom middleware needs', async () => {
    const names = Object.keys(await import('../../src/conditional/index.js'));
    expect(names).toEqual(
      expect.arrayContaining([
        'conditional',
        'evaluatePreconditions',
        'hasPreconditions',
        'PreconditionFailedError',
        'PreconditionRequiredError',
        'cacheControl',
        'hasDirective',
        'vary',
        'mergeVary',
        'encodingETag',
        'parseETagList',
        'formatHttpDate',
        'parseHttpDate',
      ]),
    );
  });
});
