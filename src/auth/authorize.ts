/**
 * Authorization: what an authenticated principal may do.
 *
 * Guards are middlewares that check one thing before the handler runs, and
 * answer 401 (no principal) or 403 (not allowed) otherwise:
 * - `requireRole(...roles)`: any one of the roles (RBAC);
 * - `requireScope(...scopes)`: every one of the scopes (RFC 6750 §3.1 names
 *   them all in `scope=` when one is missing);
 * - `authorize(predicate, { load })`: a predicate over the principal, the
 *   request and a resource loaded for it (ABAC);
 * - `authenticated()` and `allowAnonymous()`.
 * They read only `ctx.state.principal`, which holds verified data only, and
 * never a header, a query parameter or a body field.
 *
 * Mount a guard on the route (`rw(requireRole('admin'))`), or give it to
 * `authorization({ rules })`, a table checked before routing. Failing closed,
 * `authorization({ default: 'deny' })`, needs to know which requests no rule
 * covers, and the two ways of mounting guards answer that differently:
 *
 * - `coverage: 'rules'` (the default): the table is the whole truth. A request
 *   that no rule matches is refused with 403 before any handler runs, whatever
 *   guards its route may have; route guards then add further checks. This is
 *   the only way to fail closed *before* a handler runs, because which handler
 *   a request reaches is decided by the router after the global middleware.
 * - `coverage: 'guards'`: a route guard that passed also covers its request.
 *   A request that reaches the end uncovered has its response withheld: a 403
 *   problem replaces it, and the route is logged as an error. That protects
 *   what a handler *returns* (every GET), but a handler that changes state
 *   has already run, so it is a tripwire for writes, not a wall: list write
 *   routes in `rules`.
 *
 * Rules match as the router matches (see rate-limit's `normalisedPath`: case,
 * a trailing `/`, absolute-form targets), a superset of every spelling that
 * reaches a route, never a raw path comparison a client can dodge. A pattern
 * ending in `/*` matches the path and everything below it. Every rule that
 * matches must pass: rules are added, never chosen between, so a broad rule
 * (`/v1/*` needs a principal) cannot be undone by a narrower one.
 */
import { type Context, type Middleware, type Next, responseBlind } from '../core/context.js';
import { checkOptions, invalidOption, RestwellError } from '../core/errors.js';
import { normalisedPath } from '../core/route-path.js';
import { authenticatedByBearer, challengeSettingsOf } from './authenticate.js';
import { challengesFor, isScopeToken } from './challenge.js';
import {
  AccessDeniedError,
  AuthenticationRequiredError,
  InsufficientScopeError,
} from './errors.js';
import { type AuthPrincipal, principalOf } from './principal.js';

/** What an `authorize()` predicate and loader see of the request. */
export interface AuthorizationRequest {
  /** The restwell context. */
  readonly ctx: Context;
  /** Upper-case method. */
  readonly method: string;
  /** The path, still percent-encoded. */
  readonly path: string;
  /**
   * Route parameters: the router's when the guard is mounted on the route,
   * else those of the `authorization()` rule's pattern, decoded.
   */
  readonly params: Readonly<Record<string, string>>;
}

/** A check that may refuse a request; also a middleware, to mount on a route. */
export interface Guard extends Middleware {
  /** Throws the 401 or 403 problem when the request may not proceed. */
  readonly check: (ctx: Context, params?: Readonly<Record<string, string>>) => void | Promise<void>;
  /** What it checks, for logs: `role admin`, `scope users:write`. */
  readonly description: string;
}

const COVERED = Symbol.for('restwell.auth.covered');

function markCovered(ctx: Context): void {
  (ctx.state as Record<symbol, unknown>)[COVERED] = true;
}

/** Whether a rule or a guard has allowed this request (see `authorization()`). */
export function isCovered(ctx: Context): boolean {
  return (ctx.state as Record<symbol, unknown>)[COVERED] === true;
}

function makeGuard(
  description: string,
  check: (ctx: Context, params: Readonly<Record<string, string>>) => void | Promise<void>,
): Guard {
  const middleware = async function guard(ctx: Context, next: Next): Promise<void> {
    await check(ctx, ctx.request.params);
    markCovered(ctx);
    await next();
  };
  Object.defineProperty(middleware, 'check', {
    value: (ctx: Context, params?: Readonly<Record<string, string>>) =>
      check(ctx, params ?? ctx.request.params),
  });
  Object.defineProperty(middleware, 'description', { value: description });
  return responseBlind(middleware as unknown as Guard);
}

/** The principal, or the 401 with this request's challenges. */
function requirePrincipal(ctx: Context): AuthPrincipal {
  const principal = principalOf(ctx);
  if (principal === undefined) {
    throw new AuthenticationRequiredError({
      'WWW-Authenticate': challengesFor(challengeSettingsOf(ctx)),
    });
  }
  return principal;
}

function checkNames(where: string, names: unknown[], what: string): string[] {
  if (names.length === 0) invalidOption(where, what, 'at least one name', names);
  for (const n of names) {
    if (typeof n !== 'string' || !isScopeToken(n)) {
      invalidOption(where, what, 'names without spaces, quotes or backslashes', n);
    }
  }
  return [...new Set(names as string[])];
}

/** Lets any authenticated principal through; 401 for an anonymous request. */
export function authenticated(): Guard {
  return makeGuard('authenticated', (ctx) => {
    requirePrincipal(ctx);
  });
}

/** Lets every request through, anonymous ones too: marks a route public for `authorization({ default: 'deny' })`. */
export function allowAnonymous(): Guard {
  return makeGuard('anonymous', () => {});
}

/**
 * Requires one of the roles (RBAC): 401 without a principal, 403
 * `access-denied` when it has none of them. Roles come from the verified
 * token's `roles` claim or the API key's record.
 *
 * @example
 * ```ts
 * app.delete('/v1/users/:id', rw(requireRole('admin')), deleteUser);
 * ```
 */
export function requireRole(...roles: string[]): Guard {
  const wanted = checkNames('auth requireRole', roles, 'roles');
  return makeGuard(`role ${wanted.join('|')}`, (ctx) => {
    const principal = requirePrincipal(ctx);
    if (!wanted.some((r) => principal.roles.includes(r))) throw new AccessDeniedError('role');
  });
}

/**
 * Requires every one of the scopes: 401 without a principal, 403
 * `insufficient-scope` otherwise, whose challenge (for a bearer token) is
 * `Bearer error="insufficient_scope", scope="..."` listing all the scopes
 * this request needs (RFC 6750 §3.1).
 *
 * @example
 * ```ts
 * router.post('/v1/payments', rw(requireScope('payments:write')), createPayment);
 * ```
 */
export function requireScope(...scopes: string[]): Guard {
  const wanted = checkNames('auth requireScope', scopes, 'scopes');
  const scope = wanted.join(' ');
  return makeGuard(`scope ${scope}`, (ctx) => {
    const principal = requirePrincipal(ctx);
    if (wanted.every((s) => principal.scopes.includes(s))) return;
    const settings = challengeSettingsOf(ctx);
    const headers: Record<string, string> = authenticatedByBearer(ctx)
      ? {
          'WWW-Authenticate': challengesFor(
            { ...settings, apiKeyHeader: undefined },
            { error: 'insufficient_scope', scope },
          ),
        }
      : {};
    throw new InsufficientScopeError(wanted, headers);
  });
}

/** Options of {@link authorize}. */
export interface AuthorizeOptions<R> {
  /**
   * Loads the resource the decision is about (the document, the account),
   * before the predicate runs. Throw a `NotFoundError` for one that does not
   * exist. What it returns is also left on `ctx.state.resource`, so the
   * handler need not load it again.
   */
  load?: (request: AuthorizationRequest) => R | Promise<R>;
  /** What the predicate checks, for logs. @default 'policy' */
  description?: string;
}

/**
 * Requires a predicate over the principal, the request and the loaded
 * resource to hold (ABAC): 401 without a principal, 403 `access-denied` when
 * it returns anything but `true` or throws (a thrown restwell problem, such
 * as a `NotFoundError`, is answered as it is; anything else is logged).
 *
 * @example
 * ```ts
 * const ownsPayment = authorize(
 *   (principal, _request, payment) => payment.userId === principal.id || principal.roles.includes('admin'),
 *   { load: ({ params }) => payments.get(params.id) ?? notFound() },
 * );
 * app.get('/v1/payments/:id', rw(ownsPayment), (req, res) => res.json(contextOf(req).state.resource));
 * ```
 */
export function authorize<R = undefined>(
  predicate: (
    principal: AuthPrincipal,
    request: AuthorizationRequest,
    resource: R,
  ) => boolean | Promise<boolean>,
  options: AuthorizeOptions<R> = {},
): Guard {
  const where = 'auth authorize';
  if (typeof predicate !== 'function') invalidOption(where, 'predicate', 'a function', predicate);
  checkOptions(where, options, ['load', 'description']);
  const { load, description = 'policy' } = options;
  if (load !== undefined && typeof load !== 'function')
    invalidOption(where, 'load', 'a function', load);
  return makeGuard(description, async (ctx, params) => {
    const principal = requirePrincipal(ctx);
    const request: AuthorizationRequest = {
      ctx,
      method: ctx.request.method,
      path: ctx.request.path,
      params,
    };
    let resource = undefined as R;
    if (load !== undefined) {
      resource = await load(request);
      ctx.state.resource = resource;
    }
    let allowed: boolean;
    try {
      allowed = (await predicate(principal, request, resource)) === true;
    } catch (err) {
      // A problem it throws on purpose (404, 409) is its answer.
      if (err instanceof RestwellError) throw err;
      // A predicate that breaks has not said yes: deny, as for false, and
      // tell the server, since a policy that throws is a bug to fix. A 500
      // would say the same to the client with less reason: the request was
      // refused, and nothing about the policy leaks either way.
      try {
        ctx.log.error('restwell/auth: an authorize() predicate threw; the request was denied', {
          traceId: ctx.traceId,
          policy: description,
          method: ctx.request.method,
          path: ctx.request.path,
          err,
        });
      } catch {
        // The 403 stands whatever the logger does.
      }
      throw new AccessDeniedError('policy');
    }
    if (!allowed) throw new AccessDeniedError('policy');
  });
}

/** One entry of the `authorization()` table. */
export interface AuthorizationRule {
  /**
   * The route pattern(s), as written in the router: literal segments and
   * `:name` parameters, and a final `*` for everything below
   * (`'/v1/*'`, `'/v1/users/:id'`).
   */
  route: string | readonly string[];
  /** The methods it applies to; `GET` brings `HEAD`. @default every method */
  methods?: readonly string[];
  /** The guard(s) a matching request must pass, all of them. */
  require: Guard | readonly Guard[];
}

/** Options of {@link authorization}. */
export interface AuthorizationOptions {
  /** The rules, checked in order before routing. @default [] */
  rules?: readonly AuthorizationRule[];
  /** What happens to a request no rule covers: `deny` (403) or `allow`. @default 'deny' */
  default?: 'deny' | 'allow';
  /**
   * What covers a request when the default is `deny`: only `rules` (refused
   * before any handler runs), or `guards` too (route guards that passed; an
   * uncovered response is withheld). See this file's comment. @default 'rules'
   */
  coverage?: 'rules' | 'guards';
}

interface CompiledPattern {
  pattern: string;
  /** Normalised literal segments; `null` for a `:param`. */
  segments: Array<string | null>;
  names: Array<string | undefined>;
  /** Ends in `*`: the path may go on below. */
  prefix: boolean;
}

interface CompiledRule {
  patterns: CompiledPattern[];
  methods: ReadonlySet<string> | undefined;
  guards: Guard[];
}

const SEGMENT = /^(?::[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9\-._~!$&',;=@%]*)$/;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNRESERVED_ESCAPE =
  /%(4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[Dd]|2[Ee]|5[Ff]|7[Ee])/g;

function compilePattern(pattern: unknown, where: string): CompiledPattern {
  if (
    typeof pattern !== 'string' ||
    !pattern.startsWith('/') ||
    pattern.length > 1024 ||
    /[?#]/.test(pattern)
  ) {
    invalidOption(
      'auth authorization',
      where,
      "a path starting with '/' (such as '/v1/users/:id')",
      pattern,
    );
  }
  let body = pattern;
  const prefix = body === '/*' || body.endsWith('/*');
  if (prefix) body = body.slice(0, -2) || '/';
  const normal = normalisedPath(body);
  const raw = normal === '/' ? [] : normal.slice(1).split('/');
  const original = body === '/' ? [] : body.replace(/\/+$/, '').slice(1).split('/');
  for (const s of raw) {
    if (!SEGMENT.test(s)) {
      invalidOption(
        'auth authorization',
        where,
        "literal segments, ':name' parameters and a final '*' only",
        pattern,
      );
    }
  }
  return {
    pattern,
    segments: raw.map((s) => (s.startsWith(':') ? null : s)),
    names: original.map((s) => (s.startsWith(':') ? s.slice(1) : undefined)),
    prefix,
  };
}

/** The request path's segments, as the routers compare them (case kept, for parameters). */
function rawSegments(path: string): string[] {
  let p = path;
  if (p.includes('%')) {
    p = p.replace(UNRESERVED_ESCAPE, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
  if (p.includes('//')) p = p.replace(/\/{2,}/g, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p === '/' || p === '' ? [] : p.slice(1).split('/');
}

function matches(pattern: CompiledPattern, segments: readonly string[]): boolean {
  const wanted = pattern.segments;
  if (pattern.prefix ? segments.length < wanted.length : segments.length !== wanted.length)
    return false;
  for (let i = 0; i < wanted.length; i++) {
    const seg = segments[i]!;
    const literal = wanted[i];
    if (seg.length === 0) return false;
    if (literal !== null && literal !== seg) return false;
  }
  return true;
}

function paramsOf(pattern: CompiledPattern, raw: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  pattern.names.forEach((name, i) => {
    if (name === undefined) return;
    const value = raw[i] ?? '';
    try {
      params[name] = decodeURIComponent(value);
    } catch {
      params[name] = value;
    }
  });
  return params;
}

function compileRule(rule: unknown, index: number): CompiledRule {
  const where = `rules[${index}]`;
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
    invalidOption('auth authorization', where, 'a rule { route, methods?, require }', rule);
  }
  checkOptions(`auth authorization ${where}`, rule, ['route', 'methods', 'require']);
  const r = rule as AuthorizationRule;
  const routes = typeof r.route === 'string' ? [r.route] : r.route;
  if (!Array.isArray(routes) || routes.length === 0) {
    invalidOption(
      'auth authorization',
      `${where}.route`,
      'a path or a non-empty list of paths',
      r.route,
    );
  }
  const patterns = (routes as string[]).map((p, i) =>
    compilePattern(p, Array.isArray(r.route) ? `${where}.route[${i}]` : `${where}.route`),
  );
  let methods: Set<string> | undefined;
  if (r.methods !== undefined) {
    if (
      !Array.isArray(r.methods) ||
      r.methods.length === 0 ||
      !r.methods.every((m) => typeof m === 'string' && METHOD.test(m))
    ) {
      invalidOption(
        'auth authorization',
        `${where}.methods`,
        "a non-empty list of method names (such as ['DELETE'])",
        r.methods,
      );
    }
    methods = new Set((r.methods as string[]).map((m) => m.toUpperCase()));
    if (methods.has('GET')) methods.add('HEAD');
  }
  const guards = (Array.isArray(r.require) ? r.require : [r.require]) as unknown[];
  if (
    guards.length === 0 ||
    !guards.every((g) => typeof g === 'function' && typeof (g as Guard).check === 'function')
  ) {
    invalidOption(
      'auth authorization',
      `${where}.require`,
      'a guard (requireRole(), requireScope(), authorize(), authenticated(), allowAnonymous()) or a list of them',
      r.require,
    );
  }
  return { patterns, methods, guards: guards as Guard[] };
}

/**
 * The authorization table, checked on every request before routing; with
 * `default: 'deny'` (the default), a request no rule covers is refused. Mount
 * it globally, after `authenticate()`. See this file's comment for what
 * "covered" means under each `coverage`.
 *
 * @example
 * ```ts
 * app.use(rw(
 *   authenticate({ jwt, apiKeys, optional: true }),
 *   authorization({
 *     rules: [
 *       { route: '/health', require: allowAnonymous() },
 *       { route: '/v1/*', require: authenticated() },
 *       { route: '/v1/users/:id', methods: ['DELETE'], require: requireRole('admin') },
 *     ],
 *   }),
 * ));
 * ```
 */
export function authorization(options: AuthorizationOptions = {}): Middleware {
  const where = 'auth authorization';
  checkOptions(where, options, ['rules', 'default', 'coverage']);
  const rulesOption = (options.rules ?? []) as unknown;
  if (!Array.isArray(rulesOption)) invalidOption(where, 'rules', 'a list of rules', rulesOption);
  const rules = rulesOption.map((r, i) => compileRule(r, i));
  const fallback = options.default ?? 'deny';
  if (fallback !== 'deny' && fallback !== 'allow')
    invalidOption(where, 'default', "'deny' or 'allow'", fallback);
  const coverage = options.coverage ?? 'rules';
  if (coverage !== 'rules' && coverage !== 'guards')
    invalidOption(where, 'coverage', "'rules' or 'guards'", coverage);
  if (fallback === 'allow' && options.coverage !== undefined) {
    throw new TypeError(`restwell/${where}: option "coverage" only applies with default: 'deny'.`);
  }

  async function checkRules(ctx: Context): Promise<boolean> {
    if (rules.length === 0) return false;
    const path = normalisedPath(ctx.request.path);
    const segments = path === '/' ? [] : path.slice(1).split('/');
    const matched = ctx.request.route;
    const method = ctx.request.method;
    let covered = false;
    let raw: string[] | undefined;
    for (const rule of rules) {
      if (rule.methods !== undefined && !rule.methods.has(method)) continue;
      let hit: CompiledPattern | undefined;
      for (const p of rule.patterns) {
        if (p.pattern === matched || matches(p, segments)) {
          hit = p;
          break;
        }
      }
      if (hit === undefined) continue;
      const routerParams = ctx.request.params;
      let params: Readonly<Record<string, string>>;
      if (hit.pattern === matched || Object.keys(routerParams).length > 0) params = routerParams;
      else {
        raw ??= rawSegments(ctx.request.path);
        params = paramsOf(hit, raw);
      }
      for (const guard of rule.guards) await guard.check(ctx, params);
      covered = true;
    }
    return covered;
  }

  if (fallback === 'allow' || coverage === 'rules') {
    return responseBlind(async function authorizationRules(ctx, next) {
      if (await checkRules(ctx)) markCovered(ctx);
      else if (fallback === 'deny') throw new AccessDeniedError('uncovered');
      return next();
    });
  }

  return async function authorizationWithGuards(ctx, next) {
    if (await checkRules(ctx)) markCovered(ctx);
    await next();
    if (isCovered(ctx) || ctx.response.status >= 400) return;
    try {
      ctx.log.error(
        'restwell/auth: no authorization rule or guard covers this route; its response was withheld',
        {
          traceId: ctx.traceId,
          method: ctx.request.method,
          route: ctx.request.route,
          path: ctx.request.path,
          status: ctx.response.status,
        },
      );
    } catch {
      // The 403 stands whatever the logger does.
    }
    throw new AccessDeniedError('uncovered');
  };
}
