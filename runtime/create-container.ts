// Turns `run` options and an image into a created container: layers unpacked, cgroups made,
// state dir written, helper configuration ready. Starting it is the caller's job (foreground or
// monitor).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath, isAbsolute, posix } from 'node:path';
import { cgroupsFor, type Limits } from './cgroups.js';
import type { resolveConfinement } from './confinement.js';
import { ContainerStore, newContainerId, ZERO_TIME, type ContainerConfig, type HelperConfig } from './container-store.js';
import { resolveImage } from './image-sources.js';
import type { ResolvedImage } from './image-source.js';
import { formatPlatform, hostPlatform, platformMatches } from '../client/platform.js';
import type { Platform } from '../oci/manifest.js';
import { digestOf } from '../oci/digest.js';
import { ensureLayers } from './layer-cache.js';
import { processSpec, UsageError, type ProcessOverrides } from './process-spec.js';
import type { RuntimeLayout } from './runtime-layout.js';
import { randomName } from './names.js';
import { GATEWAY, parsePublish } from './network.js';
import { hostsContent } from './hosts-file.js';
import { isVolumeName, VolumeStore } from './volumes.js';

export interface RunOptions extends ProcessOverrides {
  image: string;
  /** `--platform`: which platform's image to run (default: this host's). */
  platform?: Platform;
  name?: string;
  hostname?: string;
  autoRemove: boolean;
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  volumes: string[];
  publish: string[];
  readOnly: boolean;
  init: boolean;
  /** none, host, bridge, container:NAME|ID, or a user network's name or id. */
  network: string;
  /** --network-alias (user networks). */
  networkAliases?: string[];
  /** --ip (user networks). */
  ip?: string;
  /** --volumes-from CONTAINER[:ro|rw], repeatable. */
  volumesFrom?: string[];
  limits: Limits;
  /** --privileged, --cap-add/--cap-drop, --security-opt, resolved (confinement.ts). */
  security: ReturnType<typeof resolveConfinement>;
  /** The image, already resolved (berth build's RUN: the image being built); `image` then only names it. */
  resolvedImage?: ResolvedImage;
}

export interface VolumeSpec {
  /** A host path, or a volume name (created on first use); '' for an anonymous volume. */
  source: string;
  kind: 'bind' | 'volume';
  target: string;
  readonly: boolean;
}

/** `-v HOST:CTR[:ro|rw]` (bind), `-v NAME:CTR[:ro]` (named volume), `-v CTR` (anonymous volume). */
export function parseVolume(spec: string): VolumeSpec {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new UsageError(`invalid volume specification: '${spec}'`);
  if (parts.length === 1) parts.unshift('');
  const [source, target, mode] = parts as [string, string, string | undefined];
  const kind = source === '' || !isAbsolute(source) ? 'volume' : 'bind';
  if (kind === 'volume' && source !== '' && !isVolumeName(source)) throw new UsageError(`invalid volume specification: '${spec}': "${source}" is neither an absolute host path nor a volume name`);
  if (!posix.isAbsolute(target)) throw new UsageError(`invalid volume specification: '${spec}': mount path must be absolute`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new UsageError(`invalid mode: ${mode}`);
  const normalized = posix.normalize(target);
  if (normalized === '/') throw new UsageError(`invalid volume specification: '${spec}': cannot mount over /`);
  return { source: kind === 'bind' ? resolvePath(source) : source, kind, target: normalized, readonly: mode === 'ro' };
}

/** `--volumes-from NAME[:ro|rw]`: the container reference and whether its mounts become read-only. */
export function parseVolumesFrom(spec: string): { ref: string; readonly: boolean } {
  const colon = spec.lastIndexOf(':');
  const [ref, mode] = colon < 0 ? [spec, ''] : [spec.slice(0, colon), spec.slice(colon + 1)];
  // docker: a mode other than ro/rw (alone or with z/Z, nocopy…) is refused as "invalid mode".
  if (mode !== '' && mode !== 'ro' && mode !== 'rw') throw new UsageError(`invalid mode: ${mode}`, false);
  if (ref === '') throw new UsageError(`invalid volumes-from specification: '${spec}'`, false);
  return { ref, readonly: mode === 'ro' };
}

type NetworkChoice = { kind: 'none' | 'host' | 'bridge' | 'user'; ref: string } | { kind: 'container'; ref: string; target: ContainerConfig };

/** docker's checks of --network against the other flags (runconfig/hostconfig.go and its CLI). */
async function chooseNetwork(store: ContainerStore, o: RunOptions, ports: number): Promise<NetworkChoice> {
  const mode = o.network;
  const aliases = o.networkAliases ?? [];
  if (mode.startsWith('container:')) {
    const ref = mode.slice('container:'.length);
    if (ref === '') throw new UsageError(`invalid network mode: ${mode}`, false);
    if (o.hostname !== undefined) throw new UsageError('conflicting options: hostname and the network mode', false);
    if (ports > 0) throw new UsageError('conflicting options: port publishing and the container type network mode', false);
    if (aliases.length > 0) throw new UsageError('network-scoped aliases are only supported for user-defined networks', false);
    if (o.ip !== undefined) throw new UsageError('user specified IP address is supported on user defined networks only', false);
    const target = await store.config(await store.lookup(ref));
    const state = await store.state(target.Id);
    if (state.Status !== 'running') throw new UsageError(`cannot join network namespace of a non running container: container ${target.Name} is ${state.Status}`, false);
    return { kind: 'container', ref: target.Id, target };
  }
  const kind = mode === 'none' || mode === 'host' || mode === 'bridge' ? mode : 'user';
  if (kind !== 'user' && aliases.length > 0) throw new UsageError('network-scoped aliases are only supported for user-defined networks', false);
  if (kind !== 'user' && o.ip !== undefined) throw new UsageError('user specified IP address is supported on user defined networks only', false);
  if (ports > 0 && (kind === 'none' || kind === 'host')) throw new UsageError('-p publishes ports of a container on --network bridge or a user network');
  return { kind, ref: mode };
}

export async function createContainer(layout: RuntimeLayout, store: ContainerStore, o: RunOptions): Promise<ContainerConfig> {
  const ports = o.publish.map(parsePublish);
  const network = await chooseNetwork(store, o, ports.length);
  const volumes = new VolumeStore(layout);
  const mounts: HelperConfig['mounts'] = [];
  for (const v of o.volumes.map(parseVolume)) {
    const source = v.kind === 'bind' ? v.source : (await volumes.ensure(v.source || undefined)).Mountpoint;
    mounts.push({ source, target: v.target, readonly: v.readonly });
  }
  // docker's order: the container's own -v/--mount win over a mount of the same path it inherits.
  for (const spec of o.volumesFrom ?? []) {
    const { ref, readonly } = parseVolumesFrom(spec);
    const other = await store.config(await store.lookup(ref));
    for (const m of other.helper.mounts) {
      if (!mounts.some((x) => x.target === m.target)) mounts.push({ source: m.source, target: m.target, readonly: m.readonly || readonly });
    }
  }
  const image = o.resolvedImage ?? (await resolveImage(o.image, o.platform ? { platform: o.platform } : {}));
  // The os/arch[/variant] the image config declares, '' when it declares none.
  const imagePlatform = image.config.os && image.config.architecture ? formatPlatform({ os: image.config.os, architecture: image.config.architecture, ...(image.config.variant ? { variant: image.config.variant } : {}) }) : '';
  // docker's warning (the image still runs; an emulator registered with binfmt_misc may run it).
  if (!o.platform && imagePlatform && !platformMatches({ os: image.config.os!, architecture: image.config.architecture!, variant: image.config.variant }, hostPlatform())) {
    process.stderr.write(`WARNING: The requested image's platform (${imagePlatform}) does not match the detected host platform (${formatPlatform(hostPlatform())}) and no specific platform was requested\n`);
  }
  const lower = await ensureLayers(layout, image.image.layers);
  const id = newContainerId();
  const name = o.name ?? randomName();
  // --network container: takes the other's hostname and its hosts/resolv.conf files (docker's).
  const hostname = network.kind === 'container' ? network.target.Config.Hostname : (o.hostname ?? id.slice(0, 12));
  const imageCfg = image.config.config ?? {};
  const proc = processSpec(imageCfg, o, hostname);
  const dir = layout.containerDir(id);
  const filesDir = network.kind === 'container' ? layout.containerDir(network.ref) : dir;
  let address = '';
  let ownAddress = '';
  let networkMode = o.network;
  if (network.kind === 'bridge' || network.kind === 'user') {
    const { joinNetwork } = await import('./networks.js');
    const joined = await joinNetwork(layout, { Id: id, Name: name }, network.ref, { aliases: o.networkAliases, ip: o.ip });
    ownAddress = joined.endpoint.IPAddress;
    if (network.kind === 'bridge') address = ownAddress; // docker shows the default bridge's at the top level too
    else networkMode = joined.network.Name;
  } else if (network.kind === 'container') networkMode = `container:${network.ref}`;
  const cgroups = cgroupsFor(id, o.limits); // created when the container starts
  if (lower.length === 0) lower.push(join(dir, 'rootfs')); // overlay needs a lower dir; the empty mount point serves
  const helper: HelperConfig = {
    rootfs: join(dir, 'rootfs'),
    lower,
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    readonly: o.readOnly,
    args: proc.args,
    env: proc.env,
    cwd: proc.cwd,
    user: proc.user,
    hostname,
    network: network.kind === 'user' ? 'bridge' : network.kind,
    hooks: [], // made at each start from the networks joined by then (networks.ts prepareStart)
    mounts,
    files: [
      { source: join(filesDir, 'hostname'), target: '/etc/hostname' },
      { source: join(filesDir, 'hosts'), target: '/etc/hosts' },
      { source: join(filesDir, 'resolv.conf'), target: '/etc/resolv.conf' },
    ],
    cgroups: cgroups.dirs,
    init: o.init,
    tty: o.tty,
    ...o.security.confinement,
    ...(o.security.confinement.seccomp ? { seccompCache: layout.seccompFilter(digestOf(Buffer.from(JSON.stringify(o.security.confinement.seccomp)))) } : {}),
    rlimits: [],
  };
  const config: ContainerConfig = {
    Id: id,
    Name: name,
    Created: new Date().toISOString(),
    Image: o.image,
    ImageId: image.id,
    ...(imagePlatform ? { ImagePlatform: imagePlatform } : {}),
    Path: proc.args[0]!,
    Args: proc.args.slice(1),
    Config: {
      Hostname: hostname,
      Env: proc.env,
      Cmd: o.cmd.length > 0 ? o.cmd : (imageCfg.Cmd ?? []),
      Entrypoint: o.entrypoint !== undefined ? (o.entrypoint === '' ? null : [o.entrypoint]) : (imageCfg.Entrypoint ?? null),
      WorkingDir: proc.cwd,
      User: proc.user,
      Image: o.image,
      StopSignal: imageCfg.StopSignal ?? 'SIGTERM',
      Tty: o.tty,
      OpenStdin: o.interactive,
    },
    HostConfig: {
      AutoRemove: o.autoRemove,
      Memory: o.limits.memoryBytes ?? 0,
      NanoCpus: Math.round((o.limits.cpus ?? 0) * 1e9),
      PidsLimit: o.limits.pidsLimit ?? 0,
      ReadonlyRootfs: o.readOnly,
      Init: o.init,
      NetworkMode: networkMode,
      Binds: o.volumes,
      VolumesFrom: o.volumesFrom && o.volumesFrom.length > 0 ? o.volumesFrom : null,
      ...o.security.hostConfig,
    },
    NetworkSettings: { IPAddress: address, Gateway: address ? GATEWAY : '', Ports: ports },
    helper,
    cgroups,
  };
  try {
    await store.create(config, { Status: 'created', Pid: 0, OwnerPid: 0, ExitCode: 0, OOMKilled: false, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME });
  } catch (err) {
    if (network.kind === 'bridge' || network.kind === 'user') await (await import('./networks.js')).leaveNetworks(layout, id);
    throw err;
  }
  // Synchronous: three small files, cheaper than three thread-pool round trips (see container-store.ts).
  writeFileSync(join(dir, 'hostname'), `${hostname}\n`);
  // Peers are added when it starts (networks.ts refreshHosts).
  writeFileSync(join(dir, 'hosts'), hostsContent(hostname, ownAddress ? [ownAddress] : [], []));
  let resolv = '';
  if (o.network !== 'none') {
    try {
      resolv = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      // no resolver configured on the host: an empty one inside
    }
  }
  writeFileSync(join(dir, 'resolv.conf'), resolv);
  return config;
}
