/**
 * Credentials in the URL query string are refused (400), before anything
 * reads them: a URL is written to access logs, proxy logs, browser history
 * and `Referer` headers, so a token or key in one is exposed (RFC 6750 §5.3,
 * §2.3: "SHOULD NOT be used"). The value is never echoed in the answer nor
 * passed to a logger; restwell's own log lines carry the path, never the
 * query.
 */
import { type Context, type Middleware, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import type { ApiKeyVerifier } from './api-keys.js';
import { CredentialsInQueryError } from './errors.js';

/**
 * The query parameters refused by default, compared case-insensitively:
 * RFC 6750's `access_token`, and the names API keys and tokens are commonly
 * sent under.
 */
export const DEFAULT_CREDENTIAL_PARAMS: readonly string[] = Object.freeze([
  'access_token',
  'id_token',
  'refresh_token',
  'token',
  'api_key',
  'apikey',
  'api-key',
  'x-api-key',
  'client_secret',
]);

/** Options of {@link rejectCredentialsInQuery}. */
export interface CredentialsInQueryOptions {
  /** Parameter names refused, compared case-insensitively. @default DEFAULT_CREDENTIAL_PARAMS */
  params?: readonly string[];
  /** Also refuse any parameter whose value is one of this verifier's keys, whatever its name. */
  apiKeys?: ApiKeyVerifier;
}

/** Checks a list of parameter names at construction; returns them lower-cased. */
export function compileParamNames(where: string, value: unknown): ReadonlySet<string> {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    invalidOption(where, 'params', 'a list of query parameter names', value);
  }
  return new Set((value as string[]).map((v) => v.toLowerCase()));
}

/** The longest parameter name echoed in the problem; a longer one is cut. */
const MAX_SHOWN_NAME = 64;

/**
 * A parameter's name as query parsers read it: lower-cased, and without the
 * brackets of the `qs` syntax Express's `req.query` understands
 * (`access_token[]=` and `access_token[0]=` are `access_token` to it).
 */
function baseName(name: string): string {
  const bracket = name.indexOf('[');
  return (bracket > 0 ? name.slice(0, bracket) : name).toLowerCase();
}

/**
 * The name of the first query parameter that carries a credential, or
 * `undefined`. Costs one character search when the URL has no query.
 */
export function credentialParameter(
  ctx: Context,
  names: ReadonlySet<string>,
  apiKeys: ApiKeyVerifier | undefined,
): string | undefined {
  if (!ctx.request.url.includes('?')) return undefined;
  for (const [name, value] of ctx.request.query) {
    if (names.has(baseName(name)) || apiKeys?.recognizes(value) === true) {
      return name.length > MAX_SHOWN_NAME ? name.slice(0, MAX_SHOWN_NAME) : name;
    }
  }
  return undefined;
}

/**
 * Refuses requests that carry a credential in the query string with a 400
 * `credentials-in-query` problem. `authenticate()` does the same check
 * itself; mount this globally to refuse them on routes without
 * authentication too (public routes, webhooks).
 *
 * @example
 * ```ts
 * app.use(rw(rejectCredentialsInQuery()));
 * ```
 */
export function rejectCredentialsInQuery(options: CredentialsInQueryOptions = {}): Middleware {
  checkOptions('auth rejectCredentialsInQuery', options, ['params', 'apiKeys']);
  const names = compileParamNames(
    'auth rejectCredentialsInQuery',
    options.params ?? DEFAULT_CREDENTIAL_PARAMS,
  );
  const apiKeys = options.apiKeys;
  if (apiKeys !== undefined && typeof apiKeys?.recognizes !== 'function') {
    invalidOption('auth rejectCredentialsInQuery', 'apiKeys', 'an apiKeyVerifier()', apiKeys);
  }
  return responseBlind(function credentialsInQuery(ctx, next) {
    const parameter = credentialParameter(ctx, names, apiKeys);
    if (parameter !== undefined) throw new CredentialsInQueryError(parameter);
    return next();
  });
}
