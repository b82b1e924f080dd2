// Turns `run` options and an image into a created container: layers unpacked, cgroups made,
// state dir written, helper configuration ready. Starting it is the caller's job (foreground or
// monitor).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath, isAbsolute, posix } from 'node:path';
import { cgroupsFor, type Limits } from './cgroups.js';
import type { resolveConfinement } from './confinement.js';
import { ContainerStore, newContainerId, ZERO_TIME, type ContainerConfig, type HelperConfig } from './container-store.js';
import { configPlatform } from './image-source.js';
import { resolveImage } from './image-sources.js';
import { formatPlatform, hostPlatform, platformMatches } from '../client/platform.js';
import type { Platform } from '../oci/manifest.js';
import { digestOf } from '../oci/digest.js';
import { ensureLayers } from './layer-cache.js';
import { processSpec, UsageError, type ProcessOverrides } from './process-spec.js';
import type { RuntimeLayout } from './runtime-layout.js';
import { randomName } from './names.js';
import { allocateIp, bridgeHooks, GATEWAY, parsePublish } from './network.js';
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
  network: string;
  limits: Limits;
  /** --privileged, --cap-add/--cap-drop, --security-opt, resolved (confinement.ts). */
  security: ReturnType<typeof resolveConfinement>;
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

export async function createContainer(layout: RuntimeLayout, store: ContainerStore, o: RunOptions): Promise<ContainerConfig> {
  if (o.network !== 'none' && o.network !== 'host' && o.network !== 'bridge') throw new UsageError(`network mode ${JSON.stringify(o.network)} is not supported (use none, host or bridge)`);
  const ports = o.publish.map(parsePublish);
  if (ports.length > 0 && o.network !== 'bridge') throw new UsageError('-p publishes ports of a container on --network bridge');
  const volumes = new VolumeStore(layout);
  const mounts = [];
  for (const v of o.volumes.map(parseVolume)) {
    const source = v.kind === 'bind' ? v.source : (await volumes.ensure(v.source || undefined)).Mountpoint;
    mounts.push({ source, target: v.target, readonly: v.readonly });
  }
  const image = await resolveImage(o.image, o.platform ? { platform: o.platform } : {});
  const imagePlatform = configPlatform(image.config);
  // docker's warning (the image still runs; an emulator registered with binfmt_misc may run it).
  if (!o.platform && imagePlatform && !platformMatches({ os: image.config.os!, architecture: image.config.architecture!, variant: image.config.variant }, hostPlatform())) {
    process.stderr.write(`WARNING: The requested image's platform (${imagePlatform}) does not match the detected host platform (${formatPlatform(hostPlatform())}) and no specific platform was requested\n`);
  }
  const lower = await ensureLayers(layout, image.layers);
  const id = newContainerId();
  const name = o.name ?? randomName();
  const hostname = o.hostname ?? id.slice(0, 12);
  const imageCfg = image.config.config ?? {};
  const proc = processSpec(imageCfg, o, hostname);
  const dir = layout.containerDir(id);
  const address = o.network === 'bridge' ? await allocateIp(id) : '';
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
    network: o.network,
    hooks: address ? bridgeHooks(id, address) : [],
    mounts,
    files: [
      { source: join(dir, 'hostname'), target: '/etc/hostname' },
      { source: join(dir, 'hosts'), target: '/etc/hosts' },
      { source: join(dir, 'resolv.conf'), target: '/etc/resolv.conf' },
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
      NetworkMode: o.network,
      Binds: o.volumes,
      ...o.security.hostConfig,
    },
    NetworkSettings: { IPAddress: address, Gateway: address ? GATEWAY : '', Ports: ports },
    helper,
    cgroups,
  };
  await store.create(config, { Status: 'created', Pid: 0, OwnerPid: 0, ExitCode: 0, OOMKilled: false, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME });
  // Synchronous: three small files, cheaper than three thread-pool round trips (see container-store.ts).
  writeFileSync(join(dir, 'hostname'), `${hostname}\n`);
  writeFileSync(join(dir, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${address || '127.0.1.1'}\t${hostname}\n`);
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
