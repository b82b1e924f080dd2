// The networks of one $BERTH_ROOT and their endpoints (which container has which address on which
// network), in one JSON file: <root>/networks/state.json, replaced by temp file + fsync + rename
// (a crash leaves the old or the new state). Every change runs under an exclusive flock of
// <root>/networks/lock, so concurrent `run`s, `network create`s and `rm`s see and change one
// consistent state (an address is never given twice, a network is never removed while a
// container joins it). Readers take no lock: the rename makes each read whole.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir } from '../storage/durable-file.js';
import { randomHex } from '../storage/random-hex.js';
import { tryLock } from '../native/index.js';
import type { RuntimeLayout } from './runtime-layout.js';

/** docker's default bridge, as berth has it since before user networks (network.ts). */
export const DEFAULT_BRIDGE = { name: 'bridge', iface: 'berth0', subnet: '10.89.0.0/16', gateway: '10.89.0.1' };

export interface Endpoint {
  /** The container's name when it joined (peers' /etc/hosts, `network inspect`). */
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPAddress: string;
  /** `--network-alias`: more names peers know the container by on this network. */
  Aliases: string[];
  /** `--ip`: the address was asked for (docker's IPAMConfig). */
  RequestedIP?: string;
  /** The container's side: eth0, eth1, … in the order it joined. */
  Interface: string;
  /** The host's side of the veth pair (15 characters at most, as every interface name). */
  HostVeth: string;
  /** Join order across the state: the first network a container joined gives its default route. */
  Seq: number;
  /**
   * The `run` that joined while creating the container (its pid): until the container's state
   * directory exists, the endpoint is that process's, and stale only once it is gone.
   */
  Owner?: number;
}

export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Driver: 'bridge' | 'host' | 'null';
  /** bridge only: the subnet (CIDR), gateway address (the bridge's) and host interface. */
  Subnet?: string;
  Gateway?: string;
  /** Whether --gateway was given (docker shows it in IPAM.Config only then, or for the default bridge). */
  GatewayRequested?: boolean;
  Bridge?: string;
  Labels: Record<string, string>;
  /** By container id. */
  Endpoints: Record<string, Endpoint>;
}

export interface NetworkState {
  version: 1;
  nextSeq: number;
  networks: NetworkRecord[];
}

export const PREDEFINED = ['bridge', 'host', 'none'];

function initialState(): NetworkState {
  const now = new Date().toISOString();
  const predefined = (Name: string, Driver: NetworkRecord['Driver']): NetworkRecord => ({ Name, Id: randomHex(32), Created: now, Driver, Labels: {}, Endpoints: {} });
  return {
    version: 1,
    nextSeq: 1,
    networks: [
      { ...predefined('bridge', 'bridge'), Subnet: DEFAULT_BRIDGE.subnet, Gateway: DEFAULT_BRIDGE.gateway, GatewayRequested: true, Bridge: DEFAULT_BRIDGE.iface },
      predefined('host', 'host'),
      predefined('none', 'null'),
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Changes in this process wait for each other first: the flock is per open file, not per process. */
let inProcess: Promise<unknown> = Promise.resolve();
const LOCK_TIMEOUT_MS = 60_000;

export class NetworkStore {
  constructor(readonly layout: RuntimeLayout) {}

  private get dir(): string {
    return join(this.layout.root, 'networks');
  }
  private get statePath(): string {
    return join(this.dir, 'state.json');
  }

  /** The current state (the predefined networks only when none was written yet). */
  read(): NetworkState {
    try {
      return JSON.parse(readFileSync(this.statePath, 'utf8')) as NetworkState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return initialState();
    }
  }

  /**
   * Runs `change` on the state under the lock and writes what it returns (unless undefined: no
   * change). Never nest: a second lock in the same process waits for the first.
   */
  async update<T>(change: (state: NetworkState) => Promise<{ state?: NetworkState; result: T }> | { state?: NetworkState; result: T }): Promise<T> {
    const run = inProcess.then(() => this.locked(change));
    inProcess = run.catch(() => undefined);
    return run;
  }

  private async locked<T>(change: (state: NetworkState) => Promise<{ state?: NetworkState; result: T }> | { state?: NetworkState; result: T }): Promise<T> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const fd = openSync(join(this.dir, 'lock'), 'a', 0o600);
    try {
      const deadline = Date.now() + LOCK_TIMEOUT_MS;
      for (let wait = 1; !tryLock(fd); wait = Math.min(wait * 2, 50)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${join(this.dir, 'lock')}`);
        await sleep(wait);
      }
      const existed = this.exists();
      const current = this.read();
      const { state, result } = await change(current);
      if (state) await this.write(state);
      else if (!existed) await this.write(current); // the predefined networks' ids, fixed once
      return result;
    } finally {
      closeSync(fd); // releases the flock
    }
  }

  private exists(): boolean {
    try {
      readFileSync(this.statePath);
      return true;
    } catch {
      return false;
    }
  }

  private async write(state: NetworkState): Promise<void> {
    const tmp = `${this.statePath}.${randomHex(4)}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(state, null, 2));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.statePath);
    await fsyncDir(this.dir);
  }
}

/** A network by name, full id or unique id prefix (docker's lookup order). */
export function findNetwork(state: NetworkState, ref: string): NetworkRecord | undefined {
  const byName = state.networks.find((n) => n.Name === ref);
  if (byName) return byName;
  const byId = state.networks.find((n) => n.Id === ref);
  if (byId) return byId;
  if (/^[0-9a-f]+$/.test(ref)) {
    const matches = state.networks.filter((n) => n.Id.startsWith(ref));
    if (matches.length === 1) return matches[0];
  }
  return undefined;
}

/** The networks a container has joined, in the order it joined them. */
export function endpointsOf(state: NetworkState, containerId: string): { network: NetworkRecord; endpoint: Endpoint }[] {
  const out = [];
  for (const network of state.networks) {
    const endpoint = network.Endpoints[containerId];
    if (endpoint) out.push({ network, endpoint });
  }
  return out.sort((a, b) => a.endpoint.Seq - b.endpoint.Seq);
}
