// The container verbs that act on existing containers: ps, start, stop, restart, kill, rm, logs,
// wait, inspect, top, diff, stats, commit, prune. They read state and send signals; the
// container's owner records transitions. Flags are declared in bin/commands.ts; what only some
// verbs use is imported by them (`ps` loads the store and nothing else).
import { inspectTemplateError, writeInspect } from '../../client/cli/inspect-output.js';
import { open, readFile, readdir, readlink } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ContainerStore, NoSuchContainerError, type ContainerConfig, type ContainerState } from '../container-store.js';
import type { ImageReference } from '../../oci/reference.js';
import { UsageError } from '../process-spec.js';
import { RuntimeLayout } from '../runtime-layout.js';
import { writeStdout } from '../../client/cli/stdout.js';

const layout = new RuntimeLayout();
const store = new ContainerStore(layout);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, TERM or 15 → signal number (docker accepts all three). */
export function signalNumber(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as NodeJS.Signals;
  const n = constants.signals[name];
  if (n === undefined) throw new UsageError(`invalid signal: ${s}`);
  return n;
}

async function waitExited(id: string, timeoutMs = Infinity): Promise<ContainerState | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: ContainerState | undefined;
  let exitedAt = 0;
  for (;;) {
    const s = await store.state(id).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // removed (--rm): it has exited
      throw err;
    });
    if (!s) return last;
    last = s;
    if (s.Status !== 'running') {
      // A --rm container is waited for until it is gone (its owner removes it right after the
      // exit), so its name is free on return; an owner that died cannot, hence the bound.
      exitedAt ||= Date.now();
      const autoRemove = await store.config(id).then((c) => c.HostConfig.AutoRemove, () => false);
      if (!autoRemove || Date.now() - exitedAt > 5000) return s;
    }
    if (Date.now() >= deadline) return s;
    await sleep(50);
  }
}

function signal(state: ContainerState, sig: number): void {
  try {
    process.kill(state.Pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function stopOne(id: string, timeoutSec: number): Promise<void> {
  const config = await store.config(id);
  const state = await store.state(id);
  if (state.Status !== 'running') return;
  signal(state, signalNumber(config.Config.StopSignal || 'SIGTERM'));
  const after = await waitExited(id, timeoutSec * 1000);
  if (after?.Status === 'running') {
    signal(after, constants.signals.SIGKILL);
    await waitExited(id);
  }
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s <= 1 ? 'Less than a second' : `${s} seconds`;
  if (s < 3600) return `${Math.round(s / 60)} minutes`;
  if (s < 86400) return `${Math.round(s / 3600)} hours`;
  return `${Math.round(s / 86400)} days`;
}

function statusText(s: ContainerState): string {
  if (s.Status === 'running') return `Up ${ago(s.StartedAt)}`;
  if (s.Status === 'created') return 'Created';
  return `Exited (${s.ExitCode}) ${ago(s.FinishedAt)} ago`;
}

/** NetworkSettings.Networks (networks.ts), for a container on the default bridge or a user network. */
async function networksOf(c: ContainerConfig): Promise<Record<string, { IPAddress?: string; Gateway?: string }>> {
  const mode = c.HostConfig.NetworkMode;
  if (mode === 'none' || mode === 'host' || mode.startsWith('container:')) return {};
  return (await import('../networks.js')).containerNetworks(layout, c.Id) as Record<string, { IPAddress?: string; Gateway?: string }>;
}

function inspectJson(c: ContainerConfig, s: ContainerState, networks: Record<string, { IPAddress?: string; Gateway?: string }> = {}): object {
  return {
    Id: c.Id,
    Created: c.Created,
    Path: c.Path,
    Args: c.Args,
    State: {
      Status: s.Status,
      Running: s.Status === 'running',
      Paused: false,
      Restarting: false,
      OOMKilled: s.OOMKilled,
      Dead: false,
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: s.StartedAt,
      FinishedAt: s.FinishedAt,
    },
    Image: c.ImageId,
    Name: `/${c.Name}`,
    NetworkSettings: {
      // docker's top-level fields are the default bridge's.
      IPAddress: networks.bridge?.IPAddress ?? (Object.keys(networks).length === 0 ? (c.NetworkSettings?.IPAddress ?? '') : ''),
      Gateway: networks.bridge?.Gateway ?? (Object.keys(networks).length === 0 ? (c.NetworkSettings?.Gateway ?? '') : ''),
      Ports: Object.fromEntries((c.NetworkSettings?.Ports ?? []).map((p) => [`${p.containerPort}/${p.protocol ?? 'tcp'}`, [{ HostIp: p.hostIp, HostPort: String(p.hostPort) }]])),
      Networks: networks,
    },
    HostConfig: c.HostConfig,
    GraphDriver: { Name: 'overlay2', Data: { LowerDir: c.helper.lower.join(':'), UpperDir: c.helper.upper, WorkDir: c.helper.work } },
    // docker's MountPoint: a named volume ($BERTH_ROOT/volumes/NAME/_data) or a bind.
    Mounts: c.helper.mounts.map((m) => {
      const volume = /\/volumes\/([^/]+)\/_data$/.exec(m.source)?.[1];
      return volume
        ? { Type: 'volume', Name: volume, Source: m.source, Destination: m.target, Driver: 'local', Mode: m.readonly ? 'ro' : 'z', RW: !m.readonly, Propagation: '' }
        : { Type: 'bind', Source: m.source, Destination: m.target, Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: 'rprivate' };
    }),
    // docker's Config always has Labels (berth's containers carry none of their own).
    Config: { ...c.Config, Labels: (c.Config as { Labels?: Record<string, string> }).Labels ?? {} },
  };
}

/** The flags of the verbs here, as commander gives them (bin/commands.ts declares them). */
export interface ContainerFlags {
  all?: boolean;
  quiet?: boolean;
  trunc?: boolean;
  time?: string;
  signal?: string;
  force?: boolean;
  follow?: boolean;
  tail?: string;
  timestamps?: boolean;
  format?: string;
  stream?: boolean;
  message?: string;
  author?: string;
}

/** Host pids of every process in the container's PID namespace. */
async function containerPids(initPid: number): Promise<number[]> {
  const ns = await readlink(`/proc/${initPid}/ns/pid`);
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const other = await readlink(`/proc/${e}/ns/pid`).catch(() => undefined);
    if (other === ns) pids.push(Number(e));
  }
  return pids.sort((a, b) => a - b);
}

async function top(state: ContainerState): Promise<void> {
  const rows = [['UID', 'PID', 'PPID', 'CMD']];
  for (const pid of await containerPids(state.Pid)) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '?';
    const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1] ?? '?';
    if (status) rows.push([uid, String(pid), ppid, cmd]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) writeStdout(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 4))).join('') + '\n');
}

interface Sample {
  ticks: number;
  rssBytes: number;
  pids: number;
}

const PAGE = 4096;
const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU ticks, resident memory and process count of everything in the container's PID namespace. */
async function sample(initPid: number): Promise<Sample> {
  const out: Sample = { ticks: 0, rssBytes: 0, pids: 0 };
  for (const pid of await containerPids(initPid).catch(() => [])) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length < 22) continue;
    out.ticks += Number(fields[11]) + Number(fields[12]); // utime + stime
    out.rssBytes += Number(fields[21]) * PAGE;
    out.pids++;
  }
  return out;
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

/** docker stats: CPU over a 1 s window, memory (the cgroup's when it has one), process count. */
/** docker's `*container.statsContext` headers and default table (cli/command/container/formatter_stats.go). */
const STATS_FORMAT = {
  headers: { Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' },
  defaultTable: 'table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}',
  style: 'list' as const,
};

/** `refs` are what the user named each container (docker's .Container), by id. */
async function stats(ids: string[], stream: boolean, format?: string, refs: Map<string, string> = new Map()): Promise<number> {
  const { totalmem } = await import('node:os');
  const { memoryUsage } = await import('../cgroups.js');
  const f = format ? await import('../../client/cli/format.js') : undefined;
  if (f && format) {
    // A bad template fails before the first sample (docker parses it first).
    try {
      f.formatList(format, [], STATS_FORMAT);
    } catch (e) {
      if (e instanceof f.FormatError) return f.reportFormatError(e);
      throw e;
    }
  }
  for (;;) {
    const running = [];
    for (const id of ids) {
      const s = await store.state(id).catch(() => undefined);
      if (s?.Status === 'running') running.push({ id, s, c: await store.config(id) });
    }
    const before = await Promise.all(running.map((r) => sample(r.s.Pid)));
    const t0 = process.hrtime.bigint();
    await sleep(1000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS']];
    const contexts: unknown[] = [];
    for (const [i, r] of running.entries()) {
      const after = await sample(r.s.Pid);
      const cpu = ((after.ticks - before[i]!.ticks) / CLOCK_TICKS / seconds) * 100;
      const limit = r.c.HostConfig.Memory || totalmem();
      const mem = (await memoryUsage(r.c.cgroups)) ?? after.rssBytes;
      rows.push([r.id.slice(0, 12), r.c.Name, `${cpu.toFixed(2)}%`, `${human(mem)} / ${human(limit)}`, `${((mem / limit) * 100).toFixed(2)}%`, String(after.pids)]);
      if (f) {
        const [id, name, cpuPerc, memUsage, memPerc, pids] = rows[rows.length - 1]!;
        // berth does not count network and block I/O: docker's "--" for a figure it has not.
        contexts.push(f.formatContext('*container.statsContext', { BlockIO: '--', CPUPerc: cpuPerc, Container: refs.get(r.id) ?? id, ID: id, MemPerc: memPerc, MemUsage: memUsage, Name: name, NetIO: '--', PIDs: pids }));
      }
    }
    if (stream) writeStdout('\x1b[2J\x1b[H');
    if (f && format) {
      const code = f.writeFormatted(() => f.formatList(format, contexts, STATS_FORMAT));
      if (code !== 0 || !stream) return code;
      continue;
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) writeStdout(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('') + '\n');
    if (!stream) return 0;
  }
}

/** docker diff: A(dded), C(hanged), D(eleted) paths of the container layer against its image. */
async function diff(config: ContainerConfig): Promise<void> {
  const { containerChanges } = await import('../container-layer.js');
  for await (const c of containerChanges(config)) writeStdout(`${c.kind} ${c.path}\n`);
}

async function logs(id: string, follow: boolean, tail: number | undefined, timestamps: boolean): Promise<void> {
  const { LOG_FILE } = await import('../log-file.js');
  const file = join(layout.containerDir(id), LOG_FILE);
  const emit = (line: string) => {
    if (!line) return;
    const { log, stream, time } = JSON.parse(line) as { log: string; stream: string; time: string };
    (stream === 'stderr' ? process.stderr : process.stdout).write(timestamps ? `${time} ${log}` : log);
  };
  // Read through one open descriptor: `run --rm` removes the container, log and all, right after
  // it exits; what it wrote last is still read here.
  let fh = await open(file, 'r').catch(() => undefined);
  let lines: string[] = [];
  let offset = 0;
  const size = fh ? (await fh.stat()).size : 0;
  if (size > 0) {
    for await (const l of createInterface({ input: fh!.createReadStream({ start: 0, end: size - 1, autoClose: false }) })) {
      lines.push(l);
      if (tail !== undefined && lines.length > tail) lines.shift();
    }
  }
  if (tail === 0) lines = [];
  lines.forEach(emit);
  offset = size;
  let partial = '';
  try {
    while (follow) {
      // The state first: once it says exited, everything the container wrote is in the log
      // (a foreground run records the exit after its output is logged; a monitor likewise).
      const state = await store.state(id).catch(() => undefined);
      fh ??= await open(file, 'r').catch(() => undefined);
      const now = fh ? (await fh.stat()).size : offset;
      if (now > offset) {
        const buf = Buffer.alloc(now - offset);
        const { bytesRead } = await fh!.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const parts = (partial + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
        partial = parts.pop()!;
        parts.forEach(emit);
        if (bytesRead > 0) continue;
      }
      if (!state || state.Status !== 'running') return;
      await sleep(100);
    }
  } finally {
    await fh?.close();
  }
}

/** Whether every operand of `inspect ARGS` names a container (else `inspect` is about images). */
export async function allContainers(operands: string[]): Promise<boolean> {
  for (const ref of operands) {
    const found = await store.lookup(ref).then(() => true, () => false);
    if (!found) return false;
  }
  return true;
}

async function removeCgroups(config: ContainerConfig): Promise<void> {
  await (await import('../cgroups.js')).removeCgroups(config.cgroups).catch(() => undefined);
}

export async function runVerb(verb: string, operands: string[], p: ContainerFlags): Promise<number> {
  if (verb === 'ps') {
    const rows: string[][] = [];
    const ids = await store.ids();
    const entries = [];
    for (const id of ids) {
      const c = await store.config(id).catch(() => undefined);
      const s = await store.state(id).catch(() => undefined);
      if (c && s && (p.all || s.Status === 'running')) entries.push({ c, s });
    }
    entries.sort((a, b) => b.c.Created.localeCompare(a.c.Created));
    if (p.format !== undefined && p.format !== '' && !(p.quiet && p.format === 'table')) {
      const [f, { psContext, directorySize, PS_FORMAT }] = await Promise.all([import('../../client/cli/format.js'), import('./format-contexts.js')]);
      // As docker, the writable layer is measured only for a template that may show .Size.
      const wantsSize = /Size|json/.test(p.format);
      // Network names cost a read per container: only when the template may show them.
      const wantsNetworks = /Networks|json/.test(p.format);
      const contexts: unknown[] = [];
      for (const { c, s } of entries) {
        const networks = wantsNetworks ? Object.keys(await networksOf(c)) : [];
        contexts.push(psContext(c, s, { trunc: p.trunc, networks, sizeRw: wantsSize ? await directorySize(c.helper.upper) : 0 }));
      }
      return f.writeFormatted(() => f.formatList(p.format!, contexts, PS_FORMAT));
    }
    if (p.quiet) {
      for (const { c } of entries) writeStdout(`${c.Id.slice(0, 12)}\n`);
      return 0;
    }
    rows.push(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']);
    for (const { c, s } of entries) {
      const cmd = JSON.stringify([c.Path, ...c.Args].join(' ').slice(0, p.trunc === false ? undefined : 20));
      const ports = (c.NetworkSettings?.Ports ?? []).map((b) => `${b.hostIp}:${b.hostPort}->${b.containerPort}/${b.protocol ?? 'tcp'}`).join(', ');
      rows.push([p.trunc === false ? c.Id : c.Id.slice(0, 12), c.Image, cmd, `${ago(c.Created)} ago`, statusText(s), ports, c.Name]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) writeStdout(r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd() + '\n');
    return 0;
  }
  if (verb === 'prune') {
    const removed: string[] = [];
    for (const id of await store.ids()) {
      const s = await store.state(id).catch(() => undefined);
      if (!s || s.Status === 'running') continue;
      const config = await store.config(id).catch(() => undefined);
      if (config) await removeCgroups(config);
      await store.remove(id);
      removed.push(id);
    }
    writeStdout(['Deleted Containers:', ...removed, ''].join('\n'));
    return 0;
  }
  if (verb === 'stats') {
    const ids = operands.length > 0 ? await Promise.all(operands.map((r) => store.lookup(r))).catch((err: Error) => err) : await store.ids();
    if (ids instanceof Error) {
      process.stderr.write(`Error response from daemon: ${ids.message}\n`);
      return 1;
    }
    const refs = new Map(operands.map((r, i) => [ids[i]!, r]));
    return stats(ids, p.stream !== false, p.format, refs);
  }
  if (verb === 'commit') {
    const [ref, target] = operands;
    const { parseOciLayoutRef } = await import('../image-sources.js');
    const { parseReference } = await import('../../oci/reference.js');
    const layoutRef = target?.startsWith('oci:') ? parseOciLayoutRef(target) : undefined;
    let imageRef: ImageReference | undefined;
    try {
      // docker commit: REPO[:TAG] names a local store image; no tag means :latest
      if (target && !layoutRef) imageRef = parseReference(target);
      if (imageRef?.digest) throw new UsageError('refusing to create a tag with a digest reference');
    } catch (err) {
      process.stderr.write(`berth: invalid reference format: ${(err as Error).message}\n`);
      return 125;
    }
    if (target?.startsWith('oci:') && !layoutRef) throw new UsageError(`invalid OCI layout reference ${JSON.stringify(target)}: oci:DIR[:TAG]`);
    try {
      const { commitContainer, commitToStore } = await import('../commit.js');
      const config = await store.config(await store.lookup(ref!));
      const out = layoutRef
        ? await commitContainer(config, layoutRef.dir, layoutRef.tag || 'latest', p.message, p.author)
        : await commitToStore(config, imageRef, p.message, p.author);
      writeStdout(`${out}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (verb === 'inspect') {
    const out: object[] = [];
    let code = 0;
    const templateError = await inspectTemplateError(p.format);
    if (templateError !== undefined) return templateError;
    for (const ref of operands) {
      try {
        const id = await store.lookup(ref);
        const config = await store.config(id);
        out.push(inspectJson(config, await store.state(id), await networksOf(config)));
      } catch (err) {
        process.stderr.write(`Error: ${(err as Error).message}\n`);
        code = 1;
      }
    }
    return Math.max(code, await writeInspect(out, p.format));
  }
  let code = 0;
  for (const ref of operands) {
    try {
      const id = await store.lookup(ref);
      switch (verb) {
        case 'start':
        case 'restart': {
          if (verb === 'restart') await stopOne(id, Number(p.time ?? 10));
          const s = await store.state(id);
          if (s.Status !== 'running') await (await import('../lifecycle.js')).startDetached(layout.root, id);
          writeStdout(`${ref}\n`);
          break;
        }
        case 'stop':
          await stopOne(id, Number(p.time ?? 10));
          writeStdout(`${ref}\n`);
          break;
        case 'kill': {
          const s = await store.state(id);
          if (s.Status !== 'running') throw new Error(`Cannot kill container: ${ref}: container ${id} is not running`);
          signal(s, signalNumber(p.signal ?? 'SIGKILL'));
          writeStdout(`${ref}\n`);
          break;
        }
        case 'rm': {
          const s = await store.state(id);
          if (s.Status === 'running') {
            if (!p.force) throw new Error(`cannot remove container "${ref}": container is running: stop the container before removing or force remove`);
            signal(s, constants.signals.SIGKILL);
            await waitExited(id);
          }
          const config = await store.config(id).catch(() => undefined);
          if (config) await removeCgroups(config);
          await store.remove(id);
          writeStdout(`${ref}\n`);
          break;
        }
        case 'logs': {
          const tail = p.tail;
          await logs(id, Boolean(p.follow), tail === undefined || tail === 'all' ? undefined : Number(tail), Boolean(p.timestamps));
          break;
        }
        case 'top': {
          const s = await store.state(id);
          if (s.Status !== 'running') throw new Error(`container ${id} is not running`);
          await top(s);
          break;
        }
        case 'diff':
          await diff(await store.config(id));
          break;
        case 'wait': {
          const s = await waitExited(id);
          writeStdout(`${s?.ExitCode ?? 0}\n`);
          break;
        }
        default:
          throw new UsageError(`unknown verb ${verb}`);
      }
    } catch (err) {
      process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
      code = err instanceof NoSuchContainerError ? 1 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
    }
  }
  return code;
}
