/**
 * Deprecation and sunset signals, per version or per route:
 *
 * - `Deprecation: @1751328000` (RFC 9745 §2.1): an RFC 9651 Date structured
 *   field, `@` and the epoch seconds of the moment the resource is (or will be)
 *   deprecated. A date in the future announces a deprecation. `Deprecation: true`
 *   is not RFC 9745 and is never sent.
 * - `Sunset: Tue, 01 Jul 2025 00:00:00 GMT` (RFC 8594 §3): an IMF-fixdate, the
 *   moment the resource is expected to stop answering.
 * - `Link` (RFC 8288) with `rel="deprecation"` (RFC 9745 §3: where the
 *   deprecation is explained), `rel="sunset"` (RFC 8594 §6: the sunset policy)
 *   and `rel="successor-version"` (RFC 5829 §3.5: what replaces it).
 *
 * A sunset earlier than its deprecation, a date that is not one, or a link
 * that is not a URI is a configuration error, thrown at construction.
 *
 * @module
 */
import type { Context, Middleware } from '../core/context.js';
import { checkOptions, invalidOption } from '../core/errors.js';
import { formatLink, type WebLink } from '../core/link.js';
import { formatHttpDate } from '../conditional/http-date.js';
import { ResourceSunsetError } from './errors.js';

/** Documentation links sent with the deprecation headers. */
export interface DeprecationLinks {
  /** Where the deprecation is explained: `Link: <...>; rel="deprecation"`. */
  deprecation?: string;
  /** The sunset policy: `Link: <...>; rel="sunset"`. */
  sunset?: string;
  /**
   * What replaces the resource: `Link: <...>; rel="successor-version"`. For a
   * version under the URI strategy it defaults to the same path under the next
   * version (`/v2/users/7` for `/v1/users/7`).
   */
  successor?: string;
}

/** When a version or a route is deprecated and retired, and what happens after. */
export interface DeprecationPolicy {
  /**
   * When it is (or will be) deprecated: a `Date`, or an ISO 8601 date
   * (`2025-01-01`, UTC midnight) or date-time with a zone (`2025-01-01T12:00:00Z`).
   * Sent as `Deprecation: @<epoch seconds>` from now on, also before that date.
   */
  deprecation?: Date | string;
  /** When it stops being served, as `deprecation`; never earlier. Sent as `Sunset`. */
  sunset?: Date | string;
  links?: DeprecationLinks;
  /**
   * What a request gets after the sunset: `'serve'` keeps answering, with the
   * headers; `'gone'` answers 410 Gone, a problem naming the successor.
   * @default 'serve'
   */
  afterSunset?: 'serve' | 'gone';
}

/** A policy checked and turned into header values once. */
export interface CompiledDeprecation {
  readonly deprecation: Date | undefined;
  readonly sunset: Date | undefined;
  /** `@<seconds>`, the RFC 9651 Date. */
  readonly deprecationHeader: string | undefined;
  /** The IMF-fixdate. */
  readonly sunsetHeader: string | undefined;
  /** The `deprecation` and `sunset` link-values, formatted. */
  readonly links: readonly string[];
  /** The successor's URI reference, when configured. */
  readonly successor: string | undefined;
  readonly afterSunset: 'serve' | 'gone';
}

const POLICY_OPTIONS = ['deprecation', 'sunset', 'links', 'afterSunset'] as const;
const LINK_OPTIONS = ['deprecation', 'sunset', 'successor'] as const;

const ISO_DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const ISO_DATE_TIME =
  /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})$/;
// HTTP-dates carry four-digit years (RFC 9110 §5.6.7), from the epoch on.
const MIN_MS = 0;
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** Reads a configured date: a valid `Date` or an ISO 8601 date or zoned date-time. */
export function parseConfigDate(value: unknown, option: string): Date {
  let ms = Number.NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'string') {
    const date = ISO_DATE.exec(value);
    if (date !== null) {
      ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
      // 2025-02-30 is not a day: Date.UTC would roll it into March.
      if (new Date(ms).toISOString().slice(0, 10) !== value) ms = Number.NaN;
    } else if (ISO_DATE_TIME.test(value)) ms = Date.parse(value);
  }
  if (!Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) {
    invalidOption(
      'versioning',
      option,
      "a Date or an ISO 8601 date ('2025-06-01') or date-time with a zone ('2025-06-01T00:00:00Z'), from 1970 to 9999",
      value,
    );
  }
  // In whole seconds, the headers' resolution (RFC 9651 §3.3.7, RFC 9110 §5.6.7): a
  // version is retired at the very moment its Sunset header names, not up to a second later.
  return new Date(Math.floor(ms / 1000) * 1000);
}

// What a URI reference configured here may hold: no spaces, controls, quotes or angle brackets.
const URI_TEXT = /^[!#-;=?-[\]_a-z~%]+$/i;

/**
 * Checks a configured link target: an absolute URI (`https://...`) or an
 * absolute path (`/v2/users`). Anything else (a relative path, spaces, quotes,
 * angle brackets) is a configuration error rather than something to encode.
 */
export function checkLinkTarget(value: unknown, option: string): string {
  const expected = "an absolute URI ('https://...') or an absolute path ('/v2/users')";
  if (typeof value !== 'string' || !URI_TEXT.test(value)) {
    invalidOption('versioning', option, expected, value);
  }
  if (value.startsWith('/')) {
    if (value.startsWith('//')) invalidOption('versioning', option, expected, value);
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    invalidOption('versioning', option, expected, value);
  }
  if (!/^[a-z][a-z0-9+.-]*:$/i.test(url.protocol)) {
    invalidOption('versioning', option, expected, value);
  }
  if (url.username !== '' || url.password !== '') {
    // Every client would read it; and the message must not repeat it.
    throw new TypeError(
      `restwell/versioning: option "${option}" holds user information (user:password@); links are sent to every client.`,
    );
  }
  return value;
}

/** Formats one link-value, turning formatLink's TypeError into one naming the option. */
export function linkValue(link: WebLink, option: string): string {
  try {
    return formatLink(link);
  } catch (err) {
    throw new TypeError(
      `restwell/versioning: option "${option}" is not a valid link (${(err as Error).message}).`,
    );
  }
}

/** RFC 9651 §3.3.7: a Date is `@` followed by an Integer, here the epoch seconds. */
export function formatStructuredDate(date: Date): string {
  return `@${Math.floor(date.getTime() / 1000)}`;
}

/**
 * Checks a policy and prepares its header values. `where` prefixes option
 * names in messages (`versions[0].`).
 */
export function compileDeprecation(
  policy: DeprecationPolicy | undefined,
  where: string,
): CompiledDeprecation | undefined {
  if (policy === undefined) return undefined;
  checkOptions(`versioning ${where}`.trim(), policy, POLICY_OPTIONS);
  const deprecation =
    policy.deprecation === undefined
      ? undefined
      : parseConfigDate(policy.deprecation, `${where}deprecation`);
  const sunset =
    policy.sunset === undefined ? undefined : parseConfigDate(policy.sunset, `${where}sunset`);
  // Both in whole seconds (parseConfigDate): compared as a client reading the headers can.
  if (deprecation !== undefined && sunset !== undefined && sunset < deprecation) {
    throw new TypeError(
      `restwell/versioning: option "${where}sunset" (${sunset.toISOString()}) is earlier than "${where}deprecation" (${deprecation.toISOString()}). A resource is deprecated first and retired later (RFC 9745 §4).`,
    );
  }
  const afterSunset = policy.afterSunset ?? 'serve';
  if (afterSunset !== 'serve' && afterSunset !== 'gone') {
    invalidOption('versioning', `${where}afterSunset`, "'serve' or 'gone'", afterSunset);
  }
  if (afterSunset === 'gone' && sunset === undefined) {
    invalidOption('versioning', `${where}sunset`, "a date when afterSunset is 'gone'", undefined);
  }
  const linkOptions = policy.links;
  checkOptions(`versioning ${where}links`, linkOptions, LINK_OPTIONS);
  const links: string[] = [];
  if (linkOptions?.deprecation !== undefined) {
    const href = checkLinkTarget(linkOptions.deprecation, `${where}links.deprecation`);
    links.push(linkValue({ href, rel: 'deprecation' }, `${where}links.deprecation`));
  }
  if (linkOptions?.sunset !== undefined) {
    const href = checkLinkTarget(linkOptions.sunset, `${where}links.sunset`);
    links.push(linkValue({ href, rel: 'sunset' }, `${where}links.sunset`));
  }
  const successor =
    linkOptions?.successor === undefined
      ? undefined
      : checkLinkTarget(linkOptions.successor, `${where}links.successor`);
  return Object.freeze({
    deprecation,
    sunset,
    deprecationHeader: deprecation === undefined ? undefined : formatStructuredDate(deprecation),
    sunsetHeader: sunset === undefined ? undefined : formatHttpDate(sunset),
    links: Object.freeze(links),
    successor,
    afterSunset,
  });
}

/** Whether the policy answers 410 at `now`. */
export function isGone(policy: CompiledDeprecation | undefined, now: number): boolean {
  return (
    policy !== undefined &&
    policy.afterSunset === 'gone' &&
    policy.sunset !== undefined &&
    now >= policy.sunset.getTime()
  );
}

/** Adds link-values to the response's `Link`, keeping the links already there. */
export function appendLinks(ctx: Context, values: readonly string[]): void {
  if (values.length === 0) return;
  const headers = ctx.response.headers;
  const current = headers.get('link');
  const missing =
    current === undefined ? values : values.filter((value) => !current.includes(value));
  if (missing.length === 0) return;
  headers.set(
    'Link',
    current === undefined ? missing.join(', ') : `${current}, ${missing.join(', ')}`,
  );
}

/** Writes the policy's headers, with `successorLink` (a formatted link-value) when given. */
export function writeDeprecationHeaders(
  ctx: Context,
  policy: CompiledDeprecation,
  successorLink: string | undefined,
): void {
  const headers = ctx.response.headers;
  if (policy.deprecationHeader !== undefined) headers.set('Deprecation', policy.deprecationHeader);
  if (policy.sunsetHeader !== undefined) headers.set('Sunset', policy.sunsetHeader);
  appendLinks(ctx, successorLink === undefined ? policy.links : [...policy.links, successorLink]);
}

/** Options of {@link deprecated}: the policy, and a clock for tests. */
export interface DeprecatedOptions extends Omit<DeprecationPolicy, 'links'> {
  links?: Omit<DeprecationLinks, 'successor'> & {
    /**
     * What replaces the route: a URI reference, or a function of the request
     * that gives one (`/v1/payments/pay_1` for `/v1/payments/pay_1/status`),
     * or `undefined` for none. A function's result is percent-encoded where
     * it holds what a URI cannot.
     */
    successor?: string | ((ctx: Context) => string | undefined);
  };
  /** The clock, in epoch milliseconds, deciding whether the sunset has passed. @default Date.now */
  now?: () => number;
}

/**
 * Marks a route (or any mount) deprecated: every response carries
 * `Deprecation`, `Sunset` and the `Link`s of the policy (beside the links the
 * handler sets), error responses included; after the sunset, with
 * `afterSunset: 'gone'`, every request is answered 410 Gone, a
 * `resource-sunset` problem naming the successor, and the handler does not run.
 *
 * @example
 * ```ts
 * app.get('/v1/payments/:id/status', rw(deprecated({
 *   deprecation: '2026-01-01',
 *   sunset: '2026-12-31',
 *   links: {
 *     deprecation: 'https://api.example.com/docs/payment-status',
 *     successor: (ctx) => `/v1/payments/${ctx.request.params.id}`,
 *   },
 * })), paymentStatus);
 * ```
 */
export function deprecated(options: DeprecatedOptions): Middleware {
  checkOptions('versioning deprecated', options, [...POLICY_OPTIONS, 'now']);
  if (options === undefined) invalidOption('versioning', 'options', 'an object', options);
  const { now = Date.now, links: linkOptions, ...rest } = options;
  if (typeof now !== 'function') invalidOption('versioning', 'now', 'a function', now);
  if (rest.deprecation === undefined) {
    invalidOption('versioning', 'deprecation', 'a date', undefined);
  }
  const successorOf =
    typeof linkOptions?.successor === 'function' ? linkOptions.successor : undefined;
  const policy = compileDeprecation(
    {
      ...rest,
      ...(linkOptions === undefined
        ? {}
        : {
            links: {
              ...linkOptions,
              successor: successorOf === undefined ? (linkOptions.successor as string) : undefined,
            },
          }),
    },
    '',
  ) as CompiledDeprecation;
  const fixedSuccessor =
    policy.successor === undefined
      ? undefined
      : linkValue({ href: policy.successor, rel: 'successor-version' }, 'links.successor');

  return async function deprecatedResource(ctx, next) {
    const successor = successorOf === undefined ? policy.successor : successorOf(ctx);
    const successorLink =
      successorOf === undefined
        ? fixedSuccessor
        : successor === undefined
          ? undefined
          : formatLink({ href: successor, rel: 'successor-version' });
    const links = successorLink === undefined ? policy.links : [...policy.links, successorLink];
    if (isGone(policy, now())) {
      const headers = ctx.response.headers;
      if (policy.deprecationHeader !== undefined) {
        headers.set('Deprecation', policy.deprecationHeader);
      }
      if (policy.sunsetHeader !== undefined) headers.set('Sunset', policy.sunsetHeader);
      throw new ResourceSunsetError(
        policy.sunset as Date,
        successor,
        links.length === 0 ? undefined : links.join(', '),
      );
    }
    // Set before the handler runs, so that an error response carries them too;
    // the links again after it, beside any the handler set itself.
    writeDeprecationHeaders(ctx, policy, successorLink);
    await next();
    appendLinks(ctx, links);
  };
}
