/**
 * `validate()`: checks request parts against any Standard Schema validator
 * (zod, valibot, arktype, ...) and answers 400 listing every invalid field at
 * once, each addressed by a JSON Pointer (RFC 6901), capped so that a hostile
 * payload cannot make the error itself huge.
 *
 * Validated (and transformed) values replace `ctx.request.body` and are kept in
 * `ctx.state.valid`. Types follow them, per route, as hono's validator does:
 * `validate()` returns a middleware typed with each schema's Standard Schema
 * output, the adapters type the framework's request body after it
 * (`req.body` on Express, `ctx.request.body` on Koa), and `validated(ctx, v)`
 * reads every validated part typed.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * const createUserInput = validate({ body: z.object({ email: z.email(), name: z.string().min(1) }) });
 * router.post('/v1/users', rw(jsonBody(), createUserInput), (ctx) => {
 *   ctx.body = createUser(ctx.request.body); // { email: string; name: string }
 * });
 * app.get('/v1/users', rw(listQuery), (req, res) => {
 *   const { query } = validated(contextOf(req), listQuery); // typed
 * });
 * ```
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Context, type Middleware, type Next, responseBlind } from './context.js';
import { JsonTooDeepError, valueNestsDeeperThan } from './body.js';
import { checkOptions, invalidOption, ValidationError, type ValidationIssue } from './errors.js';

type Part = 'body' | 'query' | 'params' | 'headers';

/** One Standard Schema (zod, valibot, arktype, ...) per request part to validate. */
export interface ValidateSchemas {
  body?: StandardSchemaV1;
  /** Validated against an object of the query string; repeated keys become arrays. */
  query?: StandardSchemaV1;
  params?: StandardSchemaV1;
  /** Validated against the lower-cased request headers. */
  headers?: StandardSchemaV1;
}

/** Options of {@link validate}. */
export interface ValidateOptions {
  /** Most issues listed in one response; more are counted as truncated. @default 50 */
  maxErrors?: number;
  /**
   * Deepest nesting of a body that a framework's own parser produced (`express.json()`,
   * koa-bodyparser: they bound size, not depth) before a schema walks it: deeper is a 400
   * `json-too-deep`, never a stack overflow in a recursive schema. A body `jsonBody()` parsed
   * was bounded already and is not walked again. @default 64
   */
  maxDepth?: number;
}

/** The validated parts of a request, as `validated()` and `ctx.state.valid` hold them. */
export interface ValidatedParts {
  body?: unknown;
  query?: unknown;
  params?: unknown;
  headers?: unknown;
}

/** The output type of each schema given to `validate()`, by part. */
export type Validated<S extends ValidateSchemas> = {
  -readonly [K in keyof S as S[K] extends StandardSchemaV1
    ? K
    : never]: S[K] extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<S[K]> : never;
};

declare const validatedOutput: unique symbol;

/**
 * A middleware that validates request parts and whose type carries their
 * output `V`. The carried type exists for the compiler only: adapters read it
 * to type the request after the mount, and {@link validated} to type its result.
 */
export type Validator<V = ValidatedParts> = Middleware & { readonly [validatedOutput]: V };

/** The validated parts `V` of the validators among `M`, merged (for adapters' types). */
export type ValidatedBy<M extends readonly unknown[]> = M extends readonly [infer H, ...infer R]
  ? (H extends { readonly [validatedOutput]: infer V } ? V : unknown) & ValidatedBy<R>
  : unknown;

/**
 * The parts `validator` checked on this request, typed with its schemas'
 * outputs. Call it after the validator ran (in the handler); before, or when
 * another request part failed, it throws.
 */
export function validated<V>(ctx: Context, validator: Validator<V>): V {
  const valid = ctx.state.valid;
  if (valid === undefined || !VALIDATORS.has(validator)) {
    throw new TypeError('restwell/validate: validated() called before its validator ran.');
  }
  return valid as V;
}

const VALIDATORS = new WeakSet<Middleware>();

/** RFC 6901 §3: `~` is written `~0` and `/` is written `~1`. */
export function toJsonPointer(
  path: ReadonlyArray<PropertyKey | StandardSchemaV1.PathSegment> | undefined,
): string {
  if (path === undefined || path.length === 0) return '';
  let out = '';
  for (const seg of path) {
    const key = typeof seg === 'object' && seg !== null ? seg.key : seg;
    out += `/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
  }
  return out;
}

function queryObject(query: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of query) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function input(ctx: Context, part: Part): unknown {
  switch (part) {
    case 'body':
      return ctx.request.body;
    case 'query':
      return queryObject(ctx.request.query);
    case 'params':
      return { ...ctx.request.params };
    case 'headers':
      return { ...ctx.request.headers };
  }
}

const PARTS: readonly Part[] = ['params', 'query', 'headers', 'body'];

/**
 * Validates request parts against Standard Schemas and answers 400 `validation-failed` listing
 * every invalid field at once, each with a JSON Pointer (RFC 6901) and the part it is in. The
 * validated values replace `ctx.request.body` and are typed for the handlers after it.
 *
 * @example
 * ```ts
 * app.post('/v1/users', rw(validate({ body: CreateUser })), (req, res) => { ... });
 * ```
 */
export function validate<const S extends ValidateSchemas>(
  schemas: S,
  options: ValidateOptions = {},
): Validator<Validated<S>> {
  checkOptions('validate', schemas, ['body', 'query', 'params', 'headers']);
  checkOptions('validate', options, ['maxErrors', 'maxDepth']);
  const { maxErrors = 50, maxDepth = 64 } = options;
  if (!Number.isInteger(maxErrors) || maxErrors < 1)
    invalidOption('validate', 'maxErrors', 'a positive integer', maxErrors);
  if (!Number.isInteger(maxDepth) || maxDepth < 1)
    invalidOption('validate', 'maxDepth', 'a positive integer', maxDepth);
  const parts = PARTS.filter((p) => schemas[p] !== undefined);
  for (const p of parts) {
    if (typeof schemas[p]?.['~standard']?.validate !== 'function') {
      invalidOption(
        'validate',
        p,
        'a Standard Schema (an object with ~standard.validate)',
        schemas[p],
      );
    }
  }
  if (parts.length === 0)
    invalidOption('validate', 'schemas', 'at least one of body, query, params, headers', schemas);

  const middleware = responseBlind(async function validateRequest(ctx: Context, next: Next) {
    const issues: ValidationIssue[] = [];
    let total = 0;
    const valid: ValidatedParts = {};
    for (const part of parts) {
      const schema = schemas[part]!;
      if (
        part === 'body' &&
        ctx.request.rawBody === undefined &&
        valueNestsDeeperThan(ctx.request.body, maxDepth)
      ) {
        throw new JsonTooDeepError(maxDepth);
      }
      let result = schema['~standard'].validate(input(ctx, part));
      if (result instanceof Promise) result = await result;
      if (result.issues) {
        for (const issue of result.issues) {
          total++;
          if (issues.length < maxErrors) {
            issues.push({ pointer: toJsonPointer(issue.path), detail: issue.message, in: part });
          }
        }
      } else {
        valid[part] = result.value;
      }
    }
    if (total > 0) throw new ValidationError(issues, { truncated: total > issues.length });
    if ('body' in valid) ctx.request.body = valid.body;
    // Several validators on one request (headers globally, a body per route) merge.
    const previous = ctx.state.valid;
    ctx.state.valid = previous === undefined ? valid : { ...previous, ...valid };
    return next();
  });
  VALIDATORS.add(middleware);
  return middleware as Validator<Validated<S>>;
}
