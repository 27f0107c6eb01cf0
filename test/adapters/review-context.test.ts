/** contextOf() misused from plain JavaScript: the documented TypeError, whatever it is given. */
import { describe, expect, it } from 'vitest';
import { contextOf as expressContextOf } from '../../src/adapters/express/index.js';
import { contextOf as koaContextOf } from '../../src/adapters/koa/index.js';

describe.each([
  ['express', expressContextOf],
  ['koa', koaContextOf],
])('%s contextOf()', (name, contextOf) => {
  it.each([undefined, null, 42, 'req', {}])(
    'given %s throws the TypeError that says where to mount',
    (value) => {
      expect(() => contextOf(value as object)).toThrow(
        new RegExp(`^restwell/${name}: contextOf\\(\\) found no restwell context`),
      );
    },
  );
});
