/**
 * The address rule behind the SSRF guard: which IP addresses count as public. Every special-purpose range an
 * attacker could aim a URL at is refused, in every spelling (brackets, zones, IPv4 embedded in IPv6); ordinary
 * internet addresses are not.
 */
import { describe, expect, it } from 'vitest';
import { isIpLiteral, nonPublicReason } from '../../src/attachments/addresses.js';

describe('nonPublicReason', () => {
  it('refuses loopback, private, link-local (the metadata address), unspecified and other special ranges', () => {
    const cases: [string, RegExp][] = [
      ['127.0.0.1', /^loopback$/],
      ['127.255.1.2', /^loopback$/],
      ['10.1.2.3', /^private$/],
      ['172.16.0.1', /^private$/],
      ['172.31.255.255', /^private$/],
      ['192.168.1.1', /^private$/],
      ['169.254.169.254', /instance metadata/],
      ['169.254.1.1', /^link-local$/],
      ['0.0.0.0', /unspecified/],
      ['0.1.2.3', /unspecified/],
      ['100.64.0.1', /carrier-grade NAT/],
      ['192.0.0.8', /IETF/],
      ['192.0.2.1', /documentation/],
      ['198.18.0.1', /benchmarking/],
      ['224.0.0.1', /multicast/],
      ['255.255.255.255', /reserved/],
      ['::1', /^loopback$/],
      ['[::1]', /^loopback$/],
      ['::', /unspecified/],
      ['::ffff:127.0.0.1', /loopback, IPv4-mapped/],
      ['::ffff:7f00:1', /loopback, IPv4-mapped/],
      ['[::ffff:a9fe:a9fe]', /instance metadata service, IPv4-mapped/],
      ['::127.0.0.1', /IPv4-compatible/],
      ['64:ff9b::a00:1', /private, NAT64/],
      ['64:ff9b:1::1', /local-use NAT64/],
      ['2002:a00:1::', /private, 6to4/],
      ['fc00::1', /unique local/],
      ['fd12:3456::1', /unique local/],
      ['fe80::1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['fec0::1', /site-local/],
      ['ff02::1', /multicast/],
      ['2001:db8::1', /documentation/],
      ['2001::1', /IETF/],
      ['4000::1', /reserved/],
      ['files.example.com', /not an IP address/],
      ['1.2.3', /not an IP address/],
    ];
    const wrong = cases.filter(([a, want]) => !want.test(nonPublicReason(a) ?? 'PUBLIC'));
    expect(wrong.map(([a]) => `${a}: ${nonPublicReason(a) ?? 'PUBLIC'}`)).toEqual([]);
  });

  it('lets ordinary internet addresses through, including IPv4 embedded in IPv6', () => {
    for (const a of [
      '8.8.8.8',
      '1.1.1.1',
      '20.190.128.1',
      '172.32.0.1',
      '100.128.0.1',
      '169.255.0.1',
      '2606:4700::1111',
      '[2620:1ec:c11::200]',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
      '2002:808:808::1',
    ])
      expect(nonPublicReason(a), a).toBeUndefined();
  });

  it('knows IP literals from names', () => {
    expect(isIpLiteral('127.0.0.1')).toBe(true);
    expect(isIpLiteral('[::1]')).toBe(true);
    expect(isIpLiteral('::1')).toBe(true);
    expect(isIpLiteral('localhost')).toBe(false);
    expect(isIpLiteral('127.0.0.1.nip.io')).toBe(false);
  });
});
