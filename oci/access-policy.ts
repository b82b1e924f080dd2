// Which registries may be reached over plain HTTP or unverified TLS: those listed (host[:port]
// or a CIDR) in `insecure-registries` (the client's daemon.json; the mirror lists its upstream when
// `proxy.remoteUrl` is http://), and loopback ones, as Docker does. Every other registry is
// HTTPS with a verified certificate. Names other than `localhost` are not resolved for this check:
// a CIDR matches IP literals, so a DNS answer never silently downgrades a registry to HTTP.
import { BlockList, isIP } from 'node:net';
import { registryHostname } from './reference.js';

export class AccessPolicy {
  private readonly hosts = new Set<string>();
  private readonly cidrs = new BlockList();

  constructor(insecureRegistries: readonly string[]) {
    for (const entry of insecureRegistries) {
      const slash = entry.indexOf('/');
      if (slash > 0 && isIP(entry.slice(0, slash))) {
        const addr = entry.slice(0, slash);
        const prefix = Number(entry.slice(slash + 1));
        const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv6' ? 128 : 32)) throw new Error(`insecure-registries: invalid CIDR ${JSON.stringify(entry)}`);
        this.cidrs.addSubnet(addr, prefix, type);
      } else {
        this.hosts.add(entry.toLowerCase());
      }
    }
    // Loopback is insecure by default (docker adds 127.0.0.0/8 to its insecure list).
    this.cidrs.addSubnet('127.0.0.0', 8, 'ipv4');
    this.cidrs.addAddress('::1', 'ipv6');
  }

  /** `registry` is host[:port] as in a reference. */
  isInsecure(registry: string): boolean {
    const r = registry.toLowerCase();
    if (this.hosts.has(r)) return true;
    const hostname = registryHostname(r);
    if (this.hosts.has(hostname) || hostname === 'localhost') return true;
    const v = isIP(hostname);
    if (v === 4) return this.cidrs.check(hostname, 'ipv4');
    if (v === 6) return this.cidrs.check(hostname, 'ipv6');
    return false;
  }
}

/** `registry` (host[:port]) names this machine: `localhost`, 127.0.0.0/8 or ::1, as literals. */
export function isLoopbackRegistry(registry: string): boolean {
  const hostname = registryHostname(registry.toLowerCase());
  if (hostname === 'localhost' || hostname === '::1') return true;
  return isIP(hostname) === 4 && hostname.startsWith('127.');
}
