// IPv4 addresses and subnets as numbers: parsing, containment and overlap for the networks'
// address management (network-store.ts). No IPv6: berth's networks are IPv4 only, as docker's
// are unless --ipv6.

export interface Subnet {
  /** The network address (host bits cleared). */
  base: number;
  prefix: number;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const ADDRESS_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseAddress(s: string): number | undefined {
  const m = ADDRESS_RE.exec(s);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

export function formatAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `10.1.2.0/24`; a CIDR with host bits set (`10.1.2.3/24`) is taken as its network, as docker does. */
export function parseSubnet(s: string): Subnet | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const address = parseAddress(m[1]!);
  const prefix = Number(m[2]);
  if (address === undefined || prefix > 32) return undefined;
  return { base: (address & mask(prefix)) >>> 0, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatAddress(s.base)}/${s.prefix}`;
}

export function size(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

export function contains(s: Subnet, address: number): boolean {
  return ((address & mask(s.prefix)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** The broadcast address; network and broadcast are never given to a container. */
export function lastAddress(s: Subnet): number {
  return s.base + size(s) - 1;
}

/** docker's MAC for an address: 02:42 then the four bytes of the IPv4 address. */
export function macFor(address: number): string {
  return ['02', '42', ...[address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
