/**
 * `validate()`: checks request parts against any Standard Schema validator
 * (zod, valibot, arktype, ...) and answers 400 listing every invalid field at
 * once, each addressed by a JSON Pointer (RFC 6901), capped so that a hostile
 * payload cannot make the error itself huge.
 *
 * Validated (and transformed) values replace `ctx.request.body` and are kept in
 * `ctx.state.valid`.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * const CreateUser = z.object({ email: z.email(), name: z.string().min(1) });
 * router.post('/v1/users', rw(jsonBody(), validate({ body: CreateUser })), createUser);
 * ```
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Context, type Middleware, responseBlind } from './context.js';
import { invalidOption, ValidationError, type ValidationIssue } from './errors.js';

type Part = 'body' | 'query' | 'params' | 'headers';

export interface ValidateSchemas {
  body?: StandardSchemaV1;
  /** Validated against an object of the query string; repeated keys become arrays. */
  query?: StandardSchemaV1;
  params?: StandardSchemaV1;
  /** Validated against the lower-cased request headers. */
  headers?: StandardSchemaV1;
}

export interface ValidateOptions {
  /** Most issues listed in one response; more are counted as truncated. @default 50 */
  maxErrors?: number;
}

export interface ValidatedParts {
  body?: unknown;
  query?: unknown;
  params?: unknown;
  headers?: unknown;
}

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

export function validate(schemas: ValidateSchemas, options: ValidateOptions = {}): Middleware {
  const { maxErrors = 50 } = options;
  if (!Number.isInteger(maxErrors) || maxErrors < 1)
    invalidOption('validate', 'maxErrors', 'a positive integer', maxErrors);
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

  return responseBlind(async function validateRequest(ctx, next) {
    const issues: ValidationIssue[] = [];
    let total = 0;
    const valid: ValidatedParts = {};
    for (const part of parts) {
      const schema = schemas[part]!;
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
    ctx.state.valid = valid;
    return next();
  });
}
