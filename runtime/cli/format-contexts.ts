// docker's formatting contexts for the container verbs' --format: the fields `ps`, `volume ls`
// and `network ls` templates read, worded as docker's CLI words them
// (cli/command/formatter/container.go, volume.go, network/formatter.go).
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatContext, goTimeString, humanDuration, type ListFormat } from '../../client/cli/format.js';
import { humanSize } from '../../client/progress.js';
import type { ContainerConfig, ContainerState } from '../container-store.js';
import type { Volume } from '../volumes.js';

/** stringutils.Ellipsis: at most `max` characters, the last one "…" when cut. */
function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

/** The name a mount shows in `ps`: a named volume's name, else the bind's source. */
function mountName(source: string): string {
  return /\/volumes\/([^/]+)\/_data$/.exec(source)?.[1] ?? source;
}

/** Bytes of the files under `dir` (a hard link counted once): docker's SizeRw of a container's upper dir. */
export async function directorySize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) {
        await walk(path);
        continue;
      }
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      const key = `${st.dev}:${st.ino}`;
      if (st.nlink > 1 && seen.has(key)) continue;
      seen.add(key);
      total += st.size;
    }
  };
  await walk(dir);
  return total;
}

/** docker ps's STATUS column. */
export function containerStatus(s: ContainerState, now = Date.now()): string {
  if (s.Status === 'running') return `Up ${humanDuration(now - Date.parse(s.StartedAt))}`;
  if (s.Status === 'created') return 'Created';
  return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
}

function labelsOf(c: ContainerConfig): Record<string, string> {
  return ((c.Config as { Labels?: Record<string, string> | null }).Labels ?? {}) as Record<string, string>;
}

/** Network names of a container, as `ps` lists them. */
export function networkNames(c: ContainerConfig, attached: string[]): string {
  const mode = c.HostConfig.NetworkMode;
  if (mode === 'none' || mode === 'host') return mode;
  if (mode.startsWith('container:')) return '';
  return attached.length > 0 ? [...attached].sort().join(',') : mode === 'default' ? 'bridge' : mode;
}

/** `*formatter.ContainerContext`: one `ps` row. `networks` are the names of the networks it is attached to. */
export function psContext(c: ContainerConfig, s: ContainerState, o: { trunc?: boolean; networks?: string[]; sizeRw?: number } = {}) {
  const trunc = o.trunc !== false;
  const labels = labelsOf(c);
  // The daemon's Command: arguments with a space in single quotes (moby daemon/list.go).
  const command = c.Args.length > 0 ? `${c.Path} ${c.Args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}` : c.Path;
  const mounts = c.helper.mounts.map((m) => (trunc ? ellipsis(mountName(m.source), 15) : mountName(m.source)));
  return formatContext(
    '*formatter.ContainerContext',
    {
      Command: JSON.stringify(trunc ? ellipsis(command, 20) : command),
      CreatedAt: goTimeString(c.Created),
      ID: trunc ? c.Id.slice(0, 12) : c.Id,
      Image: c.Image,
      Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','),
      LocalVolumes: String(c.helper.mounts.filter((m) => mountName(m.source) !== m.source).length),
      Mounts: mounts.join(','),
      Names: c.Name,
      Networks: networkNames(c, o.networks ?? []),
      Ports: (c.NetworkSettings?.Ports ?? []).map((b) => `${b.hostIp}:${b.hostPort}->${b.containerPort}/${b.protocol ?? 'tcp'}`).join(', '),
      RunningFor: `${humanDuration(Date.now() - Date.parse(c.Created))} ago`,
      // The writable layer's bytes, measured when the template may show them (docker's virtual
      // size, the image's unpacked bytes on top, is left out: berth does not count those).
      Size: humanSize(o.sizeRw ?? 0),
      State: s.Status,
      Status: containerStatus(s),
    },
    { Label: (name: string) => labels[name] ?? '' },
  );
}

export const PS_FORMAT: ListFormat = {
  headers: {
    ID: 'CONTAINER ID',
    Image: 'IMAGE',
    Command: 'COMMAND',
    CreatedAt: 'CREATED AT',
    RunningFor: 'CREATED',
    Ports: 'PORTS',
    State: 'STATE',
    Status: 'STATUS',
    Size: 'SIZE',
    Names: 'NAMES',
    Labels: 'LABELS',
    Mounts: 'MOUNTS',
    LocalVolumes: 'LOCAL VOLUMES',
    Networks: 'NETWORKS',
  },
  defaultTable: 'table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}',
  style: 'ps',
};

/** `*formatter.volumeContext`: one `volume ls` row. */
export function volumeContext(v: Volume) {
  const labels = v.Labels ?? {};
  return formatContext(
    '*formatter.volumeContext',
    {
      Driver: v.Driver,
      Labels: Object.entries(labels).map(([k, x]) => `${k}=${x}`).join(','),
      Links: 'N/A',
      Mountpoint: v.Mountpoint,
      Name: v.Name,
      Scope: v.Scope,
      Size: 'N/A',
    },
    { Label: (name: string) => labels[name] ?? '' },
  );
}

export const VOLUME_FORMAT: ListFormat = {
  headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' },
  defaultTable: 'table {{.Driver}}\\t{{.Name}}',
  style: 'list',
};

/** `*network.networkContext`: one `network ls` row (`row` is runtime/cli/network.ts's NetworkRow). */
export function networkContext(row: { ID: string; Name: string; Driver: string; Scope: string; IPv6: string; Internal: string; Labels: string; CreatedAt: string }, labels: Record<string, string> = {}) {
  return formatContext('*network.networkContext', { ...row, CreatedAt: goTimeString(row.CreatedAt, { fraction: true }) }, { Label: (name: string) => labels[name] ?? '' });
}

export const NETWORK_FORMAT: ListFormat = {
  headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED' },
  defaultTable: 'table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}',
  style: 'list',
};
