/**
 * Cache-Control presets and directives; Vary merging.
 */
import { describe, expect, it } from 'vitest';
import { cacheControl, hasDirective } from '../../src/conditional/cache-control.js';
import { mergeVary, vary } from '../../src/conditional/vary.js';
import type { ResponseHeaders } from '../../src/core/context.js';

describe('cacheControl() presets', () => {
  it.each([
    ['immutable', 'public, max-age=31536000, immutable'],
    ['private', 'private, no-cache'],
    ['no-cache', 'no-cache'],
    ['no-store', 'no-store'],
  ] as const)('%s → %s', (preset, value) => {
    expect(cacheControl(preset)).toBe(value);
  });

  it('refuses an unknown preset', () => {
    expect(() => cacheControl('forever' as never)).toThrow(/cacheControl/);
  });
});

describe('cacheControl() directives', () => {
  it('writes every directive in a stable order', () => {
    expect(
      cacheControl({
        public: true,
        maxAge: 60,
        sMaxAge: 300,
        staleWhileRevalidate: 30,
        staleIfError: 86400,
        mustRevalidate: true,
        proxyRevalidate: true,
        immutable: true,
        noTransform: true,
      }),
    ).toBe(
      'public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=86400, must-revalidate, proxy-revalidate, immutable, no-transform',
    );
    expect(cacheControl({ private: true, noCache: true })).toBe('private, no-cache');
    expect(cacheControl({ noStore: true })).toBe('no-store');
    expect(cacheControl({ maxAge: 0 })).toBe('max-age=0');
  });

  it('refuses contradictions and bad durations', () => {
    expect(() => cacheControl({ public: true, private: true })).toThrow(/not both/);
    expect(() => cacheControl({ maxAge: -1 })).toThrow(/maxAge/);
    expect(() => cacheControl({ sMaxAge: 1.5 })).toThrow(/sMaxAge/);
    expect(() => cacheControl({ maxAge: '60' as never })).toThrow(/maxAge/);
    expect(() => cacheControl({})).toThrow(/at least one/);
  });
});

describe('hasDirective()', () => {
  it('finds a directive case-insensitively, with or without an argument', () => {
    expect(hasDirective('public, No-Transform', 'no-transform')).toBe(true);
    expect(hasDirective('max-age=60', 'max-age')).toBe(true);
    expect(hasDirective('no-transformer', 'no-transform')).toBe(false);
    expect(hasDirective(undefined, 'no-transform')).toBe(false);
  });
});

class Headers implements ResponseHeaders {
  readonly map = new Map<string, string>();
  get(name: string) {
    return this.map.get(name.toLowerCase());
  }
  has(name: string) {
    return this.map.has(name.toLowerCase());
  }
  set(name: string, value: string | number | readonly string[]) {
    this.map.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
  }
  append(name: string, value: string) {
    const v = this.get(name);
    this.set(name, v === undefined ? value : `${v}, ${value}`);
  }
  delete(name: string) {
    this.map.delete(name.toLowerCase());
  }
  names() {
    return [...this.map.keys()];
  }
}

describe('Vary (RFC 9110 §12.5.5)', () => {
  it('merges without clobbering, deduplicating case-insensitively', () => {
    expect(mergeVary('Origin', ['Accept-Encoding'])).toBe('Origin, Accept-Encoding');
    expect(mergeVary('origin, Accept-Encoding', ['accept-encoding', 'Origin'])).toBe(
      'origin, Accept-Encoding',
    );
    expect(mergeVary(' , Origin ,', ['Accept, Accept-Language'])).toBe(
      'Origin, Accept, Accept-Language',
    );
    expect(mergeVary(undefined, ['Accept-Encoding', 'accept-encoding'])).toBe('Accept-Encoding');
  });

  it('* wins over everything', () => {
    expect(mergeVary('*', ['Accept-Encoding'])).toBe('*');
    expect(mergeVary('Origin', ['*'])).toBe('*');
    expect(mergeVary('Origin, *', [])).toBe('*');
  });

  it('vary() updates the response headers, leaving them alone when nothing changes', () => {
    const h = new Headers();
    vary(h, 'Accept-Encoding');
    expect(h.get('vary')).toBe('Accept-Encoding');
    vary(h, 'Origin', 'accept-encoding');
    expect(h.get('vary')).toBe('Accept-Encoding, Origin');
    const star = new Headers();
    star.set('Vary', '*');
    vary(star, 'Accept-Encoding');
    expect(star.get('vary')).toBe('*');
    const none = new Headers();
    vary(none);
    expect(none.has('vary')).toBe(false);
  });
});
