// `berth info`: docker's layout and field names (`docker info --format '{{.Containers}}'` works the
// same): counts of containers (running, stopped), images, volumes and networks, the storage and
// cgroup set-up, the host, where the store keeps each thing, and the registries the client config
// (client/config.ts) marks insecure or mirrors.
import { readFile } from 'node:fs/promises';
import { availableParallelism, hostname, machine, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../client/config.js';
import { berthAuthPath, configPath } from '../../client/paths.js';
import { LocalImageStore } from '../../client/store/image-store.js';
import { berthVersion } from '../../oci/version.js';
import { cgroupVersion } from '../cgroups.js';
import { ContainerStore } from '../container-store.js';
import { listNetworks } from '../networks.js';
import { RuntimeLayout } from '../runtime-layout.js';
import { VolumeStore } from '../volumes.js';
import { writeStdout } from '../../client/cli/stdout.js';

/** docker's system.Info fields berth has, plus Volumes, Networks and StorePaths. */
export interface Info {
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Volumes: number;
  Networks: number;
  ServerVersion: string;
  Driver: string;
  CgroupDriver: string;
  CgroupVersion: string;
  KernelVersion: string;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  Name: string;
  DockerRootDir: string;
  StorePaths: { Images: string; Blobs: string; Layers: string; Containers: string; Volumes: string; Networks: string; Config: string; Credentials: string };
  IndexServerAddress: string;
  RegistryConfig: { InsecureRegistryCIDRs: string[]; Mirrors: string[]; MirrorMap: Record<string, string[]> };
  ClientInfo: { Version: string; Context: string; Debug: boolean };
  Warnings: string[];
}

async function operatingSystem(): Promise<string> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1];
  return pretty || 'Linux';
}

export async function collectInfo(configFlag?: string): Promise<Info> {
  const layout = new RuntimeLayout();
  const containers = new ContainerStore(layout);
  const warnings: string[] = [];
  let running = 0;
  let total = 0;
  for (const id of await containers.ids()) {
    const s = await containers.state(id).catch(() => undefined);
    if (!s) continue;
    total++;
    if (s.Status === 'running') running++;
  }
  const images = await LocalImageStore.open(layout.root);
  const doc = await images.index.read();
  // An image is a stored top-level record: the platform images of an index are its children.
  const children = new Set(Object.values(doc.images).flatMap((r) => r.children ?? []));
  const imageCount = Object.keys(doc.images).filter((d) => !children.has(d)).length;
  const volumes = (await new VolumeStore(layout).list()).length;
  const networks = (await listNetworks(layout)).length;
  let config;
  try {
    config = await loadConfig(configFlag);
  } catch (e) {
    warnings.push(`WARNING: ${(e as Error).message}`);
  }
  const mirrors = config?.mirrors ?? {};
  return {
    Containers: total,
    ContainersRunning: running,
    ContainersPaused: 0,
    ContainersStopped: total - running,
    Images: imageCount,
    Volumes: volumes,
    Networks: networks,
    ServerVersion: berthVersion(),
    Driver: 'overlay',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: String(cgroupVersion()),
    KernelVersion: release(),
    OperatingSystem: await operatingSystem(),
    OSType: 'linux',
    Architecture: machine(),
    NCPU: availableParallelism(),
    MemTotal: totalmem(),
    Name: hostname(),
    DockerRootDir: layout.root,
    StorePaths: {
      Images: join(images.root, 'images'),
      Blobs: join(images.root, 'blobs'),
      Layers: layout.layersDir,
      Containers: layout.containersDir,
      Volumes: join(layout.root, 'volumes'),
      Networks: join(layout.root, 'networks'),
      Config: configPath(configFlag),
      Credentials: berthAuthPath(),
    },
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { InsecureRegistryCIDRs: config?.insecureRegistries ?? [], Mirrors: mirrors['docker.io'] ?? [], MirrorMap: mirrors },
    ClientInfo: { Version: berthVersion(), Context: 'default', Debug: false },
    Warnings: warnings,
  };
}

/** go-units' BytesSize: binary units, four significant digits ("7.631GiB"). */
function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** docker info's text: Client, then Server with the counts, set-up and registries. */
export function infoText(i: Info): string {
  const lines = [
    'Client:',
    ` Version:    ${i.ClientInfo.Version}`,
    ` Context:    ${i.ClientInfo.Context}`,
    ` Debug Mode: ${i.ClientInfo.Debug}`,
    '',
    'Server:',
    ` Containers: ${i.Containers}`,
    `  Running: ${i.ContainersRunning}`,
    `  Paused: ${i.ContainersPaused}`,
    `  Stopped: ${i.ContainersStopped}`,
    ` Images: ${i.Images}`,
    ` Volumes: ${i.Volumes}`,
    ` Networks: ${i.Networks}`,
    ` Server Version: ${i.ServerVersion}`,
    ` Storage Driver: ${i.Driver}`,
    ` Cgroup Driver: ${i.CgroupDriver}`,
    ` Cgroup Version: ${i.CgroupVersion}`,
    ` Kernel Version: ${i.KernelVersion}`,
    ` Operating System: ${i.OperatingSystem}`,
    ` OSType: ${i.OSType}`,
    ` Architecture: ${i.Architecture}`,
    ` CPUs: ${i.NCPU}`,
    ` Total Memory: ${bytesSize(i.MemTotal)}`,
    ` Name: ${i.Name}`,
    ` Berth Root Dir: ${i.DockerRootDir}`,
    `  Images: ${i.StorePaths.Images}`,
    `  Blobs: ${i.StorePaths.Blobs}`,
    `  Layers: ${i.StorePaths.Layers}`,
    `  Containers: ${i.StorePaths.Containers}`,
    `  Volumes: ${i.StorePaths.Volumes}`,
    `  Networks: ${i.StorePaths.Networks}`,
    ` Config File: ${i.StorePaths.Config}`,
    ` Credentials File: ${i.StorePaths.Credentials}`,
    ' Debug Mode: false',
  ];
  if (i.RegistryConfig.InsecureRegistryCIDRs.length > 0) lines.push(' Insecure Registries:', ...i.RegistryConfig.InsecureRegistryCIDRs.map((r) => `  ${r}`));
  const mirrorLines = Object.entries(i.RegistryConfig.MirrorMap).flatMap(([registry, list]) => list.map((m) => `  ${m}${registry === 'docker.io' ? '' : ` (${registry})`}`));
  if (mirrorLines.length > 0) lines.push(' Registry Mirrors:', ...mirrorLines);
  lines.push(' Live Restore Enabled: false', '');
  return lines.join('\n');
}

export async function main(o: { format?: string; config?: string }): Promise<number> {
  const i = await collectInfo(o.config);
  for (const w of i.Warnings) process.stderr.write(`${w}\n`);
  if (o.format === undefined || o.format === '') {
    writeStdout(infoText(i));
    return 0;
  }
  const { FormatError, formatValue, goStruct, reportFormatError } = await import('../../client/cli/format.js');
  try {
    writeStdout(formatValue(o.format, goStruct('system.Info', { ...i })));
    return 0;
  } catch (e) {
    if (e instanceof FormatError) return reportFormatError(e);
    throw e;
  }
}
