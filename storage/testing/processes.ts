// Lifecycle of the service processes the test fixtures start (Ceph, PostgreSQL, haproxy): each
// runs in the foreground as a child of the test process, tied to it twice over so that a failing
// or killed test leaves nothing running:
//   - spawned through `setpriv --pdeathsig KILL`: the kernel kills the daemon when the test
//     process dies, whatever the cause (even SIGKILL);
//   - registered here: on 'exit' (and on SIGINT/SIGTERM) every live daemon is SIGKILLed and every
//     registered temp folder removed, synchronously.
// stop() of a fixture does the orderly version of the same and unregisters.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';

const SETPRIV = '/usr/bin/setpriv';

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let hooked = false;

function cleanupNow(): void {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const d of liveDirs) {
    try {
      // A daemon killed a moment ago may still be finishing a log write: retry ENOTEMPTY.
      rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    } catch {
      // left behind; nothing else to do at exit
    }
  }
  liveDirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupNow();
      process.kill(process.pid, sig);
    });
  }
}

/** Removes `dir` when the test process exits, unless released first. */
export function removeAtExit(dir: string): void {
  hookExit();
  liveDirs.add(dir);
}

export function releaseDir(dir: string): void {
  liveDirs.delete(dir);
}

export interface Daemon {
  name: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** The last 8000 characters of its stdout and stderr. */
  log(): string;
  running(): boolean;
}

/**
 * Starts `bin args` in the foreground, killed with the test process (see the file comment).
 * `opts.uid/gid` run it as another user (PostgreSQL refuses root).
 */
export function spawnDaemon(name: string, bin: string, args: string[], opts: Pick<SpawnOptions, 'uid' | 'gid' | 'env' | 'cwd'> = {}): Daemon {
  hookExit();
  const [file, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  const child = spawn(file, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.once('error', (e) => (log += `\n${e.message}`));
  const exited = new Promise<void>((resolve) =>
    child.once('close', () => {
      liveChildren.delete(child);
      resolve();
    }),
  );
  return { name, child, exited, log: () => log, running: () => child.exitCode === null && child.signalCode === null };
}

/** `signal` (SIGTERM by default), up to `graceMs` for a clean exit, then SIGKILL. */
export async function stopDaemon(d: Daemon, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (d.running()) {
    d.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([d.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) d.child.kill('SIGKILL');
  }
  await d.exited;
}

/** Polls `ready` until it resolves true; fails as soon as the daemon exits, or after `deadlineMs`. */
export async function waitReady(d: Daemon, ready: () => Promise<boolean>, deadlineMs = 60_000, extraLog?: () => string): Promise<void> {
  const end = Date.now() + deadlineMs;
  const logs = () => `${d.log()}${extraLog ? `\n${extraLog()}` : ''}`;
  for (;;) {
    if (!d.running()) throw new Error(`${d.name} exited before it was ready:\n${logs()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${d.name} not ready after ${deadlineMs} ms:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A TCP port free on 127.0.0.1 right now. Another process can take it before the daemon binds
 * it: the fixtures retry a start that failed on a busy port with a new one.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/**
 * Memory of the processes `pids` and all their descendants: the sum of their PSS (shared pages
 * split between the processes that map them, so PostgreSQL's shared buffers count once), bytes.
 */
export function treeMemoryBytes(pids: number[]): number {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p && hops < 64; p = parent.get(p), hops++) if (pids.includes(p)) return true;
    return false;
  };
  let total = 0;
  for (const pid of parent.keys()) {
    if (!inTree(pid)) continue;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}
