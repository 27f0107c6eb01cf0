/** The trusted-proxy setting every adapter compiles (src/core/ip.ts). */
import { describe, expect, it } from 'vitest';
import { compileTrust } from '../../src/core/ip.js';

describe('compileTrust', () => {
  it('trusts exactly the ranges it is given', () => {
    const trusted = compileTrust('10.0.0.0/8, 2001:db8::/32, 192.0.2.7');
    expect(trusted('10.200.1.1', 0)).toBe(true);
    expect(trusted('11.0.0.1', 0)).toBe(false);
    expect(trusted('2001:db8::1', 0)).toBe(true);
    expect(trusted('192.0.2.7', 0)).toBe(true);
    expect(trusted('192.0.2.8', 0)).toBe(false);
  });

  it('refuses a range with two prefix lengths instead of reading it as the wider one', () => {
    expect(() => compileTrust('10.0.0.0/8/32')).toThrow(/IP addresses, CIDR ranges or presets/);
    expect(() => compileTrust(['::1/128/0'])).toThrow(/IP addresses, CIDR ranges or presets/);
  });

  it.each(['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8.0', 'not-an-ip/8'])(
    'refuses %s',
    (item) => {
      expect(() => compileTrust(item)).toThrow(TypeError);
    },
  );
});
