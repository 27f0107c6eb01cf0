/**
 * The conditional fields a request's `conditional()` middlewares read once
 * and share, kept in its state; readable by the modules that rewrite those
 * fields before an inner `conditional()` sees them.
 *
 * @module
 */
import type { Context } from '../core/context.js';
import type { ConditionalHeaders } from './preconditions.js';

/** The request's conditional fields, read once per request by its first `conditional()`. */
export const CONDITIONS = Symbol.for('restwell.conditional.conditions');
/** Set when a `load` supplied the validators: no conditional() of the request hashes the body. */
export const SUPPLIED = Symbol.for('restwell.conditional.supplied');
type Keyed = Record<symbol, unknown>;

/** What the `conditional()` middlewares of one request have read, as {@link conditionsRead} reports it. */
export interface ConditionsRead {
  /** The conditional fields, as the first `conditional()` of the request read them. */
  readonly conditions: ConditionalHeaders;
  /** Whether a `load` supplied the validators (then no `conditional()` of the request hashes the body). */
  readonly validatorsLoaded: boolean;
}

/**
 * What the `conditional()` middlewares that already ran on this request read,
 * `undefined` when none has. For modules that rewrite the conditional fields
 * of a request (versioning() turns version-labelled entity tags into the
 * tags of the newest representation): with `{ forget: true }` the fields are
 * also forgotten, so that the next `conditional()` reads them again from the
 * request headers as rewritten. One that read them already keeps its copy.
 *
 * @example
 * ```ts
 * const read = conditionsRead(ctx, { forget: true });
 * if (read?.validatorsLoaded) ctx.log.warn('a conditional({ load }) ran first');
 * ```
 */
export function conditionsRead(
  ctx: Context,
  options: { forget?: boolean } = {},
): ConditionsRead | undefined {
  const state = ctx.state as Keyed;
  const conditions = state[CONDITIONS] as ConditionalHeaders | undefined;
  if (conditions === undefined) return undefined;
  if (options.forget === true) delete state[CONDITIONS];
  return { conditions, validatorsLoaded: state[SUPPLIED] === true };
}
