// The host's side of bridge networks, with `ip` (iproute2): a Linux bridge per network (its
// gateway address on it), and per container endpoint a veth pair whose peer is created straight
// inside the container's network namespace with its final name (eth0, eth1, …) and docker's MAC.
// At start that is a helper hook (between clone and exec, `{pid}` replaced by the container's
// pid) and the helper configures the inside itself; `network connect` on a running container
// runs the same command from here, and `nsenter ip -batch` for the inside.
import { existsSync } from 'node:fs';
import type { Endpoint, NetworkRecord } from './network-store.js';
import { parseSubnet } from './ipv4.js';

async function run(cmd: string, args: string[], input?: string): Promise<void> {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const child = execFile(cmd, args, (err, _stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`)) : resolve()));
    if (input !== undefined) child.stdin!.end(input);
  });
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

function prefixOf(network: NetworkRecord): number {
  return parseSubnet(network.Subnet!)!.prefix;
}

/** Creates and brings up the network's bridge with its gateway address (idempotent). */
export async function ensureBridgeLink(network: NetworkRecord): Promise<void> {
  const name = network.Bridge!;
  if (!linkExists(name)) await run('ip', ['link', 'add', name, 'type', 'bridge']).catch((err) => {
    if (!linkExists(name)) throw err; // else a concurrent creator won
  });
  await run('ip', ['addr', 'replace', `${network.Gateway}/${prefixOf(network)}`, 'dev', name]);
  await run('ip', ['link', 'set', name, 'up']);
}

export async function deleteLink(name: string): Promise<void> {
  if (linkExists(name)) await run('ip', ['link', 'del', name]).catch(() => undefined);
}

/** A host veth name for an endpoint: `bv` and 13 hex digits of its id (IFNAMSIZ is 16). */
export function hostVethName(endpointId: string): string {
  return `bv${endpointId.slice(0, 13)}`;
}

/** The `ip -batch` lines that configure endpoints inside a running container's namespace. */
function insideLines(endpoints: { network: NetworkRecord; endpoint: Endpoint }[], defaultVia: string | undefined): string {
  const lines: string[] = [];
  for (const { network, endpoint } of endpoints) {
    lines.push(`addr add ${endpoint.IPAddress}/${prefixOf(network)} dev ${endpoint.Interface}`);
    lines.push(`link set ${endpoint.Interface} up`);
  }
  if (defaultVia) lines.push(`route replace default via ${defaultVia}`);
  return lines.join('\n') + '\n';
}

/** The host's side: the pair, its peer made right in the namespace of `pid`, the host end on the bridge and up. */
function outsideCommand(network: NetworkRecord, endpoint: Endpoint, pid: string): string[] {
  return ['ip', 'link', 'add', endpoint.HostVeth, 'master', network.Bridge!, 'up', 'type', 'veth', 'peer', 'name', endpoint.Interface, 'address', endpoint.MacAddress, 'netns', pid];
}

export interface StartPlumbing {
  /** Helper hooks (host side, `{pid}` replaced): one `ip link add` per endpoint. */
  hooks: string[][];
  /** What the helper configures inside, before the process starts (helper.cc configureInterfaces). */
  interfaces: { name: string; address: string; prefix: number }[];
  /** The default route: through the first network joined. */
  gateway: string;
}

export function startPlumbing(endpoints: { network: NetworkRecord; endpoint: Endpoint }[]): StartPlumbing {
  return {
    hooks: endpoints.map(({ network, endpoint }) => outsideCommand(network, endpoint, '{pid}')),
    interfaces: endpoints.map(({ network, endpoint }) => ({ name: endpoint.Interface, address: endpoint.IPAddress, prefix: prefixOf(network) })),
    gateway: endpoints[0]?.network.Gateway ?? '',
  };
}

/** `network connect` on a running container: the same plumbing, now. */
export async function plugIn(pid: number, network: NetworkRecord, endpoint: Endpoint, defaultRoute: boolean): Promise<void> {
  const [cmd, ...args] = outsideCommand(network, endpoint, String(pid));
  await run(cmd!, args);
  await run('nsenter', ['-t', String(pid), '-n', 'ip', '-batch', '-'], insideLines([{ network, endpoint }], defaultRoute ? network.Gateway : undefined));
}

/**
 * `network disconnect` on a running container: deleting the host end takes the pair (and the
 * routes through it) away. When that carried the default route, `fallbackGateway` (of a network
 * the container stays on) takes it over, as docker moves the default gateway.
 */
export async function unplug(pid: number, endpoint: Endpoint, fallbackGateway: string | undefined): Promise<void> {
  await deleteLink(endpoint.HostVeth);
  if (fallbackGateway && !(await hasDefaultRoute(pid))) await run('nsenter', ['-t', String(pid), '-n', 'ip', 'route', 'replace', 'default', 'via', fallbackGateway]);
}

/** Whether the container's namespace has a default route (after a disconnect, to move it). */
export async function hasDefaultRoute(pid: number): Promise<boolean> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => execFile('nsenter', ['-t', String(pid), '-n', 'ip', '-4', 'route', 'show', 'default'], (err, stdout) => resolve(!err && String(stdout).trim() !== '')));
}

/** Connected (scope link) IPv4 routes of the host, as subnets: what a new network must not overlap. */
export async function hostLinkRoutes(): Promise<{ dev: string; subnet: string }[]> {
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => execFile('ip', ['-4', '-o', 'route', 'show', 'scope', 'link'], (err, stdout) => (err ? reject(err) : resolve(String(stdout)))));
  const routes = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+)\s.*\bdev\s+(\S+)/.exec(line);
    if (!m || m[1] === 'default') continue;
    const subnet = m[1]!.includes('/') ? m[1]! : `${m[1]}/32`;
    if (parseSubnet(subnet)) routes.push({ dev: m[2]!, subnet });
  }
  return routes;
}
