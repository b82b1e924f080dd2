// Reading and writing a container's filesystem from the host (cp, export) without ever resolving
// a container path on the host: berth-helper's `rootfs` mode chroots into the container's root
// (its mount namespace when running, its overlay mounted privately when stopped) and execs a
// static busybox there, so symlinks the container made resolve inside it (as docker's
// chrootarchive). Tar streams cross the boundary on the helper's stdin/stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { helperPath } from '../native/index.js';
import type { ContainerConfig, ContainerState } from './container-store.js';

/** The static tool run inside the container root (busybox-static's multi-call binary). */
export function rootfsTool(): string {
  const candidates = process.env.BERTH_BUSYBOX ? [process.env.BERTH_BUSYBOX] : ['/bin/busybox', '/usr/bin/busybox'];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('cp and export need a statically linked busybox (Debian: busybox-static) at /bin/busybox or $BERTH_BUSYBOX');
  return found;
}

export interface RootfsCommand {
  child: ChildProcess;
  /** Resolves with the tool's exit code and its stderr (berth's own errors included). */
  done: Promise<{ code: number; stderr: string }>;
}

/**
 * Runs `args` (an applet: ["tar", …], ["stat", …]) chrooted in the container's filesystem.
 * `oneFilesystem` leaves out /proc, /sys, /dev and volumes (export); cp sees volumes.
 */
export function inRootfs(config: ContainerConfig, state: ContainerState, args: string[], opts: { stdin?: 'pipe' | 'ignore'; oneFilesystem?: boolean } = {}): RootfsCommand {
  const h = config.helper;
  const running = state.Status === 'running' && state.Pid > 0;
  const spec = {
    tool: rootfsTool(),
    args,
    oneFilesystem: opts.oneFilesystem ?? false,
    ...(running ? { pid: state.Pid } : { rootfs: h.rootfs, lower: h.lower, upper: h.upper, work: h.work, mounts: h.mounts }),
  };
  const child = spawn(helperPath, ['rootfs'], { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe', 'pipe'] });
  const configPipe = child.stdio[3] as Writable;
  configPipe.on('error', () => undefined);
  configPipe.end(JSON.stringify(spec));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? 9 : 0), stderr: stderr.trim() }));
  });
  return { child, done };
}

/** What a path in the container is, following symlinks inside it; undefined when absent. */
export async function statInContainer(config: ContainerConfig, state: ContainerState, path: string): Promise<'dir' | 'file' | undefined> {
  const cmd = inRootfs(config, state, ['stat', '-L', '-c', '%F', '--', path]);
  let out = '';
  (cmd.child.stdout as Readable).setEncoding('utf8').on('data', (d: string) => (out += d));
  const { code, stderr } = await cmd.done;
  if (code !== 0) {
    if (/No such file|Not a directory/.test(stderr)) return undefined;
    throw new Error(stderr || `stat ${path} in the container failed (${code})`);
  }
  return out.trim() === 'directory' ? 'dir' : 'file';
}
