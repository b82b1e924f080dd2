// Typed wrapper over native/: where the berth-helper executable lives, and the addon's few calls.
// The addon is loaded lazily: `berth run` of an already-unpacked image never needs it.
import { fileURLToPath } from 'node:url';

// dist/native/index.js → native/build/Release (node-gyp output, beside the sources).
const RELEASE_DIR = fileURLToPath(new URL('../../native/build/Release/', import.meta.url));

/** The single-threaded helper that creates (`run`) and enters (`exec`) containers; see helper.cc. */
export const helperPath: string = process.env.BERTH_HELPER ?? `${RELEASE_DIR}berth-helper`;

interface Addon {
  pipe(): [number, number];
  spawn(path: string, args: string[], fds: number[]): number;
  waitExit(pid: number, cb: (err: Error | null, code: number, signal: number) => void): void;
  makeWhiteout(path: string): void;
  setXattr(path: string, name: string, value: Buffer): void;
  getXattr(path: string, name: string): Buffer | undefined;
  tryLock(fd: number): boolean;
}

let addon: Addon | undefined;
function load(): Addon {
  if (!addon) {
    // process.dlopen directly: `berth run` loads the addon at every start, and going through
    // createRequire first sets up the CommonJS loader for this one file.
    const m = { exports: {} as Addon };
    process.dlopen(m, `${RELEASE_DIR}berth_native.node`);
    addon = m.exports;
  }
  return addon;
}

/** Creates an overlayfs whiteout (character device 0:0) at `path`. */
export function makeWhiteout(path: string): void {
  load().makeWhiteout(path);
}

/** lsetxattr(2); errors carry errno, syscall and path. */
export function setXattr(path: string, name: string, value: Buffer | string): void {
  load().setXattr(path, name, typeof value === 'string' ? Buffer.from(value) : value);
}

/** lgetxattr(2); undefined when the attribute is absent. */
export function getXattr(path: string, name: string): Buffer | undefined {
  return load().getXattr(path, name);
}

/** pipe2(O_CLOEXEC): [read end, write end]. */
export function pipe(): [number, number] {
  return load().pipe();
}

/**
 * Spawns `path` with `fds[i]` as its fd i (-1: /dev/null), default signal dispositions, an empty
 * signal mask, without forking Node (posix_spawn). Returns the pid; reap it with waitExit.
 */
export function spawnProcess(path: string, args: string[], fds: number[]): number {
  return load().spawn(path, args, fds);
}

/** Resolves when `pid` (a child spawned by spawnProcess) ends: its exit code, or the signal. */
export function waitExit(pid: number): Promise<{ code: number | null; signal: number | null }> {
  return new Promise((resolve, reject) => {
    load().waitExit(pid, (err, code, signal) => (err ? reject(err) : resolve({ code: code >= 0 ? code : null, signal: signal > 0 ? signal : null })));
  });
}

/** flock(fd, LOCK_EX | LOCK_NB): whether the lock was taken (released when the fd is closed). */
export function tryLock(fd: number): boolean {
  return load().tryLock(fd);
}
