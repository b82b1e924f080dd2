// Resource limits through cgroups: v2 when /sys/fs/cgroup is the unified hierarchy, v1 otherwise
// (one directory per controller, as this host mounts them). Each container gets berth/<id> in the
// hierarchies it uses; the helper writes the container's pid into each cgroup.procs before exec.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

export interface Limits {
  memoryBytes?: number;
  cpus?: number;
  pidsLimit?: number;
}

export interface CgroupSet {
  version: 1 | 2;
  /** Directories whose cgroup.procs the container joins. */
  dirs: string[];
}

export function cgroupVersion(): 1 | 2 {
  return existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? 2 : 1;
}

const CPU_PERIOD_US = 100_000;

/** The cgroup directories a container with these limits uses (see createCgroups). */
export function cgroupsFor(id: string, limits: Limits): CgroupSet {
  if (!limits.memoryBytes && !limits.cpus && !limits.pidsLimit) return { version: cgroupVersion(), dirs: [] };
  if (cgroupVersion() === 2) return { version: 2, dirs: [join(CGROUP_ROOT, 'berth', id)] };
  const ctls = ['memory', 'pids', ...(limits.cpus ? ['cpu'] : [])].filter((c) => existsSync(join(CGROUP_ROOT, c)));
  return { version: 1, dirs: ctls.map((c) => join(CGROUP_ROOT, c, 'berth', id)) };
}

/**
 * Creates the container's cgroups and writes its limits. Without limits the container stays in
 * the caller's cgroup: making and removing cgroups is a measurable part of `run --rm`'s latency.
 */
export async function createCgroups(id: string, limits: Limits): Promise<CgroupSet> {
  if (!limits.memoryBytes && !limits.cpus && !limits.pidsLimit) return { version: cgroupVersion(), dirs: [] };
  if (cgroupVersion() === 2) {
    const parent = join(CGROUP_ROOT, 'berth');
    await mkdir(parent, { recursive: true });
    // Controllers must be enabled in the parent for the child to have their files.
    await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +pids +cpu').catch(() => undefined);
    const dir = join(parent, id);
    await mkdir(dir, { recursive: true });
    if (limits.memoryBytes) {
      await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
      await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
    }
    if (limits.pidsLimit) await writeFile(join(dir, 'pids.max'), String(limits.pidsLimit));
    if (limits.cpus) await writeFile(join(dir, 'cpu.max'), `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
    return { version: 2, dirs: [dir] };
  }
  const dirs: string[] = [];
  const ctl = async (controller: string): Promise<string | undefined> => {
    const base = join(CGROUP_ROOT, controller);
    if (!existsSync(base)) return undefined;
    const dir = join(base, 'berth', id);
    await mkdir(dir, { recursive: true });
    dirs.push(dir);
    return dir;
  };
  // memory and pids whenever limits are set (OOM detection, stats); cpu only when limited.
  const mem = await ctl('memory');
  if (mem && limits.memoryBytes) {
    await writeFile(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    // Same limit for memory+swap: a hog is OOM-killed instead of swapping (docker's --memory-swap = -m).
    await writeFile(join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined);
  }
  const pids = await ctl('pids');
  if (pids && limits.pidsLimit) await writeFile(join(pids, 'pids.max'), String(limits.pidsLimit));
  if (limits.cpus) {
    const cpu = await ctl('cpu');
    if (cpu) {
      await writeFile(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * CPU_PERIOD_US)));
    }
  }
  return { version: 1, dirs };
}

/** Whether the kernel OOM-killed a process of this container (memory.oom_control / memory.events). */
export async function oomKilled(set: CgroupSet): Promise<boolean> {
  for (const dir of set.dirs) {
    const file = set.version === 2 ? join(dir, 'memory.events') : join(dir, 'memory.oom_control');
    const text = await readFile(file, 'utf8').catch(() => '');
    const m = /^oom_kill (\d+)$/m.exec(text);
    if (m && Number(m[1]) > 0) return true;
  }
  return false;
}

/** Memory use in bytes, for `berth stats` and inspect. */
export async function memoryUsage(set: CgroupSet): Promise<number | undefined> {
  for (const dir of set.dirs) {
    const file = set.version === 2 ? join(dir, 'memory.current') : join(dir, 'memory.usage_in_bytes');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return Number(text.trim());
  }
  return undefined;
}

/** Removes the container's cgroups; retries briefly while the last exited tasks are released. */
export async function removeCgroups(set: CgroupSet): Promise<void> {
  for (const dir of set.dirs) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
