/**
 * securityHeaders() and hsts() against helmet, header for header: helmet
 * runs on a bare Node response with the configuration equivalent to
 * restwell's defaults, restwell runs through each adapter, and the security
 * headers of the two responses must agree. The headers helmet sends by
 * default and restwell does not are pinned too, with why (docs/security.md).
 */
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import { describe, expect, it } from 'vitest';
import { hsts, hstsValue } from '../../src/security/hsts.js';
import { securityHeaders } from '../../src/security/headers.js';
import { adapters } from '../helpers/apps.js';
import { raw } from '../helpers/raw.js';

/** helmet's configuration for what securityHeaders() sends by default. */
const EQUIVALENT: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
  },
  crossOriginEmbedderPolicy: false,
  crossOriginOpenerPolicy: { policy: 'same-origin' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  originAgentCluster: false,
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: false,
  xContentTypeOptions: true,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: { action: 'deny' },
  xPermittedCrossDomainPolicies: false,
  xPoweredBy: true,
  xXssProtection: false,
};

/** Every header either helmet (with all its defaults) or restwell may send. */
const SECURITY_HEADERS = [
  'content-security-policy',
  'cross-origin-embedder-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-powered-by',
  'x-xss-protection',
];

/** A bare Node listener: helmet, then an empty JSON answer, with X-Powered-By set first as Express would. */
function helmetListener(options?: HelmetOptions): RequestListener {
  const middleware = helmet(options);
  return (req, res) => {
    res.setHeader('X-Powered-By', 'Express');
    middleware(req, res, () => {
      res.setHeader('Content-Type', 'application/json');
      res.end('{}');
    });
  };
}

function securityPart(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of SECURITY_HEADERS) {
    const value = headers[name];
    out[name] = value === undefined ? undefined : String(value);
  }
  return out;
}

/** CSP directives, whatever the separator's spacing (`a;b` is `a; b`, CSP3 §2.2.1). */
function directives(policy: string | undefined): string[] {
  return (policy ?? '')
    .split(';')
    .map((d) => d.trim().replace(/\s+/g, ' '))
    .filter((d) => d.length > 0)
    .sort();
}

describe('securityHeaders() against helmet', () => {
  it.each(adapters)('agrees header for header on $name', async (adapter) => {
    const theirs = securityPart((await raw(helmetListener(EQUIVALENT), { path: '/' })).headers);
    const ours = securityPart(
      (
        await raw(
          adapter.build({
            use: [securityHeaders()],
            routes: [{ method: 'get', path: '/', handler: () => ({ body: {} }) }],
          }),
          { path: '/' },
        )
      ).headers,
    );
    expect(directives(ours['content-security-policy'])).toEqual(
      directives(theirs['content-security-policy']),
    );
    expect({ ...ours, 'content-security-policy': undefined }).toEqual({
      ...theirs,
      'content-security-policy': undefined,
    });
    // The comparison is not vacuous: both sent the six headers.
    expect(Object.values(ours).filter((v) => v !== undefined)).toHaveLength(6);
  });

  it('pins what helmet sends by default and restwell leaves out', async () => {
    const defaults = securityPart((await raw(helmetListener(), { path: '/' })).headers);
    // For HTML documents, or for browsers and plug-ins no longer in use.
    expect(defaults['origin-agent-cluster']).toBe('?1');
    expect(defaults['x-dns-prefetch-control']).toBe('off');
    expect(defaults['x-download-options']).toBe('noopen');
    expect(defaults['x-permitted-cross-domain-policies']).toBe('none');
    expect(defaults['x-xss-protection']).toBe('0');
    // Defaults for an HTML site, looser than an API needs.
    expect(defaults['x-frame-options']).toBe('SAMEORIGIN');
    expect(directives(defaults['content-security-policy'])).toContain("script-src 'self'");
  });
});

describe('hsts() against helmet', () => {
  it('formats the header as helmet does', async () => {
    for (const options of [
      { maxAge: 31_536_000, includeSubDomains: true, preload: false },
      { maxAge: 63_072_000, includeSubDomains: true, preload: true },
      { maxAge: 600, includeSubDomains: false, preload: false },
    ]) {
      const theirs = (
        await raw(helmetListener({ ...EQUIVALENT, strictTransportSecurity: options }), {
          path: '/',
        })
      ).headers['strict-transport-security'];
      expect(hstsValue(options)).toBe(theirs);
    }
  });

  it('differs where RFC 6797 §7.2 says: helmet sends HSTS over plain HTTP, hsts() does not', async () => {
    const theirs = await raw(helmetListener(), { path: '/' });
    expect(theirs.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const ours = await raw(
      adapters[0]!.build({
        use: [hsts()],
        routes: [{ method: 'get', path: '/', handler: () => ({ body: {} }) }],
      }),
      { path: '/' },
    );
    expect(ours.status).toBe(200);
    expect(ours.headers['strict-transport-security']).toBeUndefined();
  });
});
