// Containers on disk: <root>/containers/<id>/config.json (written once at create) and state.json
// (rewritten on each transition), both by temp file + fsync + rename so a crash leaves the old or
// the new version, never half of one. Only the process that owns a container's lifecycle (the
// foreground `run`, or the -d monitor) writes its state; other verbs read and send signals.
import { randomHex } from '../storage/random-hex.js';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupSet } from './cgroups.js';
import type { ResolvedSeccomp } from './confinement.js';
import type { PortBinding } from './network.js';
import { isContainerId, type RuntimeLayout } from './runtime-layout.js';

/** The JSON the helper reads on fd 3 (see native/src/helper.cc). */
export interface HelperConfig {
  rootfs: string;
  lower: string[];
  upper: string;
  work: string;
  readonly: boolean;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname: string;
  /** bridge: a namespace of its own, plugged in by `hooks`; container: `netns`'s (--network container:). */
  network: 'none' | 'host' | 'bridge' | 'container';
  /** The network namespace to join, checked by inode (set at each start: networks.ts). */
  netns?: { path: string; inode: number };
  /** Host commands run with the container's pid before it starts (bridge veth setup). */
  hooks: string[][];
  /** bridge: the container's ends of its veths to configure, and the default route (set at each start). */
  interfaces?: { name: string; address: string; prefix: number }[];
  gateway?: string;
  mounts: { source: string; target: string; readonly: boolean }[];
  files: { source: string; target: string }[];
  cgroups: string[];
  init: boolean;
  /** A pseudo-terminal for the process (-t): the helper copies it to its stdio. */
  tty: boolean;
  /**
   * With tty, whether the helper forwards its stdin to the terminal (false under the monitor of a
   * detached container, whose stdin is /dev/null: its end must not reach the process as EOF).
   */
  ttyStdin?: boolean;
  noNewPrivileges: boolean;
  /**
   * Confinement (confinement.ts): capability numbers (bounding, effective and permitted set of a
   * root process), the seccomp profile resolved for them (null: none), whether /sys is writable,
   * the paths masked and made read-only. Absent in configs written before these existed: the
   * helper then applies docker's default capabilities and no seccomp profile.
   */
  capabilities?: number[];
  seccomp?: ResolvedSeccomp | null;
  /** Where the helper keeps the filter compiled from `seccomp` (RuntimeLayout.seccompFilter). */
  seccompCache?: string;
  privileged?: boolean;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rlimits: { name: string; soft: number; hard: number }[];
}

export interface ContainerConfig {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  ImageId: string;
  /** os/arch[/variant] of the image's config (absent when it declares none): `commit` and exec errors. */
  ImagePlatform?: string;
  Path: string;
  Args: string[];
  Config: {
    Hostname: string;
    Env: string[];
    Cmd: string[];
    Entrypoint: string[] | null;
    WorkingDir: string;
    User: string;
    Image: string;
    StopSignal: string;
    Tty: boolean;
    OpenStdin: boolean;
  };
  HostConfig: {
    AutoRemove: boolean;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number;
    ReadonlyRootfs: boolean;
    Init: boolean;
    NetworkMode: string;
    Binds: string[];
    /** --volumes-from, as given (docker's HostConfig.VolumesFrom). */
    VolumesFrom?: string[] | null;
    Privileged?: boolean;
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
    SecurityOpt?: string[] | null;
  };
  NetworkSettings: {
    IPAddress: string;
    Gateway: string;
    Ports: PortBinding[];
  };
  helper: HelperConfig;
  cgroups: CgroupSet;
}

export type Status = 'created' | 'running' | 'exited';

export interface ContainerState {
  Status: Status;
  Pid: number;
  /** The process that owns the lifecycle: foreground CLI or -d monitor. */
  OwnerPid: number;
  ExitCode: number;
  OOMKilled: boolean;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function newContainerId(): string {
  return randomHex(32);
}

/**
 * Temp file + rename; + fsync unless `durable` is false (a --rm container need not outlive a crash).
 * Writes here and in create/remove are synchronous: each is one quick syscall, and on `berth run`'s
 * start path the thread-pool round trip per call cost more than the calls (create + remove
 * 13 ms → 4 ms, measured with performance.now() marks).
 */
function writeJsonAtomic(path: string, value: unknown, durable = true): void {
  const tmp = `${path}.${randomHex(4)}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(value, null, 2));
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ContainerStore {
  constructor(readonly layout: RuntimeLayout) {}

  /** Claims `name` atomically (symlink creation fails if it exists) and creates the state dir. */
  async create(config: ContainerConfig, state: ContainerState): Promise<void> {
    const dir = this.layout.containerDir(config.Id);
    mkdirSync(this.layout.namesDir, { recursive: true });
    try {
      symlinkSync(config.Id, this.layout.namePath(config.Name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        const other = await readlink(this.layout.namePath(config.Name)).catch(() => '?');
        throw new Error(`Conflict. The container name "/${config.Name}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
      throw err;
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const sub of ['upper', 'work', 'rootfs']) mkdirSync(join(dir, sub), { mode: 0o755 });
    const durable = !config.HostConfig.AutoRemove;
    writeJsonAtomic(join(dir, 'config.json'), config, durable);
    writeJsonAtomic(join(dir, 'state.json'), state, durable);
    // Imported where used: the verbs that only read containers (ps, inspect) load less.
    if (durable) await (await import('../storage/durable-file.js')).fsyncDir(dir);
  }

  async writeState(id: string, state: ContainerState, durable = true): Promise<void> {
    writeJsonAtomic(join(this.layout.containerDir(id), 'state.json'), state, durable);
  }

  async config(id: string): Promise<ContainerConfig> {
    return JSON.parse(await readFile(join(this.layout.containerDir(id), 'config.json'), 'utf8')) as ContainerConfig;
  }

  /** The recorded state, corrected for an owner that died without recording the end. */
  async state(id: string): Promise<ContainerState> {
    const s = JSON.parse(await readFile(join(this.layout.containerDir(id), 'state.json'), 'utf8')) as ContainerState;
    if (s.Status === 'running' && !alive(s.OwnerPid) && !alive(s.Pid)) {
      return { ...s, Status: 'exited', ExitCode: 255, Error: s.Error || 'container owner exited without recording the exit' };
    }
    return s;
  }

  async ids(): Promise<string[]> {
    const entries = await readdir(this.layout.containersDir).catch(() => [] as string[]);
    return entries.filter(isContainerId);
  }

  /** Resolves a full id, a unique id prefix, or a name, as docker does. */
  async lookup(ref: string): Promise<string> {
    if (isContainerId(ref) && (await this.ids()).includes(ref)) return ref;
    if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(ref) && ref.length > 1) {
      const target = await readlink(join(this.layout.namesDir, ref)).catch(() => undefined);
      if (target && isContainerId(target)) return target;
    }
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = (await this.ids()).filter((id) => id.startsWith(ref));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new Error(`multiple IDs found with provided prefix: ${ref}`);
    }
    throw new NoSuchContainerError(ref);
  }

  /** Deletes everything of a stopped container: name claim, state dir (with its writable layer). */
  async remove(id: string): Promise<void> {
    const config = await this.config(id).catch(() => undefined);
    rmSync(this.layout.containerDir(id), { recursive: true, force: true });
    if (config) {
      try {
        unlinkSync(this.layout.namePath(config.Name));
      } catch {
        // already released
      }
    }
    if (config?.NetworkSettings?.IPAddress) await (await import('./network.js')).releaseIp(config.NetworkSettings.IPAddress);
    const mode = config?.HostConfig.NetworkMode ?? 'none';
    if (mode !== 'none' && mode !== 'host' && !mode.startsWith('container:')) await (await import('./networks.js')).leaveNetworks(this.layout, id);
  }
}

export class NoSuchContainerError extends Error {
  constructor(ref: string) {
    super(`No such container: ${ref}`);
  }
}
