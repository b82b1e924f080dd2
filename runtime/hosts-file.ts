// A container's /etc/hosts: localhost, its own addresses under its hostname, and the running
// containers it shares a network with under their names, aliases and short ids. That is how
// containers of a user network reach each other by name (docker answers the same names from
// its embedded DNS server; berth writes them down, as docker did for --link).
//
// The file is bind-mounted into the container, so it is rewritten in place, never renamed over
// (the mount would keep the old inode): one pwrite of the new content, padded with newlines to
// the old length so that a reader never sees a torn line, then ftruncate. Blank lines are
// ignored by every resolver. Writers are serialized by the network lock (network-store.ts).
import { closeSync, fstatSync, openSync, readSync, ftruncateSync, writeSync } from 'node:fs';
import type { Endpoint, NetworkRecord } from './network-store.js';

const HEAD = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

export interface HostsEntry {
  address: string;
  names: string[];
}

/** The names a container is known by on a network: name, aliases, short id (docker's DNSNames). */
export function dnsNames(containerId: string, endpoint: Endpoint): string[] {
  return [...new Set([endpoint.Name, ...endpoint.Aliases, containerId.slice(0, 12)])];
}

/**
 * The file's text. `own`: the container's addresses (none: 127.0.1.1, so its hostname resolves);
 * `peers`: one line per address of another running container on a shared network.
 */
export function hostsContent(hostname: string, own: string[], peers: HostsEntry[]): string {
  const lines = [...HEAD];
  for (const address of own.length > 0 ? own : ['127.0.1.1']) lines.push(`${address}\t${hostname}`);
  const seen = new Set<string>();
  for (const p of peers) {
    const line = `${p.address}\t${p.names.join(' ')}`;
    if (!seen.has(line)) lines.push(line);
    seen.add(line);
  }
  return lines.join('\n') + '\n';
}

/** Peer entries of `containerId` from the networks it is on; `running` tells which peers count. */
export function peerEntries(containerId: string, networks: NetworkRecord[], running: (id: string) => boolean): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const n of networks) {
    if (!n.Endpoints[containerId] || n.Driver !== 'bridge' || n.Name === 'bridge') continue; // the default bridge has no name resolution (docker's)
    for (const [id, ep] of Object.entries(n.Endpoints)) {
      if (id !== containerId && running(id)) out.push({ address: ep.IPAddress, names: dnsNames(id, ep) });
    }
  }
  return out;
}

/** Rewrites `path` in place with `content` (unchanged content: no write). Missing file: false. */
export function rewriteInPlace(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    const oldSize = fstatSync(fd).size;
    const next = Buffer.from(content);
    if (oldSize === next.length) {
      const old = Buffer.alloc(oldSize);
      readSync(fd, old, 0, oldSize, 0);
      if (old.equals(next)) return true;
    }
    const padded = next.length < oldSize ? Buffer.concat([next, Buffer.alloc(oldSize - next.length, '\n')]) : next;
    writeSync(fd, padded, 0, padded.length, 0);
    if (next.length < oldSize) ftruncateSync(fd, next.length);
    return true;
  } finally {
    closeSync(fd);
  }
}
