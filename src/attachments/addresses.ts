/**
 * Is an IP address on the public internet? Attachment URLs may only reach public addresses unless the
 * definition names the host (mapping.attachments.privateHosts): everything else is some machine's own services
 * (loopback), the network the connector runs in (private, unique local, shared), the cloud's instance metadata
 * service (link-local 169.254.169.254), or an address no server should have (unspecified, multicast, reserved,
 * documentation). IPv6 addresses that embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
 * Ranges from the IANA special-purpose address registries (RFC 6890 and its updates).
 */
import { isIP } from 'node:net';

type V4Range = [base: number, bits: number, kind: string];

const v4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

const V4_RANGES: V4Range[] = [
  [v4(0, 0, 0, 0), 8, 'unspecified ("this network")'],
  [v4(10, 0, 0, 0), 8, 'private'],
  [v4(100, 64, 0, 0), 10, 'shared address space (carrier-grade NAT)'],
  [v4(127, 0, 0, 0), 8, 'loopback'],
  [v4(169, 254, 169, 254), 32, 'link-local: the instance metadata service'],
  [v4(169, 254, 0, 0), 16, 'link-local'],
  [v4(172, 16, 0, 0), 12, 'private'],
  [v4(192, 0, 0, 0), 24, 'IETF protocol assignments'],
  [v4(192, 0, 2, 0), 24, 'documentation'],
  [v4(192, 88, 99, 0), 24, '6to4 relay anycast'],
  [v4(192, 168, 0, 0), 16, 'private'],
  [v4(198, 18, 0, 0), 15, 'benchmarking'],
  [v4(198, 51, 100, 0), 24, 'documentation'],
  [v4(203, 0, 113, 0), 24, 'documentation'],
  [v4(224, 0, 0, 0), 4, 'multicast'],
  [v4(240, 0, 0, 0), 4, 'reserved'],
];

function parseV4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

function v4Kind(n: number): string | undefined {
  for (const [base, bits, kind] of V4_RANGES) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if ((n & mask) >>> 0 === base) return kind;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (with an optional embedded IPv4 tail), or undefined. */
function parseV6(text: string): number[] | undefined {
  let s = text.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 tail (`::ffff:127.0.0.1`): rewrite it as the two groups it stands for.
    const n = parseV4(s.slice(lastColon + 1));
    if (n === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const read = (h: string) =>
    h === '' ? [] : h.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN));
  const head = read(halves[0]!);
  const rest = halves.length === 2 ? read(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  if (fill < 0 || (halves.length === 1 && head.length !== 8)) return undefined;
  const groups = [...head, ...Array<number>(fill).fill(0), ...rest];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : undefined;
}

function v6Kind(g: number[]): string | undefined {
  const [a, b, c, d, e, f, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const embedded = ((g6 << 16) | g7) >>> 0;
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(8)) return 'unspecified';
  if (zeroTo(7) && g7 === 1) return 'loopback';
  if (zeroTo(5) && f === 0xffff) {
    const k = v4Kind(embedded);
    return k ? `${k}, IPv4-mapped` : undefined;
  }
  if (zeroTo(6)) return 'IPv4-compatible (deprecated)';
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) {
    const k = v4Kind(embedded);
    return k ? `${k}, NAT64` : undefined;
  }
  if (a === 0x64 && b === 0xff9b && c === 1) return 'local-use NAT64';
  if (a === 0x0100 && b === 0 && c === 0 && d === 0) return 'discard-only';
  if (a === 0x2001 && b === 0x0db8) return 'documentation';
  if (a === 0x2001 && b < 0x0200) return 'IETF protocol assignments (Teredo, ORCHIDv2 …)';
  if (a === 0x2002) {
    const k = v4Kind(((b << 16) | c) >>> 0);
    return k ? `${k}, 6to4` : undefined;
  }
  if ((a & 0xfe00) === 0xfc00) return 'unique local';
  if ((a & 0xffc0) === 0xfe80) return 'link-local';
  if ((a & 0xffc0) === 0xfec0) return 'site-local (deprecated)';
  if ((a & 0xff00) === 0xff00) return 'multicast';
  if ((a & 0xe000) !== 0x2000) return 'reserved (outside global unicast 2000::/3)';
  return undefined;
}

/**
 * Why `address` (an IPv4 or IPv6 literal, brackets allowed) is not a public address — `"loopback"`,
 * `"private"`, `"link-local: the instance metadata service"` … — or undefined when it is public. Anything that
 * is not an IP address at all is reported as such, never as public.
 */
export function nonPublicReason(address: string): string | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(a);
  if (family === 4) {
    const n = parseV4(a);
    return n === undefined ? 'not an IP address' : v4Kind(n);
  }
  if (family === 6) {
    const g = parseV6(a);
    return g ? v6Kind(g) : 'not an IP address';
  }
  return 'not an IP address';
}

/** True for an IP literal (IPv4, or IPv6 with or without brackets). */
export function isIpLiteral(host: string): boolean {
  const a = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(a) !== 0;
}
