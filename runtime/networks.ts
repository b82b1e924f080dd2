// Networks as docker has them: the predefined bridge (berth0), host and none, and user-defined
// bridge networks (`network create`), each a Linux bridge with its own subnet, its containers
// reaching each other by name (hosts-file.ts) and isolated from other networks
// (network-isolation.ts). State and addresses: network-store.ts; links: network-links.ts.
// Messages are docker's (checked against Debian's dockerd 20.10 and moby's sources).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomHex } from '../storage/random-hex.js';
import type { ContainerConfig, ContainerStore } from './container-store.js';
import { dnsNames, hostsContent, peerEntries, rewriteInPlace } from './hosts-file.js';
import { contains, formatAddress, formatSubnet, lastAddress, macFor, overlaps, parseAddress, parseSubnet, type Subnet } from './ipv4.js';
import { allocateIp, ensureBridge, releaseIp } from './network.js';
import { isolate, unisolate } from './network-isolation.js';
import { deleteLink, ensureBridgeLink, hasDefaultRoute, hostLinkRoutes, hostVethName, linkExists, plugIn, startPlumbing, unplug } from './network-links.js';
import { endpointsOf, findNetwork, NetworkStore, PREDEFINED, type Endpoint, type NetworkRecord, type NetworkState } from './network-store.js';
import type { RuntimeLayout } from './runtime-layout.js';

/** A refusal with docker's message. `clientSide`: docker's CLI says it (no "Error response from daemon: "). */
export class NetworkError extends Error {
  constructor(message: string, readonly clientSide = false) {
    super(message);
  }
}

export interface CreateNetworkOptions {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  labels?: Record<string, string>;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * docker's default address pools, in its order: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s;
 * without 172.17.0.0/16, docker0's, so that a dockerd started later on this host finds it free.
 */
function* defaultPools(): Generator<Subnet> {
  for (let b = 18; b <= 31; b++) yield parseSubnet(`172.${b}.0.0/16`)!;
  for (let c = 0; c < 256; c += 16) yield parseSubnet(`192.168.${c}.0/20`)!;
}

function subnetOf(n: NetworkRecord): Subnet | undefined {
  return n.Subnet ? parseSubnet(n.Subnet) : undefined;
}

/** Subnets a new network must not overlap: this root's networks and the host's connected routes. */
async function takenSubnets(state: NetworkState): Promise<Subnet[]> {
  const taken = state.networks.map(subnetOf).filter((s): s is Subnet => s !== undefined);
  for (const r of await hostLinkRoutes()) taken.push(parseSubnet(r.subnet)!);
  return taken;
}

export async function createNetwork(layout: RuntimeLayout, o: CreateNetworkOptions): Promise<NetworkRecord> {
  if (!NAME_RE.test(o.name) || o.name.length > 128) throw new NetworkError(`invalid network name ${JSON.stringify(o.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, true);
  const driver = o.driver ?? 'bridge';
  if (driver === 'host' || driver === 'null') throw new NetworkError(`only one instance of "${driver}" network is allowed`);
  if (driver !== 'bridge') throw new NetworkError(`plugin "${driver}" not found`);
  let requested: Subnet | undefined;
  if (o.subnet !== undefined) {
    requested = parseSubnet(o.subnet);
    if (!requested) throw new NetworkError(`Invalid subnet ${o.subnet} : invalid CIDR address: ${o.subnet}`);
    if (requested.prefix > 30) throw new NetworkError(`Invalid subnet ${o.subnet} : a /${requested.prefix} leaves no address for containers (at most /30)`);
  }
  let gateway: number | undefined;
  if (o.gateway !== undefined) {
    if (!requested) throw new NetworkError('every ip-range or gateway must have a corresponding subnet', true);
    gateway = parseAddress(o.gateway);
    if (gateway === undefined) throw new NetworkError(`invalid gateway address ${o.gateway}`, true);
    if (!contains(requested, gateway)) throw new NetworkError(`no matching subnet for gateway ${o.gateway}`, true);
    if (gateway === requested.base || gateway === lastAddress(requested)) throw new NetworkError(`invalid gateway address ${o.gateway}: the network or broadcast address of ${formatSubnet(requested)}`, true);
  }
  const store = new NetworkStore(layout);
  return store.update(async (state) => {
    if (state.networks.some((n) => n.Name === o.name)) throw new NetworkError(`network with name ${o.name} already exists`);
    const taken = await takenSubnets(state);
    let subnet = requested;
    if (subnet) {
      if (taken.some((t) => overlaps(t, subnet!))) throw new NetworkError('Pool overlaps with other one on this address space');
    } else {
      for (const candidate of defaultPools()) {
        if (!taken.some((t) => overlaps(t, candidate))) {
          subnet = candidate;
          break;
        }
      }
      if (!subnet) throw new NetworkError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
    }
    const id = randomHex(32);
    const record: NetworkRecord = {
      Name: o.name,
      Id: id,
      Created: new Date().toISOString(),
      Driver: 'bridge',
      Subnet: formatSubnet(subnet),
      Gateway: formatAddress(gateway ?? subnet.base + 1),
      GatewayRequested: gateway !== undefined,
      // Named by the id, not the name: host-wide unique whatever BERTH_ROOT made it.
      Bridge: `berth-${id.slice(0, 9)}`,
      Labels: o.labels ?? {},
      Endpoints: {},
    };
    await ensureBridgeLink(record);
    try {
      await isolate([record.Bridge!, 'berth0']);
    } catch (err) {
      await deleteLink(record.Bridge!);
      throw err;
    }
    return { state: { ...state, networks: [...state.networks, record] }, result: record };
  });
}

function lookup(state: NetworkState, ref: string): NetworkRecord {
  const n = findNetwork(state, ref);
  if (!n) throw new NetworkError(`network ${ref} not found`);
  return n;
}

/** `network rm`: refused for predefined networks and while any container (running or not) is on it. */
export async function removeNetwork(layout: RuntimeLayout, ref: string): Promise<NetworkRecord> {
  return new NetworkStore(layout).update(async (current) => {
    const state = withoutStaleEndpoints(layout, current);
    const n = lookup(state, ref);
    if (PREDEFINED.includes(n.Name)) throw new NetworkError(`${n.Name} is a pre-defined network and cannot be removed`);
    if (Object.keys(n.Endpoints).length > 0) throw new NetworkError(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    await unisolate(n.Bridge!);
    await deleteLink(n.Bridge!);
    return { state: { ...state, networks: state.networks.filter((x) => x.Id !== n.Id) }, result: n };
  });
}

/** `network prune`: every user network no container is on; their names. */
export async function pruneNetworks(layout: RuntimeLayout): Promise<string[]> {
  return new NetworkStore(layout).update(async (current) => {
    const state = withoutStaleEndpoints(layout, current);
    const unused = state.networks.filter((n) => !PREDEFINED.includes(n.Name) && Object.keys(n.Endpoints).length === 0);
    for (const n of unused) {
      await unisolate(n.Bridge!);
      await deleteLink(n.Bridge!);
    }
    return { state: { ...state, networks: state.networks.filter((n) => !unused.includes(n)) }, result: unused.map((n) => n.Name).sort() };
  });
}

/** Every network, sorted by name (docker's `network ls`). */
export async function listNetworks(layout: RuntimeLayout): Promise<NetworkRecord[]> {
  const state = await new NetworkStore(layout).update(async (s) => ({ result: s })); // fixes the predefined ids on first use
  return [...state.networks].sort((a, b) => a.Name.localeCompare(b.Name));
}

export async function findNetworks(layout: RuntimeLayout, refs: string[]): Promise<(NetworkRecord | NetworkError)[]> {
  const state = await new NetworkStore(layout).update(async (s) => ({ result: s }));
  return refs.map((r) => findNetwork(state, r) ?? new NetworkError(`network ${r} not found`));
}

/** docker's `network inspect` object; `Containers` lists the running members, as docker's. */
export function networkJson(n: NetworkRecord, running: (id: string) => boolean): object {
  const subnet = subnetOf(n);
  const containers: Record<string, object> = {};
  for (const [id, ep] of Object.entries(n.Endpoints)) {
    if (!running(id)) continue;
    containers[id] = { Name: ep.Name, EndpointID: ep.EndpointID, MacAddress: ep.MacAddress, IPv4Address: `${ep.IPAddress}/${subnet!.prefix}`, IPv6Address: '' };
  }
  const options: Record<string, string> =
    n.Name === 'bridge'
      ? {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'false',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': n.Bridge!,
          'com.docker.network.driver.mtu': '1500',
        }
      : n.Driver === 'bridge'
        ? { 'com.docker.network.bridge.name': n.Bridge! }
        : {};
  return {
    Name: n.Name,
    Id: n.Id,
    Created: n.Created,
    Scope: 'local',
    Driver: n.Driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: n.Name === 'bridge' ? null : {}, Config: subnet ? [{ Subnet: n.Subnet, ...(n.GatewayRequested ? { Gateway: n.Gateway } : {}) }] : [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: options,
    Labels: n.Labels,
  };
}

export interface JoinOptions {
  aliases?: string[];
  /** --ip */
  ip?: string;
}

function nextInterface(state: NetworkState, containerId: string): string {
  const used = new Set(endpointsOf(state, containerId).map((e) => e.endpoint.Interface));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

/** An address of `n` for a new endpoint: `requested` if free, else the lowest free one. */
async function allocate(n: NetworkRecord, containerId: string, requested: string | undefined): Promise<string> {
  if (n.Name === 'bridge') {
    if (requested !== undefined) throw new NetworkError('user specified IP address is supported on user defined networks only');
    return allocateIp(containerId); // host-wide claims: berth0 is shared by every BERTH_ROOT (network.ts)
  }
  const subnet = subnetOf(n)!;
  const gateway = parseAddress(n.Gateway!)!;
  const used = new Set(Object.values(n.Endpoints).map((e) => parseAddress(e.IPAddress)));
  if (requested !== undefined) {
    const a = parseAddress(requested);
    if (a === undefined) throw new NetworkError(`invalid IPv4 address: ${requested}`, true);
    if (!contains(subnet, a)) throw new NetworkError(`Invalid address ${requested}: It does not belong to any of this network's subnets`);
    if (used.has(a) || a === gateway || a === subnet.base || a === lastAddress(subnet)) throw new NetworkError('Address already in use');
    return requested;
  }
  for (let a = subnet.base + 1; a < lastAddress(subnet); a++) if (a !== gateway && !used.has(a)) return formatAddress(a);
  throw new NetworkError(`no available IPv4 addresses on this network's address pools: ${n.Name} (${n.Id})`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops endpoints of containers that do not exist: a `run` killed between joining and writing
 * its container (its pid gone) would otherwise keep a network from being removed forever.
 */
function withoutStaleEndpoints(layout: RuntimeLayout, state: NetworkState): NetworkState {
  const stale = (id: string, ep: Endpoint) => !existsSync(layout.containerDir(id)) && !(ep.Owner !== undefined && alive(ep.Owner));
  return {
    ...state,
    networks: state.networks.map((n) => ({ ...n, Endpoints: Object.fromEntries(Object.entries(n.Endpoints).filter(([id, ep]) => !stale(id, ep))) })),
  };
}

async function addEndpoint(state: NetworkState, n: NetworkRecord, container: { Id: string; Name: string }, o: JoinOptions): Promise<{ state: NetworkState; network: NetworkRecord; endpoint: Endpoint }> {
  if (n.Driver !== 'bridge') throw new NetworkError('container sharing network namespace with another container or host cannot be connected to any other network');
  if (n.Endpoints[container.Id]) throw new NetworkError(`endpoint with name ${container.Name} already exists in network ${n.Name}`);
  if ((o.aliases ?? []).length > 0 && n.Name === 'bridge') throw new NetworkError('network-scoped aliases are only supported for user-defined networks', true);
  // An alias becomes a word of peers' /etc/hosts: a DNS name, nothing that could add a line.
  for (const a of o.aliases ?? []) if (!NAME_RE.test(a) || a.length > 253) throw new NetworkError(`invalid network alias ${JSON.stringify(a)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, true);
  const address = await allocate(n, container.Id, o.ip);
  const endpointId = randomHex(32);
  const endpoint: Endpoint = {
    Name: container.Name,
    EndpointID: endpointId,
    MacAddress: macFor(parseAddress(address)!),
    IPAddress: address,
    Aliases: o.aliases ?? [],
    ...(o.ip !== undefined ? { RequestedIP: o.ip } : {}),
    Interface: nextInterface(state, container.Id),
    HostVeth: hostVethName(endpointId),
    Seq: state.nextSeq,
  };
  const network = { ...n, Endpoints: { ...n.Endpoints, [container.Id]: endpoint } };
  return { state: { ...state, nextSeq: state.nextSeq + 1, networks: state.networks.map((x) => (x.Id === n.Id ? network : x)) }, network, endpoint };
}

/** At `run`/`create`: the new container joins `ref` (a name or id; `bridge` is the default one). */
export async function joinNetwork(layout: RuntimeLayout, container: { Id: string; Name: string }, ref: string, o: JoinOptions = {}): Promise<{ network: NetworkRecord; endpoint: Endpoint }> {
  return new NetworkStore(layout).update(async (state) => {
    const joined = await addEndpoint(state, lookup(state, ref), container, o);
    const endpoint = { ...joined.endpoint, Owner: process.pid };
    const networks = joined.state.networks.map((n) => (n.Id === joined.network.Id ? { ...n, Endpoints: { ...n.Endpoints, [container.Id]: endpoint } } : n));
    return { state: { ...joined.state, networks }, result: { network: joined.network, endpoint } };
  });
}

/** At `rm`: the container leaves every network; its addresses are free again. */
export async function leaveNetworks(layout: RuntimeLayout, containerId: string): Promise<void> {
  const store = new NetworkStore(layout);
  if (endpointsOf(store.read(), containerId).length === 0) return; // no lock for the common case
  await store.update(async (state) => {
    for (const { network, endpoint } of endpointsOf(state, containerId)) if (network.Name === 'bridge') await releaseIp(endpoint.IPAddress);
    const networks = state.networks.map((n) => {
      if (!n.Endpoints[containerId]) return n;
      const { [containerId]: _gone, ...rest } = n.Endpoints;
      return { ...n, Endpoints: rest };
    });
    return { state: { ...state, networks }, result: undefined };
  });
}

async function runningIds(store: ContainerStore, ids: Iterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const id of ids) {
    const s = await store.state(id).catch(() => undefined);
    if (s?.Status === 'running') out.add(id);
  }
  return out;
}

/** Ids of the containers sharing a user network with `containerId` (the default bridge gives no names), and itself. */
function neighbours(state: NetworkState, containerId: string): Set<string> {
  const ids = new Set([containerId]);
  for (const n of state.networks) if (n.Name !== 'bridge' && n.Endpoints[containerId]) for (const id of Object.keys(n.Endpoints)) ids.add(id);
  return ids;
}

function rewriteHosts(store: ContainerStore, state: NetworkState, config: ContainerConfig, running: Set<string>): void {
  const own = endpointsOf(state, config.Id).map((e) => e.endpoint.IPAddress);
  const legacy = own.length === 0 && config.NetworkSettings?.IPAddress ? [config.NetworkSettings.IPAddress] : [];
  const content = hostsContent(config.Config.Hostname, [...own, ...legacy], peerEntries(config.Id, state.networks, (id) => running.has(id)));
  rewriteInPlace(join(store.layout.containerDir(config.Id), 'hosts'), content);
}

/**
 * Brings the /etc/hosts of `containerId` and of every container sharing a network with it up to
 * date: after it started, stopped, joined or left a network.
 */
export async function refreshHosts(store: ContainerStore, containerId: string, extra: string[] = [], self = true): Promise<void> {
  const networks = new NetworkStore(store.layout);
  // Alone on its networks and its own file current (written before it started): nothing to do.
  if (extra.length === 0 && neighbours(networks.read(), containerId).size <= (self ? 0 : 1)) return;
  await networks.update(async (state) => {
    const ids = new Set([...neighbours(state, containerId), ...extra]);
    const running = await runningIds(store, ids);
    for (const id of ids) {
      const config = await store.config(id).catch(() => undefined);
      if (config) rewriteHosts(store, state, config, running);
    }
    return { result: undefined };
  });
}

/** The container's networks as `inspect` shows them (NetworkSettings.Networks). */
export function containerNetworks(layout: RuntimeLayout, containerId: string): Record<string, object> {
  const out: Record<string, object> = {};
  for (const { network, endpoint } of endpointsOf(new NetworkStore(layout).read(), containerId)) {
    out[network.Name] = {
      IPAMConfig: endpoint.RequestedIP ? { IPv4Address: endpoint.RequestedIP } : null,
      Links: null,
      Aliases: endpoint.Aliases.length > 0 ? endpoint.Aliases : null,
      MacAddress: endpoint.MacAddress,
      DriverOpts: null,
      GwPriority: 0,
      NetworkID: network.Id,
      EndpointID: endpoint.EndpointID,
      Gateway: network.Gateway,
      IPAddress: endpoint.IPAddress,
      IPPrefixLen: subnetOf(network)!.prefix,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: network.Name === 'bridge' ? null : dnsNames(containerId, endpoint),
    };
  }
  return out;
}

/** What the helper needs at start, computed then (the container may have joined or left networks). */
export interface StartNetwork {
  hooks: string[][];
  interfaces?: { name: string; address: string; prefix: number }[];
  gateway?: string;
  /** --network container: the namespace to join. */
  netns?: { path: string; inode: number };
  /** The address published ports are forwarded to. */
  address: string;
}

export async function prepareStart(store: ContainerStore, config: ContainerConfig): Promise<StartNetwork> {
  const mode = config.HostConfig.NetworkMode;
  if (mode.startsWith('container:')) {
    const targetId = mode.slice('container:'.length);
    const target = await store.config(targetId).catch(() => undefined);
    const s = target ? await store.state(targetId) : undefined;
    if (!target || !s) throw new NetworkError(`No such container: ${targetId}`);
    if (s.Status !== 'running') throw new NetworkError(`cannot join network namespace of a non running container: container ${target.Name} is ${s.Status}`);
    const path = `/proc/${s.Pid}/ns/net`;
    return { hooks: [], netns: { path, inode: statSync(path).ino }, address: '' };
  }
  const endpoints = endpointsOf(new NetworkStore(store.layout).read(), config.Id);
  if (endpoints.length === 0) {
    // Created before endpoints were recorded (berth0 only): its hooks are in its configuration.
    if (config.helper.hooks.length > 0) {
      const { removeStaleVeth } = await import('./network.js');
      await ensureBridge();
      await removeStaleVeth(config.Id);
    }
    return { hooks: config.helper.hooks, address: config.NetworkSettings?.IPAddress ?? '' };
  }
  for (const { network, endpoint } of endpoints) {
    if (network.Name === 'bridge') await ensureBridge();
    else if (!linkExists(network.Bridge!)) {
      // Gone since the network was made (a reboot): made again, with its isolation.
      await ensureBridgeLink(network);
      await isolate([network.Bridge!, 'berth0']);
    }
    await deleteLink(endpoint.HostVeth); // a pair left by a namespace still being torn down
  }
  // Its peers are in its /etc/hosts before its process starts (they learn of it once it runs).
  await new NetworkStore(store.layout).update(async (state) => {
    rewriteHosts(store, state, config, await runningIds(store, neighbours(state, config.Id)));
    return { result: undefined };
  });
  return { ...startPlumbing(endpoints), address: endpoints[0]!.endpoint.IPAddress };
}

function assertConnectable(config: ContainerConfig): void {
  const mode = config.HostConfig.NetworkMode;
  if (mode === 'host' || mode.startsWith('container:')) throw new NetworkError('container sharing network namespace with another container or host cannot be connected to any other network');
  if (mode === 'none') throw new NetworkError('container cannot be disconnected from host network or connected to host network');
}

/** `network connect`: joins now; plugged in at once when the container runs, else at its start. */
export async function connectContainer(store: ContainerStore, ref: string, containerId: string, o: JoinOptions = {}): Promise<void> {
  const config = await store.config(containerId);
  assertConnectable(config);
  await new NetworkStore(store.layout).update(async (state) => {
    const n = lookup(state, ref);
    if (n.Driver !== 'bridge') throw new NetworkError('container cannot be disconnected from host network or connected to host network');
    const joined = await addEndpoint(state, n, { Id: config.Id, Name: config.Name }, o);
    const s = await store.state(config.Id);
    if (s.Status === 'running') {
      if (n.Name === 'bridge') await ensureBridge();
      else if (!linkExists(n.Bridge!)) await ensureBridgeLink(n);
      try {
        await plugIn(s.Pid, joined.network, joined.endpoint, !(await hasDefaultRoute(s.Pid)));
      } catch (err) {
        await deleteLink(joined.endpoint.HostVeth);
        if (n.Name === 'bridge') await releaseIp(joined.endpoint.IPAddress);
        throw err;
      }
    }
    return { state: joined.state, result: undefined };
  });
  await refreshHosts(store, config.Id);
}

/** `network disconnect`: leaves the network; unplugged at once when the container runs. */
export async function disconnectContainer(store: ContainerStore, ref: string, containerId: string): Promise<void> {
  const config = await store.config(containerId);
  const before = await new NetworkStore(store.layout).update(async (state) => {
    const n = lookup(state, ref);
    const endpoint = n.Endpoints[config.Id];
    if (!endpoint) {
      if (n.Driver !== 'bridge') throw new NetworkError('container cannot be disconnected from host network or connected to host network');
      throw new NetworkError(`container ${config.Id} is not connected to network ${n.Name}`);
    }
    const s = await store.state(config.Id);
    if (s.Status === 'running') {
      const rest = endpointsOf(state, config.Id).filter((e) => e.network.Id !== n.Id);
      await unplug(s.Pid, endpoint, rest[0]?.network.Gateway);
    }
    if (n.Name === 'bridge') await releaseIp(endpoint.IPAddress);
    const { [config.Id]: _gone, ...remaining } = n.Endpoints;
    const networks = state.networks.map((x) => (x.Id === n.Id ? { ...x, Endpoints: remaining } : x));
    return { state: { ...state, networks }, result: Object.keys(remaining) };
  });
  await refreshHosts(store, config.Id, before);
}
