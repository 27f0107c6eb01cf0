/**
 * X-Forwarded-Proto lines up with X-Forwarded-For: each proxy appends the
 * protocol of the connection it received beside that connection's peer, so
 * the value believed is the one beside the client address the walk stops at.
 */
import { describe, expect, it } from 'vitest';
import { compileTrust, resolveForwardedProto } from '../../src/core/ip.js';
import { canonicalAllow } from '../../src/core/response.js';

const loopback = compileTrust('loopback');
const proxies = compileTrust(['127.0.0.1', '10.0.0.0/8']);

describe('resolveForwardedProto', () => {
  it('is http unless the socket peer is trusted', () => {
    expect(resolveForwardedProto('203.0.113.9', undefined, 'https', loopback)).toBe('http');
    expect(resolveForwardedProto(undefined, undefined, 'https', loopback)).toBe('http');
  });

  it('takes the value the trusted peer added, not one the client sent in front', () => {
    expect(resolveForwardedProto('127.0.0.1', '203.0.113.9', 'https, http', loopback)).toBe('http');
    expect(resolveForwardedProto('127.0.0.1', '203.0.113.9', 'http, https', loopback)).toBe(
      'https',
    );
  });

  it('walks as far as the X-Forwarded-For walk trusts', () => {
    // client → edge 10.0.0.5 over https → 127.0.0.1 over http → us
    expect(
      resolveForwardedProto('127.0.0.1', '198.51.100.7, 10.0.0.5', 'https, http', proxies),
    ).toBe('https');
    // The edge is not trusted: what it says about its client is not believed.
    expect(
      resolveForwardedProto('127.0.0.1', '198.51.100.7, 10.0.0.5', 'https, http', loopback),
    ).toBe('http');
  });

  it('reads a single overwritten value, and treats anything but https as http', () => {
    expect(resolveForwardedProto('127.0.0.1', '198.51.100.7, 10.0.0.5', 'https', proxies)).toBe(
      'https',
    );
    expect(resolveForwardedProto('127.0.0.1', undefined, 'HTTPS', loopback)).toBe('https');
    expect(resolveForwardedProto('127.0.0.1', undefined, 'wss', loopback)).toBe('http');
  });

  it('stops where garbage stops the address walk', () => {
    expect(resolveForwardedProto('127.0.0.1', 'garbage', 'https, http', loopback)).toBe('http');
  });
});

describe('canonicalAllow', () => {
  it('orders methods as RFC 9110 §9 lists them, adds HEAD to GET, drops duplicates', () => {
    expect(canonicalAllow(['post', 'get', 'PATCH', 'delete', 'get', 'PROPFIND', '_all'])).toEqual([
      'GET',
      'HEAD',
      'POST',
      'DELETE',
      'PATCH',
      'PROPFIND',
    ]);
  });
});
